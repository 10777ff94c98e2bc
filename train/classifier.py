"""Train the MNIST classifier used for FID-MNIST: ``python -m train classifier --epochs 5 ...``."""

import torch
import torch.nn.functional as F

from genmodels.classifier import Classifier, ClassifierConfig
from genmodels.data import load_dataset


def add_arguments(parser) -> None:
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--feature-dim", type=int, default=128)


def build(args):
    model = Classifier(ClassifierConfig(channels=args.channels, feature_dim=args.feature_dim))
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    return model, load_dataset("mnist", train=True, **kwargs), load_dataset("mnist", train=False, **kwargs)


def loss(model: Classifier, batch) -> torch.Tensor:
    x, y = batch
    return F.cross_entropy(model(x), y)


@torch.no_grad()
def evaluate(model: Classifier, dataset, args, final: bool) -> dict[str, float]:
    device = next(model.parameters()).device
    x, y = dataset.images.to(device), dataset.labels.to(device)
    logits = torch.cat([model(x[i:i + 1000]) for i in range(0, len(x), 1000)])
    return {"accuracy": (logits.argmax(-1) == y).float().mean().item(),
            "loss": F.cross_entropy(logits, y).item()}
