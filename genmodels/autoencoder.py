"""Deterministic autoencoders: x -> z = f(x) -> x_hat = g(z), trained to give back the clean image.

A restoring (denoising) autoencoder (Vincent et al. 2008) sees a distorted image x~ = D(x) and is asked
for the clean one:

    L(x) = loss(g(f(D(x))), x),   D drawn from ``genmodels.distortions`` with a random strength,

with binary cross-entropy on the logits (the pixels read as probabilities) or the squared error. With
``distortion="none"`` it is the plain autoencoder. Its code space has no prior: nothing asks the codes
to fill a known region, so to draw anything from it we fit a Gaussian to the codes of held-out training
images (``fit_code_distribution``) and decode draws from that, which is how one sees the holes a VAE's
KL term is there to close.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genmodels import vae
from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES, image_channels
from genmodels.distortions import NAMES as DISTORTION_NAMES
from genmodels.distortions import distortion as get_distortion

ARCHITECTURES = ("conv", "mlp")
LOSSES = ("bce", "mse")
CONV_CHANNELS = (32, 64)  # 28x28 -> 14x14 -> 7x7
EVAL_STRENGTHS = (0.5, 1.0)  # the strengths of the test-set error table a training run records


class ConvEncoder(nn.Module):
    """(B, C, 28, 28) -> (B, bottleneck): two 4x4 stride-2 convolutions, then a linear map of the 7x7 features."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        c1, c2 = CONV_CHANNELS
        self.net = nn.Sequential(
            nn.Conv2d(channels, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(),
            nn.Flatten(), nn.Linear(c2 * 7 * 7, bottleneck),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvDecoder(nn.Module):
    """(B, bottleneck) -> logits (B, C, 28, 28): the encoder's mirror image, with transposed convolutions."""

    def __init__(self, channels: int, bottleneck: int):
        super().__init__()
        c1, c2 = CONV_CHANNELS
        self.net = nn.Sequential(
            nn.Linear(bottleneck, c2 * 7 * 7), nn.ReLU(), nn.Unflatten(1, (c2, 7, 7)),
            nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
            nn.ConvTranspose2d(c1, channels, 4, stride=2, padding=1),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


def reconstruction_loss(logits: torch.Tensor, x: torch.Tensor, loss: str) -> torch.Tensor:
    """Per image, summed over pixels: binary cross-entropy -sum [x log p + (1 - x) log(1 - p)] with
    p = sigmoid(logits), or the squared error sum (p - x)^2."""
    if loss == "bce":
        return F.binary_cross_entropy_with_logits(logits, x, reduction="none").flatten(1).sum(-1)
    return (torch.sigmoid(logits) - x).pow(2).flatten(1).sum(-1)


@dataclass
class AutoencoderConfig:
    """An autoencoder's networks and what it was trained to undo; the training CLI's flags map onto these."""

    family: str = "autoencoder"
    dataset: str = "mnist"
    image_channels: int = 1  # 3 for the coloured datasets
    architecture: str = "conv"  # one of ARCHITECTURES; "mlp" is the MLP VAE's encoder and decoder (genmodels.vae)
    hidden_dim: int = 512  # the MLP's hidden layers
    bottleneck: int = 16  # the code's dimension
    loss: str = "bce"  # one of LOSSES
    distortion: str = "none"  # what the inputs go through in training: one of genmodels.distortions.NAMES


class Autoencoder(HubModel):
    """An autoencoder, plain or restoring (trained on distorted inputs with clean targets): convolutional, or with
    the MLP VAE's networks (the same encoder, giving the code alone, and the same decoder), to set beside a VAE."""

    config_class = AutoencoderConfig
    config_limits = {"family": ("autoencoder",), "dataset": DATASET_NAMES, "image_channels": (1, 3),
                     "architecture": ARCHITECTURES, "bottleneck": (1, 1024), "hidden_dim": (1, 4096), "loss": LOSSES,
                     "distortion": DISTORTION_NAMES}
    sampler_name = "decoder of draws from a Gaussian fitted to the codes"

    def __init__(self, config: AutoencoderConfig):
        super().__init__(config)
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {config.architecture!r}")
        if config.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {config.loss!r}")
        if config.distortion not in DISTORTION_NAMES:
            raise ValueError(f"distortion must be one of {DISTORTION_NAMES}, not {config.distortion!r}")
        if config.image_channels != image_channels(config.dataset):
            raise ValueError(f"{config.dataset} images have {image_channels(config.dataset)} channels, "
                             f"not {config.image_channels}")
        if config.bottleneck < 1 or config.hidden_dim < 1:
            raise ValueError("bottleneck and hidden_dim must be positive")
        if config.architecture == "conv":
            self.encoder = ConvEncoder(config.image_channels, config.bottleneck)
            self.decoder = ConvDecoder(config.image_channels, config.bottleneck)
        else:
            nets = dict(latent_dim=config.bottleneck, hidden_dim=config.hidden_dim, channels=config.image_channels)
            self.encoder = vae.Encoder(**nets, outputs=1)
            self.decoder = vae.Decoder(**nets)
        # A full-covariance Gaussian fitted to the codes of held-out training images (fit_code_distribution).
        self.register_buffer("code_mean", torch.zeros(config.bottleneck))
        # (not torch.eye: on the meta device, where configs are checked, it imports torch._dynamo, a second slower)
        self.register_buffer("code_scale_tril", torch.zeros(config.bottleneck, config.bottleneck).fill_diagonal_(1.0))

    def headline(self) -> str:
        c = self.config
        trained = "plain" if c.distortion == "none" else f"restoring ({get_distortion(c.distortion).title.lower()})"
        return f"{trained} {'conv' if c.architecture == 'conv' else 'MLP'} autoencoder, bottleneck {c.bottleneck}"

    def unused_fields(self) -> set[str]:
        return {"hidden_dim"} if self.config.architecture == "conv" else set()

    def describe(self) -> str:
        c = self.config
        a, b = CONV_CHANNELS
        trained = ("clean images in and out (a plain autoencoder)" if c.distortion == "none" else
                   f"inputs distorted by '{c.distortion}' ({get_distortion(c.distortion).describe()}, strength s "
                   f"uniform in [0, 1] per image), clean targets")
        pixels = 784 * c.image_channels
        nets = (f"Encoder: two 4x4 stride-2 convolutions ({a} and {b} channels, ReLU; 28x28 to 7x7), then a linear "
                f"map to a {c.bottleneck}-dimensional code. Decoder: the mirror image, a linear map to {b}x7x7 and two "
                f"4x4 stride-2 transposed convolutions to the logits of {c.image_channels}x28x28 pixels."
                if c.architecture == "conv" else
                f"Encoder: MLP on the {pixels} pixels, {c.hidden_dim}-{c.hidden_dim} (ReLU), to a {c.bottleneck}-"
                f"dimensional code (the MLP VAE's encoder, giving the code where the VAE gives a mean and a variance). "
                f"Decoder: MLP, {c.hidden_dim}-{c.hidden_dim}-{pixels} (ReLU), to the pixels' logits (the VAE's).")
        return (f"{nets} Trained on {c.dataset} with {trained}; loss: "
                f"{'binary cross-entropy' if c.loss == 'bce' else 'squared error'}.")

    # --- the networks ------------------------------------------------------------------
    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The code z = f(x), shaped (B, bottleneck)."""
        return self.encoder(x)[0] if self.config.architecture == "mlp" else self.encoder(x)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Pixel logits g(z), shaped (B, C, 28, 28); sigmoid gives the image."""
        return self.decoder(z)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor) -> torch.Tensor:
        """sigmoid(g(f(x))) in [0, 1]: for a restoring autoencoder, its restoration of a distorted x."""
        return torch.sigmoid(self.decode(self.encode(x)))

    def distort(self, x: torch.Tensor, strength: float | torch.Tensor,
                generator: torch.Generator | None = None) -> torch.Tensor:
        """x through the distortion this model was trained on (unchanged for a plain autoencoder)."""
        if self.config.distortion == "none":
            return x
        return get_distortion(self.config.distortion)(x, strength, generator)

    # --- training ----------------------------------------------------------------------
    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """L = mean over the batch of loss(g(f(D_s(x))), x), with s ~ U[0, 1] drawn per image."""
        strength = torch.rand(len(x), device=x.device)
        x_tilde = self.distort(x, strength)
        return reconstruction_loss(self.decode(self.encode(x_tilde)), x, self.config.loss).mean()

    @torch.no_grad()
    def fit_code_distribution(self, x: torch.Tensor) -> None:
        """Fit N(m, S) to the codes of clean images x (their mean and covariance; S's Cholesky factor kept)."""
        z = self.encode(x).double()
        mean = z.mean(0)
        cov = torch.cov(z.T).reshape(len(mean), len(mean)) + 1e-6 * torch.eye(len(mean), dtype=z.dtype,
                                                                                device=z.device)
        self.code_mean.copy_(mean)
        self.code_scale_tril.copy_(torch.linalg.cholesky(cov))

    def code_covariance(self) -> torch.Tensor:
        """S = L L^T of the Gaussian fitted to the codes."""
        return self.code_scale_tril @ self.code_scale_tril.T

    @torch.no_grad()
    def sample_codes(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """z = m + L eps, eps ~ N(0, I): draws from the Gaussian fitted to the codes, (n, bottleneck)."""
        eps = torch.randn(n, self.config.bottleneck, generator=generator).to(self.code_mean.device)
        return self.code_mean + eps @ self.code_scale_tril.T

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """Decoded draws from the Gaussian fitted to the codes, in [0, 1]. Not a generative model's samples:
        nothing made the codes Gaussian, so many draws land where no training image was encoded."""
        return torch.sigmoid(self.decode(self.sample_codes(n, generator)))


def error_key(name: str, strength: float, what: str = "mse") -> str:
    """The name in metrics.json of one cell of the error table: ``mse_noise_s0.5`` (of the restoration),
    ``input_mse_noise_s0.5`` (of the distorted input); ``test_`` before it, as the loop records it."""
    return f"{what}_{name}_s{strength:g}"


@torch.no_grad()
def restoration_error(model: Autoencoder, x: torch.Tensor, name: str, strength: float,
                      generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """(mean squared error per pixel of the restoration, of the distorted input itself), one value per image,
    for images x distorted by the distortion ``name`` (``"none"``: clean inputs) at ``strength``."""
    x_tilde = x if name == "none" else get_distortion(name)(x, strength, generator)
    restored = model.reconstruct(x_tilde)
    return (restored - x).pow(2).flatten(1).mean(-1), (x_tilde - x).pow(2).flatten(1).mean(-1)
