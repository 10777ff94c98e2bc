"""Shared test setup: the dataset folder, an offline Hub, and small checkpoints made on the fly."""

import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = ROOT.parent / "shared" / "data"

# Tests never reach the network: the Hub is exercised through its local cache.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
if "GENMODELS_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GENMODELS_DATA"] = str(SHARED_DATA)


def pytest_configure(config):
    """The datasets the tests read: from $GENMODELS_DATA (default ./data), downloaded there on first use when
    missing and the machine has internet; otherwise the run stops and says where to put them."""
    from genmodels.data import DatasetNotFoundError, load_dataset

    root = Path(os.environ.get("GENMODELS_DATA", "data"))
    try:
        for name in ("mnist", "fashion-mnist"):
            for train in (True, False):
                load_dataset(name, train=train, root=root, download=True, subset=1)
    except DatasetNotFoundError as err:
        raise pytest.UsageError(
            f"The tests need MNIST and Fashion-MNIST under {root.resolve()} (MNIST/raw, FashionMNIST/raw), and "
            f"could not download them ({err}). Set GENMODELS_DATA to a folder that has them (for example "
            f"../shared/data)."
        ) from err


if os.environ.get("PYTEST_XDIST_WORKER"):  # several test processes share the cores: one torch thread each
    torch.set_num_threads(1)


@pytest.fixture(autouse=True)
def keep_torch_threads():
    """A test that runs the app (AppTest) applies its thread policy (one torch thread, or every core) to this whole
    process: put the count back, so the rest of the suite keeps its own."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def tiny_vae():
    """A small untrained VAE (any prior) with fixed weights."""
    from genmodels.vae import VAE, VAEConfig

    def make(prior: str = "gaussian", latent_dim: int = 2, **kwargs) -> VAE:
        torch.manual_seed(0)
        return VAE(VAEConfig(prior=prior, latent_dim=latent_dim, hidden_dim=32, n_components=4, **kwargs)).eval()

    return make


@pytest.fixture
def saved_vae(tmp_path, tiny_vae):
    """A checkpoint folder written by save_pretrained, with metrics."""
    model = tiny_vae("mog")
    model.metrics = {"command": "python -m train vae --test", "seed": 0, "eval": {"test_elbo": -100.0}}
    folder = tmp_path / "ckpt"
    model.save_pretrained(folder)
    return model, folder


@pytest.fixture
def mnist_batch():
    from genmodels.data import load_dataset

    data = load_dataset("binarized-mnist", train=False, subset=32)
    return data.images


@pytest.fixture(scope="session")
def scratch_models(tmp_path_factory):
    """A folder of tiny checkpoints of every family, trained for real on a subset (the app tests' local folder).
    Under pytest-xdist the workers share one folder: the first to need it trains it, the others wait for it (a
    file lock), so the training is not repeated in every worker. Tests that write scores copy a model first."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return _train_scratch_models(tmp_path_factory.mktemp("scratch"))
    from filelock import FileLock

    shared = tmp_path_factory.getbasetemp().parent  # the run's folder, above each worker's own
    root, done = shared / "scratch", shared / "scratch.done"
    with FileLock(str(shared / "scratch.lock")):
        if not done.exists():
            root.mkdir(exist_ok=True)
            _train_scratch_models(root)
            done.touch()
    return root


def _train_scratch_models(root: Path) -> Path:
    from train.__main__ import main

    small = ["--epochs", "1", "--subset", "1000", "--iwae-k", "5", "--quiet", "--device", "cpu"]
    for beta in ("0.5", "1", "4"):
        assert main(["vae", "--architecture", "conv", "--hidden-dim", "32", "--latent-dim", "4", "--beta", beta,
                     "--out", str(root / f"beta{beta}"), *small]) == 0
    assert main(["vae", "--architecture", "conv", "--hidden-dim", "32", "--latent-dim", "3", "--conditional",
                 "--out", str(root / "cvae"), *small]) == 0
    assert main(["vae", "--hidden-dim", "32", "--latent-dim", "2", "--out", str(root / "plain"), *small]) == 0
    gan = ["gan", "--g-width", "32", "--d-width", "16", "--epochs", "2", "--subset", "256", "--quiet", "--device",
           "cpu"]
    assert main([*gan, "--backbone", "mlp", "--out", str(root / "gan-mlp")]) == 0
    assert main([*gan, "--backbone", "dcgan", "--spectral-norm", "--out", str(root / "gan-dcgan")]) == 0
    assert main([*gan, "--backbone", "mlp", "--conditional", "--out", str(root / "cgan-mlp")]) == 0
    ebm = ["--epochs", "2", "--subset", "500", "--quiet", "--device", "cpu"]
    assert main(["rbm", "--hidden", "16", "--ais-betas", "50", "--ais-chains", "10", *ebm,
                 "--out", str(root / "rbm-16")]) == 0
    assert main(["dbm", "--hidden1", "16", "--hidden2", "8", "--pretrain-epochs", "1", "--chains", "10", *ebm,
                 "--out", str(root / "dbm")]) == 0
    ae = ["autoencoder", "--epochs", "1", "--subset", "500", "--quiet", "--device", "cpu"]
    assert main([*ae, "--distortion", "mix", "--bottleneck", "4", "--out", str(root / "ae-mix-4")]) == 0
    assert main([*ae, "--distortion", "noise", "--bottleneck", "8", "--out", str(root / "ae-noise-8")]) == 0
    assert main([*ae, "--dataset", "colored-mnist", "--distortion", "mix", "--bottleneck", "4",
                 "--out", str(root / "ae-color-mix-4")]) == 0
    assert main([*ae, "--dataset", "binarized-mnist", "--architecture", "mlp", "--hidden-dim", "32", "--bottleneck",
                 "2", "--distortion", "none", "--out", str(root / "ae-mlp")]) == 0  # beside the VAE "plain"
    for schedule in ("linear", "cosine"):
        assert main(["ddpm", "--schedule", schedule, "--T", "20", "--channels", "8", "16", "16", "--epochs", "2",
                     "--subset", "256", "--quiet", "--device", "cpu", "--out", str(root / f"ddpm-{schedule}")]) == 0
    assert main(["ddpm", "--conditional", "--T", "20", "--channels", "8", "16", "16", "--epochs", "1", "--subset",
                 "256", "--quiet", "--device", "cpu", "--out", str(root / "ddpm-conditional")]) == 0
    assert main(["cold", "--degradation", "pixelate", "--T", "6", "--channels", "8", "16", "16", "--epochs", "1",
                 "--subset", "256", "--start-dims", "4", "--start-components", "3", "--quiet", "--device", "cpu",
                 "--out", str(root / "cold-pixelate")]) == 0
    assert main(["flow", "--levels", "1", "--steps", "1", "--hidden", "8", "--blocks", "1", "--epochs", "1",
                 "--subset", "256", "--eval-images", "100", "--quiet", "--device", "cpu",
                 "--out", str(root / "flow")]) == 0
    # colour models (coloured MNIST): the colour page, and every page of their families that accepts them
    assert main(["vae", "--dataset", "colored-mnist", "--architecture", "conv", "--hidden-dim", "32", "--latent-dim",
                 "4", "--likelihood", "gaussian-learned", "--out", str(root / "vae-color"), *small]) == 0
    assert main(["ddpm", "--dataset", "colored-mnist", "--T", "20", "--channels", "8", "16", "16", "--epochs", "1",
                 "--subset", "256", "--quiet", "--device", "cpu", "--out", str(root / "ddpm-color")]) == 0
    return root
