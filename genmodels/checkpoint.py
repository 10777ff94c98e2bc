"""One checkpoint format for every model family, on disk and on the Hugging Face Hub.

A checkpoint is a folder (or a Hub model repo) holding

- ``model.safetensors``: the weights, written by huggingface_hub's
  ``PyTorchModelHubMixin`` (float16 where the family says that costs no quality);
- ``config.json``: the family's config dataclass, including ``family``;
- ``metrics.json``: training curves, evaluation numbers and provenance (the exact
  training command, seed, git commit, device, wall time);
- ``README.md``: a model card with Hub metadata;
- optionally ``samples.safetensors``: fixed-seed samples after each epoch of training (uint8), so a
  page can show how samples improve while the model learns;
- optionally ``judged.safetensors``: the judge's most and least confident of many samples
  (``python -m train.sample_quality --gallery``);
- optionally ``views.safetensors``: what a page draws before any control is touched, computed ahead for
  these weights (``python -m train.views``), so a first view need not wait for seconds of sampling.

Loading never unpickles and always loads with ``strict=True``: the mixin's own
default (``strict=False``) silently accepts weights that do not fit the config.
Every way a checkpoint can be wrong raises :class:`CheckpointError`, whose
message names the file or repo and says what to do.

This module knows the format and no family: ``genmodels.registry.load`` picks the family's class.
"""

import dataclasses
import json
import math
import os
import re
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import ModelCard, ModelCardData, PyTorchModelHubMixin, hf_hub_download
from huggingface_hub.errors import (
    EntryNotFoundError,
    HfHubHTTPError,
    HFValidationError,
    LocalEntryNotFoundError,
    RepositoryNotFoundError,
    RevisionNotFoundError,
)
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.overrides import TorchFunctionMode

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
SAMPLES = "samples.safetensors"  # optional: the fixed-seed samples saved after each training epoch
JUDGED = "judged.safetensors"  # optional: the judge's most and least confident of many samples (sample_quality)
MAX_JUDGED = 256  # images of each kind in judged.safetensors
VIEWS = "views.safetensors"  # optional: pages' first views computed ahead for these weights (train.views)
CARD = "README.md"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")

# What a checkpoint may hold, checked before anything is built from it: a config or metrics file of any size, a
# network of any width or a weights file with tensors of any shape would otherwise let a checkpoint (one typed into
# the public demo's Hub box, say) take the server's memory before anything else is checked.
MAX_CONFIG_BYTES = 64 * 1024
MAX_METRICS_BYTES = 4 * 1024 * 1024  # the shipped ones are 200 KB at most
MAX_SAMPLES_BYTES = 32 * 1024 * 1024
MAX_VIEWS_BYTES = 8 * 1024 * 1024  # the shipped ones are 2.2 MB at most
MAX_VIEWS = 64  # views in one views.safetensors
CARD_SAMPLES = 16  # the samples (from seed 0) of a model's card in the model zoo
MAX_WEIGHTS_BYTES = 256 * 1024 * 1024
MAX_PARAMETERS = 50_000_000  # numbers in a model's parameters and buffers (the shipped ones: 5 million at most)
MAX_INT = 100_000  # an integer config field without its own limits
MAX_STRING = 200  # characters of a string config field
MAX_LIST = 16  # items of a list config field (the U-Net's widths)


class CheckpointError(Exception):
    """A checkpoint could not be found, read, or matched to its model."""


class HubModel(nn.Module, PyTorchModelHubMixin, library_name="genmodels", license="mit",
               repo_url="https://github.com/genmodels/genmodels", tags=["genmodels", "education"]):
    """Base of every model family: Hub save/load, fp16 storage, metrics.json and the model card.

    A family subclasses this with ``__init__(self, config: SomeConfig)``, where the
    config dataclass has a ``family`` field, and sets ``config_class``.
    """

    config_class: type = None  # the family's config dataclass
    store_fp16: bool = True  # store float32 weights as float16 in model.safetensors
    sampler_name: str = "model.sample"  # how ``sample`` draws, in words (scores are recorded under it)
    # Allowed values of config fields, checked before the model is built: (low, high) for numbers (for a list,
    # each item), a tuple of strings for a choice. Integers without limits lie in [0, MAX_INT]; "dataset" is one
    # of genmodels.data.DATASETS (each family lists it: this module knows no family and no dataset).
    config_limits: dict[str, tuple] = {}

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.metrics: dict[str, Any] = {}
        self.training_samples: torch.Tensor | None = None  # (epochs, n, C, 28, 28) uint8, if recorded
        # {"most", "least": (k, C, 28, 28) uint8, "n": samples judged, "sampler": how they were drawn}, if recorded
        self.judged_samples: dict[str, Any] | None = None
        # What pages draw before any control is touched, computed ahead (views.safetensors), if recorded:
        # ``genmodels.registry.load`` keeps them only for the weights they were computed from.
        self.stored_views: StoredViews | None = None
        self.problems: list[str] = []  # what was wrong with the optional files it was loaded from

    # --- what a page shows -------------------------------------------------------------
    def describe(self) -> str:
        """The architecture in words (overridden by each family)."""
        return type(self).__name__

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def headline(self) -> str:
        """The model in a few words, for the model zoo's cards (families override this)."""
        return self.config.family

    def unused_fields(self) -> set[str]:
        """Config fields that do not apply to this model (a mixture size for a Gaussian prior): the model card
        leaves them out. Families override this."""
        return set()

    def first_views(self) -> dict[str, dict[str, torch.Tensor]]:
        """What this model's pages draw before any control is touched, where that takes seconds: {``view_key(...)``:
        {name: tensor}}, as ``python -m train.views`` stores them in views.safetensors. Families whose first views
        are slow override this; the pages look them up with ``stored_view(view_key(...))``."""
        return {}

    def stored_view(self, key: str) -> dict[str, torch.Tensor] | None:
        """The view ``key`` as views.safetensors holds it (floating tensors in float32), or None."""
        return self.stored_views.views.get(key) if self.stored_views is not None else None

    def stored_images(self, key: str, n: int) -> torch.Tensor | None:
        """The images of view ``key`` as views.safetensors holds them, in [0, 1], or None: not stored, or not n
        floating-point images of this model's shape."""
        images = (self.stored_view(key) or {}).get("images")
        shape = (n, getattr(self.config, "image_channels", 1), 28, 28)
        if images is None or tuple(images.shape) != shape or not images.is_floating_point():
            return None
        return images.clamp(0, 1)

    def stored_samples(self, n: int, seed: int) -> torch.Tensor | None:
        """``sample(n)`` from ``seed`` as views.safetensors holds it (a family whose sampling takes a second
        stores its model zoo card's, ``samples_view``), or None."""
        return self.stored_images(view_key("samples", n=n, seed=seed), n)

    def samples_view(self, n: int = CARD_SAMPLES, seed: int = 0) -> dict[str, dict[str, torch.Tensor]]:
        """``sample(n)`` from ``seed`` as a view to store (``first_views``), found again by ``stored_samples``."""
        images = self.sample(n, generator=torch.Generator().manual_seed(seed))
        return {view_key("samples", n=n, seed=seed): {"images": images}}

    # --- saving ------------------------------------------------------------------------
    def shipped_state(self) -> dict[str, torch.Tensor]:
        """The tensors model.safetensors holds: every parameter and buffer. A family that trains one network and
        samples with another (its weight average) ships the second alone."""
        return self.state_dict()

    def shipped_layouts(self) -> list[dict[str, torch.Size]]:
        """The tensor names and shapes a weights file of this model may hold: today's first, then any older layout
        it still reads."""
        return [{name: tensor.shape for name, tensor in self.shipped_state().items()}]

    def load_shipped_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load what :meth:`shipped_state` saved (strictly: every name, no other)."""
        self.load_state_dict(state, strict=True)

    def _save_pretrained(self, save_directory: Path) -> None:
        state = {}
        for name, tensor in self.shipped_state().items():
            tensor = tensor.detach().cpu().contiguous()
            if self.store_fp16 and tensor.dtype == torch.float32:
                tensor = tensor.half()
            state[name] = tensor
        save_file(state, str(Path(save_directory) / WEIGHTS), metadata={"format": "pt"})
        (Path(save_directory) / METRICS).write_text(json.dumps(self.metrics, indent=1))
        if self.training_samples is not None:
            save_file({"samples": self.training_samples.contiguous()}, str(Path(save_directory) / SAMPLES))
        if self.judged_samples is not None:
            save_judged(Path(save_directory) / JUDGED, **self.judged_samples)

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        cfg = dataclasses.asdict(self.config)
        evaluation = self.metrics.get("eval", {})
        data = ModelCardData(
            library_name="genmodels",
            license="mit",
            tags=sorted({"genmodels", "education", self.config.family, "pytorch_model_hub_mixin"}),
            datasets=[_HUB_DATASETS.get(cfg.get("dataset", ""), cfg.get("dataset", "mnist"))],
            metrics=sorted(evaluation),
        )
        rows = "\n".join(f"| {k} | {v} |" for k, v in cfg.items())
        evals = "\n".join(f"| {k} | {_fmt(v)} |" for k, v in evaluation.items()) or "| (none yet) | |"
        command = self.metrics.get("command", "(not recorded)")
        text = f"""---
{data.to_yaml()}
---

# genmodels: {self.config.family} on {cfg.get('dataset', 'mnist')}

A small model from [genmodels]({self._hub_mixin_info.repo_url}), an interactive zoo of
deep generative models for teaching. Load it with

```python
import genmodels
model = genmodels.load("<this repo id or folder>")
```

## Architecture

{self.describe()}

Parameters: {self.num_parameters():,}

## Config

| field | value |
| --- | --- |
{rows}

## Evaluation

| metric | value |
| --- | --- |
{evals}

## Reproduce

```
{command}
```

Seed {self.metrics.get('seed', '?')}, commit {self.metrics.get('commit', '?')},
trained on {self.metrics.get('device', '?')} in {_fmt(self.metrics.get('wall_time_s', '?'))} s.
"""
        return ModelCard(text)

    # --- loading -----------------------------------------------------------------------
    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir, force_download: bool,
                         local_files_only: bool, token, map_location: str = "cpu", strict: bool = True,
                         hub: bool | None = None, **model_kwargs):
        """Load safetensors weights with strict=True; never fall back to a pickle.

        Every file is checked before it is used: the config against the family's limits (and the model's size,
        counted on PyTorch's meta device, which allocates nothing), the weights file's header against the
        model's tensors, every weight for NaN and infinity, metrics.json against its schema, and the saved
        samples' shape. ``hub``: see :func:`resolve`."""
        fetch = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                     local_files_only=local_files_only, token=token, hub=hub)
        config = model_kwargs.get("config")
        if dataclasses.is_dataclass(config):
            check_config(cls, dataclasses.asdict(config), f"{model_id}: {CONFIG}")
        model = cls(**model_kwargs)
        weights = resolve(model_id, WEIGHTS, **fetch)
        check_header(weights, model.shipped_layouts())
        try:
            state = load_file(weights, device=map_location)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"'{weights}' is not a readable safetensors file ({err}). It may be truncated or "
                f"corrupt: download it again, or retrain with `python -m train ...`."
            ) from err
        bad = next((name for name, t in state.items() if t.is_floating_point() and not torch.isfinite(t).all()), None)
        if bad is not None:
            raise CheckpointError(f"'{weights}' holds NaN or infinite weights (in '{bad}'): training diverged, or "
                                  f"the file is damaged. Use the checkpoint of an earlier epoch, or retrain.")
        try:
            model.load_shipped_state(state)
        except RuntimeError as err:
            raise CheckpointError(
                f"the weights in '{weights}' do not fit the model described by its {CONFIG} "
                f"({first_line(err)}). The two files come from different runs: copy both from "
                f"the same checkpoint, or retrain."
            ) from err
        # The optional files: a missing one is fine, a malformed one is left out and said in ``model.problems``
        # (the weights are sound, so the model still loads; a page shows the problem).
        for name, read, attribute, empty in (
                (METRICS, read_metrics, "metrics", {}),
                (SAMPLES, lambda path: read_samples(path, getattr(model.config, "image_channels", 1)),
                 "training_samples", None),
                (JUDGED, lambda path: read_judged(path, getattr(model.config, "image_channels", 1)),
                 "judged_samples", None),
                (VIEWS, read_views, "stored_views", None)):
            try:
                path = resolve(model_id, name, **fetch)
            except CheckpointError:
                continue
            try:
                setattr(model, attribute, read(path))
            except CheckpointError as err:
                setattr(model, attribute, empty)
                model.problems.append(str(err))
        return model.eval()


_HUB_DATASETS = {
    "mnist": "ylecun/mnist",
    "binarized-mnist": "ylecun/mnist",
    "dynamic-binarized-mnist": "ylecun/mnist",
    "fashion-mnist": "zalando-datasets/fashion_mnist",
}


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def first_line(err: Exception) -> str:
    text = " ".join(str(err).split())
    return text[:300] + ("..." if len(text) > 300 else "")


def is_repo_id(text: str) -> bool:
    """Whether ``text`` can name a Hub model repo: owner/name, of letters, digits, '-', '_' and '.', neither part
    '.' or '..' (which would name folders)."""
    return bool(_REPO_ID.match(text)) and not text.startswith((".", "/", "~")) \
        and not any(part in (".", "..") for part in text.split("/"))


def is_local(source: str | os.PathLike) -> bool:
    """A source is a local folder if it exists, or if it cannot be a Hub repo id."""
    s = str(source)
    return os.path.exists(s) or not _REPO_ID.match(s) or s.startswith((".", "/", "~"))


def resolve(source: str | os.PathLike, filename: str, revision: str | None = None, hub: bool | None = None,
            **hub_kwargs) -> str:
    """The local path of ``filename`` in a checkpoint folder or Hub repo, downloading if needed.

    ``hub``: True reads a Hub repo (never a folder of the same name), False a local folder (never the Hub), None
    decides by :func:`is_local`."""
    if hub and not is_repo_id(str(source)):
        raise CheckpointError(f"'{source}' is not a Hub repo id: the Hub names a model repo owner/name, with "
                              f"letters, digits, '-', '_' and '.'.")
    if not hub and (hub is False or is_local(source)):
        folder = Path(source).expanduser()
        if not folder.is_dir():
            raise CheckpointError(
                f"no checkpoint folder at '{folder}'. Give a folder that holds {WEIGHTS} and "
                f"{CONFIG} (for example checkpoints/vae-gaussian-2d), or a Hub repo id like owner/name."
            )
        path = folder / filename
        if not path.is_file():
            raise CheckpointError(
                f"'{folder}' has no {filename}. A checkpoint folder holds {WEIGHTS}, {CONFIG}, "
                f"{METRICS} and {CARD}; write one with `python -m train <family> --out {folder}`."
            )
        return str(path)
    hub_kwargs = {k: v for k, v in hub_kwargs.items() if v is not None}
    try:
        return hf_hub_download(repo_id=str(source), filename=filename, revision=revision, **hub_kwargs)
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise hub_error(err, str(source), revision, filename) from err


def hub_error(err: Exception, repo_id: str, revision: str | None, filename: str | None = None) -> CheckpointError:
    """A Hub failure (huggingface_hub's exceptions) as a CheckpointError saying what to do."""
    what = f"'{filename}' of Hub repo '{repo_id}'" if filename else f"Hub repo '{repo_id}'"
    # Order matters: LocalEntryNotFoundError subclasses EntryNotFoundError.
    if isinstance(err, RevisionNotFoundError):
        return CheckpointError(f"the Hub repo '{repo_id}' has no revision '{revision}'. Check the branch, tag or "
                               f"commit name.")
    if isinstance(err, RepositoryNotFoundError):
        return CheckpointError(f"no Hub model repo '{repo_id}' (or it is private). Check the repo id (owner/name) "
                               f"and, for a private repo, log in with `hf auth login`.")
    if isinstance(err, LocalEntryNotFoundError):
        return CheckpointError(f"{what} is not in the local Hub cache and the Hub cannot be reached (offline, or "
                               f"HF_HUB_OFFLINE=1). Check the repo id, connect and unset HF_HUB_OFFLINE, or use a "
                               f"local checkpoint folder.")
    if isinstance(err, EntryNotFoundError):
        return CheckpointError(f"the Hub repo '{repo_id}' has no {filename}: it is not a genmodels checkpoint. Push "
                               f"one with `python -m train ... --push-to-hub {repo_id}`.")
    return CheckpointError(f"could not fetch {what}: {first_line(err)}")


# --- checking what a checkpoint holds ---------------------------------------------------------------------------
def read_json(path: str | os.PathLike, limit: int) -> Any:
    """The parsed JSON of a checkpoint file of at most ``limit`` bytes, UTF-8; CheckpointError names the file."""
    size = os.path.getsize(path)
    if size > limit:
        raise CheckpointError(f"'{path}' is {size:,} bytes; a genmodels checkpoint's {Path(path).name} is at most "
                              f"{limit:,}. It was not written by genmodels: restore it from the same checkpoint.")
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except UnicodeDecodeError as err:
        raise CheckpointError(f"'{path}' is not UTF-8 text ({err.reason} at byte {err.start}). Restore it from the "
                              f"checkpoint it came with.") from err
    except json.JSONDecodeError as err:
        raise CheckpointError(f"'{path}' is not valid JSON ({err}). Restore it from the checkpoint "
                              f"it came with.") from err
    except RecursionError as err:
        raise CheckpointError(f"'{path}' nests its JSON too deeply to be a genmodels file. Restore it from the "
                              f"checkpoint it came with.") from err


def _field_kind(annotation) -> str:
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    return "list" if str(annotation).startswith("list") else text


class ShapesOnly(TorchFunctionMode):
    """Inside ``torch.device("meta")``: random tensors and random initialisation without drawing anything, for a
    model built only to count its numbers. PyTorch's meta versions of ``torch.randn`` and ``normal_`` are Python
    references whose first use imports sympy or torch._dynamo: 0.7 to 1.9 s of the model zoo's first view."""

    RANDOM = (torch.randn, torch.rand)
    FILLS = (torch.Tensor.normal_, torch.Tensor.uniform_, nn.init.normal_, nn.init.uniform_, nn.init.trunc_normal_,
             nn.init.kaiming_uniform_, nn.init.kaiming_normal_, nn.init.xavier_uniform_, nn.init.xavier_normal_,
             nn.init.orthogonal_)

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        if func in self.RANDOM:
            size = args[0] if len(args) == 1 and isinstance(args[0], tuple | list | torch.Size) else args
            return torch.empty(*size, dtype=kwargs.get("dtype"), device="meta")
        if func in self.FILLS:  # in place: the tensor as it is (a method's self, or an init function's tensor)
            return args[0] if args else kwargs["tensor"]
        return func(*args, **kwargs)


def check_config(cls, config: dict[str, Any], where: str) -> None:
    """Check a config's values before ``cls(config)`` allocates anything: each field's type (a bool is not a
    number), finite numbers within the family's ``config_limits`` (integers without limits within [0,
    MAX_INT]), strings of known choices or at most MAX_STRING characters, lists of at most MAX_LIST numbers;
    then the model's size, built on PyTorch's meta device (no memory), at most MAX_PARAMETERS.
    CheckpointError says which field of ``where`` is wrong."""
    limits = cls.config_limits
    for f in dataclasses.fields(cls.config_class):
        if f.name not in config:
            continue
        value, kind, limit = config[f.name], _field_kind(f.type), limits.get(f.name)
        items = value if kind == "list" else [value]
        if kind == "list" and not (isinstance(value, list | tuple) and 0 < len(value) <= MAX_LIST):
            raise CheckpointError(f"{where}: '{f.name}' must be a list of 1 to {MAX_LIST} numbers, not {value!r:.80}.")
        for item in items:
            if kind == "bool":
                ok = isinstance(item, bool)
            elif kind == "str":
                ok = isinstance(item, str) and len(item) <= MAX_STRING and (limit is None or item in limit)
            elif kind in ("int", "list"):
                low, high = limit or (0, MAX_INT)
                ok = isinstance(item, int) and not isinstance(item, bool) and low <= item <= high
            elif kind == "float":
                low, high = limit or (-1e6, 1e6)
                ok = isinstance(item, int | float) and not isinstance(item, bool) and math.isfinite(item) \
                    and low <= item <= high
            else:
                ok = True
            if not ok:
                noun = {"int": "an integer", "list": "an integer", "float": "a number", "bool": "true or false",
                        "str": "a string"}.get(kind, f"a {kind}")
                allowed = (f"one of {', '.join(limit)}" if kind == "str" and limit
                           else f"{noun} between {low:g} and {high:g}" if kind in ("int", "list", "float")
                           else noun)
                raise CheckpointError(f"{where}: '{f.name}' is {item!r:.80}, but must be {allowed}. This genmodels "
                                      f"cannot build that model: fix the file, or retrain.")
    # On the meta device an operation without a C++ meta kernel (a Python scalar times a tensor, ``1 - t``) runs
    # PyTorch's Python reference, whose first use imports torch._dynamo: a second and tens of MB. Model
    # constructors avoid them (schedules computed on the CPU), and random initialisation is skipped.
    try:
        with torch.device("meta"), ShapesOnly():
            model = cls(cls.config_class(**config))
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"{where} does not describe a valid {cls.config_class.__name__} "
                              f"({first_line(err)}). Restore it from the same checkpoint as the weights.") from err
    size = sum(t.numel() for t in model.state_dict().values())
    if size > MAX_PARAMETERS:
        raise CheckpointError(f"{where} describes a model of {size:,} numbers; genmodels loads at most "
                              f"{MAX_PARAMETERS:,}. Train a smaller one.")


def check_header(path: str, layouts: list[dict[str, torch.Size]]) -> None:
    """Check a weights file's size and its header's tensor names and shapes against the model's (any of
    ``layouts``, the names and shapes it may hold; a mismatch is described against the first), before reading any
    tensor."""
    size = os.path.getsize(path)
    if size > MAX_WEIGHTS_BYTES:
        raise CheckpointError(f"'{path}' is {size:,} bytes, more than the {MAX_WEIGHTS_BYTES:,} genmodels loads.")
    try:
        with safe_open(path, framework="pt") as f:
            shapes = {name: tuple(f.get_slice(name).get_shape()) for name in f.keys()}  # noqa: SIM118
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"'{path}' is not a readable safetensors file ({err}). It may be truncated or "
                              f"corrupt: download it again, or retrain with `python -m train ...`.") from err
    if any(shapes == {name: tuple(shape) for name, shape in layout.items()} for layout in layouts):
        return
    expected = layouts[0]
    missing, unexpected = sorted(set(expected) - set(shapes)), sorted(set(shapes) - set(expected))
    wrong = [f"{n} is {list(shapes[n])}, not {list(expected[n])}" for n in expected
             if n in shapes and shapes[n] != tuple(expected[n])]
    what = "; ".join(filter(None, [f"missing {missing[:3]}" if missing else "",
                                   f"unexpected {unexpected[:3]}" if unexpected else "", "; ".join(wrong[:3])]))
    raise CheckpointError(f"the weights in '{path}' do not fit the model described by its {CONFIG} ({what}). "
                          f"The two files come from different runs: copy both from the same checkpoint, or "
                          f"retrain.")


class _Number:
    """Schema marker: an int or a float (not a bool)."""


NUMBER = _Number()
_QUALITY = {"fid_mnist": NUMBER, "confident_rate": NUMBER, "n": int, "histogram": [NUMBER], "seed": int,
            "sampler": str, "seconds": NUMBER, "device": str, "command": str, "floor_fid_mnist": NUMBER,
            "fd_colors": NUMBER, "floor_fd_colors": NUMBER, "hue_rule": NUMBER, "color_pairs": [[NUMBER]],
            "class_match": NUMBER, "guidance": NUMBER}
_OPTIMIZER = {"type": str, "lr": NUMBER, "betas": [NUMBER], "weight_decay": NUMBER, "momentum": NUMBER,
              "eps": NUMBER}
# What metrics.json may hold: a dict's listed keys must have the listed types; "*" gives the type of any other key
# (without it, other keys may hold anything: no page reads them).
METRICS_SCHEMA = {
    "command": str, "seed": int, "commit": str, "device": str, "torch": str, "epochs": int, "steps": int,
    "wall_time_s": NUMBER,
    "training": {"optimizer": str, "lr": NUMBER, "betas": [NUMBER], "weight_decay": NUMBER, "batch_size": int,
                 "world_size": int, "effective_batch_size": int, "epochs": int, "seed": int, "val_size": int,
                 "val_seed": int, "bf16": bool, "monitored_on": str, "optimizers": {"*": _OPTIMIZER}},
    "curves": {"*": [NUMBER]},
    "eval": {"*": NUMBER},
    "sample_quality": {"*": _QUALITY},
    "fid_floor": _QUALITY,
    "bits_per_dim": {"mean": NUMBER, "stderr": NUMBER, "n": int, "prior_term": NUMBER, "terms": [NUMBER],
                     "command": str},
    "eval_over_runs": {"runs": [str], "seeds": str, "k": int, "command": str, "*": NUMBER},
    "mixing": {"steps": [int], "share": [NUMBER], "chains": int, "seed": int, "command": str},
    "guidance_curve": {"n": int, "seed": int, "floor_fid_mnist": NUMBER, "floor_confident_rate": NUMBER,
                       "sampler": str, "device": str, "command": str,
                       "points": [{"guidance": NUMBER, "fid_mnist": NUMBER, "confident_rate": NUMBER,
                                   "class_match": NUMBER, "histogram": [NUMBER], "seconds_per_image": NUMBER}]},
    "fid_curve": {"n": int, "seed": int, "floor_fid_mnist": NUMBER, "device": str, "command": str,
                  "points": [{"sampler": str, "method": str, "eta": NUMBER, "steps": int, "fid_mnist": NUMBER,
                              "confident_rate": NUMBER, "histogram": [NUMBER], "seconds_per_image": NUMBER,
                              "class_match": NUMBER}]},
}


def schema_problem(value: Any, schema: Any, where: str = "") -> str | None:
    """Where and how ``value`` breaks ``schema`` (see METRICS_SCHEMA), or None if it fits."""
    if isinstance(schema, dict):
        if not isinstance(value, dict):
            return f"{where or 'the file'} is a {type(value).__name__}, not an object"
        for key, item in value.items():
            sub = schema.get(key, schema.get("*"))
            problem = None if sub is None else schema_problem(item, sub, f"{where}.{key}" if where else key)
            if problem:
                return problem
        return None
    if isinstance(schema, list):
        if not isinstance(value, list):
            return f"{where} is a {type(value).__name__}, not a list"
        if schema[0] is NUMBER and all(type(v) is float or type(v) is int for v in value):
            return None  # the common case, a curve of numbers, checked at once (the loop below names a bad one)
        return next((p for i, v in enumerate(value) if (p := schema_problem(v, schema[0], f"{where}[{i}]"))), None)
    if schema is NUMBER:
        ok, name = isinstance(value, int | float) and not isinstance(value, bool), "number"
    elif schema is int:
        ok, name = isinstance(value, int) and not isinstance(value, bool), "whole number"
    else:
        ok, name = isinstance(value, schema), schema.__name__
    return None if ok else f"{where} is {value!r:.40}, not a {name}"


def curves_problem(curves: dict[str, list]) -> str | None:
    """The curves are columns of two tables: ``step_*`` against ``step``, every other curve against ``epoch``. A
    curve may be empty (a number a family does not report), otherwise it has the length of its axis."""
    for name, values in curves.items():
        axis = "step" if name.startswith("step") else "epoch"
        if values and name != axis and len(values) != len(curves.get(axis, [])):
            return f"curves.{name} has {len(values)} values, but curves.{axis} has {len(curves.get(axis, []))}"
    return None


def read_metrics(path: str) -> dict[str, Any]:
    """metrics.json, checked against METRICS_SCHEMA (its size, encoding and the types of what pages read)."""
    metrics = read_json(path, MAX_METRICS_BYTES)
    problem = schema_problem(metrics, METRICS_SCHEMA) or curves_problem(metrics.get("curves", {}))
    if problem:
        raise CheckpointError(f"'{path}' is not a genmodels metrics file ({problem}), so the model is shown without "
                              f"its curves and scores. Restore the file from the same checkpoint.")
    return metrics


def read_samples(path: str, channels: int) -> torch.Tensor:
    """samples.safetensors: one uint8 tensor ``samples`` of shape (epochs, n, channels, 28, 28)."""
    size = os.path.getsize(path)
    try:
        if size > MAX_SAMPLES_BYTES:
            raise ValueError(f"{size:,} bytes, more than {MAX_SAMPLES_BYTES:,}")
        with safe_open(path, framework="pt") as f:
            if set(f.keys()) != {"samples"}:
                raise ValueError(f"tensors {sorted(f.keys())[:3]}, not one called 'samples'")
            shape = tuple(f.get_slice("samples").get_shape())
        if len(shape) != 5 or shape[2:] != (channels, 28, 28) or not 0 < shape[0] * shape[1] <= 100_000:
            raise ValueError(f"shape {list(shape)}, not (epochs, n, {channels}, 28, 28)")
        samples = load_file(path)["samples"]
        if samples.dtype != torch.uint8:
            raise ValueError(f"dtype {samples.dtype}, not uint8")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold the samples genmodels saves while training ({err}), so the "
                              f"model is shown without them. Restore the file from the same checkpoint.") from err
    return samples



def as_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in [0, 1] as the uint8 (0 to 255) that samples.safetensors and judged.safetensors hold."""
    return (images.detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)


def save_judged(path: str | os.PathLike, most: torch.Tensor, least: torch.Tensor, n: int, sampler: str,
                command: str = "") -> None:
    """judged.safetensors: the judge's ``most`` and ``least`` confident of ``n`` samples drawn by ``sampler``
    (and the command that picked them)."""
    save_file({"most": most.contiguous(), "least": least.contiguous()}, str(path),
              metadata={"n": str(n), "sampler": sampler, "command": command})


def read_judged(path: str, channels: int) -> dict[str, Any]:
    """judged.safetensors, checked: two uint8 tensors ``most`` and ``least`` of shape (k, channels, 28, 28), k at
    most MAX_JUDGED, and the metadata ``n`` (at least k samples judged) and ``sampler``."""
    try:
        if os.path.getsize(path) > 2 * MAX_JUDGED * channels * 784 + 64 * 1024:
            raise ValueError("larger than two sets of MAX_JUDGED images")
        with safe_open(path, framework="pt") as f:
            if set(f.keys()) != {"most", "least"}:
                raise ValueError(f"tensors {sorted(f.keys())[:3]}, not 'most' and 'least'")
            meta = f.metadata() or {}
            shapes = {key: tuple(f.get_slice(key).get_shape()) for key in ("most", "least")}
        for key, shape in shapes.items():
            if len(shape) != 4 or shape[1:] != (channels, 28, 28) or not 0 < shape[0] <= MAX_JUDGED:
                raise ValueError(f"'{key}' of shape {list(shape)}, not (k, {channels}, 28, 28)")
        n, sampler = meta.get("n", ""), meta.get("sampler", "")
        if not (n.isdigit() and int(n) >= max(s[0] for s in shapes.values())) or not 0 < len(sampler) <= 200:
            raise ValueError(f"metadata n {n[:20]!r} and sampler {sampler[:20]!r}")
        tensors = load_file(path)
        if any(t.dtype != torch.uint8 for t in tensors.values()):
            raise ValueError("images not uint8")
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold the judged samples train.sample_quality saves ({err}), so "
                              f"the model is shown without them. Restore the file from the same checkpoint.") from err
    return {**tensors, "n": int(n), "sampler": sampler, "command": meta.get("command", "")[:1000]}


def view_key(view: str, **settings) -> str:
    """The name of one view a page draws (``view``, and the settings it was drawn with), the same wherever it is
    made: numbers as floats unless they are integers (or None), settings in the order of their names."""
    def plain(v: Any) -> Any:
        return v if v is None or isinstance(v, (str, bool, int)) else float(v)
    return json.dumps([view, {name: plain(settings[name]) for name in sorted(settings)}])


def save_views(path: str | os.PathLike, views: dict[str, dict[str, torch.Tensor]], weights: str,
               command: str = "") -> None:
    """views.safetensors: each view's tensors (float32 stored as float16), the views' keys, the fingerprint of the
    weights they were computed from (``genmodels.registry.fingerprint``) and the command that made them."""
    keys = list(views)
    tensors = {f"{i}/{name}": (t.half() if t.dtype == torch.float32 else t).detach().cpu().contiguous()
               for i, key in enumerate(keys) for name, t in views[key].items()}
    save_file(tensors, str(path), metadata={"keys": json.dumps(keys), "weights": weights, "command": command})


@dataclasses.dataclass
class StoredViews:
    """views.safetensors as read: the fingerprint of the weights the views were computed from, and the views,
    {key: {name: tensor}} (floating tensors in float32)."""

    weights: str
    views: dict[str, dict[str, torch.Tensor]]
    command: str = ""


def read_views(path: str) -> StoredViews:
    """views.safetensors, checked: at most MAX_VIEWS_BYTES and MAX_VIEWS views, tensors named ``i/name`` for the
    i-th key, each float16, float32, uint8 or int64, and finite. What a view's tensors mean is checked where a
    page uses it."""
    try:
        size = os.path.getsize(path)
        if size > MAX_VIEWS_BYTES:
            raise ValueError(f"{size:,} bytes, more than {MAX_VIEWS_BYTES:,}")
        with safe_open(path, framework="pt") as f:
            meta = f.metadata() or {}
        try:
            keys = json.loads(meta.get("keys", "null"))
        except json.JSONDecodeError:
            keys = None
        weights = meta.get("weights", "")
        if not (isinstance(keys, list) and 0 < len(keys) <= MAX_VIEWS
                and all(isinstance(k, str) and 0 < len(k) <= 1000 for k in keys) and len(set(keys)) == len(keys)):
            raise ValueError("its metadata 'keys' is not a list of view names")
        if not re.fullmatch(r"[0-9a-f]{16}", weights):
            raise ValueError("its metadata 'weights' is not the fingerprint of a weights file")
        views: dict[str, dict[str, torch.Tensor]] = {key: {} for key in keys}
        for full_name, tensor in load_file(path).items():
            index, _, name = full_name.partition("/")
            if not (index.isdigit() and int(index) < len(keys) and name):
                raise ValueError(f"a tensor named {full_name[:40]!r}, not 'i/name' for one of its {len(keys)} views")
            if tensor.dtype not in (torch.float16, torch.float32, torch.uint8, torch.int64):
                raise ValueError(f"'{full_name[:40]}' of dtype {tensor.dtype}")
            if tensor.is_floating_point():
                tensor = tensor.float()
                if not torch.isfinite(tensor).all():
                    raise ValueError(f"'{full_name[:40]}' holds NaN or infinity")
            views[keys[int(index)]][name] = tensor
    except (SafetensorError, OSError, ValueError) as err:
        raise CheckpointError(f"'{path}' does not hold the views train.views computes ({first_line(err)}), so pages "
                              f"compute them when they are asked for. Write it again with `python -m train.views`."
                              ) from err
    return StoredViews(weights, views, meta.get("command", "")[:1000])


def read_config(source: str | os.PathLike, revision: str | None = None, local_files_only: bool = False,
                hub: bool | None = None) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder or Hub repo (``local_files_only``: from the Hub cache
    only, never the network; ``hub``: see :func:`resolve`)."""
    path = resolve(source, CONFIG, revision=revision, local_files_only=local_files_only or None, hub=hub)
    config = read_json(path, MAX_CONFIG_BYTES)
    if not isinstance(config, dict) or "family" not in config:
        raise CheckpointError(f"'{path}' names no model family (no \"family\" key): it was not "
                              f"written by genmodels.")
    return config


def list_checkpoints(root: str | os.PathLike) -> list[tuple[str, dict[str, Any]]]:
    """(folder, config) for every checkpoint folder directly under ``root``, sorted by name.

    Hidden folders (a checkpoint being written is one) and folders whose config cannot be read are skipped: the
    page that loads one reports why. An unreadable ``root`` raises OSError.
    """
    found = []
    root = Path(root)
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if not p.name.startswith(".")):
        try:
            if (folder / CONFIG).is_file():
                found.append((str(folder), read_config(folder, hub=False)))
        except (CheckpointError, OSError):
            continue
    return found
