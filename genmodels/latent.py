"""Looking at a latent space: projections to a plane and prior densities on a grid.

Every prior in :mod:`genmodels.vae` is a mixture of diagonal Gaussians (the standard Gaussian
is a mixture of one), and a linear projection of a Gaussian mixture is again a Gaussian
mixture, so the prior's density in a projected plane is exact, not estimated:
if z ~ N(m, S) and y = P (z - c), then y ~ N(P (m - c), P S P^T).
"""

from dataclasses import dataclass

import numpy as np
import torch

from genmodels.gaussian import kl_to_standard_normal


@dataclass
class Projection:
    """y = (z - centre) @ axes.T: the identity for 2-D latents, PCA otherwise."""

    centre: np.ndarray  # (D,)
    axes: np.ndarray  # (2, D), orthonormal rows
    explained: tuple[float, float]  # fraction of the fitted data's variance along each axis

    def __call__(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z) - self.centre) @ self.axes.T

    def covariance(self, variances: np.ndarray) -> np.ndarray:
        """P diag(variances) P^T for one diagonal Gaussian (variances shaped (D,))."""
        return (self.axes * np.asarray(variances)) @ self.axes.T

    @property
    def is_identity(self) -> bool:
        return self.axes.shape[1] == 2 and np.allclose(self.axes, np.eye(2)) and not self.centre.any()


def fit_projection(z: np.ndarray) -> Projection:
    """Identity for 2-D codes; otherwise the top two principal axes of ``z`` (N, D)."""
    z = np.asarray(z, dtype=np.float64)
    d = z.shape[1]
    if d == 2:
        return Projection(np.zeros(2), np.eye(2), (1.0, 1.0))
    if d < 2:
        raise ValueError("a latent space needs at least 2 dimensions to be drawn in a plane")
    centre = z.mean(0)
    _, s, vt = np.linalg.svd(z - centre, full_matrices=False)
    var = s**2
    return Projection(centre, vt[:2], (float(var[0] / var.sum()), float(var[1] / var.sum())))


def mixture_log_density(points: np.ndarray, log_w: np.ndarray, means: np.ndarray,
                        covs: np.ndarray) -> np.ndarray:
    """log sum_k w_k N(y; means_k, covs_k) for points (M, 2), means (K, 2), covs (K, 2, 2)."""
    diff = points[:, None, :] - means[None]  # (M, K, 2)
    inv = np.linalg.inv(covs)
    maha = np.einsum("mki,kij,mkj->mk", diff, inv, diff)
    log_det = np.linalg.slogdet(covs)[1]
    log_n = -0.5 * (maha + log_det + 2 * np.log(2 * np.pi))
    a = log_n + log_w[None]
    top = a.max(1, keepdims=True)
    return (top + np.log(np.exp(a - top).sum(1, keepdims=True)))[:, 0]


def density_grid(log_w: np.ndarray, means: np.ndarray, covs: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """``mixture_log_density`` on the grid ys x xs (shape (len(ys), len(xs))), for contours."""
    gx, gy = np.meshgrid(xs, ys)
    points = np.stack([gx.ravel(), gy.ravel()], axis=1)
    return mixture_log_density(points, log_w, means, covs).reshape(len(ys), len(xs))


@torch.no_grad()
def prior_density_grid(prior, projection: Projection, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """log p(y) of the projected prior on the grid ys x xs (shape (len(ys), len(xs)))."""
    log_w, mu, logvar = (t.double().cpu().numpy() for t in prior.components())
    covs = np.stack([projection.covariance(v) for v in np.exp(logvar)])
    return density_grid(log_w, projection(mu), covs, xs, ys)


def grid_around(points: np.ndarray, n: int = 80, margin: float = 0.15) -> tuple[np.ndarray, np.ndarray]:
    """Grid axes covering ``points`` (M, 2) with a margin, for density contours."""
    lo, hi = points.min(0), points.max(0)
    pad = (hi - lo) * margin + 1e-6
    return np.linspace(lo[0] - pad[0], hi[0] + pad[0], n), np.linspace(lo[1] - pad[1], hi[1] + pad[1], n)


def kl_per_dimension(mu: torch.Tensor, logvar: torch.Tensor) -> np.ndarray:
    """Average over examples of KL(q(z_j|x) || N(0, 1)) for each latent dimension j, in nats (D,).

    Their sum is the average KL term of the ELBO with a standard Gaussian prior.
    """
    # A trailing singleton axis makes the summed KL a per-dimension one.
    return kl_to_standard_normal(mu.unsqueeze(-1), logvar.unsqueeze(-1)).mean(0).numpy()


def active_units(mu: torch.Tensor, threshold: float = 0.01) -> np.ndarray:
    """Burda et al. (2016): dimension j is active if Var_x(E_q[z_j | x]) > threshold.

    An inactive dimension's posterior is the same for every input: it carries no information, and
    its KL is near zero (it has collapsed to the prior).
    """
    return (mu.var(0) > threshold).numpy()


def traversal_codes(z0: torch.Tensor, values: torch.Tensor, dims: list[int] | None = None) -> torch.Tensor:
    """Codes for latent traversals: row r varies dimension dims[r] over ``values``, the rest stay at z0.

    Returns (len(dims) * len(values), D), row-major, ready to decode into a grid.
    """
    dims = list(range(len(z0))) if dims is None else dims
    codes = z0.repeat(len(dims) * len(values), 1)
    for r, j in enumerate(dims):
        codes[r * len(values):(r + 1) * len(values), j] = values
    return codes


def correlation(mu: torch.Tensor) -> np.ndarray:
    """Pearson correlation between latent dimensions of the posterior means over a data set (D, D).

    A dimension that never varies (a collapsed one) is uncorrelated with every other.
    """
    x = mu.double().numpy()
    x = x - x.mean(0)
    std = x.std(0)
    x = x / np.where(std > 0, std, 1.0)
    corr = x.T @ x / len(x)
    np.fill_diagonal(corr, 1.0)
    return corr


def mean_abs_correlation(mu: torch.Tensor, active: np.ndarray | None = None) -> float:
    """Mean |Pearson correlation| between distinct active latent dimensions of the posterior means (0 if
    fewer than two are active): one number for how far a code is from independent components."""
    if active is not None:
        mu = mu[:, torch.as_tensor(active)]
    if mu.shape[1] < 2:
        return 0.0
    corr = correlation(mu)
    return float(np.abs(corr[~np.eye(len(corr), dtype=bool)]).mean())


def plane_grid(extent: float, steps: int) -> torch.Tensor:
    """Codes on a steps x steps grid over [-extent, extent]^2 (steps^2, 2), in reading order: rows from the
    top (z2 = extent) to the bottom, each row from z1 = -extent to extent, as an image grid shows them."""
    axis = torch.linspace(-extent, extent, steps)
    return torch.stack(torch.meshgrid(axis, axis.flip(0), indexing="xy"), dim=-1).reshape(-1, 2)


def condition_path(a: int, b: int, t: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Condition vectors y = (1 - t) e_a + t e_b between the one-hot codes of classes a and b, (len(t), n_classes).

    t = 0 gives e_a and t = 1 gives e_b, the only conditions training shows a conditional model (a cVAE, a
    cGAN); t between them or outside [0, 1] asks it about a condition it never saw.
    """
    e_a, e_b = torch.nn.functional.one_hot(torch.tensor([a, b]), n_classes).float()
    return (1 - t)[:, None] * e_a + t[:, None] * e_b


def as_condition(y: torch.Tensor | None, batch: int, n_classes: int, model: str = "model") -> torch.Tensor | None:
    """A conditional model's label input: (batch, n_classes) vectors, one-hot for integer classes, any vector
    (a point between classes) as given; None for an unconditional model (n_classes = 0). Raises ValueError with
    what to pass when y does not fit."""
    if not n_classes:
        if y is not None:
            raise ValueError(f"this {model} is not conditional: call it without y")
        return None
    if y is None:
        raise ValueError(f"this {model} is conditional: pass y, integer classes or (B, {n_classes}) vectors")
    if not torch.is_floating_point(y):
        y = torch.nn.functional.one_hot(y.long(), n_classes).float()
    if y.shape != (batch, n_classes):
        raise ValueError(f"y must have shape ({batch}, {n_classes}), not {tuple(y.shape)}")
    return y


@torch.no_grad()
def prior_view(prior, mu: np.ndarray, logvar: np.ndarray, n: int, use_means: bool = True,
               picked: int | None = None, seed: int = 0) -> dict:
    """What ``figures.latent_scatter`` draws of a VAE's prior against the aggregate posterior of n encoded images
    (posterior means ``mu`` and log-variances ``logvar``, (N, D), N >= n): prior samples and the posterior cloud
    (means, or one draw per image) in the latent plane (2-D) or on the posterior's two principal axes, the prior's
    exact log-density on a grid, the mixture's centres (None for a single Gaussian), and image ``picked``'s
    posterior as (mean, covariance) in that plane. Returns the figure's keyword arguments and the projection."""
    rng = np.random.default_rng(seed)
    posterior = mu[:n] if use_means else mu[:n] + np.exp(0.5 * logvar[:n]) * rng.standard_normal(mu[:n].shape)
    prior_z = prior.sample(n, generator=torch.Generator().manual_seed(seed)).cpu().numpy()
    log_w, centre_means, _ = prior.components()
    projection = fit_projection(mu[:n])
    prior_y, posterior_y = projection(prior_z), projection(posterior)
    xs, ys = grid_around(np.concatenate([prior_y, posterior_y]))
    vamp = hasattr(prior, "pseudo_inputs")
    view = {"prior_z": prior_y, "posterior_z": posterior_y,
            "density": (xs, ys, prior_density_grid(prior, projection, xs, ys)),
            "centres": projection(centre_means.double().cpu().numpy()) if len(log_w) > 1 else None,
            "centres_name": "VampPrior: q(z|u_k) means" if vamp else "mixture means",
            "axis_titles": ("z1", "z2") if projection.is_identity else (
                f"PC 1 ({projection.explained[0]:.0%} of q's variance)", f"PC 2 ({projection.explained[1]:.0%})")}
    if picked is not None:
        view["picked"] = (projection(mu[picked]), projection.covariance(np.exp(logvar[picked])))
    return {"figure": view, "projection": projection}
