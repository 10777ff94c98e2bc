"""Projections and projected prior densities against brute force."""

import numpy as np
import torch

from genmodels.latent import fit_projection, grid_around, mixture_log_density, prior_density_grid


def test_two_dimensional_codes_are_not_projected():
    z = np.random.default_rng(0).normal(size=(50, 2))
    p = fit_projection(z)
    assert p.is_identity and np.allclose(p(z), z)


def test_pca_axes_are_orthonormal_and_ordered():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(2000, 5)) * np.array([5.0, 0.1, 2.0, 0.1, 0.1])
    p = fit_projection(z)
    assert np.allclose(p.axes @ p.axes.T, np.eye(2), atol=1e-8)
    assert abs(abs(p.axes[0, 0]) - 1) < 0.01 and abs(abs(p.axes[1, 2]) - 1) < 0.01
    assert p.explained[0] > p.explained[1] > 0


def test_mixture_log_density_matches_torch_distributions():
    rng = np.random.default_rng(1)
    means = rng.normal(size=(3, 2))
    a = rng.normal(size=(3, 2, 2))
    covs = a @ a.transpose(0, 2, 1) + 0.1 * np.eye(2)
    log_w = np.log(np.array([0.2, 0.3, 0.5]))
    pts = rng.normal(size=(20, 2))
    ref = torch.distributions.MixtureSameFamily(
        torch.distributions.Categorical(logits=torch.tensor(log_w)),
        torch.distributions.MultivariateNormal(torch.tensor(means), torch.tensor(covs)),
    ).log_prob(torch.tensor(pts)).numpy()
    assert np.allclose(mixture_log_density(pts, log_w, means, covs), ref, atol=1e-8)


def test_projected_prior_density_matches_samples(tiny_vae):
    """The exact projected density against a histogram of projected prior samples."""
    model = tiny_vae("mog", latent_dim=6)
    with torch.no_grad():
        z = model.prior.sample(200000, generator=torch.Generator().manual_seed(0)).numpy()
    p = fit_projection(z[:5000])
    y = p(z)
    xs, ys = grid_around(y, n=25, margin=0.0)
    density = np.exp(prior_density_grid(model.prior, p, xs, ys))
    hist, _, _ = np.histogram2d(y[:, 1], y[:, 0], bins=[np.append(ys, 2 * ys[-1] - ys[-2]) - (ys[1] - ys[0]) / 2,
                                                        np.append(xs, 2 * xs[-1] - xs[-2]) - (xs[1] - xs[0]) / 2])
    hist = hist / (len(y) * (xs[1] - xs[0]) * (ys[1] - ys[0]))
    dense = density > 0.2 * density.max()
    assert np.abs(hist[dense] - density[dense]).max() < 0.25 * density.max()


def test_projected_standard_gaussian_is_standard(tiny_vae):
    model = tiny_vae("gaussian", latent_dim=8)
    p = fit_projection(np.random.default_rng(0).normal(size=(500, 8)))
    p.centre = np.zeros(8)
    xs = ys = np.linspace(-3, 3, 7)
    grid = prior_density_grid(model.prior, p, xs, ys)
    gx, gy = np.meshgrid(xs, ys)
    assert np.allclose(grid, -0.5 * (gx**2 + gy**2) - np.log(2 * np.pi), atol=1e-8)


def test_kl_per_dimension_sums_to_the_kl_term():
    from genmodels.latent import kl_per_dimension
    from genmodels.vae import kl_to_standard_normal

    mu, logvar = torch.randn(2, 50, 4).unbind(0)
    per_dim = kl_per_dimension(mu, logvar)
    assert per_dim.shape == (4,)
    assert np.isclose(per_dim.sum(), kl_to_standard_normal(mu, logvar).mean().item(), atol=1e-5)


def test_active_units_find_the_dimensions_that_vary():
    from genmodels.latent import active_units

    mu = torch.zeros(100, 3)
    mu[:, 1] = torch.linspace(-1, 1, 100)
    mu[:, 2] = 0.001 * torch.randn(100)
    assert active_units(mu).tolist() == [False, True, False]


def test_traversal_codes_vary_one_dimension_per_row():
    from genmodels.latent import traversal_codes

    z0 = torch.tensor([1.0, 2.0, 3.0])
    codes = traversal_codes(z0, torch.tensor([-1.0, 0.0, 1.0]), dims=[2, 0])
    assert codes.shape == (6, 3)
    assert codes[:3, 2].tolist() == [-1, 0, 1] and (codes[:3, :2] == z0[:2]).all()
    assert codes[3:, 0].tolist() == [-1, 0, 1] and (codes[3:, 1:] == z0[1:]).all()


def test_correlation_of_independent_and_dependent_dimensions():
    from genmodels.latent import correlation

    a = torch.randn(5000)
    mu = torch.stack([a, torch.randn(5000), 2 * a + 0.01 * torch.randn(5000), torch.zeros(5000)], 1)
    c = correlation(mu)
    assert abs(c[0, 1]) < 0.05 and c[0, 2] > 0.99 and np.isclose(c[0, 0], 1.0)


def test_plane_grid_is_in_reading_order():
    from genmodels.latent import plane_grid

    codes = plane_grid(2.0, 3).view(3, 3, 2)
    assert codes[0, 0].tolist() == [-2.0, 2.0] and codes[0, 2].tolist() == [2.0, 2.0]  # top row: z2 high
    assert codes[2, 0].tolist() == [-2.0, -2.0] and codes[1, 1].tolist() == [0.0, 0.0]
    assert torch.equal(codes[:, :, 0], torch.linspace(-2, 2, 3).expand(3, 3))  # z1 grows left to right


def test_mean_abs_correlation_against_numpy():
    from genmodels.latent import mean_abs_correlation

    g = torch.Generator().manual_seed(0)
    a = torch.randn(500, 1, generator=g)
    mu = torch.cat([a, 2 * a + 0.5 * torch.randn(500, 1, generator=g), torch.randn(500, 1, generator=g),
                    torch.zeros(500, 1)], 1)
    active = np.array([True, True, True, False])
    corr = np.corrcoef(mu[:, :3].numpy().T)
    expected = np.abs(corr[~np.eye(3, dtype=bool)]).mean()
    assert np.isclose(mean_abs_correlation(mu, active), expected, atol=1e-6)
    assert mean_abs_correlation(mu[:, :1]) == 0.0 and mean_abs_correlation(mu, np.array([1, 0, 0, 0], bool)) == 0.0
