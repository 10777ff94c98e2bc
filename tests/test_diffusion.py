"""Samplers, inpainting and the variational bound, on an exact noise predictor for Gaussian data."""

import math

import pytest
import torch
from torch import distributions as D

from genmodels.diffusion import (
    MASKS,
    ddim_sample,
    ddim_timesteps,
    ddpm_sample,
    discretized_gaussian_log_likelihood,
    dpm_solver_sample,
    gaussian_kl,
    logsnr_timesteps,
    make_mask,
    variational_bound,
)
from genmodels.schedule import NoiseSchedule


def gaussian_data_eps(schedule: NoiseSchedule, mu: float, s2: float):
    """The exact E[eps | x_t] when x_0 ~ N(mu, s2) in every pixel: the best possible noise predictor."""
    def eps_fn(xt, t):
        ab = schedule.alpha_bars[t].view(-1, *([1] * (xt.dim() - 1)))
        return (1 - ab).sqrt() * (xt - ab.sqrt() * mu) / (ab * s2 + 1 - ab)
    return eps_fn


def test_ddim_with_eta_one_and_all_steps_is_ddpm():
    s = NoiseSchedule(100, "cosine")
    eps = gaussian_data_eps(s, 0.3, 0.04)
    a = ddpm_sample(eps, s, (500, 1, 2, 2), generator=torch.Generator().manual_seed(0), clip=False)
    b = ddim_sample(eps, s, (500, 1, 2, 2), steps=100, eta=1.0, generator=torch.Generator().manual_seed(0),
                    clip=False)
    assert torch.allclose(a, b, atol=1e-4)  # the same draws give the same samples: the same distribution


@pytest.mark.parametrize("sampler, var_tolerance", [("ddpm", 0.05), ("ddim-eta0", 0.03), ("ddim-eta0-50", 0.3)])
def test_samplers_recover_the_data_distribution(sampler, var_tolerance):
    """With the exact noise predictor, samples follow the data distribution N(0.3, 0.2^2).

    The tolerances are the samplers' own approximations: DDPM's reverse variance beta_tilde omits
    Var(x_0 | x_t) (a few percent at T = 1000, less as T grows); DDIM with eta = 0 follows the
    probability-flow ODE, nearly exactly with all steps and with a visible discretisation error
    (about 20 % in variance here) with 50.
    """
    s = NoiseSchedule(1000, "linear")
    mu, s2 = 0.3, 0.04
    eps = gaussian_data_eps(s, mu, s2)
    g = torch.Generator().manual_seed(1)
    shape = (40000, 1, 1, 1)
    if sampler == "ddpm":
        x = ddpm_sample(eps, s, shape, generator=g, clip=False)
    else:
        x = ddim_sample(eps, s, shape, steps=1000 if sampler == "ddim-eta0" else 50, eta=0.0, generator=g,
                        clip=False)
    assert x.mean().item() == pytest.approx(mu, abs=0.01)
    assert x.var().item() == pytest.approx(s2, rel=var_tolerance)


def test_trajectories_hold_every_state():
    s = NoiseSchedule(30)
    eps = gaussian_data_eps(s, 0.0, 0.1)
    traj = ddpm_sample(eps, s, (3, 1, 4, 4), generator=torch.Generator().manual_seed(0), return_trajectory=True)
    assert traj.timesteps == list(range(29, -1, -1))
    assert traj.xs.shape == (31, 3, 1, 4, 4) and traj.x0_preds.shape == traj.eps_preds.shape == (30, 3, 1, 4, 4)
    final = ddpm_sample(eps, s, (3, 1, 4, 4), generator=torch.Generator().manual_seed(0))
    assert torch.equal(traj.xs[-1], final)  # the same seed, the same picture
    traj = ddim_sample(eps, s, (3, 1, 4, 4), steps=10, generator=torch.Generator().manual_seed(0),
                       return_trajectory=True)
    assert len(traj.timesteps) == 10 and traj.xs.shape[0] == 11 and traj.timesteps[0] == 29


def test_ddim_timesteps():
    assert ddim_timesteps(1000, 5) == [999, 749, 500, 250, 0]
    assert ddim_timesteps(10, 10) == list(range(9, -1, -1))
    assert ddim_timesteps(1000, 1) == [999]  # one step: from pure noise straight to the estimate of x_0
    for steps in range(1, 60):
        ts = ddim_timesteps(1000, steps)
        assert ts[0] == 999 and len(ts) == steps and (steps == 1 or ts[-1] == 0)
    assert ddim_timesteps(1000, 50) == sorted({round(999 * k / 49) for k in range(50)}, reverse=True)
    with pytest.raises(ValueError):
        ddim_timesteps(10, 11)


def half_log_snr(s: NoiseSchedule) -> torch.Tensor:
    return 0.5 * (s.alpha_bars.log() - (1 - s.alpha_bars).log())


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_logsnr_timesteps_are_even_in_lambda(kind):
    s = NoiseSchedule(1000, kind)
    lam = half_log_snr(s)
    assert logsnr_timesteps(s, 1) == [999]
    for steps in (2, 5, 10, 20):
        ts = logsnr_timesteps(s, steps)
        assert ts[0] == 999 and ts[-1] == 0 and len(ts) == steps and ts == sorted(set(ts), reverse=True)
        # after the start, equal steps in lambda from max(lambda_{T-1}, -5) to lambda_0, to the rounding of t:
        # each target lies between the lambdas of the picked t's neighbours
        targets = torch.linspace(max(lam[-1].item(), -5.0), lam[0].item(), steps)
        for t, target in zip(ts[1:], targets[1:], strict=True):
            assert lam[min(t + 1, 999)] - 1e-6 <= target <= lam[max(t - 1, 0)] + 1e-6
    with pytest.raises(ValueError):
        logsnr_timesteps(s, 1001)


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_first_order_dpm_solver_is_ddim(eta):
    """With D = x0_hat the exponential-integrator step is DDIM's, deterministic and stochastic."""
    s = NoiseSchedule(1000, "linear")
    eps = gaussian_data_eps(s, 0.3, 0.04)
    ts = ddim_timesteps(1000, 20)
    a = ddim_sample(eps, s, (2000, 1, 2, 2), steps=20, eta=eta, generator=torch.Generator().manual_seed(3))
    b = dpm_solver_sample(eps, s, (2000, 1, 2, 2), order=1, eta=eta, timesteps=ts,
                          generator=torch.Generator().manual_seed(3))
    assert torch.allclose(a, b, atol=1e-4)


@pytest.mark.parametrize("kind", ["linear", "cosine"])
def test_dpm_solver_follows_the_ode_closer_than_ddim(kind):
    """For Gaussian data the probability-flow ODE is affine: x_0 = mu + s (x_T - m_T) / s_T, with m_T and s_T
    the mean and std of x_T. DPM-Solver++(2M) lands nearer to it than DDIM at equal network evaluations."""
    s = NoiseSchedule(1000, kind)
    mu, s2 = 0.3, 0.04
    eps = gaussian_data_eps(s, mu, s2)
    shape = (5000, 1, 1, 1)
    x_T = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    ab = s.alpha_bars[-1]
    exact = mu + math.sqrt(s2) * (x_T - ab.sqrt() * mu) / (ab * s2 + 1 - ab).sqrt()
    for steps in (10, 20, 50):
        errors = {}
        for name, sampler in (("ddim", ddim_sample), ("dpm", dpm_solver_sample)):
            x = sampler(eps, s, shape, steps=steps, generator=torch.Generator().manual_seed(1), clip=False)
            errors[name] = (x - exact).abs().mean().item()
        assert errors["dpm"] < errors["ddim"] / 4, (steps, errors)
    x = dpm_solver_sample(eps, s, shape, steps=1000, generator=torch.Generator().manual_seed(1), clip=False)
    assert (x - exact).abs().mean() < 1e-3  # and converges to it


def test_stochastic_dpm_solver_recovers_the_data_distribution_in_ten_steps():
    s = NoiseSchedule(1000, "linear")
    mu, s2 = 0.3, 0.04
    eps = gaussian_data_eps(s, mu, s2)
    shape = (40000, 1, 1, 1)
    x = dpm_solver_sample(eps, s, shape, steps=10, eta=1.0, generator=torch.Generator().manual_seed(2), clip=False)
    assert x.mean().item() == pytest.approx(mu, abs=0.01)
    assert x.var().item() == pytest.approx(s2, rel=0.05)
    x = ddim_sample(eps, s, shape, steps=10, eta=1.0, generator=torch.Generator().manual_seed(2), clip=False)
    assert x.var().item() < 0.5 * s2  # DDIM with the same noise and steps is far off (about 0.008)


@pytest.mark.parametrize("sampler", ["ddpm", "ddim"])
@pytest.mark.parametrize("kind", MASKS)
def test_inpainting_keeps_observed_pixels_exactly(kind, sampler):
    s = NoiseSchedule(50)
    eps = gaussian_data_eps(s, 0.0, 0.3)
    x0 = torch.rand(4, 1, 28, 28) * 2 - 1
    mask = make_mask(kind, 4, generator=torch.Generator().manual_seed(0))
    assert 0 < mask.float().mean() < 1
    for resample in (1, 3):
        kwargs = dict(generator=torch.Generator().manual_seed(0), known=(x0, mask), resample=resample)
        if sampler == "ddpm":
            out = ddpm_sample(eps, s, x0.shape, **kwargs)
        else:
            out = ddim_sample(eps, s, x0.shape, steps=10, eta=1.0, **kwargs)
        assert torch.equal(out[mask], x0[mask])
        assert not torch.equal(out[~mask], x0[~mask])


def test_ddim_repaint_step_back_has_the_forward_moments():
    """RePaint on the DDIM sub-sequence goes back from x_prev to x_t with q(x_t | x_prev); composed with
    q(x_prev | x_0) it must give q(x_t | x_0): a known pixel at x_0 = 0.5 ends up N(sqrt(ab) 0.5, 1 - ab).
    Checked through the sampler: with an all-known mask and 2 steps of T = 50, the state the network sees
    at the second step after a resample comes from that composition."""
    s = NoiseSchedule(50)
    seen = []

    def eps(x, t):
        seen.append((int(t[0]), x.clone()))
        return torch.zeros_like(x)

    x0 = torch.full((20000, 1, 1, 1), 0.5)
    mask = torch.ones_like(x0, dtype=torch.bool)
    ddim_sample(eps, s, x0.shape, steps=3, eta=1.0, generator=torch.Generator().manual_seed(0),
                known=(x0, mask), resample=2)
    # timesteps 49, 24, 0; the second call at t = 49 is a resampled x_49 built from a known x_24
    t, x = seen[1]
    assert t == 49
    ab = s.alpha_bars[49]
    assert abs(x.mean() - ab.sqrt() * 0.5) < 0.02
    assert abs(x.var() - (1 - ab)) < 0.03


def test_masks_hide_what_they_say():
    assert make_mask("left half", 1)[0, 0, :, :14].all() and not make_mask("left half", 1)[0, 0, :, 14:].any()
    assert make_mask("bottom rows", 1, rows=5)[0, 0].sum(1).tolist() == [0] * 23 + [28] * 5
    centre = make_mask("centre square", 1)[0, 0]
    assert not centre[7:21, 7:21].any() and centre.sum() == 784 - 196
    with pytest.raises(ValueError, match="unknown mask"):
        make_mask("circle", 1)


def test_gaussian_kl_matches_torch_distributions():
    m1, m2, lv1, lv2 = torch.randn(4, 10).unbind(0)
    ref = D.kl_divergence(D.Normal(m1, (0.5 * lv1).exp()), D.Normal(m2, (0.5 * lv2).exp()))
    assert torch.allclose(gaussian_kl(m1, lv1, m2, lv2), ref, atol=1e-5)


def test_discretized_likelihood_integrates_the_density_over_each_bin():
    mean, log_var = torch.tensor(0.1), torch.tensor(math.log(0.2**2))
    levels = torch.arange(256) / 255 * 2 - 1
    p = discretized_gaussian_log_likelihood(levels, mean.expand(256), log_var.expand(256)).exp()
    assert p.sum().item() == pytest.approx(1.0, abs=1e-5)  # a distribution over the 256 values
    x = levels[140]
    grid = torch.linspace(x.item() - 1 / 255, x.item() + 1 / 255, 20001, dtype=torch.float64)
    density = D.Normal(mean.double(), 0.2).log_prob(grid).exp()
    assert p[140].item() == pytest.approx(torch.trapezoid(density, grid).item(), rel=1e-5)


def test_bound_terms_vanish_when_the_predictor_knows_x0():
    """With one data point the exact predictor recovers x0 from any x_t, so p(x_{t-1}|x_t) = q(x_{t-1}|x_t,x_0)."""
    s = NoiseSchedule(20, "linear", beta_end=0.3)
    x0 = torch.tensor([-1.0, 0.2, 1.0]).view(3, 1, 1, 1)
    x0 = ((x0 + 1) * 127.5).round() / 127.5 - 1  # one of the 256 8-bit levels
    def exact(xt, t):
        ab = s.alpha_bars[t].view(-1, 1, 1, 1)
        return (xt - ab.sqrt() * x0) / (1 - ab).sqrt()
    bound = variational_bound(exact, s, x0, generator=torch.Generator().manual_seed(0))
    assert bound["terms"][1:].abs().max() < 1e-3
    expected_prior = gaussian_kl(s.alpha_bars[-1].sqrt() * x0, torch.log(1 - s.alpha_bars[-1]).expand_as(x0),
                                 torch.zeros_like(x0), torch.zeros_like(x0)).flatten(1).sum(1)
    assert torch.allclose(bound["prior"], expected_prior)
    assert torch.allclose(bound["total"], bound["prior"] + bound["terms"].sum(0))
    assert torch.allclose(bound["bits_per_dim"], bound["total"] / math.log(2))


def test_bound_is_an_upper_bound_on_the_exact_discrete_nll():
    """1-pixel 8-bit data from a known discrete distribution: the bound must not go below its entropy."""
    s = NoiseSchedule(50, "cosine")
    values = torch.tensor([-1.0, 1.0])
    x0 = values[torch.randint(0, 2, (2000,), generator=torch.Generator().manual_seed(0))].view(-1, 1, 1, 1)
    def posterior_mean_eps(xt, t):  # the exact E[eps | x_t] for this two-point data distribution
        ab = s.alpha_bars[t].view(-1, 1, 1, 1)
        log_w = -(xt - ab.sqrt() * values.view(1, 2, 1, 1)) ** 2 / (2 * (1 - ab))
        x0_mean = (torch.softmax(log_w, 1) * values.view(1, 2, 1, 1)).sum(1, keepdim=True)
        return (xt - ab.sqrt() * x0_mean) / (1 - ab).sqrt()
    bound = variational_bound(posterior_mean_eps, s, x0, generator=torch.Generator().manual_seed(1))
    assert bound["total"].mean().item() >= math.log(2) - 0.01  # entropy of a fair coin, in nats


def test_thinned_trajectory_keeps_ends_and_alignment():
    s = NoiseSchedule(100)
    eps = gaussian_data_eps(s, 0.0, 0.3)
    traj = ddpm_sample(eps, s, (2, 1, 4, 4), generator=torch.Generator().manual_seed(0), return_trajectory=True)
    thin = traj.thinned(10)
    assert len(thin.timesteps) == 10 and thin.timesteps[0] == 99 and thin.timesteps[-1] == 0
    assert thin.xs.shape[0] == 11 and thin.x0_preds.shape[0] == 10
    assert torch.equal(thin.xs[-1], traj.xs[-1]) and torch.equal(thin.xs[0], traj.xs[0])
    for i, t in enumerate(thin.timesteps):  # state i is the one the network saw at timestep t
        j = traj.timesteps.index(t)
        assert torch.equal(thin.xs[i], traj.xs[j]) and torch.equal(thin.eps_preds[i], traj.eps_preds[j])
    assert traj.thinned(1000) is traj
    assert thin.timesteps == [99, 88, 77, 66, 55, 44, 33, 22, 11, 0]
    assert thin.timesteps[thin.index_of(50)] == 55 and thin.index_of(1000) == 0
    assert traj.spread(4) == [0, 33, 66, 99] and thin.spread(4) == [0, 3, 6, 9]  # t = 99, 66, 33, 0
