"""Cold diffusion (Bansal et al. 2022): generation by undoing a deterministic degradation, not Gaussian noise.

A degradation ``D(x, t)`` takes a clean image (t = 0: ``D(x, 0) = x``) to a fully degraded one (t = T) with no
randomness at all. A network ``R(x_t, t)`` (the DDPM's U-Net) is trained to restore, ``R(D(x_0, t), t) ~ x_0``,
with the L1 loss. Sampling starts from a degraded image and alternates restoring and degrading again:

- naive (the paper's Algorithm 1): ``x_{t-1} = D(R(x_t, t), t - 1)``;
- improved (Algorithm 2): ``x_{t-1} = x_t - D(R(x_t, t), t) + D(R(x_t, t), t - 1)``, which only adds the
  *difference* the degradation makes between t and t - 1, so the network's errors in x0_hat largely cancel.

Since D is deterministic, one start gives one sample. A fully degraded image still holds a little information
(a 2 x 2 mosaic, a soft blob), and the generator draws it from a Gaussian mixture fitted to the fully degraded
training images (in the space of their first principal components: ``StartDistribution``), as the paper
samples its blurred starts. Images are in [0, 1] outside this module and in [-1, 1] for the network.
"""

import copy
import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES
from genmodels.ema import AveragedUNet
from genmodels.unet import UNet

SIZE = 28


# --- degradations ----------------------------------------------------------------------------------------------
class Degradation:
    """A deterministic degradation with a strength s = t / T from 0 (the image) to 1 (fully degraded)."""

    name = ""
    title = ""

    def __call__(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        """Images (B, C, 28, 28) in any range, strengths (B,) in [0, 1] -> degraded images."""
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian kernel of standard deviation ``sigma`` pixels, radius 3 sigma (at most 27)."""
    radius = min(SIZE - 1, max(1, math.ceil(3 * sigma)))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    return k / k.sum()


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian blur with reflected borders (no dark frame creeps in); ``sigma`` 0 is the identity."""
    if sigma <= 0:
        return x
    k = gaussian_kernel(sigma).to(x)
    r = (len(k) - 1) // 2
    c = x.shape[1]
    x = F.conv2d(F.pad(x, (r, r, 0, 0), mode="reflect"), k.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    return F.conv2d(F.pad(x, (0, 0, r, r), mode="reflect"), k.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)


class Blur(Degradation):
    """Gaussian blur whose standard deviation grows linearly with t, to ``max_sigma`` pixels: the paper's reference
    degradation. Fully blurred, a digit is a soft blob that keeps its mass and rough position."""

    name, title = "blur", "Gaussian blur"

    def __init__(self, max_sigma: float = 6.0):
        self.max_sigma = max_sigma

    def sigma(self, s: float) -> float:
        return self.max_sigma * float(s)

    def __call__(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for value in s.unique():  # one blur per distinct strength in the batch
            rows = s == value
            out[rows] = blur(x[rows], self.sigma(value))
        return out

    def describe(self) -> str:
        return f"Gaussian blur, standard deviation growing linearly from 0 to {self.max_sigma:g} pixels"


class Pixelate(Degradation):
    """Progressive pixelation: the image averaged over ever larger square blocks, shown at full size. The image
    is framed to 32 x 32 (its border pixels repeated) so every grid nests in the one before: 32 -> 16 -> 8 -> 4 -> 2
    blocks a side (1, 2, 4, 8, 16 pixels a block), then cut back to 28 x 28. An equal share of the steps goes to
    each change, and between two grids the image blends the two mosaics, so every step changes it a little and
    moves it further from the image. Generation paints a 2 x 2 mosaic, then refines it."""

    name, title = "pixelate", "progressive pixelation"
    SIDES = (32, 16, 8, 4, 2)
    FRAME = 2  # pixels added on each side: 28 + 4 = 32

    def mosaic(self, x: torch.Tensor, side: int) -> torch.Tensor:
        """Each of side x side blocks of the framed image replaced by its mean, cut back to 28 x 28."""
        block = (SIZE + 2 * self.FRAME) // side
        framed = F.pad(x, (self.FRAME,) * 4, mode="replicate")
        blocks = F.avg_pool2d(framed, block).repeat_interleave(block, 2).repeat_interleave(block, 3)
        return blocks[..., self.FRAME:self.FRAME + SIZE, self.FRAME:self.FRAME + SIZE]

    def level(self, s: float) -> tuple[int, float]:
        """(i, a): strength s lies between grid SIDES[i] and the next coarser one, a of the way."""
        position = float(s) * (len(self.SIDES) - 1)
        i = min(int(position), len(self.SIDES) - 2)
        return i, position - i

    def __call__(self, x: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        for value in s.unique():
            rows = s == value
            i, a = self.level(value)
            fine = x[rows] if i == 0 else self.mosaic(x[rows], self.SIDES[i])
            out[rows] = fine if a == 0 else (1 - a) * fine + a * self.mosaic(x[rows], self.SIDES[i + 1])
        return out

    def describe(self) -> str:
        return ("progressive pixelation: block means over a grid of " + " -> ".join(map(str, self.SIDES))
                + " blocks a side (the image framed to 32 x 32), blending one mosaic into the next")


DEGRADATIONS: dict[str, Degradation] = {d.name: d for d in (Blur(), Pixelate())}


# --- where generation starts -------------------------------------------------------------------------------------
class StartDistribution(nn.Module):
    """A Gaussian mixture over fully degraded images, in the space of their first ``dims`` principal components:
    ``fit`` on degraded training images, ``sample`` new starts. Its parameters are buffers, saved with the model."""

    def __init__(self, pixels: int, dims: int = 8, components: int = 10):
        super().__init__()
        self.register_buffer("mean", torch.zeros(pixels))
        self.register_buffer("basis", torch.zeros(dims, pixels))  # orthonormal rows: the principal directions
        self.register_buffer("log_weights", torch.full((components,), -math.log(components)))
        self.register_buffer("means", torch.zeros(components, dims))
        scale_tril = torch.zeros(components, dims, dims)  # Cholesky factors (torch.eye has no meta kernel)
        scale_tril.diagonal(dim1=1, dim2=2).fill_(1.0)
        self.register_buffer("scale_tril", scale_tril)

    def mixture(self) -> torch.distributions.MixtureSameFamily:
        return torch.distributions.MixtureSameFamily(
            torch.distributions.Categorical(logits=self.log_weights),
            torch.distributions.MultivariateNormal(self.means, scale_tril=self.scale_tril))

    def project(self, x: torch.Tensor) -> torch.Tensor:
        return (x.flatten(1) - self.mean) @ self.basis.T

    def reconstruct(self, codes: torch.Tensor, shape: tuple) -> torch.Tensor:
        return (codes @ self.basis.to(codes.device) + self.mean.to(codes.device)).view(len(codes), *shape)

    @torch.no_grad()
    def fit(self, degraded: torch.Tensor, generator: torch.Generator | None = None, iterations: int = 100) -> None:
        """Principal components of ``degraded`` (N, C, 28, 28), then EM for the mixture on their coordinates
        (started from randomly chosen points, each component's covariance floored at 1e-4 of the data's)."""
        x = degraded.flatten(1).double()
        self.mean.copy_(x.mean(0).float())
        _, _, v = torch.linalg.svd(x - x.mean(0), full_matrices=False)
        self.basis.copy_(v[: self.basis.shape[0]].float())
        z = self.project(degraded).double()
        n, d = z.shape
        m = self.means.shape[0]
        means = z[torch.randperm(n, generator=generator)[:m]].clone()
        floor = 1e-4 * z.var(0).mean() * torch.eye(d, dtype=z.dtype)
        covs = torch.cov(z.T).expand(m, d, d).clone() + floor
        log_w = torch.full((m,), -math.log(m), dtype=z.dtype)
        for _ in range(iterations):
            comp = torch.distributions.MultivariateNormal(means, covariance_matrix=covs)
            log_r = comp.log_prob(z[:, None]) + log_w  # (n, m)
            log_r = log_r - log_r.logsumexp(1, keepdim=True)
            r = log_r.exp()
            nk = r.sum(0) + 1e-10
            log_w = (nk / n).log()
            means = (r.T @ z) / nk[:, None]
            diff = z[:, None] - means  # (n, m, d)
            covs = torch.einsum("nm,nmi,nmj->mij", r, diff, diff) / nk[:, None, None] + floor
        self.log_weights.copy_(log_w.float())
        self.means.copy_(means.float())
        self.scale_tril.copy_(torch.linalg.cholesky(covs).float())

    def sample(self, n: int, shape: tuple, generator: torch.Generator | None = None) -> torch.Tensor:
        """n starts (n, *shape) on the CPU, where sampling keeps its images (the network may be on a GPU), drawn
        with ``generator`` (component, then the Gaussian, by inverse transforms)."""
        u = torch.rand(n, generator=generator)
        k = torch.searchsorted(self.log_weights.softmax(0).cumsum(0).cpu(), u).clamp(max=len(self.log_weights) - 1)
        eps = torch.randn(n, self.means.shape[1], generator=generator)
        codes = self.means.cpu()[k] + (self.scale_tril.cpu()[k] @ eps[..., None]).squeeze(-1)
        return self.reconstruct(codes, shape)


# --- the model ---------------------------------------------------------------------------------------------------
@dataclass
class ColdConfig:
    family: str = "cold"
    dataset: str = "mnist"
    image_channels: int = 1
    degradation: str = "pixelate"  # one of DEGRADATIONS
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # U-Net widths at 28, 14, 7
    T: int = 20
    start_dims: int = 8  # principal components of fully degraded images the start distribution lives in
    start_components: int = 10
    ema_decay: float = 0.999


METHODS = ("improved", "naive")


@dataclass
class ColdTrajectory:
    """States of one sampling run, in image units: ``xs[i]`` at ``timesteps[i]`` (the start first, the sample
    last; (steps + 1, n, C, 28, 28)), and the restoration x0_hat the network gave at each step ((steps, ...))."""

    timesteps: list[int]
    xs: torch.Tensor
    x0_preds: torch.Tensor


class ColdDiffusion(AveragedUNet, HubModel):
    """A restoration U-Net R(x_t, t) for one degradation; ``sample`` undoes it from a drawn start."""

    config_class = ColdConfig
    sampler_name = "improved sampler (Algorithm 2), all T steps, starts from the fitted mixture"
    config_limits = {"image_channels": (1, 4), "channels": (1, 1024), "T": (1, 1000),
                     "degradation": tuple(DEGRADATIONS), "start_dims": (1, 64), "start_components": (1, 100),
                     "ema_decay": (0, 1), "family": ("cold",), "dataset": DATASET_NAMES}

    def __init__(self, config: ColdConfig):
        super().__init__(config)
        if config.degradation not in DEGRADATIONS:
            raise ValueError(f"degradation must be one of {', '.join(DEGRADATIONS)}, not {config.degradation!r}")
        self.unet = UNet(config.image_channels, tuple(config.channels))
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.start = StartDistribution(config.image_channels * SIZE * SIZE, config.start_dims,
                                       config.start_components)

    @property
    def degradation(self) -> Degradation:
        return DEGRADATIONS[self.config.degradation]

    def headline(self) -> str:
        return f"cold diffusion, {self.degradation.title}, T = {self.config.T}"

    def describe(self) -> str:
        c = self.config
        c0, c1, c2 = c.channels
        return (f"Degradation: {self.degradation.describe()}, in T = {c.T} steps, no noise. Restoration network: "
                f"the DDPM's U-Net ({c0}, {c1}, {c2} channels at 28, 14, 7; self-attention at 7x7; a sinusoidal "
                f"time embedding) predicting the clean image x_0, trained with the L1 loss. Generation starts "
                f"from a Gaussian mixture ({c.start_components} components) fitted to the fully degraded training "
                f"images in their first {c.start_dims} principal components; samples use an exponential moving "
                f"average of the weights (decay {c.ema_decay}).")


    def degrade(self, x: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """D(x, t) for images in [0, 1] (B, C, 28, 28) and steps t in 0..T (an int, or one per image)."""
        t = torch.as_tensor(t).expand(len(x)) if torch.as_tensor(t).dim() == 0 else torch.as_tensor(t)
        with torch.autocast(x.device.type, enabled=False):  # exact: under bf16 training the blur would round
            return self.degradation(x, t.float().to(x.device) / self.config.T)

    def network_time(self, t: torch.Tensor) -> torch.Tensor:
        """Steps 0..T spread over the 0..1000 the U-Net's sinusoidal time embedding was made for (a DDPM's T)."""
        return t.float() * (1000 / self.config.T)

    # --- training ------------------------------------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E_{t ~ U{1..T}, x_0} |R(D(x_0, t), t) - x_0|_1 (the paper's L1 loss), x in [0, 1]."""
        t = torch.randint(1, self.config.T + 1, (len(x),))
        xt = self.degrade(x, t)
        return F.l1_loss(self.unet(2 * xt - 1, self.network_time(t).to(x.device)), 2 * x - 1)



    @torch.no_grad()
    def fit_start(self, images: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Fit the start distribution to these training images, fully degraded."""
        self.start.fit(torch.cat([self.degrade(images[i:i + 5000], self.config.T)
                                  for i in range(0, len(images), 5000)]), generator)

    # --- sampling ------------------------------------------------------------------------------------------------
    @torch.no_grad()
    def restore(self, xt: torch.Tensor, t: int | torch.Tensor) -> torch.Tensor:
        """The EMA network's estimate of the clean image, x0_hat = R(x_t, t), in [0, 1] (t: one step, or one per
        image)."""
        device = next(self.ema.parameters()).device
        tt = self.network_time(torch.as_tensor(t).expand(len(xt)).to(device))
        return ((self.ema(2 * xt.to(device) - 1, tt).cpu() + 1) / 2).clamp(0, 1)

    def timesteps(self, steps: int | None, top: int | None = None) -> list[int]:
        """``steps`` timesteps from ``top`` (T by default) down to 1, evenly spread (all of them if None), then 0."""
        T = self.config.T if top is None else max(1, min(top, self.config.T))
        steps = T if steps is None else max(1, min(steps, T))
        return sorted({round(T - i * T / steps) for i in range(steps)} | {0}, reverse=True)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None,
               method: str = "improved", start: torch.Tensor | None = None, return_trajectory: bool = False,
               callback=None, from_t: int | None = None):
        """n images in [0, 1]: from ``start`` (fully degraded images; by default drawn from the fitted mixture
        with ``generator``), ``steps`` restore-and-degrade steps (all T if None) with ``method`` "improved" or
        "naive". ``from_t``: the step ``start`` is degraded to (T by default; less restores a partly degraded
        image). With ``return_trajectory`` a :class:`ColdTrajectory`."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        shape = (self.config.image_channels, SIZE, SIZE)
        x = self.start.sample(n, shape, generator) if start is None else start.float()
        ts = self.timesteps(steps, from_t)
        xs, preds = [x], []
        for i, (t, s) in enumerate(zip(ts[:-1], ts[1:], strict=True)):
            x0 = self.restore(x, t)
            x = self.degrade(x0, s) if method == "naive" else x - self.degrade(x0, t) + self.degrade(x0, s)
            if return_trajectory:
                xs.append(x)
                preds.append(x0)
            if callback is not None:
                callback(i + 1, len(ts) - 1)
        if return_trajectory:
            return ColdTrajectory(ts, torch.stack(xs), torch.stack(preds))
        return x.clamp(0, 1)
