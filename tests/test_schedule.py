"""Noise schedule identities (Ho et al. 2020), checked against direct computation and sampling."""

import pytest
import torch

from genmodels.schedule import NoiseSchedule


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_alpha_bar_is_decreasing_in_the_unit_interval(kind):
    s = NoiseSchedule(1000, kind)
    assert s.betas.shape == s.alpha_bars.shape == (1000,)
    assert (s.alpha_bars > 0).all() and (s.alpha_bars <= 1).all()
    assert (s.alpha_bars[1:] < s.alpha_bars[:-1]).all()
    assert s.alpha_bars[-1] < 1e-3 if kind == "cosine" else s.alpha_bars[-1] < 1e-4  # almost pure noise at T
    assert torch.allclose(s.alpha_bars, torch.cumprod(1 - s.betas.double(), 0).float(), rtol=1e-5)
    assert (s.snr()[1:] < s.snr()[:-1]).all()


def test_linear_schedule_matches_the_paper():
    s = NoiseSchedule(1000, "linear")
    assert s.betas[0].item() == pytest.approx(1e-4) and s.betas[-1].item() == pytest.approx(0.02)


def test_posterior_variance_at_the_first_step_is_zero():
    s = NoiseSchedule(100)
    assert s.posterior_variance[0].item() == 0.0
    assert s.posterior_log_variance[0].item() == pytest.approx(s.posterior_log_variance[1].item())
    assert (s.posterior_variance[1:] <= s.betas[1:]).all()  # beta_tilde_t <= beta_t


def test_q_sample_moments_match_eq_4():
    s = NoiseSchedule(200, "cosine")
    x0 = torch.full((20000, 1, 1, 1), 0.7)
    t = torch.full((20000,), 120)
    xt = s.q_sample(x0, t, torch.randn_like(x0))
    a = s.alpha_bars[120]
    assert xt.mean().item() == pytest.approx((a.sqrt() * 0.7).item(), abs=0.02)
    assert xt.var().item() == pytest.approx((1 - a).item(), rel=0.03)


def test_predict_x0_inverts_q_sample():
    s = NoiseSchedule(100)
    x0, eps = torch.randn(2, 4, 1, 28, 28).unbind(0)
    t = torch.tensor([0, 10, 50, 99])
    assert torch.allclose(s.predict_x0(s.q_sample(x0, t, eps), t, eps), x0, atol=2e-3)


def test_posterior_is_the_bayes_update_of_two_gaussians():
    """q(x_{t-1} | x_t, x_0) against the product of q(x_t | x_{t-1}) and q(x_{t-1} | x_0), by brute force."""
    s = NoiseSchedule(50, "linear", beta_end=0.2)
    t = 30
    x0, xt = torch.tensor(0.4, dtype=torch.float64), torch.tensor(-0.3, dtype=torch.float64)
    grid = torch.linspace(-6, 6, 200001, dtype=torch.float64)
    beta, ab_prev = s.betas.double()[t], s.alpha_bars_prev.double()[t]
    log_p = (-0.5 * (xt - (1 - beta).sqrt() * grid) ** 2 / beta
             - 0.5 * (grid - ab_prev.sqrt() * x0) ** 2 / (1 - ab_prev))
    w = torch.softmax(log_p, 0)
    mean_ref = (w * grid).sum()
    var_ref = (w * (grid - mean_ref) ** 2).sum()
    mean, log_var = s.q_posterior(x0.float().view(1, 1, 1, 1), xt.float().view(1, 1, 1, 1), torch.tensor([t]))
    assert mean.item() == pytest.approx(mean_ref.item(), abs=1e-4)
    assert log_var.exp().item() == pytest.approx(var_ref.item(), rel=1e-4)


def test_bad_schedules_are_refused():
    with pytest.raises(ValueError, match="schedule must be one of"):
        NoiseSchedule(10, "quadratic")
    with pytest.raises(ValueError, match="at least 2"):
        NoiseSchedule(1)
