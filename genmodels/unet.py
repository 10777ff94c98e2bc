"""A small U-Net for 28x28 images that predicts the noise eps in x_t (Ho et al. 2020, Appendix B, scaled down).

Three resolutions (28, 14, 7), one residual block per level on the way down and up with skip
connections, a middle block with self-attention at 7x7, a sinusoidal time embedding added in every
residual block, and an optional class embedding (index ``n_classes`` is the "no label" class used
for classifier-free guidance).
"""

import math

import torch
import torch.nn.functional as F
from torch import nn


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of integer timesteps (Vaswani et al. 2017, as in Ho et al.): (B,) -> (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = t.float()[:, None] * freqs[None]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def group_norm(channels: int) -> nn.GroupNorm:
    """GroupNorm with 8 groups, or the largest count below that divides ``channels``."""
    return nn.GroupNorm(math.gcd(8, channels), channels)


class ResidualBlock(nn.Module):
    """GroupNorm-SiLU-conv twice, with the (time + class) embedding added in between, plus a skip."""

    def __init__(self, c_in: int, c_out: int, emb_dim: int):
        super().__init__()
        self.norm1, self.conv1 = group_norm(c_in), nn.Conv2d(c_in, c_out, 3, padding=1)
        self.emb = nn.Linear(emb_dim, c_out)
        self.norm2, self.conv2 = group_norm(c_out), nn.Conv2d(c_out, c_out, 3, padding=1)
        self.skip = nn.Conv2d(c_in, c_out, 1) if c_in != c_out else nn.Identity()

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.emb(F.silu(emb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        return h + self.skip(x)


class SelfAttention(nn.Module):
    """Single-head self-attention over all positions of a feature map, with a residual connection."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.qkv = nn.Conv2d(channels, 3 * channels, 1)
        self.out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).flatten(2).chunk(3, dim=1)  # each (B, C, HW)
        attn = torch.softmax(q.transpose(1, 2) @ k / math.sqrt(c), dim=-1)  # (B, HW, HW)
        return x + self.out((v @ attn.transpose(1, 2)).view(b, c, h, w))


class UNet(nn.Module):
    """eps_theta(x_t, t[, y]) for images (B, C, 28, 28); ``channels`` are the widths at 28, 14 and 7."""

    def __init__(self, image_channels: int = 1, channels: tuple[int, int, int] = (32, 64, 64), n_classes: int = 0):
        super().__init__()
        if len(channels) != 3:
            raise ValueError("channels must list the U-Net widths at the three resolutions, e.g. [32, 64, 64]")
        c0, c1, c2 = channels
        emb = 4 * c0
        self.base = c0
        self.time_mlp = nn.Sequential(nn.Linear(c0, emb), nn.SiLU(), nn.Linear(emb, emb))
        self.class_emb = nn.Embedding(n_classes + 1, emb) if n_classes else None
        self.stem = nn.Conv2d(image_channels, c0, 3, padding=1)
        self.down0 = ResidualBlock(c0, c0, emb)
        self.pool0 = nn.Conv2d(c0, c0, 3, stride=2, padding=1)  # 28 -> 14
        self.down1 = ResidualBlock(c0, c1, emb)
        self.pool1 = nn.Conv2d(c1, c1, 3, stride=2, padding=1)  # 14 -> 7
        self.down2 = ResidualBlock(c1, c2, emb)
        self.mid1, self.mid_attn, self.mid2 = ResidualBlock(c2, c2, emb), SelfAttention(c2), ResidualBlock(c2, c2, emb)
        self.up2 = ResidualBlock(c2 + c2, c2, emb)
        self.unpool1 = nn.Conv2d(c2, c2, 3, padding=1)  # after nearest upsampling 7 -> 14
        self.up1 = ResidualBlock(c2 + c1, c1, emb)
        self.unpool0 = nn.Conv2d(c1, c1, 3, padding=1)  # 14 -> 28
        self.up0 = ResidualBlock(c1 + c0, c0, emb)
        self.out_norm, self.out = group_norm(c0), nn.Conv2d(c0, image_channels, 3, padding=1)

    def class_embedding(self, y: torch.Tensor) -> torch.Tensor:
        """The condition's embedding: class indices (B,) (``n_classes`` is the null class), or weights over the
        classes (B, n_classes), a condition between classes: the weighted sum of their embeddings. An embedding
        table is a linear layer on one-hot vectors, so mixing two one-hot vectors and mixing the two classes'
        embeddings are the same condition."""
        if y.is_floating_point():
            return y.to(self.class_emb.weight.dtype) @ self.class_emb.weight[: y.shape[-1]]
        return self.class_emb(y)

    def forward(self, x: torch.Tensor, t: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.time_mlp(timestep_embedding(t, self.base))
        if self.class_emb is not None:
            if y is None:  # unconditional: the null class
                y = torch.full((len(x),), self.class_emb.num_embeddings - 1, device=x.device)
            emb = emb + self.class_embedding(y)
        s0 = self.down0(self.stem(x), emb)
        s1 = self.down1(self.pool0(s0), emb)
        s2 = self.down2(self.pool1(s1), emb)
        h = self.mid2(self.mid_attn(self.mid1(s2, emb)), emb)
        h = self.up2(torch.cat([h, s2], 1), emb)
        h = self.up1(torch.cat([self.unpool1(F.interpolate(h, scale_factor=2.0)), s1], 1), emb)
        h = self.up0(torch.cat([self.unpool0(F.interpolate(h, scale_factor=2.0)), s0], 1), emb)
        return self.out(F.silu(self.out_norm(h)))
