"""The one training loop every family shares: seeding, validation split, progress bar, evaluation each
epoch, atomic checkpoints, bit-for-bit resume, provenance in metrics.json, several optimisers,
``torchrun``, and the Hub push.

A family's recipe (``train/vae.py`` ..., named in ``genmodels.registry``) provides:

- ``add_arguments(parser)``: its own flags;
- ``build(args) -> (model, train_set, test_set)``; the loop holds out ``--val-size`` images of the
  training set (seeded) for the per-epoch curves and touches the test set only for the final numbers;
- ``loss(model, batch) -> scalar tensor``, for the default training step;
- ``evaluate(model, dataset, args, final) -> dict of numbers`` with unprefixed names (``elbo``):
  run on the validation set after every epoch (recorded as ``val_elbo``) and on the test set at the
  end, more thoroughly (``final=True``; recorded as ``test_elbo``);

and optionally:

- ``optimizers(model, config, args) -> {name: optimizer}``: any number, each with its own settings; all
  are saved and restored. Default: one optimiser of ``config.optimizer`` over every parameter;
- ``train_step(model, batch, optimizers, ctx) -> {"loss": ..., other numbers}``: one training step,
  for a family that alternates networks, runs k steps of one per step of another, or updates its
  weights without autograd. ``ctx`` (a :class:`StepContext`) gives the step count, the epoch, the
  config, the command line (``ctx.args``, with the family's flags), ``ctx.autocast()`` and
  ``ctx.reduce_gradients(module)`` (averages gradients over the processes of a ``torchrun`` run;
  call it between backward and the optimiser step). Default:
  :func:`default_step`, the loss, backward and step of one optimiser;
- ``after_step(model, step)``, called after every step (the DDPM's weight average);
- ``snapshot(model) -> images in [0, 1]``, fixed-seed samples kept after every epoch in the
  checkpoint's ``samples.safetensors``.

The training state (fp32 weights, every optimiser's moments, RNG states, curves) lives in
``OUT/.train_state.safetensors``, written atomically after every epoch, so an interrupted run
loses at most one epoch, and ``--resume`` continues exactly where it stopped. No pickle anywhere:
tensors go into safetensors, everything else into its JSON metadata.
"""

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.distributed as dist
from safetensors import safe_open
from safetensors.torch import load_file, save_file
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DataLoader, DistributedSampler
from tqdm import tqdm

from genmodels.checkpoint import as_uint8

STATE_FILE = ".train_state.safetensors"
STEP_CURVE_EVERY = 10  # keep one training loss per this many steps in metrics.json
VAL_SIZE = 5000  # training images held out for validation, unless --val-size says otherwise
OPTIMIZERS = {"adam": torch.optim.Adam, "adamw": torch.optim.AdamW, "sgd": torch.optim.SGD}


@dataclass
class TrainConfig:
    """How a model is trained: stored in metrics.json under ``training`` and shown on its model card."""

    optimizer: str = "adam"
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    batch_size: int = 128  # per process
    world_size: int = 1  # processes (torchrun); the effective batch is batch_size * world_size
    epochs: int = 20
    seed: int = 0
    val_size: int = VAL_SIZE  # training images held out for per-epoch curves; 0: monitor on the test set
    val_seed: int = 0  # the split's own seed, so runs with different --seed share one validation set
    bf16: bool = False
    optimizers: dict = field(default_factory=dict)  # name -> its settings, as built (filled in by the loop)

    @property
    def effective_batch_size(self) -> int:
        return self.batch_size * self.world_size

    @property
    def monitored_on(self) -> str:
        return "validation" if self.val_size else "test"

    def to_json(self) -> dict:
        return {**asdict(self), "betas": list(self.betas), "effective_batch_size": self.effective_batch_size,
                "monitored_on": self.monitored_on}


def train_config(args, world_size: int = 1) -> TrainConfig:
    """The TrainConfig the CLI flags describe. ``--val-size`` defaults to 5,000, or a tenth of ``--subset``."""
    val_size = args.val_size
    if val_size is None:
        val_size = VAL_SIZE if args.subset is None else min(VAL_SIZE, args.subset // 10)
    return TrainConfig(optimizer=args.optimizer, lr=args.lr, betas=tuple(args.betas), weight_decay=args.weight_decay,
                       batch_size=args.batch_size, world_size=world_size, epochs=args.epochs, seed=args.seed,
                       val_size=val_size, bf16=args.bf16)


def make_optimizer(parameters, config: TrainConfig, **overrides) -> torch.optim.Optimizer:
    """An optimiser of ``config.optimizer`` with the config's settings, any of them overridden."""
    settings = {"lr": config.lr, "betas": config.betas, "weight_decay": config.weight_decay, **overrides}
    if config.optimizer == "sgd":
        settings.pop("betas")  # plain SGD (with momentum if asked) has no moment estimates
    return OPTIMIZERS[config.optimizer](parameters, **settings)


def default_optimizers(model: nn.Module, config: TrainConfig, args=None) -> dict[str, torch.optim.Optimizer]:
    return {"model": make_optimizer(model.parameters(), config)}


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device is available here; use --device cpu or auto.")
    if name == "mps" and not torch.backends.mps.is_available():
        raise SystemExit("--device mps: no Apple GPU is available here; use --device cpu or auto.")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"{device.type} ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"


def git_commit() -> str:
    """HEAD of the repo this code runs from, with '-dirty' if tracked code differs from it.

    ``$GENMODELS_COMMIT``, if set, is recorded instead: the commit a copy of the tree was made from,
    where the copy's ``.git`` is missing or stale (a GPU machine given the working tree)."""
    root = Path(__file__).resolve().parent.parent
    if os.environ.get("GENMODELS_COMMIT"):
        return os.environ["GENMODELS_COMMIT"]
    try:
        head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                              check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!checkpoints"], cwd=root, capture_output=True, text=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return head + ("-dirty" if dirty else "")


_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it), and put back at once
os.umask(_UMASK)


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename onto ``path``: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes the file private (0600); the others are not
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _siblings(out: Path) -> tuple[Path, Path, Path]:
    """The hidden folders beside OUT while a checkpoint is written: being written, complete, replaced."""
    return tuple(out.parent / f".{out.name}.{stage}" for stage in ("writing", "ready", "previous"))


def save_checkpoint(model, out: Path, write_state=None) -> None:
    """Write the checkpoint folder as a whole: every file (and, with ``write_state(folder)``, the training
    state) goes into a new hidden folder beside OUT, which then replaces OUT. A reader, or a crash, sees the
    previous checkpoint or the new one, never a mix of epochs; :func:`recover` completes a swap a crash
    interrupted. Files of OUT that this write does not produce (the training state at the final save, a note the
    user left) are carried over."""
    writing, ready, previous = _siblings(out)
    shutil.rmtree(writing, ignore_errors=True)
    writing.mkdir(parents=True)
    model.save_pretrained(writing)
    if write_state is not None:
        write_state(writing)
    if out.is_dir():
        for f in out.iterdir():
            if f.is_file() and not (writing / f.name).exists():
                try:
                    os.link(f, writing / f.name)
                except OSError:
                    shutil.copy2(f, writing / f.name)
    os.rename(writing, ready)
    _swap_in(out)


def _swap_in(out: Path) -> None:
    writing, ready, previous = _siblings(out)
    if out.exists():
        os.rename(out, previous)
    os.rename(ready, out)
    shutil.rmtree(previous, ignore_errors=True)


def recover(out: Path) -> None:
    """Finish what a crash during :func:`save_checkpoint` left: a complete new folder is swapped in, a replaced
    one restored if nothing replaced it, a half-written one removed."""
    writing, ready, previous = _siblings(out)
    shutil.rmtree(writing, ignore_errors=True)
    if ready.is_dir():
        _swap_in(out)
    elif previous.is_dir():
        if out.exists():
            shutil.rmtree(previous)
        else:
            os.rename(previous, out)


def prepare_out(out: Path, family: str, overwrite: bool) -> None:
    """Before any training: OUT can be written, and is new, empty, or a checkpoint of the same family (unless
    ``overwrite``); an interrupted save is completed first."""
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        recover(out)
        if out.exists() and not out.is_dir():
            raise SystemExit(f"--out {out} is a file, not a folder. Choose a folder for the checkpoint.")
        probe = tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.probe")  # the checkpoint is written beside OUT
        os.rmdir(probe)
    except OSError as err:
        raise SystemExit(f"--out {out} cannot be written ({err.strerror or err}). Choose a folder you can write "
                         f"to.") from err
    if overwrite or not out.is_dir() or not any(out.iterdir()):
        return
    config = out / "config.json"
    try:
        found = json.loads(config.read_text()).get("family") if config.is_file() else None
    except (OSError, ValueError, AttributeError):
        found = None
    if found != family:
        what = f"a {found} checkpoint" if found else "files that are not a genmodels checkpoint"
        raise SystemExit(f"--out {out} holds {what}: training {family} would replace them. Choose a new folder, or "
                         f"pass --overwrite to replace them.")


# --- one training step ---------------------------------------------------------------------------------
@dataclass
class StepContext:
    """What a family's ``train_step`` may need besides the model, the batch and the optimisers."""

    config: TrainConfig
    device: torch.device
    args: object = None  # the parsed command line, with the family's own flags
    epoch: int = 0  # 0-based
    step: int = 0  # optimiser steps taken before this one
    loss_module: nn.Module | None = None  # the default step's loss as a module (DistributedDataParallel under torchrun)

    def autocast(self):
        """bfloat16 autocast for the forward pass when ``--bf16`` is on; nothing otherwise."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.config.bf16)

    def reduce_gradients(self, module: nn.Module) -> None:
        """Average ``module``'s gradients over the processes of a torchrun run (a no-op in one process)."""
        if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
            return
        for p in module.parameters():
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= dist.get_world_size()


class LossModule(nn.Module):
    """The family's loss as a module's forward, so that DistributedDataParallel can wrap it: DDP averages
    gradients over processes during the backward of what its forward returned."""

    def __init__(self, model: nn.Module, loss_fn):
        super().__init__()
        self.model = model
        self.loss_fn = loss_fn

    def forward(self, batch):
        return self.loss_fn(self.model, batch)


def default_step(model, batch, optimizers: dict, ctx: StepContext) -> dict[str, torch.Tensor]:
    """Loss, backward, step: the training step of a family with one loss and one optimiser."""
    (optimizer,) = optimizers.values()
    with ctx.autocast():
        loss = ctx.loss_module(batch)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return {"loss": loss}


# --- the training state --------------------------------------------------------------------------------
def save_state(path: Path, model, optimizers: dict, loader_generator: torch.Generator, info: dict) -> None:
    """Everything needed to continue bit for bit: tensors in safetensors, the rest as JSON metadata."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt_meta = {}
    for name, optimizer in optimizers.items():
        opt = optimizer.state_dict()
        opt_meta[name] = {"param_groups": opt["param_groups"], "state": {}}
        for idx, entries in opt["state"].items():
            for key, value in entries.items():
                if torch.is_tensor(value):
                    tensors[f"optim.{name}.{idx}.{key}"] = value.detach().cpu().contiguous()
                else:
                    opt_meta[name]["state"].setdefault(str(idx), {})[key] = value
    if model.training_samples is not None:
        tensors["training_samples"] = model.training_samples
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.loader"] = loader_generator.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"info": json.dumps(info), "optimizers": json.dumps(opt_meta)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


# Flags that do not change what a run computes: a resumed run may differ in these (and in --epochs, to go on longer).
NOT_SETTINGS = {"resume", "epochs", "quiet", "device", "push_to_hub", "out", "data_root", "download", "overwrite"}


def run_settings(args) -> dict:
    """The flags that define a run, as JSON values: saved with the training state, compared on ``--resume``."""
    return json.loads(json.dumps({k: v for k, v in sorted(vars(args).items()) if k not in NOT_SETTINGS}))


def load_state(path: Path, model, optimizers: dict, loader_generator: torch.Generator,
               settings: dict | None = None) -> dict:
    """Restore a saved training state. ``settings`` (see :func:`run_settings`) must equal the saved run's: a
    resumed run with another learning rate or network would record a command that does not reproduce it."""
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    if "optimizers" not in meta:
        raise SystemExit(f"{path} was written by an older genmodels (one optimiser, no names); it cannot be "
                         f"resumed by this one. Start again without --resume, or train with the older commit.")
    info = json.loads(meta["info"])
    saved = info.get("settings")
    if settings is not None and saved is not None and saved != settings:
        changed = [f"--{k.replace('_', '-')} {saved.get(k)!r} then, {settings.get(k)!r} now"
                   for k in sorted(saved.keys() | settings.keys()) if saved.get(k) != settings.get(k)]
        raise SystemExit(f"{path} is a run with other settings: {'; '.join(changed)}. Resume with the flags that "
                         f"started it (only --epochs, --device and --quiet may change), or start a new run in "
                         f"another folder.")
    if settings is not None and saved is None:
        print(f"warning: {path} does not record its settings (an older genmodels); make sure the flags are the ones "
              f"that started it.", file=sys.stderr)
    tensors = load_file(str(path))
    try:
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    except RuntimeError as err:
        raise SystemExit(f"{path} holds another network than these flags build ({str(err).splitlines()[0]}): resume "
                         f"with the flags that started the run.") from err
    opt_meta = json.loads(meta["optimizers"])
    if set(opt_meta) != set(optimizers):
        raise SystemExit(f"{path} holds optimisers {sorted(opt_meta)}, this run builds {sorted(optimizers)}: "
                         f"resume with the same flags that started the run.")
    for name, optimizer in optimizers.items():
        state: dict = {}
        for key, value in tensors.items():
            if key.startswith(f"optim.{name}."):
                idx, entry = key[len(f"optim.{name}."):].split(".", 1)
                state.setdefault(int(idx), {})[entry] = value
        for idx, entries in opt_meta[name]["state"].items():
            state.setdefault(int(idx), {}).update(entries)
        optimizer.load_state_dict({"state": state, "param_groups": opt_meta[name]["param_groups"]})
    model.training_samples = tensors.get("training_samples")
    torch.set_rng_state(tensors["rng.torch"])
    loader_generator.set_state(tensors["rng.loader"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return info


# --- torchrun ------------------------------------------------------------------------------------------
def distributed() -> tuple[int, int]:
    """(rank, world size); under torchrun, joins the process group (NCCL on GPUs, gloo on CPUs)."""
    if "WORLD_SIZE" not in os.environ:
        return 0, 1
    if not dist.is_initialized():
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    return dist.get_rank(), dist.get_world_size()


def optimizer_settings(optimizer: torch.optim.Optimizer) -> dict:
    """The hyperparameters of an optimiser as built (its first parameter group), for metrics.json."""
    group = optimizer.param_groups[0]
    settings = {k: (list(v) if isinstance(v, tuple) else v) for k, v in group.items()
                if k in ("lr", "betas", "weight_decay", "momentum", "eps")}
    return {"type": type(optimizer).__name__, **settings}


def data_loader(train_set, batch_size: int, seed: int, generator: torch.Generator, rank: int, world_size: int):
    """(loader, distributed sampler or None). Under torchrun each process takes every world_size-th image of
    one seeded permutation per epoch, so N processes see in each step the images one process would see with
    N times the batch; otherwise a plain shuffle drawn from ``generator`` (saved with the training state)."""
    if "WORLD_SIZE" not in os.environ:
        return DataLoader(train_set, batch_size=batch_size, shuffle=True, generator=generator), None
    sampler = DistributedSampler(train_set, num_replicas=world_size, rank=rank, shuffle=True, seed=seed)
    return DataLoader(train_set, batch_size=batch_size, sampler=sampler), sampler


# --- the loop ------------------------------------------------------------------------------------------
def run(family, args, argv: list[str]) -> Path:
    """Train with the recipe module ``family`` as ``args`` say; returns the checkpoint folder."""
    rank, world_size = distributed()
    out = Path(args.out)
    if rank == 0:
        prepare_out(out, args.family, getattr(args, "overwrite", False))
    config = train_config(args, world_size)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    if device.type == "cuda" and world_size > 1:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    model, train_set, test_set = family.build(args)
    model.to(device)
    if config.val_size:
        train_set, val_set = train_set.split(config.val_size, seed=config.val_seed)
    else:
        val_set = test_set  # per-epoch curves on the test set, as the first checkpoints did
    optimizers = getattr(family, "optimizers", default_optimizers)(model, config, args)
    config.optimizers = {name: optimizer_settings(o) for name, o in optimizers.items()}
    loader_generator = torch.Generator().manual_seed(args.seed)
    loader, sampler = data_loader(train_set, args.batch_size, args.seed, loader_generator, rank, world_size)
    if sampler is not None:
        for tensor in model.state_dict().values():  # every process starts from rank 0's weights
            dist.broadcast(tensor, 0)
        if rank:
            torch.manual_seed(args.seed + rank)  # independent noise in each process; rank 0 keeps the plain stream
    loss_module = LossModule(model, getattr(family, "loss", None))
    if world_size > 1:
        loss_module = DistributedDataParallel(loss_module)
    state_path = out / STATE_FILE
    commit = git_commit()  # the code this process runs, whatever is edited while it trains
    main_process = rank == 0
    log = sys.stderr if main_process else open(os.devnull, "w")  # noqa: SIM115 (lives as long as the run)

    info = {"epoch": 0, "step": 0, "wall_time_s": 0.0, "settings": run_settings(args),
            "curves": {"step": [], "step_loss": [], "epoch": [], "train_loss": []}}
    if args.resume and state_path.exists():
        info = load_state(state_path, model, optimizers, loader_generator, run_settings(args))
        info["settings"] = run_settings(args)
        print(f"resumed from {state_path} after epoch {info['epoch']}", file=log)
    elif args.resume:
        print(f"--resume: no {state_path} yet, starting from scratch", file=log)

    curves = info["curves"]
    train_step = getattr(family, "train_step", default_step)
    after_step = getattr(family, "after_step", None)
    snapshot = getattr(family, "snapshot", None)
    monitor = "val" if config.val_size else "test"
    for epoch in range(info["epoch"], args.epochs):
        started = time.perf_counter()
        if sampler is not None:
            sampler.set_epoch(epoch)
        model.train()
        totals: dict[str, float] = {}
        counts: dict[str, int] = {}  # images behind each number: a step may report a number only sometimes
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, mininterval=1.0,
                   disable=args.quiet or not main_process)
        for batch in bar:
            batch = [b.to(device) for b in batch]
            ctx = StepContext(config, device, args, epoch, info["step"], loss_module)
            numbers = {k: v.item() if torch.is_tensor(v) else float(v)
                       for k, v in train_step(model, batch, optimizers, ctx).items()}
            info["step"] += 1
            if after_step:
                after_step(model, info["step"])
            for name, value in numbers.items():
                totals[name] = totals.get(name, 0.0) + value * len(batch[0])
                counts[name] = counts.get(name, 0) + len(batch[0])
            if info["step"] % STEP_CURVE_EVERY == 0 and numbers:
                curves["step"].append(info["step"])
                for name, value in numbers.items():
                    curves.setdefault("step_loss" if name == "loss" else f"step_{name}", []).append(round(value, 4))
            if totals:
                headline = "loss" if "loss" in totals else next(iter(totals))  # a GAN has two losses, no one loss
                bar.set_postfix({headline: f"{totals[headline] / counts[headline]:.3f}"})
        model.eval()
        evaluation = family.evaluate(model, val_set, args, final=False) if main_process else {}
        info["epoch"] = epoch + 1
        info["wall_time_s"] += time.perf_counter() - started
        curves["epoch"].append(epoch + 1)
        for name, total in totals.items():
            curves.setdefault(f"train_{name}", []).append(round(total / counts[name], 4))
        for name, value in evaluation.items():
            curves.setdefault(f"{monitor}_{name}", []).append(round(value, 4))
        if snapshot and main_process:
            images = as_uint8(snapshot(model))[None]
            previous = model.training_samples
            model.training_samples = images if previous is None else torch.cat([previous, images])
        print(f"epoch {epoch + 1}/{args.epochs}  "
              + "  ".join(f"train {k} {v / counts[k]:.4f}" for k, v in totals.items()) + "  "
              + "  ".join(f"{monitor} {k} {v:.4f}" for k, v in evaluation.items())
              + f"  ({info['wall_time_s']:.0f} s)", file=log)
        if main_process:
            model.metrics = provenance(args, argv, device, info, commit, config)
            save_checkpoint(model, out, lambda folder: save_state(folder / STATE_FILE, model, optimizers,
                                                                  loader_generator, info))

    model.eval()
    if main_process:
        model.metrics = provenance(args, argv, device, info, commit, config)
        final = family.evaluate(model, test_set, args, final=True)
        model.metrics["eval"] = {f"test_{k}": v for k, v in final.items()}
        save_checkpoint(model, out)
        print(f"saved {out}: " + json.dumps(model.metrics["eval"]), file=log)
        if args.push_to_hub:
            url = model.push_to_hub(args.push_to_hub)
            print(f"pushed to {url}", file=log)
    if dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return out


def provenance(args, argv: list[str], device: torch.device, info: dict, commit: str, config: TrainConfig) -> dict:
    """What metrics.json records so anyone can reproduce the checkpoint."""
    launcher = "python -m train "
    if config.world_size > 1:
        launcher = f"torchrun --nproc_per_node {config.world_size} -m train "
    return {
        "command": launcher + shlex.join(argv),
        "seed": args.seed,
        "commit": commit,
        "device": describe_device(device) + (f" x {config.world_size} processes" if config.world_size > 1 else ""),
        "torch": torch.__version__,
        "training": config.to_json(),
        "epochs": info["epoch"],
        "steps": info["step"],
        "wall_time_s": round(info["wall_time_s"], 3),
        "curves": info["curves"],
    }
