"""``python -m train.views CHECKPOINT [...]``: compute what a model's pages draw first, and store it with the weights.

Some first views take seconds of sampling: DDPM step by step's trajectory (20 network evaluations of 8 images),
the inpainting page's six completions (50), the class-conditional page's samples of every class (20 guided steps
for each of 10 classes), the flow's samples on its model zoo card. A student opening
the page should not wait for them, so the model computes them here (``HubModel.first_views``: the page's default
settings, seed 0, on the CPU as a page does) and they go into the checkpoint's ``views.safetensors`` (float16,
about 0.8 MB for a trajectory of 8 images), with the fingerprint of the weights they belong to: a retrained model's
stale views are not used (``genmodels.registry.load`` says so). A page finds a view by its settings; any other
settings are computed as before.

Families whose first views are quick have none; for them this writes nothing.
"""

import argparse
import sys
import time
from pathlib import Path

import torch

import genmodels
from genmodels.checkpoint import VIEWS, WEIGHTS, save_views
from genmodels.registry import fingerprint
from train.loop import atomic_write


def write_views(location: str, model) -> str:
    """Compute ``model.first_views()`` and store them in ``location``'s views.safetensors; what was done, in words."""
    folder = Path(location)
    if not folder.is_dir():
        return f"{location}: not written (not a local folder)"
    started = time.perf_counter()
    views = model.first_views()
    if not views:
        return f"{location}: nothing to write (its pages draw their first views quickly)"
    command = "python -m train.views " + location
    atomic_write(folder / VIEWS, lambda tmp: save_views(tmp, views, fingerprint(folder / WEIGHTS), command))
    size = (folder / VIEWS).stat().st_size
    return (f"{folder / VIEWS}: {len(views)} view{'s' * (len(views) != 1)}, {size / 1e6:.2f} MB, computed in "
            f"{time.perf_counter() - started:.1f} s")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.views", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="+", help="checkpoint folders")
    args = p.parse_args(argv)
    for location in args.checkpoints:
        try:
            model = genmodels.load(location, hub=False).eval()
        except genmodels.CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        with torch.no_grad():
            print(write_views(location, model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
