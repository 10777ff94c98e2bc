"""Train a normalizing flow: ``python -m train flow --levels 2 --steps 4 --hidden 64 ...``."""

import math

import torch

from genmodels.data import load_dataset
from genmodels.flow import Flow, FlowConfig


def add_arguments(parser) -> None:
    parser.add_argument("--levels", type=int, default=2,
                        help="multi-scale levels (squeeze, then factor out half); 0: one scale (default: 2)")
    parser.add_argument("--steps", type=int, default=4, help="flow steps per stage (default: 4)")
    parser.add_argument("--hidden", type=int, default=64, help="channels of the coupling networks (default: 64)")
    parser.add_argument("--blocks", type=int, default=2, help="residual blocks per coupling network (default: 2)")
    parser.add_argument("--no-invconv", action="store_true", help="no 1x1 convolutions (RealNVP's layers only)")
    parser.add_argument("--alpha", type=float, default=0.05, help="logit transform margin (default: 0.05)")
    parser.add_argument("--eval-images", type=int, default=2000, help="test images for the per-epoch bits/dim")


def build(args):
    model = Flow(FlowConfig(levels=args.levels, steps=args.steps, hidden=args.hidden, blocks=args.blocks,
                            invconv=not args.no_invconv, alpha=args.alpha))
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    return model, load_dataset("mnist", train=True, **kwargs), load_dataset("mnist", train=False, **kwargs)


def loss(model: Flow, batch) -> torch.Tensor:
    x, _ = batch
    return model.loss(x)


@torch.no_grad()
def evaluate(model: Flow, dataset, args, final: bool) -> dict[str, float]:
    """Bits per dimension on fixed images with a fixed dequantization draw (all the test set at the end)."""
    images = dataset.images if final else dataset.images[: args.eval_images]
    g = torch.Generator().manual_seed(1234)
    device = next(model.parameters()).device
    nats = torch.cat([model.log_prob((images[i:i + 500] * 255).round().to(device), generator=g).cpu()
                      for i in range(0, len(images), 500)])
    bpd = -nats / (images[0].numel() * math.log(2))
    return {"bits_per_dim": bpd.mean().item(), "bits_per_dim_stderr": (bpd.std() / math.sqrt(len(bpd))).item()}
