"""What every page shares: the checkpoint source, cached loading, the model card, the code panel.

Streamlit only: the math and the figures live in ``genmodels``.
"""

import dataclasses
import inspect
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch

import genmodels
from genmodels import figures
from genmodels.checkpoint import CONFIG, CheckpointError, list_checkpoints, read_config
from genmodels.data import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"

def page_for(config: dict) -> str | None:
    """The page that explains a checkpoint best; the home page links there."""
    if config.get("family") == "ddpm":
        return "app_pages/ddpm.py"
    if config.get("family") != "vae":
        return None
    if config.get("n_classes"):
        return "app_pages/vae_conditional.py"
    if config.get("beta", 1.0) != 1.0 or config.get("architecture") == "conv":
        return "app_pages/vae_beta.py"
    return "app_pages/vae_priors.py"


SOURCE_KINDS = ("Shipped checkpoints", "Local folder", "Hugging Face Hub")


@dataclass(frozen=True)
class Source:
    kind: str  # one of SOURCE_KINDS
    location: str  # a folder, or a Hub repo id
    revision: str | None = None


def source_sidebar() -> Source:
    """Sidebar controls choosing where checkpoints come from; kept in session state across pages."""
    with st.sidebar:
        st.header("Checkpoints")
        kind = st.radio("Load models from", SOURCE_KINDS, key="source_kind",
                        help="The app ships small trained models; you can also point it at your own.")
        if kind == "Local folder":
            location = st.text_input("Folder", key="source_folder", placeholder="checkpoints/my-run",
                                     help="A checkpoint folder, or a folder of checkpoint folders "
                                          "(as written by `python -m train ... --out DIR`).")
            source = Source(kind, location.strip())
        elif kind == "Hugging Face Hub":
            repo = st.text_input("Repo id", key="source_repo", placeholder="owner/name")
            revision = st.text_input("Revision (optional)", key="source_revision",
                                     placeholder="main, a tag or a commit")
            source = Source(kind, repo.strip(), revision.strip() or None)
        else:
            source = Source(kind, str(SHIPPED))
    st.session_state["source"] = source
    return source


def current_source() -> Source:
    return st.session_state.get("source", Source(SOURCE_KINDS[0], str(SHIPPED)))


@st.cache_data(show_spinner=False, ttl=600)
def _hub_config(repo_id: str, revision: str | None) -> dict:
    return read_config(repo_id, revision)


def available_checkpoints(source: Source) -> list[tuple[str, dict]]:
    """(location, config) of every checkpoint the source offers. Raises CheckpointError."""
    if not source.location:
        raise CheckpointError("enter a folder or a Hub repo id in the sidebar, or choose the shipped checkpoints.")
    if source.kind == "Hugging Face Hub":
        return [(source.location, _hub_config(source.location, source.revision))]
    folder = Path(source.location).expanduser()
    if not folder.is_dir():
        raise CheckpointError(f"no folder '{folder}'. Enter the path of a checkpoint folder, or of a folder "
                              f"that holds checkpoint folders.")
    if (folder / CONFIG).is_file():
        return [(str(folder), read_config(folder))]
    found = list_checkpoints(folder)
    if not found:
        raise CheckpointError(f"'{folder}' holds no checkpoint folders (none has a {CONFIG}). Train one with "
                              f"`python -m train vae --out {folder}/my-vae`.")
    return found


@st.cache_resource(show_spinner="Loading model...", max_entries=8)
def load_model(location: str, revision: str | None = None) -> genmodels.checkpoint.HubModel:
    """``genmodels.load``, cached for the whole server; errors are not cached.

    At most 8 models stay loaded (a page needs at most 7 at once: the beta sweep's five, the DDPM training
    page's settings and judge): the zoo grows, a small host does not, and a model loads again in 50 ms."""
    return genmodels.load(location, revision=revision)


def checkpoint_label(location: str) -> str:
    """A folder's name, or the Hub repo id as given."""
    return Path(location).name if Path(location).exists() else location


def pick_checkpoint(family: str, where=st, accept=lambda config: True, default: str | None = None,
                    key: str | None = None):
    """A select box of the source's checkpoints of ``family``; returns the loaded model.

    On any problem the page shows ``st.error`` with what to do, and stops.
    """
    source = current_source()
    try:
        options = [(loc, cfg) for loc, cfg in available_checkpoints(source)
                   if cfg.get("family") == family and accept(cfg)]
    except CheckpointError as err:
        st.error(f"Could not list checkpoints: {err}")
        st.stop()
    if not options:
        st.error(f"The chosen source ({source.location or source.kind}) has no {family} checkpoint that this "
                 f"page can show. Choose the shipped checkpoints in the sidebar, or train one with "
                 f"`python -m train {family} --out checkpoints/my-{family}`.")
        st.stop()
    labels = [checkpoint_label(loc) for loc, _ in options]
    index = labels.index(default) if default in labels else 0
    choice = where.selectbox("Checkpoint", range(len(options)), index=index, format_func=labels.__getitem__,
                             key=key or f"checkpoint_{family}")
    try:
        return load_model(options[choice][0], source.revision)
    except CheckpointError as err:
        st.error(f"Could not load this checkpoint: {err}")
        st.stop()


class StoredImages:
    """Test images kept as uint8, a quarter of the memory of float32 (8 MB instead of 31 for MNIST's
    10,000); indexing or slicing gives float images in [0, 1], as ``load_dataset`` does."""

    def __init__(self, images: torch.Tensor):
        self.data = (images * 255).round().to(torch.uint8)

    def __len__(self) -> int:
        return len(self.data)

    def __getitem__(self, key) -> torch.Tensor:
        return self.data[key].float().div_(255.0)


@st.cache_resource(show_spinner="Loading the test set...", max_entries=4)
def test_set(dataset: str) -> tuple[StoredImages, np.ndarray]:
    """(images (N, 1, 28, 28), labels) of a test set; downloads only if the files are missing.

    A resource, not data: one copy shared by every session and never modified by the pages.
    """
    try:
        data = load_dataset(dataset, train=False)
    except DatasetNotFoundError:
        data = load_dataset(dataset, train=False, download=True)
    return StoredImages(data.images), data.labels.numpy()


def load_test_set(dataset: str) -> tuple[StoredImages, np.ndarray]:
    """``test_set`` with a missing dataset reported on the page instead of raised."""
    name = "binarized-mnist" if dataset == "dynamic-binarized-mnist" else dataset
    try:
        return test_set(name)
    except DatasetNotFoundError as err:
        st.error(f"This page needs the {name} test set. {err}")
        st.stop()


@st.cache_data(show_spinner="Encoding the test set...", max_entries=16)
def _encode(_model, key: str, dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, _ = load_test_set(dataset)
    with torch.no_grad():
        return _model.encode(images[:n])


def model_key(model) -> str:
    """Names one loaded checkpoint in cache keys: where it came from and the commit that trained it."""
    return f"{getattr(model, 'source', '')}@{model.metrics.get('commit', '')}"


def encoded_test_set(model, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and log-variance of the first n test images, cached per checkpoint."""
    return _encode(model, model_key(model), model.config.dataset, n)


def saved_samples(model, n: int, seed: int) -> torch.Tensor | None:
    """The first n of the samples saved after the last epoch, in [0, 1], if they are what sampling from
    ``seed`` gives: a model that saved fixed-seed samples while training (the DDPM: 16 from seed 0 after
    every epoch, DDIM 50) holds its final model's samples from seed 0. None otherwise."""
    stored = model.training_samples
    if seed == 0 and stored is not None and n <= stored.shape[1]:
        return stored[-1, :n].float() / 255
    return None


@st.cache_data(show_spinner=False, max_entries=64)
def samples(location: str, revision: str | None, n: int, seed: int) -> np.ndarray:
    """n samples of a checkpoint from a fixed seed, as a numpy array in [0, 1]; saved ones where they exist."""
    model = load_model(location, revision)
    saved = saved_samples(model, n, seed)
    return (saved if saved is not None else model.sample(n, generator=torch.Generator().manual_seed(seed))).numpy()


@st.cache_resource(max_entries=1)
def _slow_results() -> OrderedDict:
    return OrderedDict()


SLOW_RESULTS_KEPT = 12  # a thinned 1000-step trajectory of 8 images is about 7 MB


def slow_result(key: tuple):
    """A result that ``compute_slow`` stored for ``key``, or None."""
    store = _slow_results()
    if key in store:
        store.move_to_end(key)
        return store[key]
    return None


def compute_slow(key: tuple, compute, text: str):
    """Run ``compute(callback)`` once for the whole server, with a progress bar fed by
    ``callback(i, n)``, and keep the result (the last few of them) for every session.

    For work that takes seconds to minutes, such as 1000 sampling steps: ``st.cache_data`` would show
    only a spinner, and would copy a large trajectory on every rerun.
    """
    found = slow_result(key)
    if found is not None:
        return found
    bar = st.progress(0.0, text=text)
    result = compute(lambda i, n: bar.progress(i / n, text=f"{text} step {i} of {n}"))
    bar.empty()
    store = _slow_results()
    store[key] = result
    while len(store) > SLOW_RESULTS_KEPT:
        store.popitem(last=False)
    return result


def model_card(model) -> None:
    """The model's card: architecture in words, size, hyperparameters, data, curves, provenance."""
    with st.expander("Model card: architecture, hyperparameters, training curves", expanded=False):
        st.markdown(model.describe())
        m = model.metrics
        cols = st.columns(4)
        cols[0].metric("parameters", f"{model.num_parameters():,}")
        cols[1].metric("epochs", m.get("epochs", "?"))
        cols[2].metric("training time", f"{m.get('wall_time_s', 0) / 60:.1f} min" if m else "?")
        cols[3].metric("dataset", model.config.dataset)
        left, right = st.columns([1, 2])
        left.markdown("**Hyperparameters** (config.json)")
        left.table({"field": list(dataclasses.asdict(model.config)),
                    "value": [str(v) for v in dataclasses.asdict(model.config).values()]})
        if m.get("eval"):
            left.markdown("**Evaluation** (metrics.json)")
            left.table({"metric": list(m["eval"]), "value": [f"{v:.3f}" for v in m["eval"].values()]})
        if m.get("curves"):
            right.plotly_chart(figures.training_curves(m), width="stretch")
        if m.get("command"):
            st.markdown(f"Reproduce (seed {m.get('seed')}, commit `{m.get('commit', '?')[:12]}`, "
                        f"{m.get('device', '?')}):")
            st.code(m["command"], language="bash")


def show_code(*objects) -> None:
    """The real source of the functions a page runs, read with ``inspect`` so it never drifts."""
    with st.expander("Show the code", expanded=False):
        for obj in objects:
            module = inspect.getmodule(obj).__name__
            st.caption(f"`{module}.{obj.__qualname__}`")
            st.code(inspect.getsource(obj), language="python")
