"""The DDPM noise schedule: every quantity of Ho et al. (2020) in one object, separate from the network.

Computed in float64 and stored as float32 tensors of length T, indexed by t = 0 .. T-1 (the
paper's t = 1 .. T). Names follow the paper:

- ``betas``           beta_t, the variance added at step t (eq. 2);
- ``alphas``          alpha_t = 1 - beta_t;
- ``alpha_bars``      alpha_bar_t = prod_{s<=t} alpha_s, so that
                      q(x_t | x_0) = N(sqrt(alpha_bar_t) x_0, (1 - alpha_bar_t) I) (eq. 4);
- ``posterior_variance``  beta_tilde_t = (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) beta_t
                      (eq. 7), the variance of q(x_{t-1} | x_t, x_0);
- ``posterior_mean_coef_x0`` and ``posterior_mean_coef_xt``: mu_tilde_t(x_t, x_0) =
  sqrt(alpha_bar_{t-1}) beta_t / (1 - alpha_bar_t) x_0
  + sqrt(alpha_t) (1 - alpha_bar_{t-1}) / (1 - alpha_bar_t) x_t   (eq. 7).
"""

import math

import torch

SCHEDULES = ("linear", "cosine")


class NoiseSchedule:
    """beta_t for t = 0 .. T-1, and everything derived from it."""

    def __init__(self, T: int = 1000, kind: str = "linear", beta_start: float = 1e-4, beta_end: float = 0.02):
        if kind not in SCHEDULES:
            raise ValueError(f"schedule must be one of {SCHEDULES}, not {kind!r}")
        if T < 2:
            raise ValueError("a schedule needs at least 2 steps")
        self.T, self.kind = T, kind
        if kind == "linear":  # Ho et al. (2020), section 4
            betas = torch.linspace(beta_start, beta_end, T, dtype=torch.float64, device="cpu")
        else:  # Nichol & Dhariwal (2021), eq. 17: alpha_bar(t) = cos^2((t/T + s) / (1 + s) * pi / 2)
            s = 0.008
            steps = torch.arange(T + 1, dtype=torch.float64, device="cpu") / T
            f = torch.cos((steps + s) / (1 + s) * math.pi / 2) ** 2
            betas = (1 - f[1:] / f[:-1]).clamp(max=0.999)
        alphas = 1 - betas
        alpha_bars = torch.cumprod(alphas, 0)
        alpha_bars_prev = torch.cat([torch.ones(1, dtype=torch.float64, device="cpu"), alpha_bars[:-1]])
        posterior_variance = betas * (1 - alpha_bars_prev) / (1 - alpha_bars)
        self.betas = betas.float()
        self.alphas = alphas.float()
        self.alpha_bars = alpha_bars.float()
        self.alpha_bars_prev = alpha_bars_prev.float()
        self.posterior_variance = posterior_variance.float()
        # beta_tilde_0 = 0, so its log is clipped to log beta_tilde_1, as in Ho et al.'s code.
        self.posterior_log_variance = torch.log(torch.cat([posterior_variance[1:2], posterior_variance[1:]])).float()
        self.posterior_mean_coef_x0 = (alpha_bars_prev.sqrt() * betas / (1 - alpha_bars)).float()
        self.posterior_mean_coef_xt = (alphas.sqrt() * (1 - alpha_bars_prev) / (1 - alpha_bars)).float()

    @staticmethod
    def _at(values: torch.Tensor, t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """values[t], shaped to broadcast against a batch x (B, C, H, W)."""
        return values.to(x.device)[t].view(-1, *([1] * (x.dim() - 1)))

    def snr(self) -> torch.Tensor:
        """Signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) of q(x_t | x_0)."""
        return self.alpha_bars / (1 - self.alpha_bars)

    def q_sample(self, x0: torch.Tensor, t: torch.Tensor, noise: torch.Tensor) -> torch.Tensor:
        """x_t = sqrt(alpha_bar_t) x_0 + sqrt(1 - alpha_bar_t) eps (eq. 4, reparameterised)."""
        a = self._at(self.alpha_bars, t, x0)
        return a.sqrt() * x0 + (1 - a).sqrt() * noise

    def predict_x0(self, xt: torch.Tensor, t: torch.Tensor, eps: torch.Tensor) -> torch.Tensor:
        """x_0 from x_t and the noise: x_0 = (x_t - sqrt(1 - alpha_bar_t) eps) / sqrt(alpha_bar_t) (eq. 4 inverted)."""
        a = self._at(self.alpha_bars, t, xt)
        return (xt - (1 - a).sqrt() * eps) / a.sqrt()

    def q_posterior(self, x0: torch.Tensor, xt: torch.Tensor, t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of q(x_{t-1} | x_t, x_0) (eq. 6-7)."""
        mean = self._at(self.posterior_mean_coef_x0, t, xt) * x0 + self._at(self.posterior_mean_coef_xt, t, xt) * xt
        return mean, self._at(self.posterior_log_variance, t, xt)
