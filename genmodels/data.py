"""Datasets: MNIST, binarized MNIST and Fashion-MNIST, and coloured versions of two, in torchvision's layout.

The raw files live under the folder named by the environment variable
``GENMODELS_DATA`` (default ``./data``), in torchvision's layout
(``MNIST/raw/...``, ``FashionMNIST/raw/...``). With ``download=True`` and
internet, torchvision fetches them there; files already there are read directly (``read_idx``).

Every dataset here is held in memory as one float tensor of shape
(N, C, 28, 28) with values in [0, 1], plus the labels: MNIST is 188 MB as
floats (its coloured version 564 MB), and indexing a tensor is far faster than
decoding PIL images.
"""

import os
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

DATA_ENV = "GENMODELS_DATA"

# name -> (torchvision class name, how pixels are turned into the model's input)
DATASETS = {
    "mnist": ("MNIST", "grey"),
    # The DTU brief: "pixels with values over 0.5 are set to 1".
    "binarized-mnist": ("MNIST", "threshold"),
    # A fresh Bernoulli draw with the grey value as probability at every access,
    # the usual regulariser for Bernoulli-likelihood models.
    "dynamic-binarized-mnist": ("MNIST", "bernoulli"),
    "fashion-mnist": ("FashionMNIST", "grey"),
    # The Graz brief allows "a coloured version of a greyscale dataset": each image painted in a colour on a
    # darker background of another hue, by a seeded rule (see ``digit_colors``), 3 channels.
    "colored-mnist": ("MNIST", "color"),
    "colored-fashion-mnist": ("FashionMNIST", "color"),
}
DATASET_NAMES = tuple(DATASETS)  # what a config's "dataset" may be
DATASET_TITLES = {"mnist": "MNIST", "binarized-mnist": "binarized MNIST",
                  "dynamic-binarized-mnist": "dynamically binarized MNIST", "fashion-mnist": "Fashion-MNIST",
                  "colored-mnist": "coloured MNIST", "colored-fashion-mnist": "coloured Fashion-MNIST"}

CLASS_NAMES = {
    "mnist": [f"digit {d}" for d in range(10)],
    "fashion-mnist": [
        "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
        "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
    ],
}


class DatasetNotFoundError(FileNotFoundError):
    """The raw dataset files are not where the loader looked."""


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The dataset folder: ``root`` if given, else ``$GENMODELS_DATA``, else ``./data``."""
    if root is not None:
        return Path(root)
    return Path(os.environ.get(DATA_ENV, "data"))


def class_names(name: str) -> list[str]:
    """Human-readable class labels of a dataset (digits for the MNIST variants)."""
    return CLASS_NAMES["fashion-mnist" if name.endswith("fashion-mnist") else "mnist"]


def image_channels(name: str) -> int:
    """3 for the coloured datasets, 1 for the others."""
    return 3 if DATASETS.get(name, ("", ""))[1] == "color" else 1


# The colours of image i of a split depend only on i and the split, so the coloured test set is the same
# everywhere; a subset is the first images of the full set, colours included.
COLOR_SEEDS = {True: 1, False: 2}  # train, test


def hsv_to_rgb(h: torch.Tensor, s: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Colours from hue, saturation and value, each in [0, 1] and shaped (N,); returns (N, 3) in [0, 1]."""
    k = (torch.tensor([5.0, 3.0, 1.0]) + 6 * h.unsqueeze(-1)) % 6
    return v.unsqueeze(-1) - (v * s).unsqueeze(-1) * (torch.minimum(k, 4 - k).clamp(0, 1))


def rgb_to_hsv(rgb: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The inverse of ``hsv_to_rgb``: colours (N, 3) in [0, 1] -> (hue, saturation, value), each (N,) in [0, 1]
    (hue 0 where a colour is grey)."""
    v, top = rgb.max(-1)
    chroma = v - rgb.min(-1).values
    s = torch.where(v > 0, chroma / v.clamp(min=1e-12), torch.zeros_like(v))
    r, g, b = rgb.unbind(-1)
    c = chroma.clamp(min=1e-12)
    sector = torch.stack([(g - b) / c, 2 + (b - r) / c, 4 + (r - g) / c], -1).gather(-1, top.unsqueeze(-1)).squeeze(-1)
    h = torch.where(chroma > 0, (sector / 6) % 1, torch.zeros_like(v))
    return h, s, v


MIN_HUE_GAP = 0.25  # coloured MNIST's rule: the background's hue at least a quarter turn from the stroke's


def hue_gap(fg: torch.Tensor, bg: torch.Tensor) -> torch.Tensor:
    """How far apart two colours' hues are around the colour wheel, in turns (0 to 0.5); (N, 3) each -> (N,)."""
    d = (rgb_to_hsv(fg)[0] - rgb_to_hsv(bg)[0]).abs()
    return torch.minimum(d, 1 - d)


def digit_colors(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(foreground, background) colours of n images, each (n, 3): the stroke in a bright colour of any hue
    (saturation 0.7 to 1, value 0.85 to 1), the background a dark colour (value 0.15 to 0.45) of a hue at
    least a quarter turn away (``MIN_HUE_GAP``), so the digit always stands out."""
    g = torch.Generator().manual_seed(seed)
    u = torch.rand(n, 6, generator=g)
    hue = u[:, 0]
    fg = hsv_to_rgb(hue, 0.7 + 0.3 * u[:, 1], 0.85 + 0.15 * u[:, 2])
    bg_hue = (hue + MIN_HUE_GAP + (1 - 2 * MIN_HUE_GAP) * u[:, 3]) % 1
    bg = hsv_to_rgb(bg_hue, 0.5 + 0.5 * u[:, 4], 0.15 + 0.3 * u[:, 5])
    return fg, bg


def colorize(images: torch.Tensor, fg: torch.Tensor, bg: torch.Tensor, chunk: int = 1000) -> torch.Tensor:
    """Grey images (N, 1, 28, 28) in [0, 1] -> (N, 3, 28, 28): each pixel g * fg + (1 - g) * bg.

    ``chunk`` images at a time into the result: the whole set at once held four temporaries of the result's size
    (loading the 10,000 coloured test images peaked 307 MB over the start, now 172 MB)."""
    out = torch.empty(len(images), 3, *images.shape[2:], dtype=images.dtype)
    for i in range(0, len(images), chunk):
        g, f, b = images[i:i + chunk], fg[i:i + chunk].reshape(-1, 3, 1, 1), bg[i:i + chunk].reshape(-1, 3, 1, 1)
        out[i:i + chunk] = g * f + (1 - g) * b
    return out


def decolorize(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Undo ``colorize`` as far as one image allows: (grey (N, 1, 28, 28), foreground (N, 3), background (N, 3)).

    The background is the median colour of the border pixels (MNIST digits never reach the border); the
    foreground the pixel farthest from it; each pixel's grey value its position on the segment from background
    to foreground, clipped to [0, 1]. Exact for a coloured MNIST image whose stroke reaches full ink; for a
    generated one, the shape it drew and the two colours it chose, so the MNIST judge can score the shape and
    the colours can be compared on their own.
    """
    border = torch.cat([images[..., 0, :], images[..., -1, :], images[..., 1:-1, 0], images[..., 1:-1, -1]], -1)
    bg = border.median(-1).values  # (N, 3)
    offset = images - bg.view(-1, 3, 1, 1)
    farthest = offset.pow(2).sum(1).flatten(1).argmax(-1)  # (N,)
    fg = images.flatten(2)[torch.arange(len(images)), :, farthest]  # (N, 3)
    direction = fg - bg
    length2 = direction.pow(2).sum(-1).clamp(min=1e-8).view(-1, 1, 1)
    grey = (offset * direction.view(-1, 3, 1, 1)).sum(1, keepdim=True) / length2.unsqueeze(1)
    return grey.clamp(0, 1), fg, bg


class ImageDataset(Dataset):
    """Images in [0, 1] of shape (C, 28, 28) with integer labels, held in memory.

    ``pixels="bernoulli"`` draws a fresh binary image at each access from the
    global torch RNG (so a seeded run is reproducible).
    """

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, pixels: str = "grey"):
        if pixels not in ("grey", "threshold", "bernoulli", "color"):
            raise ValueError(f"unknown pixel mode {pixels!r}")
        if pixels == "threshold":
            images = (images > 0.5).float()
        self.images = images
        self.labels = labels
        self.pixels = pixels

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i):
        x = self.images[i]
        if self.pixels == "bernoulli":
            x = torch.bernoulli(x)
        return x, self.labels[i]

    def split(self, n_val: int, seed: int = 0) -> tuple["ImageDataset", "ImageDataset"]:
        """(the rest, n_val held-out images) from a seeded permutation, each part in the original order.

        The held-out part of a dynamically binarized set is binarized once, at 0.5, as its test set
        is: validation numbers must not change from one epoch to the next by chance.
        """
        if not 0 < n_val < len(self):
            raise ValueError(f"cannot hold out {n_val} of {len(self)} images for validation")
        order = torch.randperm(len(self), generator=torch.Generator().manual_seed(seed))
        held, kept = order[:n_val].sort().values, order[n_val:].sort().values
        val_pixels = "threshold" if self.pixels == "bernoulli" else self.pixels
        return (ImageDataset(self.images[kept], self.labels[kept], self.pixels),
                ImageDataset(self.images[held], self.labels[held], val_pixels))


def load_dataset(
    name: str,
    train: bool = True,
    root: str | os.PathLike | None = None,
    download: bool = False,
    subset: int | None = None,
) -> ImageDataset:
    """Load one of ``DATASETS`` as an :class:`ImageDataset`.

    ``subset`` keeps the first ``subset`` examples (for fast tests). Raises
    :class:`DatasetNotFoundError` naming the folder and the variable when the
    files are missing and ``download`` is off (or there is no internet).
    """
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
    cls_name, pixels = DATASETS[name]
    folder = data_root(root)
    raw_dir = folder / cls_name / "raw"
    prefix = "train" if train else "t10k"
    files = raw_dir / f"{prefix}-images-idx3-ubyte", raw_dir / f"{prefix}-labels-idx1-ubyte"
    if all(f.is_file() for f in files):
        images, labels = read_idx(files[0]), read_idx(files[1])
    else:
        images, labels = _torchvision(cls_name, folder, train, download)
    if images.dim() != 3 or images.shape[1:] != (28, 28) or labels.dim() != 1 or len(images) != len(labels):
        raise DatasetNotFoundError(f"the {cls_name} {prefix} files under '{raw_dir}' do not agree: "
                                   f"{len(images)} images of shape {tuple(images.shape[1:])} and {len(labels)} labels "
                                   f"(a file is damaged or from another dataset). Delete them and download again.")
    n_all = len(images)
    if subset is not None:
        images, labels = images[:subset], labels[:subset]
    images = images.unsqueeze(1).float().div_(255.0)
    if pixels == "color":
        fg, bg = digit_colors(n_all, COLOR_SEEDS[train])
        images = colorize(images, fg[: len(images)], bg[: len(images)])
    return ImageDataset(images, labels.long(), pixels=pixels)


def read_idx(path: str | os.PathLike) -> torch.Tensor:
    """Read an uncompressed IDX file of unsigned bytes (the MNIST format, as torchvision keeps it).

    Header: two zero bytes, the type code 0x08 (unsigned byte), the number of dimensions, then each
    dimension as a big-endian int32; the data follows. Reading it here keeps torchvision (about
    180 MB resident with its extensions) out of the app; torchvision still downloads the files.
    """
    data = Path(path).read_bytes()
    if len(data) < 4 or data[:3] != b"\x00\x00\x08":
        raise DatasetNotFoundError(f"'{path}' is not an uncompressed IDX file of unsigned bytes; delete it "
                                   f"and download the dataset again.")
    ndim = data[3]
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">i4", count=ndim, offset=4))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DatasetNotFoundError(f"'{path}' is truncated ({array.size} of {int(np.prod(shape))} values); "
                                   f"delete it and download the dataset again.")
    return torch.from_numpy(array.reshape(shape).copy())


def _torchvision(cls_name: str, folder: Path, train: bool, download: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """Images and labels through torchvision, which downloads them when asked. A failed download leaves no
    empty folders behind (they would hide the message on the next try)."""
    from torchvision import datasets

    cls = getattr(datasets, cls_name)
    existed = {d for d in (folder, folder / cls_name, folder / cls_name / "raw") if d.exists()}
    where = f"Put the files {cls_name}/raw/*-ubyte under '{folder.resolve()}', or point {DATA_ENV} at a folder " \
            f"that has them"
    try:
        raw = cls(str(folder), train=train, download=download)
    except (RuntimeError, OSError) as err:  # not found (download off), or no network (download on)
        for d in (folder / cls_name / "raw", folder / cls_name, folder):
            if d not in existed and d.is_dir() and not any(d.iterdir()):
                d.rmdir()
        if download:
            raise DatasetNotFoundError(f"could not download {cls_name} ({err}). {where}.") from err
        raise DatasetNotFoundError(f"{cls_name} files not found under '{folder.resolve()}'. {where}, or download "
                                   f"them on a machine with internet (--download on the command line).") from err
    return raw.data, raw.targets
