"""Diffusion math that does not depend on the network: samplers, inpainting and the variational bound.

Every function takes ``eps_fn(x_t, t) -> eps``, a noise predictor for a batch at integer timesteps
``t`` (B,), and a :class:`~genmodels.schedule.NoiseSchedule`. The U-Net is one such predictor; the
tests use an exact one for Gaussian data. Images live in [-1, 1] here (the DDPM model rescales).
Each sampler takes a ``torch.Generator`` so that a seed reproduces a picture, and can return every
intermediate state, because showing every step is the point.
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from genmodels.schedule import NoiseSchedule

EpsFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
MASKS = ("left half", "right half", "top rows", "bottom rows", "centre square", "random pixels")


@dataclass
class Trajectory:
    """States of one sampling run: ``xs[i]`` is the state at ``timesteps[i]`` (x_T first, x_0 last,
    so ``xs`` has one more entry than ``timesteps``), with the network's predictions of x_0 and
    eps made at each step."""

    timesteps: list[int]
    xs: torch.Tensor  # (S + 1, B, C, H, W)
    x0_preds: torch.Tensor  # (S, B, C, H, W)
    eps_preds: torch.Tensor  # (S, B, C, H, W)

    def thinned(self, steps: int) -> "Trajectory":
        """At most ``steps`` evenly spaced steps of this one (the first and the last kept), and the final
        state: 1000 DDPM steps are too many to keep or to show, 100 of them are not."""
        n = len(self.timesteps)
        if n <= steps:
            return self
        keep = sorted({round(v) for v in torch.linspace(0, n - 1, steps).tolist()})
        return Trajectory([self.timesteps[i] for i in keep], torch.cat([self.xs[keep], self.xs[-1:]]),
                          self.x0_preds[keep], self.eps_preds[keep])

    def index_of(self, t: int) -> int:
        """The step whose timestep is nearest to ``t``."""
        return min(range(len(self.timesteps)), key=lambda i: abs(self.timesteps[i] - t))

    def spread(self, k: int) -> list[int]:
        """The steps nearest to k timesteps evenly spaced from the first (noise) to t = 0: a film strip."""
        return [self.index_of(round(v)) for v in torch.linspace(self.timesteps[0], 0, k).tolist()]

    def tensors(self) -> dict[str, torch.Tensor]:
        """The trajectory as named tensors (to store it with ``genmodels.checkpoint.save_views``)."""
        return {"timesteps": torch.tensor(self.timesteps, dtype=torch.int64), "xs": self.xs,
                "x0_preds": self.x0_preds, "eps_preds": self.eps_preds}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], T: int, image_shape: tuple[int, ...]) -> "Trajectory":
        """The trajectory ``tensors`` holds, checked against a model with T steps and images of ``image_shape``
        (C, H, W): timesteps falling from below T to 0, one more state than steps, batches of images. Raises
        ValueError for anything else (a stored file is not trusted)."""
        if set(tensors) != {"timesteps", "xs", "x0_preds", "eps_preds"}:
            raise ValueError(f"tensors {sorted(tensors)[:4]}, not timesteps, xs, x0_preds and eps_preds")
        t = tensors["timesteps"]
        if t.dtype != torch.int64 or t.dim() != 1 or len(t) == 0 or int(t[0]) >= T or int(t[-1]) != 0 \
                or (len(t) > 1 and not bool((t[1:] < t[:-1]).all())):
            raise ValueError(f"timesteps not falling from below T = {T} to 0")
        S, xs = len(t), tensors["xs"]
        if xs.dim() != 5 or tuple(xs.shape[2:]) != tuple(image_shape) or len(xs) != S + 1 or not len(xs[0]):
            raise ValueError(f"states of shape {list(xs.shape)}, not ({S + 1}, batch, *{list(image_shape)})")
        if any(tensors[k].shape != (S, *xs.shape[1:]) for k in ("x0_preds", "eps_preds")):
            raise ValueError("predictions of another shape than the states")
        if not all(tensors[k].is_floating_point() for k in ("xs", "x0_preds", "eps_preds")):
            raise ValueError("states or predictions that are not floating point")
        return cls(t.tolist(), tensors["xs"], tensors["x0_preds"], tensors["eps_preds"])


def _batch_t(t: int, x: torch.Tensor) -> torch.Tensor:
    return torch.full((len(x),), t, device=x.device, dtype=torch.long)


def ddpm_sample(eps_fn: EpsFn, schedule: NoiseSchedule, shape: tuple, generator: torch.Generator | None = None,
                clip: bool = True, known: tuple[torch.Tensor, torch.Tensor] | None = None, resample: int = 1,
                return_trajectory: bool = False, callback: Callable[[int, int], None] | None = None):
    """Ancestral sampling, Algorithm 2 of Ho et al. (2020), with sigma_t^2 = beta_tilde_t:

        x_{t-1} = mu_tilde_t(x_t, x0_hat) + sigma_t z,   x0_hat = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t)

    (the same as the paper's 1/sqrt(alpha_t) (x_t - beta_t / sqrt(1 - alpha_bar_t) eps) + sigma_t z when
    x0_hat is not clipped; ``clip`` keeps x0_hat in [-1, 1], as Ho et al.'s code does).

    Inpainting: ``known = (x0, mask)`` with mask True where pixels are observed. After each step the
    observed pixels are replaced by the observation noised to that step, q(x_{t-1} | x_0), and at the
    end by the observation itself. ``resample > 1`` is RePaint (Lugmayr et al. 2022): each step is
    repeated, going back to x_t with fresh noise, q(x_t | x_{t-1}), so the unknown region can adjust
    to the known one.
    """
    x = torch.randn(shape, generator=generator)
    steps = list(reversed(range(schedule.T)))
    record = _Recorder(x, return_trajectory)
    for i, t in enumerate(steps):
        tt = _batch_t(t, x)
        for r in range(resample if t > 0 else 1):
            eps = eps_fn(x, tt)
            x0_hat = schedule.predict_x0(x, tt, eps)
            if clip:
                x0_hat = x0_hat.clamp(-1, 1)
            mean, log_var = schedule.q_posterior(x0_hat, x, tt)
            noise = torch.randn(shape, generator=generator)
            x_prev = mean + (t > 0) * (0.5 * log_var).exp() * noise
            if known is not None:
                x_prev = _replace_known(x_prev, known, schedule, t - 1, generator)
            if r < resample - 1:  # RePaint: back to x_t, q(x_t | x_{t-1})
                beta = schedule.betas[t]
                x = (1 - beta).sqrt() * x_prev + beta.sqrt() * torch.randn(shape, generator=generator)
        x = x_prev
        record(x, x0_hat, eps)
        if callback:
            callback(i + 1, len(steps))
    return record.result(steps) if return_trajectory else x


def ddim_timesteps(T: int, steps: int) -> list[int]:
    """``steps`` timesteps evenly spread over T-1 .. 0, descending (the DDIM sub-sequence tau). Always starts at
    T - 1, where x_T is pure noise: one step goes from there straight to the network's estimate of x_0."""
    if not 1 <= steps <= T:
        raise ValueError(f"steps must be between 1 and T = {T}, not {steps}")
    return sorted({round(v) for v in torch.linspace(T - 1, 0, steps).tolist()}, reverse=True)


def ddim_sample(eps_fn: EpsFn, schedule: NoiseSchedule, shape: tuple, steps: int = 50, eta: float = 0.0,
                generator: torch.Generator | None = None, clip: bool = True,
                known: tuple[torch.Tensor, torch.Tensor] | None = None, resample: int = 1,
                return_trajectory: bool = False, callback: Callable[[int, int], None] | None = None):
    """DDIM (Song et al. 2021, eq. 12) on a sub-sequence of ``steps`` timesteps:

        x_prev = sqrt(alpha_bar_prev) x0_hat + sqrt(1 - alpha_bar_prev - sigma^2) eps + sigma z,
        sigma = eta sqrt((1 - alpha_bar_prev) / (1 - alpha_bar_t)) sqrt(1 - alpha_bar_t / alpha_bar_prev).

    eta = 0 is deterministic given x_T; eta = 1 with all T steps is the DDPM sampler.

    ``known`` and ``resample`` inpaint as in :func:`ddpm_sample`, on the shorter sub-sequence: after each
    step the observed pixels are replaced by the observation noised to the new step, and RePaint goes
    back from x_prev to x_t with q(x_t | x_prev) = N(sqrt(alpha_bar_t / alpha_bar_prev) x_prev,
    (1 - alpha_bar_t / alpha_bar_prev) I).
    """
    ts = ddim_timesteps(schedule.T, steps)
    x = torch.randn(shape, generator=generator)
    record = _Recorder(x, return_trajectory)
    for i, t in enumerate(ts):
        tt = _batch_t(t, x)
        t_prev = ts[i + 1] if i + 1 < len(ts) else -1
        ab = schedule.alpha_bars[t]
        ab_prev = schedule.alpha_bars[t_prev] if t_prev >= 0 else torch.tensor(1.0)
        for r in range(resample if t_prev >= 0 else 1):
            eps = eps_fn(x, tt)
            x0_hat = (x - (1 - ab).sqrt() * eps) / ab.sqrt()
            if clip:
                x0_hat = x0_hat.clamp(-1, 1)
                eps = (x - ab.sqrt() * x0_hat) / (1 - ab).sqrt()  # the noise consistent with the clipped x0
            sigma = eta * ((1 - ab_prev) / (1 - ab)).sqrt() * (1 - ab / ab_prev).sqrt()
            noise = torch.randn(shape, generator=generator)
            x_prev = ab_prev.sqrt() * x0_hat + (1 - ab_prev - sigma**2).clamp(min=0).sqrt() * eps + sigma * noise
            if known is not None:
                x_prev = _replace_known(x_prev, known, schedule, t_prev, generator)
            if r < resample - 1:  # RePaint: back to x_t, q(x_t | x_prev)
                ratio = ab / ab_prev
                x = ratio.sqrt() * x_prev + (1 - ratio).sqrt() * torch.randn(shape, generator=generator)
        x = x_prev
        record(x, x0_hat, eps)
        if callback:
            callback(i + 1, len(ts))
    return record.result(ts) if return_trajectory else x


def logsnr_timesteps(schedule: NoiseSchedule, steps: int, lowest: float = -5.0) -> list[int]:
    """``steps`` timesteps (fewer where two round to the same t) from T - 1 to 0, descending, evenly spread in
    lambda_t = log(alpha_t / sigma_t), half the log signal-to-noise ratio, rather than in t: the spacing
    DPM-Solver recommends for small images. Evenly spaced t would spend the last, longest step in lambda on
    the fine detail near t = 0, where a second-order step overshoots.

    The spread starts at ``lowest`` (signal-to-noise ratio e^-10, where x_t is noise to five decimals) when
    lambda_{T-1} is lower: the cosine schedule's last steps reach e^-20 and steps spent there would be wasted.
    The first timestep is always T - 1, where sampling starts from pure noise."""
    if not 1 <= steps <= schedule.T:
        raise ValueError(f"steps must be between 1 and T = {schedule.T}, not {steps}")
    lam = 0.5 * (schedule.alpha_bars.log() - (1 - schedule.alpha_bars).log())  # decreasing in t
    targets = torch.linspace(max(lam[-1].item(), lowest), lam[0].item(), steps)
    ts = [int((lam - v).abs().argmin()) for v in targets]
    return sorted({schedule.T - 1, *ts[1:]}, reverse=True) if steps > 1 else [schedule.T - 1]


def dpm_solver_sample(eps_fn: EpsFn, schedule: NoiseSchedule, shape: tuple, steps: int = 20, order: int = 2,
                      eta: float = 0.0, generator: torch.Generator | None = None, clip: bool = True,
                      return_trajectory: bool = False, callback: Callable[[int, int], None] | None = None,
                      timesteps: list[int] | None = None):
    """DPM-Solver++(2M) (Lu et al. 2022, Algorithm 2; with ``eta`` = 1 its stochastic version, SDE-DPM-Solver++(2M))
    on ``steps`` timesteps evenly spread in lambda (:func:`logsnr_timesteps`), or on ``timesteps`` if given.

    It works with the network's estimate of x_0 in lambda_t = log(alpha_t / sigma_t), half the log signal-to-noise
    ratio, where alpha_t = sqrt(alpha_bar_t) and sigma_t = sqrt(1 - alpha_bar_t). From t to the next timestep s,
    with h = lambda_s - lambda_t and z ~ N(0, I):

        x_s = (sigma_s / sigma_t) exp(-eta h) x_t + alpha_s (1 - exp(-(1 + eta) h)) D
              + sigma_s sqrt(1 - exp(-2 eta h)) z

    which is exact if the estimate of x_0 stays constant over the step. eta = 0 solves the probability-flow ODE
    (with D = x0_hat it *is* DDIM with eta = 0, ``order=1``); eta = 1 solves the reverse SDE (with D = x0_hat it is
    DDIM with eta = 1: the DDPM step q(x_s | x_t, x0_hat)). The second-order multistep method takes the slope of
    x0_hat along lambda from the step before (no extra network evaluation: the last one is remembered),
    with r = h_before / h:

        D = x0_hat_t + (x0_hat_t - x0_hat_before) / (2 r).

    The first step has no estimate before it and the last, to the clean image (sigma = 0, h infinite), needs
    none: both are first order, so x_0 is the last estimate, as in DDIM. ``clip`` keeps x0_hat in [-1, 1].
    """
    if order not in (1, 2):
        raise ValueError(f"order must be 1 or 2, not {order}")
    ts = logsnr_timesteps(schedule, steps) if timesteps is None else list(timesteps)
    alpha = schedule.alpha_bars.sqrt()
    sigma = (1 - schedule.alpha_bars).sqrt()
    lam = alpha.log() - sigma.log()
    x = torch.randn(shape, generator=generator)
    record = _Recorder(x, return_trajectory)
    before = None  # (x0_hat, h) of the step before
    for i, t in enumerate(ts):
        eps = eps_fn(x, _batch_t(t, x))
        x0_hat = (x - sigma[t] * eps) / alpha[t]
        if clip:
            x0_hat = x0_hat.clamp(-1, 1)
            eps = (x - alpha[t] * x0_hat) / sigma[t]  # the noise consistent with the clipped x0
        if i + 1 == len(ts):
            x_next, h = x0_hat, None
        else:
            s = ts[i + 1]
            h = lam[s] - lam[t]
            d = x0_hat
            if order == 2 and before is not None:
                d = x0_hat + (x0_hat - before[0]) * h / (2 * before[1])
            x_next = sigma[s] / sigma[t] * (-eta * h).exp() * x - alpha[s] * torch.expm1(-(1 + eta) * h) * d
            if eta > 0:
                noise = torch.randn(shape, generator=generator)
                x_next = x_next + sigma[s] * (-torch.expm1(-2 * eta * h)).sqrt() * noise
        before = (x0_hat, h)
        x = x_next
        record(x, x0_hat, eps)
        if callback:
            callback(i + 1, len(ts))
    return record.result(ts) if return_trajectory else x


class _Recorder:
    """Collects states for a Trajectory only when asked, so plain sampling keeps no history."""

    def __init__(self, x: torch.Tensor, keep: bool):
        self.keep = keep
        self.xs, self.x0s, self.epss = ([x.clone()] if keep else []), [], []

    def __call__(self, x, x0, eps):
        if self.keep:
            self.xs.append(x.clone())
            self.x0s.append(x0.clone())
            self.epss.append(eps.clone())

    def result(self, timesteps: list[int]) -> Trajectory:
        return Trajectory(list(timesteps), torch.stack(self.xs), torch.stack(self.x0s), torch.stack(self.epss))


def _replace_known(x_prev, known, schedule: NoiseSchedule, t_prev: int, generator) -> torch.Tensor:
    """Put the observation, noised to step t_prev (or clean at the end), into the known pixels."""
    x0, mask = known
    if t_prev < 0:
        observed = x0
    else:
        observed = schedule.q_sample(x0, _batch_t(t_prev, x0), torch.randn(x0.shape, generator=generator))
    return torch.where(mask, observed, x_prev)


def make_mask(kind: str, n: int, size: int = 28, fraction: float = 0.5, rows: int = 14,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Observed-pixel masks (n, 1, size, size), True where the pixel is known.

    ``rows`` is how many rows are known for "top rows" / "bottom rows" (the rest is to fill in),
    ``fraction`` the share of known pixels for "random pixels"; "centre square" hides the middle half.
    """
    mask = torch.zeros(n, 1, size, size, dtype=torch.bool)
    half, q = size // 2, size // 4
    if kind == "left half":
        mask[..., :half] = True
    elif kind == "right half":
        mask[..., half:] = True
    elif kind == "top rows":
        mask[..., :rows, :] = True
    elif kind == "bottom rows":
        mask[..., size - rows:, :] = True
    elif kind == "centre square":
        mask[:] = True
        mask[..., q:size - q, q:size - q] = False
    elif kind == "random pixels":
        mask = torch.rand(n, 1, size, size, generator=generator) < fraction
    else:
        raise ValueError(f"unknown mask {kind!r}; choose one of {MASKS}")
    return mask


def gaussian_kl(mean_q, log_var_q, mean_p, log_var_p) -> torch.Tensor:
    """KL(N(mean_q, var_q) || N(mean_p, var_p)) elementwise, in nats."""
    return 0.5 * (log_var_p - log_var_q + (log_var_q.exp() + (mean_q - mean_p) ** 2) / log_var_p.exp() - 1)


def discretized_gaussian_log_likelihood(x: torch.Tensor, mean: torch.Tensor, log_var: torch.Tensor) -> torch.Tensor:
    """log p(x) of 8-bit data x in [-1, 1] under N(mean, var) integrated over each pixel's bin (Ho et al. eq. 13).

    Bins have width 2/255; the first and last extend to -inf and +inf. Elementwise, in nats.
    """
    std = (0.5 * log_var).exp()
    upper = torch.where(x > 0.999, torch.ones_like(x), torch.special.ndtr((x + 1 / 255 - mean) / std))
    lower = torch.where(x < -0.999, torch.zeros_like(x), torch.special.ndtr((x - 1 / 255 - mean) / std))
    return torch.log((upper - lower).clamp(min=1e-12))


@torch.no_grad()
def variational_bound(eps_fn: EpsFn, schedule: NoiseSchedule, x0: torch.Tensor,
                      generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
    """The DDPM negative ELBO of 8-bit images x0 in [-1, 1], term by term (Ho et al. eq. 5), in nats per image:

        L = L_T + sum_{t=2}^{T} L_{t-1} + L_0
        L_T     = KL(q(x_T | x_0) || N(0, I))
        L_{t-1} = KL(q(x_{t-1} | x_t, x_0) || p(x_{t-1} | x_t)),  x_t ~ q(x_t | x_0)
        L_0     = -log p(x_0 | x_1)   (discretized Gaussian decoder)

    p(x_{t-1} | x_t) = N(mu_tilde(x_t, x0_hat), beta_tilde_t) with x0_hat from the predicted noise.
    Each term's x_t is drawn independently, so the sum is an unbiased estimate of L. Returns
    ``prior`` (B,), ``terms`` (T, B) with terms[t] the paper's L_t for t >= 1 and terms[0] = L_0,
    ``total`` (B,) and ``bits_per_dim`` (B,).
    """
    b = len(x0)
    dims = x0[0].numel()
    ab_last = schedule.alpha_bars[-1]
    prior = gaussian_kl(ab_last.sqrt() * x0, torch.log(1 - ab_last).expand_as(x0),
                        torch.zeros_like(x0), torch.zeros_like(x0)).flatten(1).sum(1)
    terms = torch.zeros(schedule.T, b)
    for t in range(schedule.T):
        tt = _batch_t(t, x0)
        xt = schedule.q_sample(x0, tt, torch.randn(x0.shape, generator=generator))
        eps = eps_fn(xt, tt)
        x0_hat = schedule.predict_x0(xt, tt, eps).clamp(-1, 1)
        mean_p, log_var_p = schedule.q_posterior(x0_hat, xt, tt)
        if t == 0:
            terms[0] = -discretized_gaussian_log_likelihood(x0, mean_p, log_var_p).flatten(1).sum(1)
        else:
            mean_q, log_var_q = schedule.q_posterior(x0, xt, tt)
            terms[t] = gaussian_kl(mean_q, log_var_q, mean_p, log_var_p).flatten(1).sum(1)
    total = prior + terms.sum(0)
    return {"prior": prior, "terms": terms, "total": total, "bits_per_dim": total / (dims * math.log(2))}
