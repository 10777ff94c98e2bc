"""One checkpoint format for every model family, on disk and on the Hugging Face Hub.

A checkpoint is a folder (or a Hub model repo) holding

- ``model.safetensors``: the weights, written by huggingface_hub's
  ``PyTorchModelHubMixin`` (float16 where the family says that costs no quality);
- ``config.json``: the family's config dataclass, including ``family``;
- ``metrics.json``: training curves, evaluation numbers and provenance (the exact
  training command, seed, git commit, device, wall time);
- ``README.md``: a model card with Hub metadata;
- optionally ``samples.safetensors``: fixed-seed samples after each epoch of training (uint8), so a
  page can show how samples improve while the model learns.

Loading never unpickles and always loads with ``strict=True``: the mixin's own
default (``strict=False``) silently accepts weights that do not fit the config.
Every way a checkpoint can be wrong raises :class:`CheckpointError`, whose
message names the file or repo and says what to do.

This module knows the format and no family: ``genmodels.registry.load`` picks the family's class.
"""

import dataclasses
import json
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
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

WEIGHTS = "model.safetensors"
CONFIG = "config.json"
METRICS = "metrics.json"
SAMPLES = "samples.safetensors"  # optional: the fixed-seed samples saved after each training epoch
CARD = "README.md"
_REPO_ID = re.compile(r"^[\w.-]+/[\w.-]+$")


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

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.metrics: dict[str, Any] = {}
        self.training_samples: torch.Tensor | None = None  # (epochs, n, C, 28, 28) uint8, if recorded

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

    # --- saving ------------------------------------------------------------------------
    def _save_pretrained(self, save_directory: Path) -> None:
        state = {}
        for name, tensor in self.state_dict().items():
            tensor = tensor.detach().cpu().contiguous()
            if self.store_fp16 and tensor.dtype == torch.float32:
                tensor = tensor.half()
            state[name] = tensor
        save_file(state, str(Path(save_directory) / WEIGHTS), metadata={"format": "pt"})
        (Path(save_directory) / METRICS).write_text(json.dumps(self.metrics, indent=1))
        if self.training_samples is not None:
            save_file({"samples": self.training_samples.contiguous()}, str(Path(save_directory) / SAMPLES))

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
                         **model_kwargs):
        """Load safetensors weights with strict=True; never fall back to a pickle."""
        model = cls(**model_kwargs)
        fetch = dict(revision=revision, cache_dir=cache_dir, force_download=force_download,
                     local_files_only=local_files_only, token=token)
        weights = resolve(model_id, WEIGHTS, **fetch)
        try:
            state = load_file(weights, device=map_location)
        except (SafetensorError, OSError, ValueError) as err:
            raise CheckpointError(
                f"'{weights}' is not a readable safetensors file ({err}). It may be truncated or "
                f"corrupt: download it again, or retrain with `python -m train ...`."
            ) from err
        try:
            model.load_state_dict(state, strict=True)
        except RuntimeError as err:
            raise CheckpointError(
                f"the weights in '{weights}' do not fit the model described by its {CONFIG} "
                f"({first_line(err)}). The two files come from different runs: copy both from "
                f"the same checkpoint, or retrain."
            ) from err
        try:
            metrics_path = resolve(model_id, METRICS, **fetch)
            model.metrics = json.loads(Path(metrics_path).read_text())
        except (CheckpointError, json.JSONDecodeError):
            model.metrics = {}
        try:
            model.training_samples = load_file(resolve(model_id, SAMPLES, **fetch))["samples"]
        except (CheckpointError, SafetensorError, OSError, KeyError):
            model.training_samples = None  # optional: a page without it shows no training progression
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
    """Whether ``text`` can name a Hub model repo: owner/name, of letters, digits, '-', '_' and '.'."""
    return bool(_REPO_ID.match(text)) and not text.startswith((".", "/", "~"))


def is_local(source: str | os.PathLike) -> bool:
    """A source is a local folder if it exists, or if it cannot be a Hub repo id."""
    s = str(source)
    return os.path.exists(s) or not _REPO_ID.match(s) or s.startswith((".", "/", "~"))


def resolve(source: str | os.PathLike, filename: str, revision: str | None = None, **hub_kwargs) -> str:
    """The local path of ``filename`` in a checkpoint folder or Hub repo, downloading if needed."""
    if is_local(source):
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
    # Order matters: LocalEntryNotFoundError subclasses EntryNotFoundError.
    except RevisionNotFoundError as err:
        raise CheckpointError(f"the Hub repo '{source}' has no revision '{revision}'. "
                              f"Check the branch, tag or commit name.") from err
    except RepositoryNotFoundError as err:
        raise CheckpointError(f"no Hub model repo '{source}' (or it is private). Check the repo id "
                              f"(owner/name) and, for a private repo, log in with `hf auth login`.") from err
    except LocalEntryNotFoundError as err:
        raise CheckpointError(
            f"'{filename}' of Hub repo '{source}' is not in the local Hub cache and the Hub cannot be "
            f"reached (offline, or HF_HUB_OFFLINE=1). Check the repo id, connect and unset "
            f"HF_HUB_OFFLINE, or use a local checkpoint folder."
        ) from err
    except EntryNotFoundError as err:
        raise CheckpointError(f"the Hub repo '{source}' has no {filename}: it is not a genmodels "
                              f"checkpoint. Push one with `python -m train ... --push-to-hub {source}`.") from err
    except (HfHubHTTPError, HFValidationError, OSError) as err:
        raise CheckpointError(f"could not fetch '{filename}' from Hub repo '{source}': "
                              f"{first_line(err)}") from err


def read_config(source: str | os.PathLike, revision: str | None = None,
                local_files_only: bool = False) -> dict[str, Any]:
    """The parsed ``config.json`` of a checkpoint folder or Hub repo (``local_files_only``: from the Hub cache
    only, never the network)."""
    path = resolve(source, CONFIG, revision=revision, local_files_only=local_files_only or None)
    try:
        config = json.loads(Path(path).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"'{path}' is not valid JSON ({err}). Restore it from the checkpoint "
                              f"it came with.") from err
    if not isinstance(config, dict) or "family" not in config:
        raise CheckpointError(f"'{path}' names no model family (no \"family\" key): it was not "
                              f"written by genmodels.")
    return config


def list_checkpoints(root: str | os.PathLike) -> list[tuple[str, dict[str, Any]]]:
    """(folder, config) for every checkpoint folder directly under ``root``, sorted by name.

    Folders whose config cannot be read are skipped: the page that loads one reports why.
    """
    found = []
    root = Path(root)
    if not root.is_dir():
        return found
    for folder in sorted(p for p in root.iterdir() if (p / CONFIG).is_file()):
        try:
            found.append((str(folder), read_config(folder)))
        except CheckpointError:
            continue
    return found
