"""What every page shares: the checkpoint source, cached loading, the model card, the code panel.

Streamlit only: the math and the figures live in ``genmodels``.
"""

import contextlib
import dataclasses
import hashlib
import inspect
import os
import re
import shutil
import socket
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import streamlit as st
import torch
from streamlit.errors import StreamlitAPIException

import genmodels
from genmodels import compare, figures, registry
from genmodels.checkpoint import (
    CONFIG,
    JUDGED,
    METRICS,
    SAMPLES,
    VIEWS,
    WEIGHTS,
    CheckpointError,
    HubModel,
    as_uint8,
    first_line,
    hub_error,
    is_repo_id,
    list_checkpoints,
    read_config,
    read_metrics,
    resolve,
)
from genmodels.data import DatasetNotFoundError, load_dataset

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "checkpoints"

SOURCE_KINDS = ("Shipped checkpoints", "Local folder", "Hugging Face Hub")
_JOBS_LOCK = threading.Lock()
THREADS_VARIABLE = "GENMODELS_TORCH_THREADS"
URL_CHECKPOINT = "checkpoint"  # the query parameter that names a page's model


def torch_threads(environ=os.environ, hosted: bool | None = None) -> int | str:
    """The app's intra-op torch threads: ``$GENMODELS_TORCH_THREADS`` if it is a positive number; ``"auto"`` if it
    says so or is unset on a local app (``auto_threads`` decides at each page run); else 1 (hosted: its visitors
    share a fraction of a core).

    Streamlit runs every visitor's script in a thread of one process; torch's default (a thread per core for
    each operation) makes two visitors, or a visitor and any other job on the host, fight over the same
    cores: beside a CPU hog DDIM-50 took 14.8 s with two threads against 3.8 s with one. Alone on an idle machine,
    a thread per core is faster (1.8 s against 2.6 s here, more on a laptop with more cores). ``python -m bench
    --only threads`` measures each, idle and beside a CPU hog."""
    value = environ.get(THREADS_VARIABLE, "").strip().lower()
    if value.isdigit() and int(value) > 0:
        return int(value)
    if value == "auto" or (not value and not (HOSTING.hosted if hosted is None else hosted)):
        return "auto"
    return 1


def auto_threads(computing: int, others_busy: float | None, cores: int) -> int:
    """The automatic policy: every core for a computation that runs alone (``computing``: page runs and background
    jobs of this server under way, itself included) on a host whose other processes used less than half a core
    over the last half second (``others_busy``, in cores; None: not known); one thread otherwise."""
    return cores if computing <= 1 and others_busy is not None and others_busy < 0.5 else 1


class HostLoad:
    """How many cores the host's other processes keep busy: the busy time in ``/proc/stat`` less this process's
    own, over each half second, sampled by a daemon thread (Linux; elsewhere ``others_busy`` stays None).
    Processes at a lower priority (``nice``) are not counted: they give their cores up at once."""

    def __init__(self, interval: float = 0.5):
        self.others_busy: float | None = None
        self.interval = interval
        if Path("/proc/stat").is_file():
            threading.Thread(target=self._watch, name="genmodels-host-load", daemon=True).start()

    @staticmethod
    def read() -> tuple[float, float, float]:
        """(seconds of busy CPU on the host at normal priority, of this process, and the time now)."""
        user, _nice, system, _idle, _iowait, irq, softirq, steal = (
            int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9])
        own = os.times()
        return (user + system + irq + softirq + steal) / os.sysconf("SC_CLK_TCK"), own.user + own.system, \
            time.monotonic()

    @staticmethod
    def others(before: tuple[float, float, float], now: tuple[float, float, float]) -> float:
        """Cores the other processes kept busy between two ``read``s."""
        busy, own, elapsed = (now[i] - before[i] for i in range(3))
        return max(0.0, busy - own) / max(elapsed, 1e-3)

    def _watch(self) -> None:
        try:
            before = self.read()
            while True:
                time.sleep(self.interval)
                now = self.read()
                self.others_busy, before = self.others(before, now), now
        except (OSError, ValueError):  # an unusual /proc: the policy falls back to one thread
            self.others_busy = None


_COMPUTING = 0  # page runs and background jobs under way in this server
_COMPUTING_LOCK = threading.Lock()
_HOST_LOAD: list[HostLoad] = []  # started on first use


def host_load() -> HostLoad:
    with _COMPUTING_LOCK:
        if not _HOST_LOAD:
            _HOST_LOAD.append(HostLoad())
        return _HOST_LOAD[0]


def set_torch_threads() -> int:
    """Apply the thread policy now (at the start of a page run or a background job); the number of threads."""
    setting = torch_threads()
    threads = setting if isinstance(setting, int) else auto_threads(_COMPUTING, host_load().others_busy,
                                                                    os.cpu_count() or 1)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)  # (process-wide: a run that starts beside another takes both down to one)
    return threads


@contextlib.contextmanager
def computing():
    """A page run or a background job under way: counted while it runs, the thread policy applied at its start."""
    global _COMPUTING
    with _COMPUTING_LOCK:
        _COMPUTING += 1
    try:
        set_torch_threads()
        yield
    finally:
        with _COMPUTING_LOCK:
            _COMPUTING -= 1


# --- hosted mode: a public demo that strangers cannot break ---------------------------------------------------
HOSTED_VARIABLE = "GENMODELS_HOSTED"  # 1: the app serves the public (the Dockerfile sets it)
LOCAL_ROOT_VARIABLE = "GENMODELS_LOCAL_ROOT"  # hosted: the one folder the Local folder source may read
HUB_OWNERS_VARIABLE = "GENMODELS_HUB_OWNERS"  # hosted: the Hub owners whose repos load (comma-separated; unset: any)
HUB_CACHE_MB_VARIABLE = "GENMODELS_HUB_CACHE_MB"  # hosted: the Hub download cache's size, in MB (default 500)
# Hosted: the most a Hub repo's files may weigh, checked before anything is downloaded.
HOSTED_FILE_BYTES = {CONFIG: 64 * 1024, METRICS: 1024 * 1024, WEIGHTS: 20 * 1024 * 1024, SAMPLES: 8 * 1024 * 1024,
                     JUDGED: 1024 * 1024, VIEWS: 4 * 1024 * 1024}
HOSTED_REPO_BYTES = 100 * 1024 * 1024


def _on(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Hosting:
    """How the app is served, from the environment (on Streamlit Community Cloud, root-level secrets are
    environment variables too). Locally nothing is limited."""

    hosted: bool = False
    local_root: Path | None = None  # hosted: the Local folder source reads only inside this folder (None: off)
    hub_owners: tuple[str, ...] | None = None  # hosted: Hub repos of these owners only (None: any owner)
    hub_cache_bytes: int = 500 * 1024 * 1024

    @classmethod
    def from_environment(cls, environ=os.environ) -> "Hosting":
        if not _on(environ.get(HOSTED_VARIABLE)):
            return cls()
        root = environ.get(LOCAL_ROOT_VARIABLE, "").strip()
        owners = [o.strip() for o in environ.get(HUB_OWNERS_VARIABLE, "").split(",") if o.strip()]
        cache_mb = environ.get(HUB_CACHE_MB_VARIABLE, "").strip()
        return cls(hosted=True, local_root=Path(root).resolve() if root else None,
                   hub_owners=tuple(owners) or None,
                   hub_cache_bytes=int(cache_mb) * 1024 * 1024 if cache_mb.isdigit() else cls.hub_cache_bytes)


HOSTING = Hosting.from_environment()


def source_kinds() -> tuple[str, ...]:
    """The checkpoint sources a visitor may choose: a hosted app without a local root has no Local folder."""
    return tuple(k for k in SOURCE_KINDS if k != "Local folder" or not HOSTING.hosted or HOSTING.local_root)


_PATH = re.compile(r"(?<![\w.])(?:/[^\s'\"`()]+)+")


def public(message: object) -> str:
    """An error message fit to show: on a hosted app, no server paths (a path inside the local root is shown
    relative to it, any other by its last part); locally, unchanged."""
    text = str(message)
    if not HOSTING.hosted:
        return text

    def short(match: re.Match) -> str:
        path = Path(match.group(0))
        if HOSTING.local_root and path.is_relative_to(HOSTING.local_root):
            return path.relative_to(HOSTING.local_root).as_posix() or "."
        return path.name
    return _PATH.sub(short, text)


def local_folder(text: str) -> Path:
    """The folder a visitor typed, absolute. Hosted: relative to the local root, and it must stay inside it once
    resolved (symlinks and '..' included); every other path gets one answer, whether it exists or not."""
    if not HOSTING.hosted:
        return Path(text).expanduser().absolute()
    if HOSTING.local_root is None:
        raise CheckpointError("this hosted app reads no local folders. Choose the shipped checkpoints or a Hub repo, "
                              "or run the app on your own computer to load your folders.")
    try:
        folder = (HOSTING.local_root / text).resolve()
    except (OSError, RuntimeError):  # a symlink loop, a name too long
        folder = None
    if folder is None or not folder.is_relative_to(HOSTING.local_root):
        raise CheckpointError("that is not a folder inside this app's checkpoint folder. Give the name of one of its "
                              "folders, or leave the field empty to list them all.")
    return folder


def check_hub_repo(repo_id: str, revision: str | None, online: bool) -> None:
    """Hosted: the repo's owner is allowed, and (when the Hub can be reached) its files are small enough, from
    the Hub's file list, before anything is downloaded. Locally: nothing to check."""
    if not HOSTING.hosted:
        return
    owner = repo_id.split("/")[0]
    if HOSTING.hub_owners and owner not in HOSTING.hub_owners:
        raise CheckpointError(f"this hosted app loads Hub repos of {', '.join(HOSTING.hub_owners)} only. Run the app "
                              f"on your own computer (`streamlit run streamlit_app.py`) to load '{repo_id}'.")
    if not online:
        return  # nothing will be downloaded: only what is in the cache already can load
    sizes = _hub_file_sizes(repo_id, revision)
    limits = {name: HOSTED_FILE_BYTES.get(name, HOSTED_REPO_BYTES) for name in sizes}
    too_large = [f"{name} ({size / 1e6:.1f} MB, at most {limits[name] / 1e6:.1f})"
                 for name, size in sizes.items() if size > limits[name]]
    if sum(sizes.values()) > HOSTED_REPO_BYTES:
        too_large.append(f"the repo in all ({sum(sizes.values()) / 1e6:.0f} MB, at most {HOSTED_REPO_BYTES / 1e6:.0f})")
    if too_large:
        raise CheckpointError(f"'{repo_id}' is too large for this hosted app: {'; '.join(too_large)}. Run the app on "
                              f"your own computer to load it.")


@st.cache_data(show_spinner="Reading the repo's file list from the Hugging Face Hub...", ttl=600, max_entries=64)
def _hub_file_sizes(repo_id: str, revision: str | None) -> dict[str, int]:
    from huggingface_hub import HfApi
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError

    try:
        info = HfApi().model_info(repo_id, revision=revision, files_metadata=True)
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise hub_error(err, repo_id, revision) from err
    return {s.rfilename: int(s.size or 0) for s in info.siblings or []}


def trim_hub_cache(keep: str) -> None:
    """Hosted: remove the least recently used repos from the Hub download cache until it holds at most
    ``HOSTING.hub_cache_bytes`` (never ``keep``, the repo just loaded), so visitors cannot fill the disk."""
    if not HOSTING.hosted:
        return
    from huggingface_hub import constants, scan_cache_dir
    from huggingface_hub.errors import CacheNotFound

    try:
        repos = sorted(scan_cache_dir(constants.HF_HUB_CACHE).repos, key=lambda r: r.last_accessed)
    except (CacheNotFound, OSError):
        return
    total = sum(r.size_on_disk for r in repos)
    for repo in repos:
        if total <= HOSTING.hub_cache_bytes:
            break
        if repo.repo_id != keep:
            shutil.rmtree(repo.repo_path, ignore_errors=True)
            total -= repo.size_on_disk


def md(text: object) -> str:
    """Text from a checkpoint or a visitor (a folder's name, a device string, an error quoting either) made safe to
    put into markdown: the characters that would make a link, an image, HTML, code, emphasis, maths or a table are
    escaped (a message is one line, so line-start markers do no harm)."""
    return re.sub(r"([\\`*_\[\]<>$~|])", r"\\\1", str(text))


@dataclass(frozen=True)
class Source:
    kind: str  # one of SOURCE_KINDS
    location: str  # a folder, or a Hub repo id
    revision: str | None = None


def source_sidebar() -> Source:
    """Sidebar controls choosing where checkpoints come from; kept in session state across pages."""
    with st.sidebar:
        st.header("Checkpoints")
        kinds = source_kinds()
        if st.session_state.get("source_kind") not in kinds:
            st.session_state.pop("source_kind", None)  # a forged or no longer offered choice starts afresh
        kind = st.radio("Load models from", kinds, key="source_kind",
                        help="The app ships small trained models; you can also point it at your own."
                             + (" This hosted copy reads no local folders: run it on your own computer for that."
                                if "Local folder" not in kinds else ""))
        if kind == "Local folder":
            hosted_root = HOSTING.hosted and HOSTING.local_root
            location = st.text_input("Folder", key="source_folder", max_chars=500,
                                     placeholder="a folder inside the app's checkpoint folder" if hosted_root
                                     else "checkpoints/my-run",
                                     help="A checkpoint folder, or a folder of checkpoint folders "
                                          "(as written by `python -m train ... --out DIR`)."
                                          + (" Names are relative to the folder this hosted app offers; leave it "
                                             "empty to list them all." if hosted_root else ""))
            source = Source(kind, location.strip() or ("." if hosted_root else ""))
        elif kind == "Hugging Face Hub":
            repo = st.text_input("Repo id", key="source_repo", placeholder="owner/name", max_chars=200)
            revision = st.text_input("Revision (optional)", key="source_revision", max_chars=200,
                                     placeholder="main, a tag or a commit")
            source = Source(kind, repo.strip(), revision.strip() or None)
        else:
            source = Source(kind, str(SHIPPED))
    st.session_state["source"] = source
    return source


def current_source() -> Source:
    return st.session_state.get("source", Source(SOURCE_KINDS[0], str(SHIPPED)))


HUB_HOST = ("huggingface.co", 443)


@st.cache_data(show_spinner="Checking whether the Hugging Face Hub can be reached...", ttl=60)
def hub_online() -> bool:
    """Whether the Hub answers at all (one TCP connection, 2 s at most), remembered for a minute: when it cannot
    be reached, Hub repos are read from the local cache only, at once, instead of after a round of retries on
    every visit."""
    if _on(os.environ.get("HF_HUB_OFFLINE")):
        return False
    try:
        socket.create_connection(HUB_HOST, timeout=2).close()
    except OSError:
        return False
    return True


@st.cache_data(show_spinner="Reading the repo's config from the Hugging Face Hub...", ttl=600, max_entries=64)
def _hub_config(repo_id: str, revision: str | None, offline: bool) -> dict:
    return read_config(repo_id, revision, local_files_only=offline, hub=True)


def available_checkpoints(source: Source) -> list[tuple[str, dict]]:
    """(location, config) of every checkpoint the source offers: a Hub repo id, or an absolute folder path. Raises
    CheckpointError (hosted, with no server paths in its message)."""
    try:
        return _available_checkpoints(source)
    except CheckpointError as err:
        raise CheckpointError(public(err)) from err


def _available_checkpoints(source: Source) -> list[tuple[str, dict]]:
    if not source.location:
        raise CheckpointError("enter a folder or a Hub repo id in the sidebar, or choose the shipped checkpoints.")
    if source.kind == "Hugging Face Hub":
        if not is_repo_id(source.location):
            raise CheckpointError(f"'{source.location}' is not a Hub repo id: the Hub names a model repo owner/name, "
                                  f"with letters, digits, '-', '_' and '.'."
                                  + (" For a folder on this computer, choose Local folder." if not HOSTING.hosted
                                     else ""))
        online = hub_online()
        check_hub_repo(source.location, source.revision, online)
        return [(source.location, _hub_config(source.location, source.revision, not online))]
    folder = SHIPPED if source.kind == SOURCE_KINDS[0] else local_folder(source.location)
    try:
        if not folder.is_dir():
            raise CheckpointError(f"no folder '{folder}'. Enter the path of a checkpoint folder, or of a folder "
                                  f"that holds checkpoint folders.")
        if (folder / CONFIG).is_file():
            return [(str(folder), read_config(folder, hub=False))]
        found = list_checkpoints(folder)
    except OSError as err:  # unreadable, a name too long
        raise CheckpointError(f"cannot read the folder '{folder}' ({err.strerror or first_line(err)}).") from err
    if not found:
        raise CheckpointError(f"'{folder}' holds no checkpoint folders (none has a {CONFIG}). Train one with "
                              f"`python -m train vae --out {folder}/my-vae`.")
    return found


def is_hub_location(location: str) -> bool:
    """Locations of the app are absolute folder paths or Hub repo ids."""
    return not Path(location).is_absolute()


@st.cache_data(show_spinner=False, ttl=60, max_entries=64)
def _hub_weights(repo_id: str, revision: str | None, offline: bool) -> str:
    """The cached path of a Hub repo's weights (checked again at most once a minute: a branch moves)."""
    return resolve(repo_id, WEIGHTS, revision=revision, local_files_only=offline or None, hub=True)


@st.cache_resource(show_spinner="Loading model...", max_entries=8)
def _load_model(location: str, revision: str | None, stamp: tuple) -> HubModel:
    if not is_hub_location(location):
        return genmodels.load(location, hub=False)
    online = hub_online()
    model = genmodels.load(location, revision=revision, local_files_only=not online, hub=True)
    if online:
        trim_hub_cache(keep=location)
    return model


def load_model(location: str, revision: str | None = None) -> HubModel:
    """``genmodels.load``, cached for the whole server; errors are not cached.

    The cache key names the weights file itself: a local checkpoint is loaded again when its weights change (a
    run retrained into the same folder), a Hub repo when its revision or the commit a branch points to changes
    (the cached file's real path names the blob). At most 8 models stay loaded (a page needs at most 7 at once:
    the beta sweep's five, the DDPM training page's settings and judge): the zoo grows, a small host does not,
    and a model loads again in 50 ms.
    """
    try:
        return _load_model(location, revision, weights_stamp(location, revision))
    except CheckpointError as err:
        raise CheckpointError(public(err)) from err


def weights_stamp(location: str, revision: str | None = None) -> tuple:
    """What names a checkpoint's weights without reading them: the weights file's real path (for a Hub repo, the
    cached blob of the commit its revision points to), modification time and size; () if it cannot be found (then
    loading says what is wrong)."""
    try:
        weights = Path(_hub_weights(location, revision, not hub_online()) if is_hub_location(location)
                       else Path(location) / WEIGHTS)
        info = weights.stat()
        return (os.path.realpath(weights), info.st_mtime_ns, info.st_size)
    except (CheckpointError, OSError):
        return ()


@st.cache_data(show_spinner=False, ttl=60, max_entries=256)
def _metrics(location: str, revision: str | None, offline: bool, stamp: tuple) -> dict:
    hub = is_hub_location(location)
    path = resolve(location, METRICS, revision=revision, hub=hub, local_files_only=(offline and hub) or None)
    return read_metrics(path)


def checkpoint_metrics(location: str, revision: str | None = None) -> dict:
    """A checkpoint's metrics.json without loading its weights, for a table over more checkpoints than the model
    cache keeps; {} when the file is missing or malformed (the model card of that checkpoint says why)."""
    offline = is_hub_location(location) and not hub_online()
    try:
        path = Path(location) / METRICS
        stamp = (path.stat().st_mtime_ns,) if not is_hub_location(location) else ()
        return _metrics(location, revision, offline, stamp)
    except (CheckpointError, OSError):
        return {}


def model_key(model: HubModel) -> str:
    """The one cache key of a loaded model everywhere: where it came from and a hash of its weights."""
    source, revision = getattr(model, "source", ""), getattr(model, "revision", None) or ""
    return f"{source}@{revision}#{getattr(model, 'fingerprint', '')}"


def checkpoint_label(location: str) -> str:
    """A folder's name, or the Hub repo id as given."""
    return location if is_hub_location(location) else Path(location).name


# The order a course meets the shipped models in; other checkpoints follow, by family, then by name.
COURSE_ORDER = (
    "vae-gaussian-2d", "vae-mog-2d", "vae-vamp-2d", "vae-gaussian-32d", "vae-mog-32d", "vae-vamp-32d",
    "beta-vae-conv-beta0.5", "beta-vae-conv-beta1", "beta-vae-conv-beta2", "beta-vae-conv-beta4",
    "beta-vae-conv-beta8", "cvae-conv-mnist", "vae-fashion-16d", "vae-fashion-mse-16d", "vae-fashion-sigma-16d",
    "vae-color-conv-16d", "ddpm-linear", "ddpm-cosine", "ddpm-color", "ddpm-conditional", "cold-pixelate",
    "cold-blur", "flow", "gan-mlp", "gan-dcgan", "gan-dcgan-plain", "gan-mlp-unbalanced", "cgan-mlp",
    "rbm-16", "rbm-64", "rbm-256", "rbm-500", "rbm-256-lr0.01", "rbm-256-lr0.2", "rbm-256-2ep", "rbm-256-cd1", "dbm",
    "ae-mlp-2d", "ae-mlp-32d", "ae-mix-16",
)


def course_order(models: list[tuple[str, dict]]) -> list[tuple[str, dict]]:
    """The zoo's cards in course order: the 2-D Gaussian VAE a course starts from first."""
    families = list(registry.FAMILIES)

    def key(item: tuple[str, dict]) -> tuple:
        name, family = checkpoint_label(item[0]), item[1].get("family", "")
        known = COURSE_ORDER.index(name) if name in COURSE_ORDER else len(COURSE_ORDER)
        return (known, families.index(family) if family in families else len(families), name)

    return sorted(models, key=key)


def registered(file: str) -> tuple[registry.Family, registry.Page]:
    """The registry's family and entry for a page file (a page passes its ``__file__``)."""
    return registry.page(Path(file).resolve().relative_to(ROOT).as_posix())


def this_page(file: str) -> registry.Page:
    return registered(file)[1]


def checkpoints_of(family: str, accept=None, what: str | None = None, required: bool = True) -> list[tuple[str, dict]]:
    """(location, config) of the source's checkpoints of ``family`` that ``accept(config)`` allows.

    If there are none, or the source cannot be read, the page shows ``st.error`` saying what to do, and
    stops; with ``required=False`` it gets an empty list instead (for an optional section). ``what`` names
    the checkpoints wanted, in the error.
    """
    source = current_source()
    try:
        found = [(loc, cfg) for loc, cfg in available_checkpoints(source)
                 if cfg.get("family") == family and (accept is None or accept(cfg))]
    except CheckpointError as err:
        if not required:
            return []
        st.error(f"Could not list checkpoints: {md(err)}")
        st.stop()
    if not found and not required:
        return []
    if not found:
        st.error(f"The chosen source ({md(source.location or source.kind)}) has no {what or family + ' checkpoint'} "
                 f"that this page can show. Choose the shipped checkpoints in the sidebar, or train one with "
                 f"`python -m train {family} --out checkpoints/my-{family}`.")
        st.stop()
    return found


def load_or_stop(location: str) -> HubModel:
    """``load_model`` of one of the source's checkpoints; on a problem, ``st.error`` and stop."""
    try:
        model = load_model(location, current_source().revision)
    except CheckpointError as err:
        st.error(f"Could not load {md(checkpoint_label(location))}: {md(err)}")
        st.stop()
    show_problems(model)
    return model


def show_problems(model: HubModel | list[str], where=st) -> None:
    """A warning for each optional file of the checkpoint that was malformed and left out (``model``: a loaded
    model, or its ``problems``)."""
    for problem in model if isinstance(model, list) else model.problems:
        where.warning(md(public(problem)), icon=":material/warning:")


def pick_checkpoint(page_file: str, where=st, key: str | None = None, options: list[tuple[str, dict]] | None = None,
                    describe=None) -> HubModel:
    """A select box of the source's checkpoints that this page accepts (as the registry says), or of ``options``
    ((location, config), for a page that shows several families; ``describe(config)`` adds to each name);
    returns the loaded model. On any problem the page shows ``st.error`` with what to do, and stops."""
    family, page = registered(page_file)
    options = checkpoints_of(family.name, page.accepts) if options is None else options
    labels = [checkpoint_label(loc) for loc, _ in options]
    shown = labels if describe is None else [f"{label} ({describe(cfg)})"
                                             for label, (_, cfg) in zip(labels, options, strict=True)]
    index = labels.index(page.default) if page.default in labels else 0
    key = key or f"checkpoint_{family.name}"
    # The URL's ?checkpoint=NAME (the model zoo's links, a shared address) picks the model when it changes;
    # the choice is written back, so the address always names the model on the page.
    wanted = st.query_params.get(URL_CHECKPOINT)
    if wanted in labels and wanted != st.session_state.get(f"{key}_url"):
        st.session_state.pop(key, None)  # the box starts afresh, at the address's model
        index = labels.index(wanted)
    choice = where.selectbox("Checkpoint", range(len(options)), index=index, format_func=shown.__getitem__,
                             key=key)
    st.session_state[f"{key}_url"] = labels[choice]
    st.query_params[URL_CHECKPOINT] = labels[choice]
    return load_or_stop(options[choice][0])


def pick_other(family: str, accept, default: str, label: str, key: str, where=st) -> tuple[HubModel, str] | None:
    """A select box of the source's ``family`` checkpoints that ``accept(config)`` allows, for a page that sets
    another family beside its own; (the loaded model, its name), or None (with a note) if the source has none."""
    options = checkpoints_of(family, accept, required=False)
    if not options:
        where.info(f"The chosen source has no {label} to compare with (the shipped checkpoints have one).")
        return None
    labels = [checkpoint_label(loc) for loc, _ in options]
    choice = where.selectbox(label[0].upper() + label[1:], range(len(options)),
                             index=labels.index(default) if default in labels else 0,
                             format_func=labels.__getitem__, key=key)
    return load_or_stop(options[choice][0]), labels[choice]


def show_images(images, nrow: int, height: int, title: str | None = None, where=st,
                value_range: tuple[float, float] = (0.0, 1.0)) -> None:
    """A grid of images (N, C, 28, 28), ``nrow`` to a row, about ``height`` pixels high, as a PNG picture with
    ``title`` as its caption."""
    where.image(figures.image_grid(images, nrow=nrow, height=height - (30 if title else 0), value_range=value_range),
                caption=title, output_format="PNG", alt=title or f"{len(images)} images")


def find_judge() -> HubModel | None:
    """The source's classifier (a family that is not generative), else the shipped one; None if neither loads."""
    source = current_source()
    try:
        candidates = [loc for loc, cfg in available_checkpoints(source) if registry.is_judge(cfg)]
    except CheckpointError:
        candidates = []
    for location in [*candidates, str(SHIPPED / "mnist-classifier")]:
        try:
            return load_model(location, source.revision if location in candidates else None)
        except CheckpointError:
            continue
    return None


class StoredImages:
    """Test images kept as uint8, a quarter of the memory of float32 (8 MB instead of 31 for MNIST's
    10,000); indexing or slicing gives float images in [0, 1], as ``load_dataset`` does."""

    def __init__(self, images: torch.Tensor, chunk: int = 1000):
        # a chunk at a time: at once, the conversion's float temporaries were twice the images (188 MB of colour)
        self.data = torch.cat([as_uint8(images[i:i + chunk]) for i in range(0, len(images), chunk)])

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
        st.error(f"This page needs the {name} test set. {md(public(err))}")
        st.stop()


@st.cache_data(show_spinner="Encoding the test set...", max_entries=16)
def _encode(_model, key: str, dataset: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    images, _ = load_test_set(dataset)
    with torch.no_grad():
        return _model.encode(images[:n])


def encoded_test_set(model, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Posterior mean and log-variance of the first n test images, cached per checkpoint."""
    return _encode(model, model_key(model), model.config.dataset, n)


def saved_samples(model, n: int, seed: int) -> torch.Tensor | None:
    """n samples from ``seed`` in [0, 1] that the checkpoint holds, if it does: the first n of the samples saved
    after the last epoch (a model that saved fixed-seed samples while training, the DDPM: 16 from seed 0 after
    every epoch, DDIM 50, holds its final model's samples from seed 0), or those of its stored views
    (``python -m train.views``: the flow's). None otherwise."""
    stored = model.training_samples
    if seed == 0 and stored is not None and n <= stored.shape[1]:
        return stored[-1, :n].float() / 255
    return model.stored_samples(n, seed)


def samples(location: str, revision: str | None, n: int, seed: int) -> np.ndarray:
    """n samples of a checkpoint from a fixed seed, as a numpy array in [0, 1]; saved ones where they exist. Kept
    for the server under the weights' stamp (a model retrained into the same folder draws anew)."""
    return _samples(location, revision, n, seed, weights_stamp(location, revision))


@st.cache_data(show_spinner=False, max_entries=64)
def _samples(location: str, revision: str | None, n: int, seed: int, stamp: tuple) -> np.ndarray:
    model = load_model(location, revision)
    saved = saved_samples(model, n, seed)
    return (saved if saved is not None else model.sample(n, generator=torch.Generator().manual_seed(seed))).numpy()


# Server-wide stores of long computations: plain module state (this module is imported once per server process),
# not st.cache_resource, because the threads that fill them run outside any script run.
_SLOW_RESULTS: OrderedDict = OrderedDict()
_JOBS: dict = {}
_TIMINGS: dict[tuple, float] = {}
_IN_FLIGHT: dict[tuple, threading.Event] = {}  # in-run computations under way, for visitors asking the same
# Background computations running at once: one on a hosted app (its visitors share a fraction of a core), half the
# cores locally; the others wait their turn.
MAX_JOBS = 1 if HOSTING.hosted else max(1, (os.cpu_count() or 2) // 2)
_JOB_SLOTS = threading.BoundedSemaphore(MAX_JOBS)
# Page runs computing at once on a hosted app: on a fraction of a core ten pages at once finish no sooner than ten
# in turn, but all their temporary tensors and figures would be in memory together.
PAGE_RUNS_HOSTED = 3
_PAGE_SLOTS = threading.BoundedSemaphore(PAGE_RUNS_HOSTED)


@contextlib.contextmanager
def one_of(slots: threading.Semaphore, waiting):
    """Hold one of ``slots`` for the block, showing ``waiting()`` (a context manager: a spinner) while none is free.

    Streamlit stops or restarts a script run by raising inside any ``st`` call, the spinner's own exit included:
    once the slot is held it is given back whatever is raised. (A first version acquired it inside the spinner and
    entered ``try`` after it: a visitor who clicked while waiting kept the slot for ever, and a ten-visitor load test
    stalled for over an hour once all three had leaked.)"""
    held = slots.acquire(blocking=False)
    try:
        if not held:
            with waiting():
                slots.acquire()
                held = True
        yield
    finally:
        if held:
            slots.release()


@contextlib.contextmanager
def page_turn():
    """What ``streamlit_app.py`` runs every page inside: hosted, one of PAGE_RUNS_HOSTED slots first; counted among
    the computations under way, with the thread policy applied (``computing``)."""
    slot = (one_of(_PAGE_SLOTS, lambda: st.spinner("Many visitors right now: waiting for a turn..."))
            if HOSTING.hosted else contextlib.nullcontext())
    with slot, computing():
        yield


def clear_long_results() -> None:
    """Forget every kept result, measured time and finished job (tests start from a fresh server this way)."""
    with _JOBS_LOCK:
        _SLOW_RESULTS.clear()
        _TIMINGS.clear()
        for key in [k for k, job in _JOBS.items() if job.error is not None]:
            del _JOBS[key]


SLOW_RESULTS_KEPT = 6 if HOSTING.hosted else 12  # a thinned 1000-step trajectory of 8 images is about 7 MB


def slow_result(key: tuple):
    """A result that ``compute_slow`` stored for ``key``, or None."""
    with _JOBS_LOCK:
        if key in _SLOW_RESULTS:
            _SLOW_RESULTS.move_to_end(key)
            return _SLOW_RESULTS[key]
    return None


def compute_slow(key: tuple, compute, text: str):
    """Run ``compute(callback)`` once for the whole server, with a progress bar fed by
    ``callback(i, n)``, and keep the result (the last few of them) for every session.

    For work that takes seconds, such as 50 sampling steps: ``st.cache_data`` would show only a spinner, and
    would copy a large trajectory on every rerun. Visitors who ask for the same thing while it is computed wait for
    that one computation instead of starting their own.
    """
    while True:
        found = slow_result(key)
        if found is not None:
            return found
        with _JOBS_LOCK:
            running = _IN_FLIGHT.get(key)
            if running is None:
                mine = _IN_FLIGHT[key] = threading.Event()
                break
        with st.spinner(f"{text} (another visitor asked for the same; sharing that run)"):
            running.wait(timeout=600)
    try:
        bar = st.progress(0.0, text=text)
        started = time.perf_counter()
        result = compute(lambda i, n: bar.progress(i / n, text=f"{text} step {i} of {n}"))
        _TIMINGS[key] = time.perf_counter() - started
        bar.empty()
        _keep(key, result)
    finally:
        with _JOBS_LOCK:
            del _IN_FLIGHT[key]
        mine.set()
    return result


def measured_seconds(key: tuple) -> float | None:
    """How long ``compute_slow`` took for ``key`` on this server, if it computed it: the basis of the time
    estimates on the buttons of longer runs."""
    return _TIMINGS.get(key)


def _keep(key: tuple, result) -> None:
    with _JOBS_LOCK:
        _SLOW_RESULTS[key] = result
        while len(_SLOW_RESULTS) > SLOW_RESULTS_KEPT:
            _SLOW_RESULTS.popitem(last=False)


class Stopped(Exception):
    """A background computation stopped by the visitor who started it."""


@dataclass
class Job:
    """A long computation running in a thread of the server: its progress, who started it, or how it ended."""

    done: int = 0
    total: int = 1
    started: float = 0.0
    owner: str = ""  # the session that started it: only it may stop it
    running: bool = False  # False while it waits for a free slot
    stop: bool = False
    error: str | None = None


def session_id() -> str:
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx else ""


def start_job(key: tuple, compute) -> Job:
    """Run ``compute(callback)`` in a thread of the server when one of the MAX_JOBS slots is free, unless a run for
    ``key`` is under way (then that one is returned: every visitor asking for the same thing shares one run). The
    result goes where ``slow_result(key)`` finds it; a failure is kept on the job, with its first line."""
    with _JOBS_LOCK:
        if key in _JOBS and _JOBS[key].error is None:
            return _JOBS[key]
        job = _JOBS[key] = Job(started=time.perf_counter(), owner=session_id())

    def progress(i: int, n: int) -> None:
        if job.stop:
            raise Stopped
        job.done, job.total = i, max(1, n)

    def work() -> None:
        with _JOB_SLOTS, computing():
            job.running, job.started = True, time.perf_counter()
            try:
                if job.stop:
                    raise Stopped
                _keep(key, compute(progress))
            except Stopped:
                job.error = "it was stopped"
                return
            except Exception as err:  # noqa: BLE001 (any failure is shown on the page, not lost in a thread)
                job.error = public(first_line(err))
                return
        with _JOBS_LOCK:
            _JOBS.pop(key, None)

    threading.Thread(target=work, name="genmodels-job", daemon=True).start()
    return job


def refused_when_hosted(cost: int, limit: int, what: str, where=st) -> bool:
    """On a hosted app, whether ``cost`` (of ``what``) is over ``limit``, and if so a note saying what is capped and
    how to lift it. Locally nothing is capped."""
    if not HOSTING.hosted or cost <= limit:
        return False
    where.info(f"This hosted demo caps {what} at {limit:,} (this setting asks for {cost:,}), so that one visitor "
               f"cannot hold the CPU its visitors share for minutes. Choose less, or run the app on your own "
               f"computer (`streamlit run streamlit_app.py`), where nothing is capped.")
    return True


BUTTON_KEYS = ("start_", "stop_")  # how the keys of long_computation's buttons begin: Streamlit refuses them state


def button_key(prefix: str, place: str, key: tuple) -> str:
    """The key of a Start or Stop button (``prefix``, one of ``BUTTON_KEYS``) of one computation at one place."""
    assert prefix in BUTTON_KEYS
    return f"{prefix}{place}_" + hashlib.sha1(repr(key).encode()).hexdigest()[:12]


def long_computation(key: tuple, compute, text: str, button: str, where=st, place: str = "", start: bool = False):
    """The result of a computation too long for a script run (minutes of sampling), or None until it is there.

    It starts only from a button (whose label should say how long it takes), or at once with ``start`` (work of a
    few seconds that a page shows as soon as it is there; after a failure or a stop, the button again), and runs
    in a thread of the server,
    so other clicks on the page neither interrupt nor restart it; its result is kept for every visitor, and a
    visitor who asks for what is already running joins that run. While it runs, the page shows its progress, and
    the visitor who started it can stop it. ``place`` tells apart two buttons of one page that start the same
    computation."""
    found = slow_result(key)
    if found is not None:
        return found
    job = _JOBS.get(key)
    failed = job is not None and job.error is not None
    if failed:
        where.error(f"The last run ended early: {md(job.error)}. Start it again, or change the settings.")
        job = None
    if job is None:
        if not (start and not failed) and not where.button(
                button, key=button_key("start_", place, key)):
            return None
        job = start_job(key, compute)
    with where.container():  # (``where`` may be the st module, which is no container itself)
        _show_progress(key, text, place)
    return slow_result(key)


@st.fragment(run_every=1.0)
def _show_progress(key: tuple, text: str, place: str = "") -> None:
    """A progress bar that refreshes itself every second, with a Stop button for the visitor who started the run;
    the whole page reruns when the result is there."""
    job = _JOBS.get(key)
    if slow_result(key) is not None or (job is not None and job.error is not None):
        st.rerun()  # the whole page: the result, or why the run ended early, and the button again
    if job is None:
        return
    elapsed = time.perf_counter() - job.started
    if job.stop:
        st.progress(job.done / job.total, text=f"{text} stopping...")
    elif not job.running:
        waiting = sum(1 for other in list(_JOBS.values()) if other.error is None and not other.running) - 1
        st.progress(0.0, text=f"{text} waiting for a free slot: {MAX_JOBS} run{'s' * (MAX_JOBS != 1)} at a time on "
                              f"this server" + (f", {waiting} other{'s' * (waiting != 1)} waiting" if waiting > 0
                                                else ""))
    else:
        st.progress(job.done / job.total, text=f"{text} step {job.done} of {job.total} ({elapsed:.0f} s; it keeps "
                                               f"running if you change other settings)")
    if job.owner != session_id():
        st.caption("Another visitor started this run; it is shared with everyone who asks for the same.")
    elif not job.stop and st.button("Stop this run", icon=":material/stop_circle:",
                                    key=button_key("stop_", place, key)):
        job.stop = True
        st.rerun(scope="fragment")


def recorded_quality(model, prefer: str | None = None) -> tuple[str | None, dict | None]:
    """``genmodels.compare.recorded_quality`` of a loaded model's metrics."""
    return compare.recorded_quality(model.metrics, prefer)


def model_card(model) -> None:
    """The model's card: architecture in words, size, hyperparameters, data, curves, provenance. Built only when
    a visitor opens it (a page's first view skips its tables and curves)."""
    card = st.expander("Model card: architecture, hyperparameters, training curves", expanded=False,
                       key="model_card", on_change="rerun")  # one card a page; open, it stays open for another
    if not card.open:
        return
    with card:
        st.markdown(model.describe())
        m = model.metrics
        cols = st.columns(4)
        cols[0].metric("parameters", f"{model.num_parameters():,}")
        cols[1].metric("epochs", m.get("epochs", "?"))
        cols[2].metric("training time", f"{m.get('wall_time_s', 0) / 60:.1f} min" if m else "?")
        cols[3].metric("dataset", model.config.dataset)
        left, right = st.columns([1, 2])
        left.markdown("**Hyperparameters** (config.json)")
        fields = {k: v for k, v in dataclasses.asdict(model.config).items() if k not in model.unused_fields()}
        left.table({"field": list(fields), "value": [str(v) for v in fields.values()]})
        training = m.get("training")
        if training:
            left.markdown("**Training** (metrics.json)")
            left.table(training_table(training))
        if training is None or training.get("monitored_on") == "test":
            left.caption("The per-epoch curves of this checkpoint were measured on the test set (it was trained "
                         "before the validation split); the test numbers are therefore not untouched. Runs of "
                         "`python -m train` hold out 5,000 training images for the curves instead.")
        if m.get("eval"):
            left.markdown("**Evaluation** (metrics.json)")
            left.table({"metric": list(m["eval"]), "value": [f"{v:.3f}" for v in m["eval"].values()]})
        if m.get("curves"):
            right.plotly_chart(figures.training_curves(m), width="stretch")
        if m.get("command"):
            commit = re.sub(r"[^\w.-]", "", m.get("commit", "?"))[:12] or "?"
            st.markdown(f"Reproduce (seed {m.get('seed')}, commit `{commit}`, {md(m.get('device', '?'))}):")
            st.code(reproduce_command(m["command"]), language="bash", wrap_lines=True)


def reproduce_command(command: str) -> str:
    """The recorded command without ``--resume``: an interrupted run records the flag it was continued with, but
    the same run from scratch is what reproduces the checkpoint (resuming is bit-exact)."""
    return " ".join(part for part in command.split(" ") if part != "--resume")


def optimizer_text(settings: dict) -> str:
    """"Adam (lr 0.0002, betas 0.5, 0.999)": an optimiser as metrics.json records it (any of its keys may lack)."""
    betas = settings.get("betas", ())
    details = [f"lr {settings['lr']:g}" if "lr" in settings else "",
               f"betas {betas[0]:g}, {betas[1]:g}" if len(betas) == 2 else "",
               f"weight decay {settings['weight_decay']:g}" if settings.get("weight_decay") else ""]
    return f"{settings.get('type', '?')} ({', '.join(d for d in details if d)})"


def training_table(training: dict) -> dict[str, list[str]]:
    """The training config of metrics.json as rows a student can read."""
    optimizers = training.get("optimizers", {})
    named = len(optimizers) > 1  # a family with several optimisers names each
    optimiser = ", ".join(f"{name + ': ' if named else ''}{optimizer_text(o)}" for name, o in optimizers.items())
    rows = {"optimiser": md(optimiser or f"{training.get('optimizer', '?')} (lr {training.get('lr', '?')})"),
            "batch size": str(training.get("batch_size", "?"))
            + (f" x {training['world_size']} processes = {training['effective_batch_size']}"
               if training.get("world_size", 1) > 1 else ""),
            "epochs": str(training.get("epochs", "?")),
            "seed": str(training.get("seed", "?")),
            "per-epoch curves on": (f"{training['val_size']:,} held-out training images (split seed "
                                    f"{training.get('val_seed', 0)})" if training.get("val_size") else "the test set"),
            "bfloat16 autocast": "yes" if training.get("bf16") else "no"}
    return {"setting": list(rows), "value": list(rows.values())}


def lazy_tabs(sections: dict, key: str) -> None:
    """A page's sections in tabs, of which only the open one runs (``sections``: tab label -> a function of no
    arguments that draws the section): a first view computes the first tab alone, and each other one when a
    visitor opens it. The open tab is kept in ``st.session_state[key]`` (its label).

    Streamlit forgets the value of a widget that a run does not draw, so a closed tab's controls would come back
    at their defaults. Each tab's keyed controls are therefore copied aside after it runs (under
    ``_kept_{key}``) and put back when it is opened again; a value the control no longer accepts (its range
    changed with the checkpoint) is dropped, and the tab runs again from its defaults."""
    kept = st.session_state.setdefault(f"_kept_{key}", {})  # tab label -> {widget key: value}
    for label, tab in zip(sections, st.tabs(list(sections), key=key, on_change="rerun"), strict=True):
        if not tab.open:
            continue
        before = set(st.session_state.keys())
        restored = [k for k in kept.get(label, {}) if k not in before]
        for k in restored:
            st.session_state[k] = kept[label][k]
        try:
            with tab:
                sections[label]()
        except StreamlitAPIException:
            if not restored:
                raise
            for k in restored:
                del st.session_state[k]
            kept.pop(label, None)
            st.rerun()
        ours = (set(st.session_state.keys()) - before) | set(kept.get(label, {}))
        kept[label] = {k: st.session_state[k] for k in ours
                       if k in st.session_state and not k.startswith(BUTTON_KEYS)}


def show_code(*objects) -> None:
    """The real source of the functions a page runs, read with ``inspect`` so it never drifts; read only when a
    visitor opens the panel."""
    panel = st.expander("Show the code", expanded=False, key="show_code", on_change="rerun")
    if not panel.open:
        return
    with panel:
        for obj in objects:
            module = inspect.getmodule(obj).__name__
            st.caption(f"`{module}.{obj.__qualname__}`")
            st.code(inspect.getsource(obj), language="python")
