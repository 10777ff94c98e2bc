"""Image distortions with a strength, for autoencoders that learn to restore (the Graz topic AutoEnc).

Each distortion is a small object called as ``distortion(x, strength, generator)`` on a batch of images
(B, C, 28, 28) in [0, 1]; it returns a distorted batch of the same shape, still in [0, 1]. ``strength``
is one number in [0, 1] or one per image, a (B,) tensor: 0 leaves the image as it is, 1 is the most
this distortion does. The random parts (where the patch goes, which way the image turns) are drawn
from ``generator`` (the global torch generator if None), so a seeded call is repeatable.

- ``GaussianNoise``: x + s * sigma * eps, clipped to [0, 1].
- ``Occlusion``: a square patch of side s * max_side at a random place, set to 0.
- ``Brightness``: x + s * shift, one random sign per image, clipped: the image gets brighter or darker.
- ``Rotation``: a turn by an angle drawn uniformly from [-s * max_degrees, s * max_degrees].
- ``Flip``: a mirror image (left-right or upside down) with probability s.
- ``Mix``: each image gets one of the others, chosen at random.
"""

import math

import torch
import torch.nn.functional as F


def _per_image(strength: float | torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """The strength as a (B,) tensor in [0, 1]."""
    s = torch.as_tensor(strength, dtype=x.dtype, device=x.device)
    s = s.expand(len(x)) if s.dim() == 0 else s
    if s.shape != (len(x),):
        raise ValueError(f"strength must be one number or one per image ({len(x)}), not shape {tuple(s.shape)}")
    if bool(((s < 0) | (s > 1)).any()):
        raise ValueError("strength must lie in [0, 1]")
    return s


def _uniform(n: int, generator: torch.Generator | None, device) -> torch.Tensor:
    return torch.rand(n, generator=generator).to(device)


class Distortion:
    """What every distortion has: a name for the CLI and the pages, a line saying what strength 1 is."""

    name: str = ""
    title: str = ""

    def __call__(self, x: torch.Tensor, strength: float | torch.Tensor = 1.0,
                 generator: torch.Generator | None = None) -> torch.Tensor:
        return self.apply(x, _per_image(strength, x), generator)

    def apply(self, x: torch.Tensor, s: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        raise NotImplementedError

    def describe(self) -> str:
        raise NotImplementedError


class GaussianNoise(Distortion):
    name, title = "noise", "Gaussian noise"

    def __init__(self, sigma: float = 0.5):
        self.sigma = sigma

    def apply(self, x, s, generator):
        eps = torch.randn(x.shape, generator=generator).to(x.device)
        return (x + s.view(-1, 1, 1, 1) * self.sigma * eps).clamp(0, 1)

    def describe(self) -> str:
        return f"x + s * {self.sigma:g} * eps with eps ~ N(0, I), clipped to [0, 1]"


class Occlusion(Distortion):
    name, title = "occlusion", "Square patch"

    def __init__(self, max_side: int = 16):
        self.max_side = max_side

    def apply(self, x, s, generator):
        h, w = x.shape[-2:]
        side = torch.round(s * self.max_side).long()
        # The patch's top-left corner, uniform over the places where it fits whole.
        top = (_uniform(len(x), generator, x.device) * (h - side + 1)).long()
        left = (_uniform(len(x), generator, x.device) * (w - side + 1)).long()
        rows = torch.arange(h, device=x.device).view(1, h, 1)
        cols = torch.arange(w, device=x.device).view(1, 1, w)
        inside = ((rows >= top.view(-1, 1, 1)) & (rows < (top + side).view(-1, 1, 1))
                  & (cols >= left.view(-1, 1, 1)) & (cols < (left + side).view(-1, 1, 1)))
        return x.masked_fill(inside.unsqueeze(1), 0.0)

    def describe(self) -> str:
        return f"a black square of side s * {self.max_side} pixels, anywhere it fits"


class Brightness(Distortion):
    name, title = "brightness", "Brightness"

    def __init__(self, max_shift: float = 0.5):
        self.max_shift = max_shift

    def apply(self, x, s, generator):
        sign = torch.where(_uniform(len(x), generator, x.device) < 0.5, -1.0, 1.0).to(x.dtype)
        return (x + (sign * s * self.max_shift).view(-1, 1, 1, 1)).clamp(0, 1)

    def describe(self) -> str:
        return f"every pixel plus or minus s * {self.max_shift:g} (one sign per image), clipped to [0, 1]"


class Rotation(Distortion):
    name, title = "rotation", "Rotation"

    def __init__(self, max_degrees: float = 60.0):
        self.max_degrees = max_degrees

    def apply(self, x, s, generator):
        u = _uniform(len(x), generator, x.device) * 2 - 1
        angle = (u * s * self.max_degrees).to(x.dtype) * (math.pi / 180)
        cos, sin, zero = angle.cos(), angle.sin(), torch.zeros_like(angle)
        # The affine map from output to input coordinates (about the centre), as grid_sample wants it.
        theta = torch.stack([torch.stack([cos, -sin, zero], -1), torch.stack([sin, cos, zero], -1)], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False).clamp(0, 1)

    def describe(self) -> str:
        m = f"{self.max_degrees:g}"
        return f"a turn about the centre by an angle uniform in [-s * {m}, s * {m}] degrees"


class Flip(Distortion):
    def __init__(self, axis: str):
        if axis not in ("horizontal", "vertical"):
            raise ValueError(f"axis must be 'horizontal' or 'vertical', not {axis!r}")
        self.axis = axis
        self.name = "hflip" if axis == "horizontal" else "vflip"
        self.title = "Left-right flip" if axis == "horizontal" else "Upside-down flip"

    def apply(self, x, s, generator):
        flip = (_uniform(len(x), generator, x.device) < s).view(-1, 1, 1, 1)
        return torch.where(flip, x.flip(-1 if self.axis == "horizontal" else -2), x)

    def describe(self) -> str:
        what = "left to right" if self.axis == "horizontal" else "upside down"
        return f"mirrored {what} with probability s"


class Mix(Distortion):
    name, title = "mix", "Mix of all"

    def __init__(self, parts: list[Distortion]):
        self.parts = parts

    def apply(self, x, s, generator):
        choice = (_uniform(len(x), generator, x.device) * len(self.parts)).long()
        out = x.clone()
        for k, part in enumerate(self.parts):
            chosen = choice == k
            if bool(chosen.any()):
                out[chosen] = part.apply(x[chosen], s[chosen], generator)
        return out

    def describe(self) -> str:
        return "each image gets one of the " + str(len(self.parts)) + " others, chosen uniformly"


SINGLE = (GaussianNoise(), Occlusion(), Brightness(), Rotation(), Flip("horizontal"), Flip("vertical"))
DISTORTIONS: dict[str, Distortion] = {d.name: d for d in (*SINGLE, Mix(list(SINGLE)))}
NAMES = ("none", *DISTORTIONS)  # what an autoencoder's config may say it was trained on


def distortion(name: str) -> Distortion:
    """The distortion called ``name``; ValueError names the known ones."""
    if name not in DISTORTIONS:
        raise ValueError(f"unknown distortion {name!r}; choose one of {', '.join(DISTORTIONS)}")
    return DISTORTIONS[name]
