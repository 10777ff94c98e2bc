"""A denoising diffusion probabilistic model (Ho et al. 2020) on 28x28 images, with DDIM sampling.

The network predicts the noise; the schedule, the samplers and the bound live in
:mod:`genmodels.schedule` and :mod:`genmodels.diffusion`. Images are in [0, 1] outside this class
and in [-1, 1] inside. Two copies of the U-Net are kept: ``unet``, trained, and ``ema``, its
exponential moving average, which samples (EMA weights give cleaner samples at no training cost).
"""

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from genmodels import diffusion
from genmodels.checkpoint import HubModel, view_key
from genmodels.data import DATASET_NAMES, DatasetNotFoundError, load_dataset
from genmodels.ema import AveragedUNet
from genmodels.schedule import SCHEDULES, NoiseSchedule
from genmodels.unet import UNet

METHODS = ("ddim", "dpm++")  # the fast samplers ``DDPM.sample`` offers beside the exact one
# The app's fast sampler, (method, steps, eta): DPM-Solver++(2M) with fresh noise at each of 20 steps draws better
# digits than DDIM with 50 (FID-MNIST against network evaluations: python -m train.sample_quality --curve).
APP_SAMPLER = ("dpm++", 20, 1.0)
# A class-conditional model's guidance weight w where none is given (pages, scores). Ho & Salimans find FID best at
# small w and class adherence rising with it; `python -m train.sample_quality --guidance-curve` measures both. On
# ddpm-conditional (1,000 samples, DPM-Solver++ 20 steps): w = 0 reads the asked class 97.1 %, FID-MNIST 28.3
# (floor 29.0); w = 0.1: 98.0 %, 31.3; w = 0.2: 99.5 %, 34.7; w = 1: 100 %, 67.7.
DEFAULT_GUIDANCE = 0.1
VIEW_SAMPLES = 8  # the samples of DDPM step by step's trajectory, and of each class on the conditional page
VIEW_STEPS = 100  # a trajectory is thinned to at most this many steps to be kept and shown
# The inpainting page's first task (its controls' defaults): test digit 7, the top 14 rows observed, six completions
# with DDIM (eta 1) on 50 steps, no resampling, seed 0.
INPAINTING_DEFAULT = {"index": 7, "kind": "top rows", "rows": 14, "fraction": None, "n": 6, "steps": 50,
                      "resample": 1, "seed": 0}


def sampler_name(steps: int | None, method: str = "ddim", eta: float = 0.0, T: int = 1000) -> str:
    """How pages and recorded scores name a sampler: "DDPM, 1000 steps" (all T) or "DDIM, 50 steps, eta 0"."""
    if steps is None:
        return f"DDPM, {T} steps"
    name = "DDIM" if method == "ddim" else "DPM-Solver++(2M)"
    return f"{name}, {steps} step{'s' * (steps != 1)}, eta {eta:g}"


@dataclass
class DDPMConfig:
    family: str = "ddpm"
    dataset: str = "mnist"
    image_channels: int = 1
    channels: list[int] = field(default_factory=lambda: [32, 64, 64])  # U-Net widths at 28, 14, 7
    T: int = 1000
    schedule: str = "linear"  # one of SCHEDULES
    n_classes: int = 0  # > 0: class-conditional, with a null class for classifier-free guidance
    p_uncond: float = 0.1  # conditional training: share of labels replaced by the null class
    ema_decay: float = 0.999


class DDPM(AveragedUNet, HubModel):
    """eps-prediction DDPM; ``sample`` runs DDIM (fast) or the exact ancestral sampler."""

    config_class = DDPMConfig
    config_limits = {"image_channels": (1, 4), "channels": (1, 1024), "T": (1, 10_000), "schedule": SCHEDULES,
                     "n_classes": (0, 1000), "p_uncond": (0, 1), "ema_decay": (0, 1), "family": ("ddpm",),
                     "dataset": DATASET_NAMES}

    def __init__(self, config: DDPMConfig):
        super().__init__(config)
        if config.schedule not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, not {config.schedule!r}")
        self.unet = UNet(config.image_channels, tuple(config.channels), config.n_classes)
        self.ema = copy.deepcopy(self.unet).requires_grad_(False)
        self.schedule = NoiseSchedule(config.T, config.schedule)

    def headline(self) -> str:
        c = self.config
        return f"{'conditional ' if c.n_classes else ''}DDPM, {c.schedule} schedule, T = {c.T}"

    def unused_fields(self) -> set[str]:
        return set() if self.config.n_classes else {"p_uncond"}

    def describe(self) -> str:
        c = self.config
        c0, c1, c2 = c.channels
        cond = (f" A learned embedding of the class ({c.n_classes} classes and a null class for classifier-free "
                f"guidance) is added to the time embedding." if c.n_classes else "")
        return (f"U-Net predicting the noise: residual blocks (GroupNorm, SiLU, 3x3 convolutions) at 28x28 "
                f"({c0} channels), 14x14 ({c1}) and 7x7 ({c2}), with skip connections, self-attention in the "
                f"7x7 middle block and a sinusoidal time embedding added in every block.{cond} "
                f"{c.schedule.capitalize()} noise schedule with T = {c.T} steps; samples use an exponential "
                f"moving average of the weights (decay {c.ema_decay}).")


    # --- training -----------------------------------------------------------------------
    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The simple loss of Ho et al. (eq. 14): E_{t, x_0, eps} |eps - eps_theta(x_t, t)|^2, x in [0, 1]."""
        x0 = 2 * x - 1
        t = torch.randint(0, self.config.T, (len(x0),), device=x0.device)
        noise = torch.randn_like(x0)
        if y is not None and self.config.p_uncond > 0:  # classifier-free guidance: learn p(x) too
            drop = torch.rand(len(y), device=y.device) < self.config.p_uncond
            y = torch.where(drop, torch.full_like(y, self.config.n_classes), y)
        return F.mse_loss(self.unet(self.schedule.q_sample(x0, t, noise), t, y), noise)



    # --- sampling -----------------------------------------------------------------------
    def eps_fn(self, y: torch.Tensor | None = None, guidance: float = 0.0):
        """The EMA network as a noise predictor (x_t, t) -> eps, with classifier-free guidance weight w:
        eps = (1 + w) eps(x_t, t, y) - w eps(x_t, t, null) (Ho & Salimans 2022). ``y``: class indices (B,), or
        weights over the classes (B, n_classes) for a condition between them (see ``UNet.class_embedding``)."""
        device = next(self.ema.parameters()).device
        labels = None if y is None else y.to(device)

        def net(x, t, c):
            return self.ema(x.to(device), t.to(device), c).to(x.device, x.dtype)

        def eps(x, t):  # the samplers keep their state and noise on the CPU; the network runs where it lives
            if labels is None or guidance == 0:
                return net(x, t, labels)
            null = torch.full((len(labels),), self.config.n_classes, dtype=torch.long, device=labels.device)
            return (1 + guidance) * net(x, t, labels) - guidance * net(x, t, null)
        return eps

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = 50, eta: float = 0.0,
               return_trajectory: bool = False, y: torch.Tensor | None = None, guidance: float = 0.0,
               callback=None, method: str = "ddim"):
        """n images in [0, 1]. ``steps=None`` runs the exact ancestral DDPM sampler over all T steps;
        a number runs ``method`` with that many steps (at most T: a model with T = 20 draws with 20 by default):
        ``"ddim"`` or ``"dpm++"`` (DPM-Solver++(2M), second order), each deterministic with ``eta`` = 0 and
        stochastic with 1.
        With ``return_trajectory`` the result is a
        :class:`~genmodels.diffusion.Trajectory` whose states and x_0 predictions are in image units
        ((x + 1) / 2, not clipped: noisy states leave [0, 1])."""
        shape = (n, self.config.image_channels, 28, 28)
        steps = None if steps is None else min(steps, self.config.T)
        return self._run(self.eps_fn(y, guidance), shape, generator, steps, eta, method=method,
                         return_trajectory=return_trajectory, callback=callback)

    # --- what the pages draw first (``python -m train.views`` stores it) --------------------------------------------
    def trajectory_view(self, seed: int, steps: int | None, method: str = "ddim", eta: float = 0.0,
                        callback=None) -> diffusion.Trajectory:
        """DDPM step by step's picture: VIEW_SAMPLES samples from ``seed`` with their every state, thinned to
        VIEW_STEPS steps (``steps=None``: the exact sampler)."""
        return self.sample(VIEW_SAMPLES, generator=torch.Generator().manual_seed(seed), steps=steps, method=method,
                           eta=eta, return_trajectory=True, callback=callback).thinned(VIEW_STEPS)

    def guided_sample(self, y: torch.Tensor, guidance: float, steps: int, seed: int, callback=None) -> torch.Tensor:
        """len(y) samples of a class-conditional model with condition ``y`` (classes, or weights over them) and
        guidance weight ``guidance``, the app's sampler (APP_SAMPLER) on ``steps`` (at most T), from ``seed``."""
        method, _, eta = APP_SAMPLER
        return self.sample(len(y), generator=torch.Generator().manual_seed(seed), steps=min(steps, self.config.T),
                           method=method, eta=eta, y=y, guidance=guidance, callback=callback)

    def class_rows(self, guidance: float, steps: int, seed: int, callback=None) -> torch.Tensor:
        """A class-conditional model's VIEW_SAMPLES samples of each class in turn (class k's are rows k *
        VIEW_SAMPLES on), each class from the same noise (``seed``): ``guided_sample`` for each class."""
        n = self.config.n_classes
        return torch.cat([self.guided_sample(torch.full((VIEW_SAMPLES,), k), guidance, steps, seed,
                                             None if callback is None else
                                             lambda i, total, k=k: callback(k * total + i, n * total))
                          for k in range(n)])

    def inpainting_view(self, images: torch.Tensor, index: int, kind: str, rows: int | None, fraction: float | None,
                        n: int, steps: int | None, resample: int, seed: int, callback=None) -> diffusion.Trajectory:
        """The inpainting page's picture: n completions (``inpaint``, thinned to VIEW_STEPS steps) of the task
        ``inpainting_task`` makes of test image ``index`` of ``images``, with ``steps`` DDIM steps (None: the exact
        sampler) and RePaint's ``resample``."""
        x, mask = inpainting_task(images, index, kind, rows, fraction, n, seed)
        return self.inpaint(x, mask, generator=torch.Generator().manual_seed(seed), steps=steps, resample=resample,
                            return_trajectory=True, callback=callback).thinned(VIEW_STEPS)

    def first_views(self) -> dict[str, dict[str, torch.Tensor]]:
        """With the app's sampler from seed 0: an unconditional model's trajectory (DDPM step by step) and its
        completions of the inpainting page's first task (if its test set is at hand), a conditional one's rows of
        every class at the default guidance (the conditional page)."""
        method, steps, eta = APP_SAMPLER
        steps = min(steps, self.config.T)
        if self.config.n_classes:
            return {class_rows_key(DEFAULT_GUIDANCE, steps, 0): {"images": self.class_rows(DEFAULT_GUIDANCE, steps, 0)}}
        views = {trajectory_key(0, steps, method, eta): self.trajectory_view(0, steps, method, eta).tensors()}
        try:
            images = load_dataset(self.config.dataset, train=False).images
        except DatasetNotFoundError:
            return views
        task = {**INPAINTING_DEFAULT, "steps": min(INPAINTING_DEFAULT["steps"], self.config.T)}
        views[inpainting_key(**task)] = self.inpainting_view(images, **task).tensors()
        return views

    def stored_inpainting(self, **task) -> diffusion.Trajectory | None:
        """``inpainting_view``'s trajectory for ``task`` (its settings but the images) as views.safetensors holds
        it, or None (not stored, or not n completions of this model's shape)."""
        return self._stored_trajectory(inpainting_key(**task), task["n"])

    def stored_trajectory(self, seed: int, steps: int | None, method: str, eta: float) -> diffusion.Trajectory | None:
        """``trajectory_view`` of these settings as views.safetensors holds it, or None (not stored, or not a
        trajectory of VIEW_SAMPLES images of this model's shape)."""
        return self._stored_trajectory(trajectory_key(seed, steps, method, eta), VIEW_SAMPLES)

    def _stored_trajectory(self, key: str, n: int) -> diffusion.Trajectory | None:
        stored = self.stored_view(key)
        try:
            found = None if stored is None else diffusion.Trajectory.from_tensors(
                stored, self.config.T, (self.config.image_channels, 28, 28))
        except ValueError:
            return None
        return found if found is not None and found.xs.shape[1] == n else None

    def stored_class_rows(self, guidance: float, steps: int, seed: int) -> torch.Tensor | None:
        """``class_rows`` of these settings as views.safetensors holds it, or None (not stored, or not images of
        every class in [0, 1])."""
        return self.stored_images(class_rows_key(guidance, steps, seed), self.config.n_classes * VIEW_SAMPLES)

    @torch.no_grad()
    def inpaint(self, x: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | None = None,
                steps: int | None = None, resample: int = 1, return_trajectory: bool = False, callback=None):
        """Fill the pixels of x (in [0, 1]) where ``mask`` is False; observed pixels come back exactly.

        ``steps=None`` runs the exact ancestral sampler over all T steps, a number runs DDIM (eta = 1,
        so fresh noise still enters at every step) on that many."""
        return self._run(self.eps_fn(), x.shape, generator, steps, 1.0, known=(2 * x - 1, mask), resample=resample,
                         return_trajectory=return_trajectory, callback=callback)

    def _run(self, eps, shape: tuple, generator, steps: int | None, eta: float, method: str = "ddim", **kwargs):
        """The exact ancestral sampler (``steps=None``), or ``method`` on ``steps`` steps, in image units."""
        if method not in METHODS:
            raise ValueError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
        if steps is None:
            return _to_images(diffusion.ddpm_sample(eps, self.schedule, shape, generator, **kwargs))
        if method == "dpm++":  # no inpainting: it takes neither ``known`` nor ``resample``
            return _to_images(diffusion.dpm_solver_sample(eps, self.schedule, shape, steps, eta=eta,
                                                          generator=generator, **kwargs))
        return _to_images(diffusion.ddim_sample(eps, self.schedule, shape, steps, eta, generator, **kwargs))

    @torch.no_grad()
    def bits_per_dim(self, x: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """The variational bound on 8-bit images x in [0, 1], term by term, and in bits per dimension."""
        x0 = (x * 255).round() / 127.5 - 1
        return diffusion.variational_bound(self.eps_fn(), self.schedule, x0, generator)


def trajectory_key(seed: int, steps: int | None, method: str, eta: float) -> str:
    """The name of ``DDPM.trajectory_view(seed, steps, method, eta)`` among stored views."""
    return view_key("trajectory", seed=seed, steps=-1 if steps is None else steps, method=method, eta=eta)


def inpainting_task(images: torch.Tensor, index: int, kind: str, rows: int | None, fraction: float | None, n: int,
                    seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Test image ``index`` of ``images`` repeated n times, and the mask of what is observed (True): ``kind`` one of
    ``diffusion.MASKS``, with ``rows`` observed rows or a ``fraction`` of random pixels (drawn from ``seed``)."""
    x = images[index: index + 1].repeat(n, 1, 1, 1)
    mask = diffusion.make_mask(kind, 1, rows=rows or 14, fraction=fraction or 0.5,
                               generator=torch.Generator().manual_seed(seed)).repeat(n, 1, 1, 1)
    return x, mask


def inpainting_key(index: int, kind: str, rows: int | None, fraction: float | None, n: int, steps: int | None,
                   resample: int, seed: int) -> str:
    """The name of ``DDPM.inpainting_view``'s trajectory for these settings among stored views."""
    return view_key("inpainting", index=index, kind=kind, rows=rows, fraction=fraction, n=n,
                    steps=-1 if steps is None else steps, resample=resample, seed=seed)


def class_rows_key(guidance: float, steps: int, seed: int) -> str:
    """The name of ``DDPM.class_rows(guidance, steps, seed)`` among stored views."""
    return view_key("class_rows", guidance=guidance, steps=steps, seed=seed)


def _to_images(out):
    if isinstance(out, diffusion.Trajectory):
        return diffusion.Trajectory(out.timesteps, (out.xs + 1) / 2, (out.x0_preds + 1) / 2, out.eps_preds)
    return ((out + 1) / 2).clamp(0, 1)
