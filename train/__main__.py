"""``python -m train <family> [flags]``: train one model family and write a checkpoint folder.

The families and their recipes come from ``genmodels.registry``. The same command runs on several
processes or GPUs under ``torchrun --nproc_per_node N -m train <family> ...`` (DistributedDataParallel;
``--batch-size`` is per process).
"""

import argparse
import importlib
import sys

from genmodels import registry
from genmodels.data import DatasetNotFoundError
from train import loop


def recipe(family: registry.Family):
    """The family's training recipe: a module (``train.vae``) or an object in one (``module:name``)."""
    module, _, name = family.recipe.partition(":")
    found = importlib.import_module(module)
    return getattr(found, name) if name else found


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for name, family in registry.FAMILIES.items():
        module = recipe(family)
        fp = sub.add_parser(name, help=(module.__doc__ or name).strip().splitlines()[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        fp.add_argument("--epochs", type=int, default=20)
        fp.add_argument("--batch-size", type=int, default=128, help="per process (see torchrun)")
        fp.add_argument("--optimizer", choices=sorted(loop.OPTIMIZERS), default="adam")
        fp.add_argument("--lr", type=float, default=1e-3)
        fp.add_argument("--betas", type=float, nargs=2, default=[0.9, 0.999], metavar=("BETA1", "BETA2"),
                        help="Adam's decay rates of the first and second moment")
        fp.add_argument("--weight-decay", type=float, default=0.0)
        fp.add_argument("--val-size", type=int, default=None,
                        help=f"training images held out (seeded) for the per-epoch curves; default "
                             f"{loop.VAL_SIZE:,}, or a tenth of --subset; 0 monitors on the test set instead")
        fp.add_argument("--seed", type=int, default=0)
        fp.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
        fp.add_argument("--out", required=True, help="checkpoint folder to write")
        fp.add_argument("--resume", action="store_true", help="continue from OUT's last saved state")
        fp.add_argument("--overwrite", action="store_true",
                        help="write into OUT even if it holds something other than a checkpoint of this family")
        fp.add_argument("--push-to-hub", metavar="REPO_ID", help="push the final checkpoint to this Hub repo")
        fp.add_argument("--data-root", help="dataset folder (default: $GENMODELS_DATA or ./data)")
        fp.add_argument("--download", action="store_true", help="download the dataset if missing")
        fp.add_argument("--subset", type=int, help="use only the first N train and test images")
        fp.add_argument("--quiet", action="store_true", help="no progress bar")
        fp.add_argument("--bf16", action="store_true",
                        help="compute the loss in bfloat16 autocast (about 2x faster on CPUs with AVX-512 BF16 "
                             "and on recent GPUs); weights, optimiser and evaluation stay float32")
        module.add_arguments(fp)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parser().parse_args(argv)
    try:
        loop.run(recipe(registry.family(args.family)), args, argv)
    except DatasetNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
