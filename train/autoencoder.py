"""Train an autoencoder: ``python -m train autoencoder --distortion mix --bottleneck 16 ...``.

Every training image goes through the distortion at a strength drawn uniformly in [0, 1]; the target is
the clean image. After every epoch the codes of the held-out images are fitted with a Gaussian (the model's
``sample`` draws from it), and the restoration error on them is recorded; at the end, the error of
restoring every distortion at strengths 0.5 and 1 on the test set, beside the error of the distorted input.
"""

import torch

from genmodels.autoencoder import (
    ARCHITECTURES,
    EVAL_STRENGTHS,
    LOSSES,
    Autoencoder,
    AutoencoderConfig,
    error_key,
    reconstruction_loss,
    restoration_error,
)
from genmodels.data import image_channels, load_dataset
from genmodels.distortions import DISTORTIONS, NAMES

DATASETS = ("mnist", "binarized-mnist", "fashion-mnist", "colored-mnist", "colored-fashion-mnist")
EVAL_SEED = 0  # the distortions of the evaluation images are drawn from this seed


def add_arguments(parser) -> None:
    parser.add_argument("--dataset", choices=DATASETS, default="mnist")
    parser.add_argument("--bottleneck", type=int, default=16, help="dimension of the code")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="conv",
                        help="conv, or mlp: the MLP VAE's encoder and decoder (python -m train vae)")
    parser.add_argument("--hidden-dim", type=int, default=512, help="the MLP's hidden layers")
    parser.add_argument("--loss", choices=LOSSES, default="bce", help="binary cross-entropy or squared error")
    parser.add_argument("--distortion", choices=NAMES, default="mix",
                        help="what the training inputs go through ('none': a plain autoencoder)")


def build(args):
    config = AutoencoderConfig(dataset=args.dataset, image_channels=image_channels(args.dataset),
                               architecture=args.architecture, hidden_dim=args.hidden_dim, bottleneck=args.bottleneck,
                               loss=args.loss, distortion=args.distortion)
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    return Autoencoder(config), load_dataset(args.dataset, train=True, **kwargs), \
        load_dataset(args.dataset, train=False, **kwargs)


def loss(model: Autoencoder, batch) -> torch.Tensor:
    return model.loss(batch[0])


@torch.no_grad()
def evaluate(model: Autoencoder, dataset, args, final: bool) -> dict[str, float]:
    """Mean squared error per pixel of clean reconstructions (and their cross-entropy) and of restorations; at the
    end, of every distortion at every strength in EVAL_STRENGTHS (and of the distorted inputs, the error the model
    starts from)."""
    device = next(model.parameters()).device
    x = dataset.images.to(device)
    if not final:
        model.fit_code_distribution(x)
    out = {"mse_clean": restoration_error(model, x, "none", 0.0)[0].mean().item(),
           # binary cross-entropy summed over the pixels, per image: the reconstruction term a VAE's ELBO has
           "bce_clean": reconstruction_loss(model.decode(model.encode(x)), x, "bce").mean().item()}
    cells = [(name, s) for name in DISTORTIONS for s in EVAL_STRENGTHS] if final else \
        [(model.config.distortion, 0.5)] if model.config.distortion != "none" else []
    for name, s in cells:
        restored, distorted = restoration_error(model, x, name, s, torch.Generator().manual_seed(EVAL_SEED))
        out[error_key(name, s)] = restored.mean().item()
        if final:
            out[error_key(name, s, "input_mse")] = distorted.mean().item()
    return out
