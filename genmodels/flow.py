"""A normalizing flow on MNIST (RealNVP, Dinh et al. 2017, with Glow's actnorm and 1x1 convolutions, Kingma and
Dhariwal 2018): an invertible network f from images to a standard Gaussian, whose exact log-likelihood is

    log p(x) = log N(f(x); 0, I) + log |det df/dx|   (change of variables).

MNIST pixels are integers 0..255, a discrete distribution, while a flow is a density. Three steps connect them,
each written into ``log_prob``:

1. **Uniform dequantization**: y = (x + u) / 256, u ~ U[0, 1)^D. For any density p on [0, 1]^D,
   log P(x) >= E_u[log p(y)] - D log 256 (Jensen; Theis et al. 2016): a single draw of u gives an unbiased
   estimate of this lower bound on the discrete log-likelihood.
2. **Logit transform**: s = alpha + (1 - 2 alpha) y, z_0 = logit(s), so the flow works on an unbounded space;
   its log-derivative per pixel is log(1 - 2 alpha) - log s - log(1 - s).
3. The flow's layers, each with its log-determinant.

In bits per dimension: -log P(x) / (D ln 2). Layers: actnorm (a per-channel affine map, initialised from the first
batch), an invertible 1x1 convolution (a learned channel mix, LU-free: its log-determinant by ``slogdet``), and
affine coupling (half the dimensions, picked by a checkerboard or a channel mask, are scaled and shifted by
functions of the other half). Multi-scale: squeeze (2 x 2 pixels into 4 channels) and factor out half of the
channels at each level, as RealNVP does.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES

SIZE = 28
LOG2PI = math.log(2 * math.pi)


def squeeze(x: torch.Tensor) -> torch.Tensor:
    """(B, C, H, W) -> (B, 4C, H/2, W/2): each 2 x 2 patch of a channel into 4 channels."""
    b, c, h, w = x.shape
    x = x.view(b, c, h // 2, 2, w // 2, 2).permute(0, 1, 3, 5, 2, 4)
    return x.reshape(b, 4 * c, h // 2, w // 2)


def unsqueeze(x: torch.Tensor) -> torch.Tensor:
    """The inverse of ``squeeze``."""
    b, c, h, w = x.shape
    x = x.view(b, c // 4, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3)
    return x.reshape(b, c // 4, 2 * h, 2 * w)


def checkerboard(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """(1, C, H, W) mask, 1 where (i + j) % 2 == parity: the half that conditions the other."""
    i, j = torch.meshgrid(torch.arange(h, device="cpu"), torch.arange(w, device="cpu"), indexing="ij")
    return ((i + j) % 2 == parity).float().expand(1, c, h, w).clone()  # (on the CPU even while a model is counted)


def channel_mask(c: int, h: int, w: int, parity: int) -> torch.Tensor:
    """(1, C, H, W) mask, 1 on the first (parity 0) or second (parity 1) half of the channels."""
    m = torch.zeros(1, c, h, w, device="cpu")
    half = c // 2
    m[:, :half] = 1.0
    return m if parity == 0 else 1 - m


class ActNorm(nn.Module):
    """y = (x - b) * exp(-log_s) per channel, initialised on the first batch so y has zero mean, unit variance.
    log |det| = -H W sum(log_s)."""

    def __init__(self, channels: int):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.log_scale = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.register_buffer("initialized", torch.tensor(0, dtype=torch.uint8))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if not self.initialized and self.training:
            with torch.no_grad():
                self.bias.copy_(x.mean((0, 2, 3), keepdim=True))
                self.log_scale.copy_(x.std((0, 2, 3), keepdim=True).clamp(min=1e-3).log())
                self.initialized.fill_(1)
        y = (x - self.bias) * torch.exp(-self.log_scale)
        return y, (-self.log_scale.sum() * x.shape[2] * x.shape[3]).expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return y * torch.exp(self.log_scale) + self.bias


class InvConv1x1(nn.Module):
    """y = W x at every pixel, W an invertible C x C matrix (a random rotation at first). log |det| = H W log|det W|."""

    def __init__(self, channels: int):
        super().__init__()
        w = torch.randn(channels, channels)
        # (a model counted on the meta device skips the QR, which has no meta kernel)
        self.weight = nn.Parameter(w if w.is_meta else torch.linalg.qr(w)[0])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logdet = torch.linalg.slogdet(self.weight)[1] * x.shape[2] * x.shape[3]
        return F.conv2d(x, self.weight[:, :, None, None]), logdet.expand(len(x))

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        return F.conv2d(y, torch.linalg.inv(self.weight)[:, :, None, None])


class CouplingNet(nn.Module):
    """The coupling's s and t from the conditioning half (and the mask, so it knows which half it sees): 3x3 conv,
    ``blocks`` residual blocks, 3x3 conv to 2C outputs, the last layer zero-initialised (the coupling starts as the
    identity)."""

    def __init__(self, channels: int, hidden: int, blocks: int):
        super().__init__()
        self.inp = nn.Conv2d(2 * channels, hidden, 3, padding=1)
        self.blocks = nn.ModuleList(nn.Sequential(nn.GroupNorm(8 if hidden % 8 == 0 else 1, hidden), nn.ReLU(),
                                                  nn.Conv2d(hidden, hidden, 3, padding=1),
                                                  nn.GroupNorm(8 if hidden % 8 == 0 else 1, hidden), nn.ReLU(),
                                                  nn.Conv2d(hidden, hidden, 1)) for _ in range(blocks))
        self.out = nn.Conv2d(hidden, 2 * channels, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.inp(torch.cat([x * mask, mask.expand_as(x)], 1))
        for block in self.blocks:
            h = h + block(h)
        s, t = self.out(F.relu(h)).chunk(2, 1)
        return s, t


class AffineCoupling(nn.Module):
    """y = m * x + (1 - m) * (x * exp(s(m x)) + t(m x)): the masked half passes unchanged and conditions an affine
    map of the other half. log |det| = sum over the changed half of s; s = scale * tanh(raw) keeps it bounded."""

    def __init__(self, mask: torch.Tensor, hidden: int, blocks: int):
        super().__init__()
        self.register_buffer("mask", mask)
        self.net = CouplingNet(mask.shape[1], hidden, blocks)
        self.scale = nn.Parameter(torch.ones(1, mask.shape[1], 1, 1))

    def st(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raw, t = self.net(x, self.mask)
        keep = 1 - self.mask
        return self.scale * torch.tanh(raw) * keep, t * keep

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        s, t = self.st(x)
        return x * torch.exp(s) + t, s.flatten(1).sum(1)

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        s, t = self.st(y)  # the masked half of y is the masked half of x
        return (y - t) * torch.exp(-s)


class FlowStep(nn.Module):
    """Actnorm, a 1x1 convolution (if there are channels to mix), an affine coupling."""

    def __init__(self, mask: torch.Tensor, hidden: int, blocks: int, invconv: bool):
        super().__init__()
        c = mask.shape[1]
        self.layers = nn.ModuleList([ActNorm(c), *([InvConv1x1(c)] if invconv and c > 1 else []),
                                     AffineCoupling(mask, hidden, blocks)])

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        total = torch.zeros(len(x), device=x.device)
        for layer in self.layers:
            x, logdet = layer(x)
            total = total + logdet
        return x, total

    def inverse(self, y: torch.Tensor) -> torch.Tensor:
        for layer in reversed(self.layers):
            y = layer.inverse(y)
        return y


def _steps(c: int, h: int, kind: str, count: int, hidden: int, blocks: int, invconv: bool) -> nn.ModuleList:
    make = checkerboard if kind == "checkerboard" else channel_mask
    return nn.ModuleList(FlowStep(make(c, h, h, k % 2), hidden, blocks, invconv) for k in range(count))


@dataclass
class FlowConfig:
    family: str = "flow"
    dataset: str = "mnist"
    levels: int = 2  # multi-scale levels (squeeze, then factor out half); 0: one scale, checkerboard steps only
    steps: int = 4  # flow steps in each stage
    hidden: int = 64  # channels of the coupling networks
    blocks: int = 2  # residual blocks in each coupling network
    invconv: bool = True  # a learned 1x1 convolution before each coupling (Glow)
    alpha: float = 0.05  # the logit transform's margin: s = alpha + (1 - 2 alpha) y


class Flow(HubModel):
    """RealNVP/Glow-style flow on 1 x 28 x 28 images: exact ``log_prob`` of 8-bit images, ``encode``/``decode``
    (exact inverses), ``sample`` with a temperature."""

    config_class = FlowConfig
    store_fp16 = False  # an invertible network's log-determinants are sensitive to its weights' precision
    sampler_name = "flow, temperature 1"
    config_limits = {"levels": (0, 2), "steps": (1, 64), "hidden": (1, 1024), "blocks": (0, 16),
                     "alpha": (0, 0.49), "family": ("flow",), "dataset": DATASET_NAMES}

    def __init__(self, config: FlowConfig):
        super().__init__(config)
        c, h = 1, SIZE
        self.stages = nn.ModuleList()
        self.shapes: list[tuple[int, int, int]] = []  # the shape of each factored-out part, then of the last
        args = (config.hidden, config.blocks, config.invconv)
        for _ in range(config.levels):
            self.stages.append(_steps(c, h, "checkerboard", config.steps, *args))
            c, h = 4 * c, h // 2  # squeeze
            self.stages.append(_steps(c, h, "channel", config.steps, *args))
            self.shapes.append((c // 2, h, h))  # factored out
            c = c - c // 2
        self.stages.append(_steps(c, h, "checkerboard", config.steps, *args))
        self.shapes.append((c, h, h))

    def headline(self) -> str:
        c = self.config
        return f"normalizing flow, {c.levels} scale{'s' * (c.levels != 1)}, {c.steps} steps per stage"

    def describe(self) -> str:
        c = self.config
        scales = (f"{c.levels} levels: at each, {c.steps} steps with checkerboard masks, a squeeze (2 x 2 pixels "
                  f"into 4 channels), {c.steps} steps with channel masks, and half the channels factored out to "
                  f"the Gaussian; then {c.steps} checkerboard steps" if c.levels else
                  f"one scale: {c.steps} steps with alternating checkerboard masks")
        return (f"Normalizing flow (RealNVP with Glow's layers). Input: 8-bit images, uniformly dequantized and "
                f"logit-transformed (alpha = {c.alpha:g}). {scales}. Each step: actnorm, "
                f"{'an invertible 1x1 convolution, ' if c.invconv else ''}an affine coupling whose scale and "
                f"shift come from a convolutional network ({c.hidden} channels, {c.blocks} residual blocks) of the "
                f"unchanged half. Base distribution: standard Gaussian in 784 dimensions.")

    # --- the bijection ---------------------------------------------------------------------------------------
    def preprocess(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Images y in (0, 1) -> z0 = logit(alpha + (1 - 2 alpha) y), and log |dz0/dy| per image."""
        a = self.config.alpha
        s = a + (1 - 2 * a) * y
        logdet = (math.log(1 - 2 * a) - torch.log(s) - torch.log1p(-s)).flatten(1).sum(1)
        return torch.log(s) - torch.log1p(-s), logdet

    def flow_forward(self, z0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The layers: z0 (B, 1, 28, 28) -> z (B, 784), and log |det dz/dz0| per image."""
        x, total, parts = z0, torch.zeros(len(z0), device=z0.device), []
        stages = iter(self.stages)
        for _ in range(self.config.levels):
            for stage in (next(stages), None, next(stages)):
                if stage is None:
                    x = squeeze(x)
                    continue
                for step in stage:
                    x, logdet = step(x)
                    total = total + logdet
            half = x.shape[1] // 2
            parts.append(x[:, :half].flatten(1))
            x = x[:, half:]
        for step in next(stages):
            x, logdet = step(x)
            total = total + logdet
        parts.append(x.flatten(1))
        return torch.cat(parts, 1), total

    @torch.no_grad()
    def trace(self, y: torch.Tensor) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
        """One image's way through the flow, stage by stage: (what was done, the part still flowing (B, C, H, W),
        the log-determinant it added per image). The logit transform comes first; a factored-out half leaves with
        log-determinant 0; the log-determinants add up to ``flow_forward``'s plus the logit transform's."""
        x, pre = self.preprocess(y)
        out = [("logit transform", x, pre)]
        stages = iter(self.stages)

        def run(stage, label):
            nonlocal x
            for k, step in enumerate(stage):
                x, logdet = step(x)
                out.append((f"{label}, step {k + 1}", x, logdet))

        for level in range(self.config.levels):
            run(next(stages), f"scale {level + 1}: checkerboard coupling")
            x = squeeze(x)
            out.append((f"scale {level + 1}: squeeze", x, torch.zeros(len(x))))
            run(next(stages), f"scale {level + 1}: channel coupling")
            half = x.shape[1] // 2
            x = x[:, half:]
            out.append((f"scale {level + 1}: half the channels factored out", x, torch.zeros(len(x))))
        run(next(stages), "last scale: checkerboard coupling")
        return out

    def flow_inverse(self, z: torch.Tensor) -> torch.Tensor:
        sizes = [c * h * w for c, h, w in self.shapes]
        parts = [p.view(len(z), *shape) for p, shape in zip(z.split(sizes, 1), self.shapes, strict=True)]
        x = parts[-1]
        stages = list(self.stages)
        for step in reversed(stages[-1]):
            x = step.inverse(x)
        for level in reversed(range(self.config.levels)):
            x = torch.cat([parts[level], x], 1)
            for step in reversed(stages[2 * level + 1]):
                x = step.inverse(x)
            x = unsqueeze(x)
            for step in reversed(stages[2 * level]):
                x = step.inverse(x)
        return x

    def encode(self, y: torch.Tensor) -> torch.Tensor:
        """Images y in (0, 1), (B, 1, 28, 28) -> their codes z (B, 784): exactly what ``decode`` inverts."""
        return self.flow_forward(self.preprocess(y)[0])[0]

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        """Codes (B, 784) -> images in (0, 1) (the inverse of the logit transform and of every layer)."""
        a = self.config.alpha
        return (torch.sigmoid(self.flow_inverse(z)) - a) / (1 - 2 * a)

    # --- likelihood --------------------------------------------------------------------------------------------
    def log_prob(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """log P(x) in nats of 8-bit images x (values 0 to 255, (B, 1, 28, 28)), estimated with one uniform
        dequantization draw: log p(y) - 784 log 256 with y = (x + u) / 256, an unbiased estimate of a lower
        bound on the discrete log-likelihood. Bits per dimension: -log_prob / (784 ln 2)."""
        return sum(self.log_prob_terms(x, generator).values())

    def log_prob_terms(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The parts of ``log_prob`` per image, which it adds up: ``base`` (log N(z; 0, I) at the code),
        ``layers`` (the flow's log-determinants), ``logit`` (the logit transform's log-derivative) and
        ``dequantization`` (-784 log 256, from the density on [0, 1) to the probability of 8-bit values)."""
        u = torch.rand(x.shape, generator=generator).to(x.device)
        y = (x.float() + u) / 256
        z0, pre = self.preprocess(y)
        z, logdet = self.flow_forward(z0)
        return {"base": self.base_log_prob(z), "layers": logdet, "logit": pre,
                "dequantization": torch.full_like(pre, -z.shape[1] * math.log(256))}

    @staticmethod
    def base_log_prob(z: torch.Tensor) -> torch.Tensor:
        """log N(z; 0, I) per row of z (B, D)."""
        return -0.5 * (z.pow(2) + LOG2PI).sum(1)

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Bits per dimension of images in [0, 1] (rounded to their 8-bit values), the training objective."""
        return -self.log_prob((x * 255).round()).mean() / (x[0].numel() * math.log(2))

    def first_views(self) -> dict[str, dict[str, torch.Tensor]]:
        """The model zoo's 16 samples (decoding them takes about a second on a CPU)."""
        return self.samples_view()

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, temperature: float = 1.0) -> torch.Tensor:
        """n images in [0, 1]: codes from N(0, temperature^2 I), decoded."""
        z = temperature * torch.randn(n, SIZE * SIZE, generator=generator)
        device = next(self.parameters()).device
        return self.decode(z.to(device)).cpu().clamp(0, 1)
