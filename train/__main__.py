"""``python -m train <family> [flags]``: train one model family and write a checkpoint folder."""

import argparse
import sys

from genmodels.data import DatasetNotFoundError
from train import classifier, ddpm, loop, vae

FAMILIES = {"vae": vae, "classifier": classifier, "ddpm": ddpm}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m train", description=__doc__)
    sub = p.add_subparsers(dest="family", required=True, metavar="FAMILY")
    for name, module in FAMILIES.items():
        fp = sub.add_parser(name, help=module.__doc__.splitlines()[0],
                            formatter_class=argparse.ArgumentDefaultsHelpFormatter)
        fp.add_argument("--epochs", type=int, default=20)
        fp.add_argument("--batch-size", type=int, default=128)
        fp.add_argument("--lr", type=float, default=1e-3)
        fp.add_argument("--seed", type=int, default=0)
        fp.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto")
        fp.add_argument("--out", required=True, help="checkpoint folder to write")
        fp.add_argument("--resume", action="store_true", help="continue from OUT's last saved state")
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
        loop.run(FAMILIES[args.family], args, argv)
    except DatasetNotFoundError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
