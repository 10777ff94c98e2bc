"""The dataset layer against the facts in ../shared/data/README.md."""

import subprocess
import sys
from pathlib import Path

import pytest
import torch

from genmodels.data import DATA_ENV, DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parent.parent


def test_mnist_matches_known_facts():
    train = load_dataset("mnist", train=True)
    test = load_dataset("mnist", train=False)
    assert train.images.shape == (60000, 1, 28, 28) and len(test) == 10000
    assert torch.bincount(train.labels).tolist() == [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
    assert train.labels[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]
    assert test.labels[:10].tolist() == [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]
    assert train.images.mean().item() == pytest.approx(0.1307, abs=5e-4)
    assert 0.0 <= train.images.min() and train.images.max() <= 1.0


def test_binarized_mnist_thresholds_at_one_half():
    grey = load_dataset("mnist", train=False, subset=200)
    binary = load_dataset("binarized-mnist", train=False, subset=200)
    assert torch.equal(binary.images, (grey.images > 0.5).float())
    x, y = binary[3]
    assert set(x.unique().tolist()) == {0.0, 1.0} and y == grey.labels[3]


def test_dynamic_binarization_draws_fresh_bernoulli_pixels():
    data = load_dataset("dynamic-binarized-mnist", train=False, subset=50)
    torch.manual_seed(0)
    draws = torch.stack([data[0][0] for _ in range(400)])
    assert set(draws.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(draws[0], draws[1])  # a new image each access
    grey = data.images[0]
    assert (draws.mean(0) - grey).abs().max() < 0.1  # the grey value is the probability


def test_fashion_mnist_loads():
    data = load_dataset("fashion-mnist", train=False, subset=100)
    assert data.images.shape == (100, 1, 28, 28) and data.labels.max() <= 9


def test_subset_keeps_the_first_examples():
    full = load_dataset("mnist", train=False)
    part = load_dataset("mnist", train=False, subset=64)
    assert len(part) == 64 and torch.equal(part.images, full.images[:64])


def test_missing_files_name_the_folder_and_the_variable(tmp_path):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist", root=tmp_path / "nowhere")
    assert str(tmp_path / "nowhere") in str(err.value) and DATA_ENV in str(err.value)


def test_missing_files_via_the_environment_variable(tmp_path, monkeypatch):
    monkeypatch.setenv(DATA_ENV, str(tmp_path))
    with pytest.raises(DatasetNotFoundError, match="FashionMNIST"):
        load_dataset("fashion-mnist", train=False)


def test_unknown_dataset_is_refused():
    with pytest.raises(ValueError, match="unknown dataset"):
        load_dataset("cifar10")


@pytest.mark.parametrize("folder", ["MNIST", "FashionMNIST"])
def test_idx_reader_matches_torchvision(folder):
    from torchvision import datasets

    from genmodels.data import data_root, read_idx

    for train, prefix in ((True, "train"), (False, "t10k")):
        ref = getattr(datasets, folder)(str(data_root()), train=train, download=False)
        raw = data_root() / folder / "raw"
        assert torch.equal(read_idx(raw / f"{prefix}-images-idx3-ubyte"), ref.data)
        assert torch.equal(read_idx(raw / f"{prefix}-labels-idx1-ubyte").long(), ref.targets)


def test_corrupt_idx_files_are_reported(tmp_path):
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (raw / name).write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x10" + b"\x01" * 4)  # 16 promised, 4 given
    with pytest.raises(DatasetNotFoundError, match="truncated"):
        load_dataset("mnist", train=False, root=tmp_path)
    (raw / "t10k-images-idx3-ubyte").write_bytes(b"PK\x03\x04 a zip, not idx")
    with pytest.raises(DatasetNotFoundError, match="not an uncompressed IDX"):
        load_dataset("mnist", train=False, root=tmp_path)


def test_failed_download_says_where_to_put_the_files_and_leaves_no_empty_folders(tmp_path, monkeypatch):
    import torchvision.datasets.mnist as tv

    def offline(*args, **kwargs):
        raise OSError("no network (a fake download)")

    monkeypatch.setattr(tv, "download_and_extract_archive", offline)
    monkeypatch.setattr(tv, "download_url", offline, raising=False)
    root = tmp_path / "data"
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist", train=False, root=root, download=True)
    message = str(err.value)
    assert "could not download MNIST" in message and "MNIST/raw/*-ubyte" in message and DATA_ENV in message
    assert "download=True" not in message
    assert not root.exists()  # no empty data/MNIST/raw left to confuse the next try


def idx(shape: tuple[int, ...]) -> bytes:
    """An IDX file of unsigned bytes with the given shape, all zero."""
    import numpy as np

    header = b"\x00\x00\x08" + bytes([len(shape)]) + np.array(shape, dtype=">i4").tobytes()
    return header + bytes(int(np.prod(shape)))


def test_images_and_labels_that_disagree_in_count_are_refused(tmp_path):
    """A label file shorter than its image file used to train silently and fail later in the app."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx((10, 28, 28)))
    (raw / "t10k-labels-idx1-ubyte").write_bytes(idx((9,)))
    with pytest.raises(DatasetNotFoundError, match="10 images of shape \\(28, 28\\) and 9 labels"):
        load_dataset("mnist", train=False, root=tmp_path)
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx((9, 32, 32)))
    with pytest.raises(DatasetNotFoundError, match="do not agree"):
        load_dataset("mnist", train=False, root=tmp_path)
    (raw / "t10k-images-idx3-ubyte").write_bytes(idx((9, 28, 28)))
    assert len(load_dataset("mnist", train=False, root=tmp_path)) == 9


def test_colored_mnist_is_mnist_painted_by_a_fixed_rule():
    import colorsys

    from genmodels.data import digit_colors, hsv_to_rgb, image_channels

    grey = load_dataset("mnist", train=False, subset=300)
    color = load_dataset("colored-mnist", train=False, subset=300)
    assert color.images.shape == (300, 3, 28, 28) and image_channels("colored-mnist") == 3
    assert torch.equal(color.labels, grey.labels)
    assert 0.0 <= color.images.min() and color.images.max() <= 1.0
    # Deterministic, and a subset is the start of the full set, colours included.
    assert torch.equal(load_dataset("colored-mnist", train=False, subset=300).images, color.images)
    assert torch.equal(load_dataset("colored-mnist", train=False).images[:300], color.images)
    # Each pixel mixes the image's two colours by its grey value: background pixels are the background colour,
    # the stroke's brightest pixels the foreground colour.
    fg, bg = digit_colors(10_000, seed=2)
    x, g = color.images[7], grey.images[7, 0]
    assert torch.allclose(x[:, g == 0], bg[7].view(3, 1).expand(3, int((g == 0).sum())))
    assert torch.allclose(x, g * fg[7].view(3, 1, 1) + (1 - g) * bg[7].view(3, 1, 1))
    # The stroke is brighter than the background in every image.
    assert bool((fg.max(1).values > bg.max(1).values + 0.3).all())
    # The training set is painted by another seed.
    assert not torch.equal(load_dataset("colored-mnist", train=True, subset=5).images[:, :, 0, 0],
                           color.images[:5, :, 0, 0])
    h, s, v = torch.rand(3, 50, generator=torch.Generator().manual_seed(0))
    expected = torch.tensor([colorsys.hsv_to_rgb(*t) for t in torch.stack([h, s, v], 1).tolist()])
    assert torch.allclose(hsv_to_rgb(h, s, v), expected, atol=1e-6)


def test_rgb_to_hsv_and_the_hue_rule():
    import colorsys

    from genmodels.data import MIN_HUE_GAP, digit_colors, hue_gap, rgb_to_hsv

    rgb = torch.rand(200, 3, generator=torch.Generator().manual_seed(1))
    rgb[:5] = rgb[:5, :1]  # greys: hue 0
    rgb[5] = 0.0
    expected = torch.tensor([colorsys.rgb_to_hsv(*c) for c in rgb.tolist()])
    assert torch.allclose(torch.stack(rgb_to_hsv(rgb), 1), expected, atol=1e-6)
    # Hue distance is around the wheel: red (0) and a red-magenta (0.9) are 0.1 apart, red and cyan half a turn.
    red, cyan, magenta = torch.tensor([[1.0, 0, 0]]), torch.tensor([[0, 1.0, 1.0]]), torch.tensor([[1.0, 0, 0.6]])
    assert hue_gap(red, cyan).item() == pytest.approx(0.5) and hue_gap(red, magenta).item() == pytest.approx(0.1)
    fg, bg = digit_colors(10_000, seed=2)
    gaps = hue_gap(fg, bg)
    assert gaps.min() >= MIN_HUE_GAP - 1e-5 and gaps.max() <= 0.5 and gaps.mean() > 0.3  # the rule, and spread


def test_decolorize_gives_back_the_grey_digit_and_its_two_colours():
    from genmodels.data import decolorize, digit_colors

    grey = load_dataset("mnist", train=False, subset=200).images
    shape, fg, bg = decolorize(load_dataset("colored-mnist", train=False, subset=200).images)
    F, B = digit_colors(10_000, seed=2)
    assert torch.allclose(bg, B[:200]) and torch.allclose(fg, F[:200], atol=1 / 255 + 1e-6)
    ink = grey / grey.flatten(1).max(1).values.view(-1, 1, 1, 1)  # the grey digit, its strongest pixel at 1
    assert torch.allclose(shape, ink, atol=1e-5)


def test_colorize_in_chunks_is_the_formula_exactly_and_keeps_the_peak_down():
    """Each pixel g * fg + (1 - g) * bg, bit for bit, whatever the chunk; loading the coloured test set holds
    about the result and the grey images (172 MB here), not four temporaries of the result's size (307 MB)."""
    from genmodels.data import colorize

    generator = torch.Generator().manual_seed(0)
    grey, fg, bg = torch.rand(2500, 1, 28, 28, generator=generator), torch.rand(2500, 3), torch.rand(2500, 3)
    whole = grey * fg.view(-1, 3, 1, 1) + (1 - grey) * bg.view(-1, 3, 1, 1)
    for chunk in (1, 7, 1000, 5000):
        assert torch.equal(colorize(grey, fg, bg, chunk=chunk), whole)
    assert colorize(grey[:3], fg[:3], bg[:3]).shape == (3, 3, 28, 28)
    code = ("import resource, torch\n"
            "from genmodels.data import load_dataset\n"
            "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
            "images = load_dataset('colored-mnist', train=False).images\n"
            "print(images.shape[0], (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    n, grown = done.stdout.split()
    assert int(n) == 10_000 and float(grown) < 230  # the result 94 MB, the grey images 31 MB (was 307 MB)
