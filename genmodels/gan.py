"""Generative adversarial networks (Goodfellow et al. 2014) on 28x28 images: MLP and DCGAN backbones,
optionally conditional on the class (Mirza & Osindero 2014).

A generator G maps noise z ~ p(z) to an image; a discriminator D maps an image to the logit of the
probability that it is real. They play the min-max game

    min_G max_D  V(D, G) = E_{x ~ data}[log D(x)] + E_{z ~ p(z)}[log(1 - D(G(z)))]        (Goodfellow, eq. 1)

D ascends V (:func:`discriminator_loss` is -V). For G, minimising log(1 - D(G(z))) saturates: when D rejects
the fakes confidently, its gradient vanishes. The non-saturating loss -log D(G(z)) has the same fixed point
and strong gradients early on (Goodfellow, section 3); it is the default (:func:`generator_loss`).

Images are in [0, 1] outside this class and in [-1, 1] inside (the generator ends in tanh). The generator's
exponential moving average (``generator_ema``) draws the samples; the weights file holds it and the
discriminator, and training keeps the trained generator in its state for ``--resume``.
"""

import copy
import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from genmodels import ema
from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES
from genmodels.latent import as_condition

BACKBONES = ("mlp", "dcgan")
NOISES = ("gaussian", "uniform")
LOSSES = ("non-saturating", "saturating")


@dataclass
class GANConfig:
    """The networks, and the training tricks a student can switch on (each recorded here)."""

    family: str = "gan"
    dataset: str = "mnist"
    backbone: str = "dcgan"  # one of BACKBONES
    latent_dim: int = 64
    noise: str = "gaussian"  # p(z): standard Gaussian, or uniform on [-1, 1] (the CMI report's, with 200 dims)
    g_width: int = 128  # DCGAN: channels at 7x7 (then half at 14x14); MLP: first hidden layer (then 2x)
    g_refine: bool = False  # DCGAN: upsample to w/4 channels at 28x28, then a 3x3 convolution to the image
    d_width: int = 64  # DCGAN: channels at 14x14 (then 2x at 7x7); MLP: last hidden layer (2x before it)
    n_classes: int = 0  # > 0: a conditional GAN; the one-hot label (or any vector) enters both networks
    spectral_norm: bool = False  # spectral normalisation of every layer of D (Miyato et al. 2018)
    d_batch_norm: bool = False  # DCGAN: batch norm after D's second convolution (as Radford et al.'s D)
    loss: str = "non-saturating"  # the generator's loss, one of LOSSES
    d_steps: int = 1  # discriminator steps per generator step
    label_smoothing: float = 0.0  # one-sided: real images get the target 1 - label_smoothing (Salimans 2016)
    instance_noise: float = 0.0  # std of Gaussian noise on D's inputs at the start, annealed to 0 (Sonderby 2017)
    ema_decay: float = 0.999  # the generator's moving average; 0 samples with the trained weights


def discriminator_loss(real_logits: torch.Tensor, fake_logits: torch.Tensor,
                       label_smoothing: float = 0.0) -> torch.Tensor:
    """-V(D, G) for one batch: -mean log D(x) - mean log(1 - D(G(z))), with D = sigmoid(logit).

    One-sided label smoothing replaces the target 1 of real images by 1 - s: the loss of a real image becomes
    -(1 - s) log D(x) - s log(1 - D(x)), so D gains nothing from ever more extreme confidence on real data.
    """
    real = F.binary_cross_entropy_with_logits(real_logits, torch.full_like(real_logits, 1.0 - label_smoothing))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def generator_loss(fake_logits: torch.Tensor, loss: str = "non-saturating") -> torch.Tensor:
    """The generator's loss on D's logits of its samples.

    non-saturating: -mean log D(G(z)) = mean softplus(-logit);
    saturating (the min-max game itself): mean log(1 - D(G(z))) = -mean softplus(logit).
    """
    if loss == "non-saturating":
        return F.softplus(-fake_logits).mean()
    if loss == "saturating":
        return -F.softplus(fake_logits).mean()
    raise ValueError(f"loss must be one of {LOSSES}, not {loss!r}")


def slerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Spherical interpolation between two codes, (len(t), D) (Shoemake 1985; White 2016 for GANs).

    slerp(t) = sin((1 - t) w) / sin(w) z0 + sin(t w) / sin(w) z1, w the angle between z0 and z1. A Gaussian
    code of high dimension lies near a sphere; the straight line between two codes passes closer to the
    origin, where the prior has almost no samples. If |z0| = |z1|, every point keeps that norm.
    """
    t = t[:, None]
    cos = (z0 @ z1 / (z0.norm() * z1.norm())).clamp(-1.0, 1.0)
    omega = torch.arccos(cos)
    if omega.abs() < 1e-6:  # (nearly) the same direction: the line is the arc
        return (1 - t) * z0 + t * z1
    return (torch.sin((1 - t) * omega) * z0 + torch.sin(t * omega) * z1) / torch.sin(omega)


def lerp(z0: torch.Tensor, z1: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """Linear interpolation (1 - t) z0 + t z1, (len(t), D)."""
    t = t[:, None]
    return (1 - t) * z0 + t * z1


class MLPGenerator(nn.Module):
    """z (+ y) -> w -> 2w -> 784, LeakyReLU, tanh."""

    def __init__(self, latent_dim: int, width: int, n_classes: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(latent_dim + n_classes, width), nn.LeakyReLU(0.2),
            nn.Linear(width, 2 * width), nn.LeakyReLU(0.2),
            nn.Linear(2 * width, 784), nn.Tanh(), nn.Unflatten(1, (1, 28, 28)),
        )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.net(z if y is None else torch.cat([z, y], 1))


class MLPDiscriminator(nn.Module):
    """784 (+ y) -> 2w -> w -> 1 logit, LeakyReLU."""

    def __init__(self, width: int, n_classes: int, norm):
        super().__init__()
        self.net = nn.Sequential(
            norm(nn.Linear(784 + n_classes, 2 * width)), nn.LeakyReLU(0.2),
            norm(nn.Linear(2 * width, width)), nn.LeakyReLU(0.2),
            norm(nn.Linear(width, 1)),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        x = x.flatten(1)
        return self.net(x if y is None else torch.cat([x, y], 1)).squeeze(1)


class DCGANGenerator(nn.Module):
    """Radford et al. 2016: z (+ y) -> linear to w x 7 x 7 -> transposed convolutions to 14x14 (w/2) and
    28x28 (1), with batch norm and ReLU, tanh at the end.

    With ``refine`` the last transposed convolution makes w/4 feature maps at 28x28 (batch norm, ReLU) and a
    3x3 convolution draws the image from them: the plain net must paint every stroke from 14x14 features in
    one linear step, the refined one has a nonlinear layer at full resolution (twice the generator's work)."""

    def __init__(self, latent_dim: int, width: int, n_classes: int, refine: bool = False):
        super().__init__()
        self.project = nn.Sequential(nn.Linear(latent_dim + n_classes, width * 49, bias=False),
                                     nn.Unflatten(1, (width, 7, 7)), nn.BatchNorm2d(width), nn.ReLU())
        up = [nn.ConvTranspose2d(width, width // 2, 4, stride=2, padding=1, bias=False),
              nn.BatchNorm2d(width // 2), nn.ReLU()]
        if refine:
            up += [nn.ConvTranspose2d(width // 2, width // 4, 4, stride=2, padding=1, bias=False),
                   nn.BatchNorm2d(width // 4), nn.ReLU(), nn.Conv2d(width // 4, 1, 3, padding=1)]
        else:
            up += [nn.ConvTranspose2d(width // 2, 1, 4, stride=2, padding=1)]
        self.body = nn.Sequential(*up, nn.Tanh())

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        return self.body(self.project(z if y is None else torch.cat([z, y], 1)))


class DCGANDiscriminator(nn.Module):
    """Strided 4x4 convolutions 28 -> 14 (w channels) -> 7 (2w), LeakyReLU 0.2, then a linear logit. A
    condition enters as constant extra input planes, one per class, so any vector between classes works.

    With ``batch_norm`` the second convolution is batch-normalised, as in Radford et al.'s discriminator (every
    layer but the first). Training passes real and fake images through D in separate batches, so each batch is
    normalised by its own statistics; in eval mode (the app's D(x)) the running averages of both are used."""

    def __init__(self, width: int, n_classes: int, norm, batch_norm: bool = False):
        super().__init__()
        second = [norm(nn.Conv2d(width, 2 * width, 4, stride=2, padding=1, bias=not batch_norm))]
        if batch_norm:
            second.append(nn.BatchNorm2d(2 * width))
        self.net = nn.Sequential(
            norm(nn.Conv2d(1 + n_classes, width, 4, stride=2, padding=1)), nn.LeakyReLU(0.2),
            *second, nn.LeakyReLU(0.2),
            nn.Flatten(), norm(nn.Linear(2 * width * 49, 1)),
        )

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            x = torch.cat([x, y[:, :, None, None].expand(-1, -1, *x.shape[2:])], 1)
        return self.net(x).squeeze(1)


class GAN(HubModel):
    """A generator, its moving average and a discriminator. ``sample``, ``generate`` and ``discriminate`` take
    and give images in [0, 1]; a conditional GAN takes ``y`` as integer classes (B,) or (B, n_classes) vectors."""

    config_class = GANConfig
    config_limits = {"backbone": BACKBONES, "noise": NOISES, "loss": LOSSES, "latent_dim": (1, 1024),
                     "g_width": (1, 2048), "d_width": (1, 2048), "n_classes": (0, 1000), "d_steps": (1, 100),
                     "label_smoothing": (0, 1), "instance_noise": (0, 10), "ema_decay": (0, 1), "family": ("gan",),
                     "dataset": DATASET_NAMES}

    def __init__(self, config: GANConfig):
        super().__init__(config)
        if config.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, not {config.backbone!r}")
        if config.noise not in NOISES:
            raise ValueError(f"noise must be one of {NOISES}, not {config.noise!r}")
        if config.loss not in LOSSES:
            raise ValueError(f"loss must be one of {LOSSES}, not {config.loss!r}")
        if config.d_batch_norm and config.backbone != "dcgan":
            raise ValueError("d_batch_norm is an option of the DCGAN discriminator, not of the MLP one")
        norm = spectral_norm if config.spectral_norm else (lambda layer: layer)
        if config.backbone == "mlp":
            self.generator = MLPGenerator(config.latent_dim, config.g_width, config.n_classes)
            self.discriminator = MLPDiscriminator(config.d_width, config.n_classes, norm)
        else:
            self.generator = DCGANGenerator(config.latent_dim, config.g_width, config.n_classes, config.g_refine)
            self.discriminator = DCGANDiscriminator(config.d_width, config.n_classes, norm, config.d_batch_norm)
        self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()

    @property
    def latent_dim(self) -> int:
        return self.config.latent_dim

    @property
    def sampler_name(self) -> str:
        return f"generator{' (moving average)' if self.config.ema_decay else ''} of prior draws"

    def headline(self) -> str:
        c = self.config
        return f"{'conditional ' if c.n_classes else ''}{'DCGAN' if c.backbone == 'dcgan' else 'MLP GAN'}"

    def describe(self) -> str:
        c = self.config
        g, d = self.network_sizes()
        if c.backbone == "mlp":
            nets = (f"MLP generator {c.latent_dim}-{c.g_width}-{2 * c.g_width}-784 (LeakyReLU, tanh; {g:,} "
                    f"parameters) and MLP discriminator 784-{2 * c.d_width}-{c.d_width}-1 (LeakyReLU; {d:,}).")
        else:
            last = (f"{c.g_width // 4}x28x28, a 3x3 convolution to 1x28x28" if c.g_refine else "1x28x28")
            nets = (f"DCGAN generator: linear to {c.g_width}x7x7, transposed convolutions to {c.g_width // 2}x14x14 "
                    f"and {last}, batch norm and ReLU, tanh ({g:,} parameters); discriminator: strided "
                    f"convolutions to {c.d_width}x14x14 and {2 * c.d_width}x7x7"
                    f"{' (batch-normalised)' if c.d_batch_norm else ''}, LeakyReLU 0.2, a linear logit ({d:,}).")
        noise = "N(0, I)" if c.noise == "gaussian" else "uniform on [-1, 1]"
        tricks = [f"{c.loss} generator loss", f"{c.d_steps} discriminator step{'s' * (c.d_steps > 1)} per "
                  f"generator step"]
        if c.spectral_norm:
            tricks.append("spectral normalisation in D")
        if c.d_batch_norm:
            tricks.append("batch norm in D")
        if c.label_smoothing:
            tricks.append(f"one-sided label smoothing (real target {1 - c.label_smoothing:g})")
        if c.instance_noise:
            tricks.append(f"instance noise on D's inputs (std {c.instance_noise:g}, annealed to 0)")
        cond = f" Conditional on {c.n_classes} classes (one-hot, into both networks)." if c.n_classes else ""
        average = (f" Samples come from a moving average of the generator (decay {c.ema_decay})."
                   if c.ema_decay else "")
        return f"{nets} Noise: {c.latent_dim}-d {noise}.{cond} Training: {', '.join(tricks)}.{average}"

    def unused_fields(self) -> set[str]:
        """The DCGAN's options are left off an MLP GAN's model card."""
        return {"g_refine", "d_batch_norm"} if self.config.backbone == "mlp" else set()

    def network_sizes(self) -> tuple[int, int]:
        """Parameters of the generator and of the discriminator."""
        g, d = (sum(p.numel() for p in net.parameters()) for net in (self.generator, self.discriminator))
        return g, d

    def num_parameters(self) -> int:
        """Parameters of the networks that are trained (the moving average is a copy of the generator)."""
        return sum(self.network_sizes())

    def condition(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """G's and D's label input: one-hot for integer classes, any vector as given (``as_condition``)."""
        return as_condition(y, batch, self.config.n_classes, "GAN")

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n codes from p(z), (n, latent_dim)."""
        shape = (n, self.config.latent_dim)
        if self.config.noise == "uniform":
            return 2 * torch.rand(shape, generator=generator) - 1
        return torch.randn(shape, generator=generator)

    # --- the networks, in image units ----------------------------------------------------------------
    def fake(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The trained generator's images in [-1, 1] (with gradients; for training)."""
        return self.generator(z, self.condition(y, len(z)))

    def critic(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits of images in [-1, 1] (with gradients; for training)."""
        return self.discriminator(x, self.condition(y, len(x)))

    @torch.no_grad()
    def generate(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Images in [0, 1] from codes z, by the generator's moving average (the trained generator if there is
        none), in eval mode."""
        net = self.generator_ema if self.config.ema_decay else self.generator
        was_training = net.training
        net.eval()
        device = next(net.parameters()).device
        y = self.condition(y, len(z))
        out = net(z.to(device), None if y is None else y.to(device))
        net.train(was_training)
        return ((out + 1) / 2).clamp(0, 1).cpu()

    @torch.no_grad()
    def discriminate(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """D's logits of images in [0, 1]: log D(x) / (1 - D(x)), one per image."""
        device = next(self.discriminator.parameters()).device
        y = self.condition(y, len(x))
        return self.discriminator(2 * x.to(device) - 1, None if y is None else y.to(device)).cpu()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """n images in [0, 1]. A conditional GAN without y draws the classes 0, 1, 2, ... in turn."""
        if self.config.n_classes and y is None:
            y = torch.arange(n) % self.config.n_classes
        return self.generate(self.sample_noise(n, generator), y)

    def update_ema(self, step: int) -> None:
        """The generator's moving average after optimiser step ``step``, with warm-up (:mod:`genmodels.ema`)."""
        if self.config.ema_decay:
            ema.update_ema(self.generator_ema, self.generator, ema.ema_decay_at(self.config.ema_decay, step))

    # --- the weights file: the generator that draws, and the discriminator ------------------------------------
    def _copies(self) -> tuple[str, str]:
        """(the generator copy the weights file leaves out, the one it keeps): with a moving average the
        trained generator is left out (the average draws every sample); without one, the unused average."""
        return ("generator.", "generator_ema.") if self.config.ema_decay else ("generator_ema.", "generator.")

    def shipped_state(self) -> dict[str, torch.Tensor]:
        return ema.without_copy(self.state_dict(), self._copies()[0])

    def shipped_layouts(self) -> list[dict[str, torch.Size]]:
        return ema.copy_layouts(self, self._copies()[0])

    def load_shipped_state(self, state: dict[str, torch.Tensor]) -> None:
        """Load a weights file; the generator it leaves out is a copy of the one it holds (files that hold both,
        saved before this, still load)."""
        self.load_state_dict(ema.with_copy(state, *self._copies()), strict=True)

    def instance_noise_at(self, epoch: int, epochs: int) -> float:
        """The std of the noise on D's inputs in ``epoch`` (0-based) of ``epochs``: linear from the config's to 0."""
        return self.config.instance_noise * max(0.0, 1.0 - epoch / max(1, epochs))


def attribute_direction(model: GAN, judge, z: torch.Tensor, target: int, y: torch.Tensor | None = None) -> torch.Tensor:
    """The unit direction in which the judge's log-probability of class ``target`` rises fastest at code z:
    the gradient of log p(target | G(z)) with respect to z, normalised."""
    net = model.generator_ema if model.config.ema_decay else model.generator
    net.eval()
    device = next(net.parameters()).device
    z = z.detach().to(device).clone().requires_grad_(True)
    with torch.enable_grad():
        images = ((net(z[None], model.condition(y, 1)) + 1) / 2).clamp(0, 1)
        log_p = F.log_softmax(judge(images.cpu()), -1)[0, target]
        (grad,) = torch.autograd.grad(log_p, z)
    return (grad / grad.norm().clamp_min(1e-12)).cpu()


def attribute_walk(model: GAN, judge, z: torch.Tensor, target: int, distance: float, frames: int,
                   substeps: int = 8) -> torch.Tensor:
    """Codes (frames, D) along the path of steepest ascent of log p(target | G(z)) from z, ``distance`` long:
    between frames, ``substeps`` small steps each along the current :func:`attribute_direction`. The gradient
    is a good guide only over a short way (G and the judge are far from linear), so the path follows it
    afresh at every small step instead of going straight."""
    step = distance / max(1, frames - 1) / substeps
    codes = [z.detach().clone()]
    for _ in range(frames - 1):
        current = codes[-1]
        for _ in range(substeps):
            current = current + step * attribute_direction(model, judge, current, target)
        codes.append(current)
    return torch.stack(codes)


def expected_norm(latent_dim: int, noise: str) -> float:
    """E|z| is close to sqrt(D) for N(0, I) and sqrt(D / 3) for uniform on [-1, 1]: the shell a walk should stay on."""
    return math.sqrt(latent_dim if noise == "gaussian" else latent_dim / 3)
