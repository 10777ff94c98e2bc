"""The one training loop every family shares: seeding, progress bar, evaluation each epoch,
atomic checkpoints, bit-for-bit resume, provenance in metrics.json and the Hub push.

A family module (``train/vae.py`` ...) provides:

- ``add_arguments(parser)``: its own flags;
- ``build(args) -> (model, train_set, test_set)``;
- ``loss(model, batch) -> scalar tensor``;
- optionally ``after_step(model, step)``, called after every optimiser step (the DDPM's weight
  average), with the number of steps taken so far;
- optionally ``snapshot(model) -> images in [0, 1]``, fixed-seed samples kept after every epoch in
  the checkpoint's ``samples.safetensors``;
- ``evaluate(model, test_set, args, final) -> dict of numbers``, run after every epoch
  (``final=False``) and once more, more thoroughly, at the end (``final=True``).

The training state (fp32 weights, optimiser moments, RNG states, curves) lives in
``OUT/.train_state.safetensors``, written atomically after every epoch, so an interrupted run
loses at most one epoch, and ``--resume`` continues exactly where it stopped. No pickle anywhere:
tensors go into safetensors, everything else into its JSON metadata.
"""

import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

STATE_FILE = ".train_state.safetensors"
STEP_CURVE_EVERY = 10  # keep one training loss per this many steps in metrics.json


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


def atomic_write(path: Path, write) -> None:
    """Call ``write(tmp_path)``, then rename onto ``path``: readers see the old file or the new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def save_checkpoint(model, out: Path) -> None:
    """Write the checkpoint folder with the mixin's ``save_pretrained``, each file atomically."""
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out.parent, prefix=f".{out.name}.") as tmp:
        card = out / "README.md"
        if card.exists():  # save_pretrained keeps an existing card; we want a fresh one
            card.unlink()
        model.save_pretrained(tmp)
        for f in Path(tmp).iterdir():
            f.chmod(0o644)
            os.replace(f, out / f.name)


def save_state(path: Path, model, optimizer, loader_generator: torch.Generator, info: dict) -> None:
    """Everything needed to continue bit for bit: tensors in safetensors, the rest as JSON metadata."""
    tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    opt = optimizer.state_dict()
    opt_meta = {"param_groups": opt["param_groups"], "state": {}}
    for idx, entries in opt["state"].items():
        for name, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"optim.{idx}.{name}"] = value.detach().cpu().contiguous()
            else:
                opt_meta["state"].setdefault(str(idx), {})[name] = value
    if model.training_samples is not None:
        tensors["training_samples"] = model.training_samples
    tensors["rng.torch"] = torch.get_rng_state()
    tensors["rng.loader"] = loader_generator.get_state()
    if torch.cuda.is_available():
        tensors["rng.cuda"] = torch.cuda.get_rng_state()
    meta = {"info": json.dumps(info), "optimizer": json.dumps(opt_meta)}
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=meta))


def load_state(path: Path, model, optimizer, loader_generator: torch.Generator) -> dict:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
    tensors = load_file(str(path))
    model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, strict=True)
    opt_meta = json.loads(meta["optimizer"])
    state: dict = {}
    for key, value in tensors.items():
        if key.startswith("optim."):
            _, idx, name = key.split(".", 2)
            state.setdefault(int(idx), {})[name] = value
    for idx, entries in opt_meta["state"].items():
        state.setdefault(int(idx), {}).update(entries)
    optimizer.load_state_dict({"state": state, "param_groups": opt_meta["param_groups"]})
    model.training_samples = tensors.get("training_samples")
    torch.set_rng_state(tensors["rng.torch"])
    loader_generator.set_state(tensors["rng.loader"])
    if "rng.cuda" in tensors and torch.cuda.is_available():
        torch.cuda.set_rng_state(tensors["rng.cuda"])
    return json.loads(meta["info"])


def run(family, args, argv: list[str]) -> Path:
    """Train ``family`` as ``args`` say; returns the checkpoint folder."""
    torch.manual_seed(args.seed)
    device = pick_device(args.device)
    model, train_set, test_set = family.build(args)
    model.to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    loader_generator = torch.Generator().manual_seed(args.seed)
    loader = DataLoader(train_set, batch_size=args.batch_size, shuffle=True, generator=loader_generator)
    out = Path(args.out)
    state_path = out / STATE_FILE
    commit = git_commit()  # the code this process runs, whatever is edited while it trains

    info = {"epoch": 0, "step": 0, "wall_time_s": 0.0,
            "curves": {"step": [], "step_loss": [], "epoch": [], "train_loss": []}}
    if args.resume and state_path.exists():
        info = load_state(state_path, model, optimizer, loader_generator)
        print(f"resumed from {state_path} after epoch {info['epoch']}", file=sys.stderr)
    elif args.resume:
        print(f"--resume: no {state_path} yet, starting from scratch", file=sys.stderr)

    curves = info["curves"]
    after_step = getattr(family, "after_step", None)
    snapshot = getattr(family, "snapshot", None)
    for epoch in range(info["epoch"], args.epochs):
        started = time.perf_counter()
        model.train()
        total, count = 0.0, 0
        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", leave=False, mininterval=1.0,
                   disable=args.quiet)
        for batch in bar:
            batch = [b.to(device) for b in batch]
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=args.bf16):
                loss = family.loss(model, batch)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            info["step"] += 1
            if after_step:
                after_step(model, info["step"])
            total += loss.item() * len(batch[0])
            count += len(batch[0])
            if info["step"] % STEP_CURVE_EVERY == 0:
                curves["step"].append(info["step"])
                curves["step_loss"].append(round(loss.item(), 4))
            bar.set_postfix(loss=f"{total / count:.3f}")
        model.eval()
        evaluation = family.evaluate(model, test_set, args, final=False)
        info["epoch"] = epoch + 1
        info["wall_time_s"] += time.perf_counter() - started
        curves["epoch"].append(epoch + 1)
        curves["train_loss"].append(round(total / count, 4))
        for name, value in evaluation.items():
            curves.setdefault(name, []).append(round(value, 4))
        if snapshot:
            images = (snapshot(model).detach().cpu().clamp(0, 1) * 255).round().to(torch.uint8)[None]
            previous = model.training_samples
            model.training_samples = images if previous is None else torch.cat([previous, images])
        print(f"epoch {epoch + 1}/{args.epochs}  train loss {total / count:.4f}  "
              + "  ".join(f"{k} {v:.4f}" for k, v in evaluation.items())
              + f"  ({info['wall_time_s']:.0f} s)", file=sys.stderr)
        model.metrics = provenance(args, argv, device, info, commit)
        save_checkpoint(model, out)
        save_state(state_path, model, optimizer, loader_generator, info)

    model.eval()
    model.metrics = provenance(args, argv, device, info, commit)
    model.metrics["eval"] = family.evaluate(model, test_set, args, final=True)
    save_checkpoint(model, out)
    print(f"saved {out}: " + json.dumps(model.metrics["eval"]), file=sys.stderr)
    if args.push_to_hub:
        url = model.push_to_hub(args.push_to_hub)
        print(f"pushed to {url}", file=sys.stderr)
    return out


def provenance(args, argv: list[str], device: torch.device, info: dict, commit: str) -> dict:
    """What metrics.json records so anyone can reproduce the checkpoint."""
    return {
        "command": "python -m train " + shlex.join(argv),
        "seed": args.seed,
        "commit": commit,
        "device": describe_device(device),
        "torch": torch.__version__,
        "epochs": info["epoch"],
        "steps": info["step"],
        "wall_time_s": round(info["wall_time_s"], 1),
        "curves": info["curves"],
    }
