"""Variational autoencoders with a choice of likelihood and of prior.

The model (Kingma & Welling 2014): z ~ p(z), x | z ~ prod_i p(x_i | f(z)_i), with the amortised
posterior q(z|x) = N(mu(x), diag sigma^2(x)). The decoder f gives one number per pixel, a logit; the
likelihood (``log_likelihood``) says what it means:

- ``bernoulli``: p(x_i) = Bernoulli(x_i; sigmoid(f_i)), for binary pixels (grey ones read as probabilities).
- ``gaussian``: N(x_i; sigmoid(f_i), sigma^2) with sigma fixed (``sigma``): -log p is the squared error
  times 1 / (2 sigma^2), plus a constant, so "MSE + KL" is this likelihood with sigma^2 = 1/2.
- ``gaussian-learned``: the same with one sigma for every pixel, learned (Rybkin et al. 2021, sigma-VAE).
- ``continuous-bernoulli``: the Bernoulli made a density on [0, 1] (Loaiza-Ganem & Cunningham 2019).

The priors are their own objects with ``log_prob(z)`` and ``sample(n)``; the encoder and decoder know
nothing of them.

- ``GaussianPrior``: p(z) = N(0, I).
- ``MixtureOfGaussiansPrior``: p(z) = sum_k w_k N(z; m_k, diag s_k^2), all learned.
- ``VampPrior`` (Tomczak & Welling 2018): p(z) = 1/K sum_k q(z | u_k), the encoder's posterior
  at K learned pseudo-inputs u_k.
"""

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES, image_channels
from genmodels.gaussian import gaussian_log_prob, kl_to_standard_normal
from genmodels.latent import as_condition

PRIORS = ("gaussian", "mog", "vamp")
ARCHITECTURES = ("mlp", "conv")
LIKELIHOODS = ("bernoulli", "gaussian", "gaussian-learned", "continuous-bernoulli")


def continuous_bernoulli_log_norm(logits: torch.Tensor) -> torch.Tensor:
    """log C(lambda), lambda = sigmoid(logits): C = 2 artanh(1 - 2 lambda) / (1 - 2 lambda), and 2 at lambda = 1/2
    (Loaiza-Ganem & Cunningham 2019, eq. 7). Near 1/2 the Taylor series log 2 + (4/3) (lambda - 1/2)^2 is used."""
    lam = torch.sigmoid(logits.double()).clamp(1e-12, 1 - 1e-12)  # float64: 1 - 2 lambda cancels near 1/2 and 1
    far = (lam - 0.5).abs() > 1e-3
    safe = torch.where(far, lam, torch.full_like(lam, 0.25))
    exact = torch.log(2 * torch.atanh(1 - 2 * safe) / (1 - 2 * safe))
    taylor = math.log(2) + 4 / 3 * (lam - 0.5) ** 2
    return torch.where(far, exact, taylor).to(logits.dtype)


def log_likelihood(logits: torch.Tensor, x: torch.Tensor, likelihood: str, log_sigma: torch.Tensor | float = 0.0
                   ) -> torch.Tensor:
    """log p(x | z) summed over the pixels, one value per image, for the decoder's logits f(z).

    bernoulli:            sum_i x_i log lambda_i + (1 - x_i) log(1 - lambda_i),   lambda = sigmoid(f)
    gaussian(-learned):   sum_i -(x_i - lambda_i)^2 / (2 sigma^2) - log sigma - log(2 pi) / 2
    continuous-bernoulli: the bernoulli term plus sum_i log C(lambda_i)
    """
    if likelihood in ("bernoulli", "continuous-bernoulli"):
        log_p = -F.binary_cross_entropy_with_logits(logits, x, reduction="none")
        if likelihood == "continuous-bernoulli":
            log_p = log_p + continuous_bernoulli_log_norm(logits)
    elif likelihood in ("gaussian", "gaussian-learned"):
        log_sigma = torch.as_tensor(log_sigma, dtype=logits.dtype, device=logits.device)
        log_p = (-0.5 * (x - torch.sigmoid(logits)) ** 2 * torch.exp(-2 * log_sigma) - log_sigma
                 - 0.5 * math.log(2 * math.pi))
    else:
        raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {likelihood!r}")
    return log_p.flatten(1).sum(-1)


def likelihood_mean(logits: torch.Tensor, likelihood: str) -> torch.Tensor:
    """E[x | z]: sigmoid(f) for the Bernoulli and the Gaussians; the continuous Bernoulli's mean
    lambda / (2 lambda - 1) + 1 / (2 artanh(1 - 2 lambda)), which is not lambda (eq. 8 of the paper)."""
    if likelihood != "continuous-bernoulli":
        return torch.sigmoid(logits)
    lam = torch.sigmoid(logits.double()).clamp(1e-12, 1 - 1e-12)
    far = (lam - 0.5).abs() > 1e-3
    safe = torch.where(far, lam, torch.full_like(lam, 0.25))
    exact = safe / (2 * safe - 1) + 1 / (2 * torch.atanh(1 - 2 * safe))
    taylor = 0.5 + (lam - 0.5) / 3  # the mean's slope at 1/2 is 1/3
    return torch.where(far, exact, taylor).to(logits.dtype)


class GaussianPrior(nn.Module):
    """p(z) = N(0, I): no parameters, and the KL to a Gaussian posterior is analytic."""

    def __init__(self, latent_dim: int):
        super().__init__()
        self.latent_dim = latent_dim

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        return gaussian_log_prob(z, torch.zeros_like(z), torch.zeros_like(z))

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The prior as a one-component mixture, so pages can treat every prior alike."""
        zeros = torch.zeros(1, self.latent_dim)
        return torch.zeros(1), zeros, zeros

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        return torch.randn(n, self.latent_dim, generator=generator)


class MixturePrior(nn.Module):
    """A mixture of diagonal Gaussians; a subclass says where the components come from.

    log p(z) = logsumexp_k [log w_k + log N(z; m_k, diag s_k^2)], computed stably.
    """

    latent_dim: int

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log weights (K,), means (K, D), log-variances (K, D))."""
        raise NotImplementedError

    def log_prob(self, z: torch.Tensor) -> torch.Tensor:
        log_w, mu, logvar = self.components()
        per_component = gaussian_log_prob(z.unsqueeze(-2), mu, logvar)  # (..., K)
        return torch.logsumexp(per_component + log_w, dim=-1)

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        log_w, mu, logvar = self.components()
        k = torch.multinomial(log_w.exp(), n, replacement=True, generator=generator)
        eps = torch.randn(n, self.latent_dim, generator=generator)
        return mu[k] + (0.5 * logvar[k]).exp() * eps


class MixtureOfGaussiansPrior(MixturePrior):
    """p(z) = sum_k w_k N(z; m_k, diag s_k^2) with learned means, variances and weights."""

    def __init__(self, latent_dim: int, n_components: int):
        super().__init__()
        self.latent_dim = latent_dim
        # Spread the means so the components do not start on top of each other.
        self.means = nn.Parameter(torch.randn(n_components, latent_dim))
        self.logvars = nn.Parameter(torch.zeros(n_components, latent_dim))
        self.logits = nn.Parameter(torch.zeros(n_components))

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return F.log_softmax(self.logits, dim=0), self.means, self.logvars


class VampPrior(MixturePrior):
    """p(z) = 1/K sum_k q(z | u_k): a mixture of the encoder's posteriors at K pseudo-inputs.

    The pseudo-inputs are learned images, stored as logits (``sigmoid`` keeps them in [0, 1]).
    The prior calls the encoder but does not own it: ``encode`` is a plain reference, so the
    encoder's weights appear once in the state dict, under the VAE's ``encoder``.
    """

    def __init__(self, encode, latent_dim: int, n_components: int, channels: int = 1):
        super().__init__()
        self.latent_dim = latent_dim
        self.encode = encode  # a bound method, not a registered submodule
        self.pseudo_logits = nn.Parameter(torch.randn(n_components, channels, 28, 28).mul_(0.1))

    @torch.no_grad()
    def init_from(self, images: torch.Tensor, eps: float = 0.05) -> None:
        """Start the pseudo-inputs at real images (clamped away from 0 and 1), a common warm start."""
        x = images[: len(self.pseudo_logits)].clamp(eps, 1 - eps)
        self.pseudo_logits[: len(x)] = torch.logit(x)

    def pseudo_inputs(self) -> torch.Tensor:
        return torch.sigmoid(self.pseudo_logits)

    def components(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(log weights (K,), means (K, D), log-variances (K, D)): uniform weights."""
        mu, logvar = self.encode(self.pseudo_inputs())
        log_w = torch.full((len(mu),), -math.log(len(mu)), device=mu.device)
        return log_w, mu, logvar


CONV_CHANNELS = (16, 32)  # 28x28 -> 14x14 -> 7x7
CONV_FEATURES = CONV_CHANNELS[1] * 7 * 7


class Encoder(nn.Module):
    """x (B, channels, 28, 28), and for a conditional VAE a label vector y (B, C) -> (mu, logvar), each (B, D).

    ``features`` turns the image into a vector (a flatten, or two stride-2 convolutions); the
    label is appended to that vector; ``head`` maps it to the posterior's parameters. With
    ``outputs=1`` it gives the code alone, (z,): a deterministic autoencoder's encoder, the same network.
    """

    def __init__(self, latent_dim: int, hidden_dim: int, architecture: str = "mlp", n_classes: int = 0,
                 channels: int = 1, outputs: int = 2):
        super().__init__()
        self.outputs = outputs
        if architecture == "mlp":
            self.features = nn.Flatten()
            layers = [nn.Linear(channels * 784 + n_classes, hidden_dim), nn.ReLU(),
                      nn.Linear(hidden_dim, hidden_dim), nn.ReLU()]
        else:
            c1, c2 = CONV_CHANNELS
            self.features = nn.Sequential(
                nn.Conv2d(channels, c1, 4, stride=2, padding=1), nn.ReLU(),
                nn.Conv2d(c1, c2, 4, stride=2, padding=1), nn.ReLU(), nn.Flatten(),
            )
            layers = [nn.Linear(CONV_FEATURES + n_classes, hidden_dim), nn.ReLU()]
        self.head = nn.Sequential(*layers, nn.Linear(hidden_dim, outputs * latent_dim))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, ...]:
        h = self.features(x)
        if y is not None:
            h = torch.cat([h, y], dim=1)
        return self.head(h).chunk(self.outputs, dim=-1)


class Decoder(nn.Module):
    """z (B, D), and for a conditional VAE y (B, C) -> logits (B, channels, 28, 28)."""

    def __init__(self, latent_dim: int, hidden_dim: int, architecture: str = "mlp", n_classes: int = 0,
                 channels: int = 1):
        super().__init__()
        if architecture == "mlp":
            self.head = nn.Sequential(
                nn.Linear(latent_dim + n_classes, hidden_dim), nn.ReLU(),
                nn.Linear(hidden_dim, hidden_dim), nn.ReLU(), nn.Linear(hidden_dim, channels * 784),
            )
            self.body = nn.Unflatten(1, (channels, 28, 28))
        else:
            c1, c2 = CONV_CHANNELS
            self.head = nn.Sequential(
                nn.Linear(latent_dim + n_classes, hidden_dim), nn.ReLU(),
                nn.Linear(hidden_dim, CONV_FEATURES), nn.ReLU(),
            )
            self.body = nn.Sequential(
                nn.Unflatten(1, (c2, 7, 7)),
                nn.ConvTranspose2d(c2, c1, 4, stride=2, padding=1), nn.ReLU(),
                nn.ConvTranspose2d(c1, channels, 4, stride=2, padding=1),
            )

    def forward(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        if y is not None:
            z = torch.cat([z, y], dim=1)
        return self.body(self.head(z))


@dataclass
class VAEConfig:
    """Hyperparameters of a VAE; the training CLI's flags map onto these fields."""

    family: str = "vae"
    dataset: str = "binarized-mnist"
    latent_dim: int = 2
    hidden_dim: int = 512
    prior: str = "gaussian"  # one of PRIORS
    n_components: int = 16  # mixture components, or VampPrior pseudo-inputs
    beta: float = 1.0  # weight of the KL term in the training loss (beta-VAE)
    architecture: str = "mlp"  # one of ARCHITECTURES
    n_classes: int = 0  # > 0: a conditional VAE, p(x|z,y) and q(z|x,y) with y one-hot over n_classes
    likelihood: str = "bernoulli"  # p(x|z), one of LIKELIHOODS
    sigma: float = 0.1  # the Gaussian likelihood's fixed standard deviation (the learned one starts here)
    image_channels: int = 1  # 3 for the coloured datasets


class VAE(HubModel):
    """A VAE with a choice of likelihood and prior, MLP or conv networks, optionally conditional.

    Every method that sees images takes the label ``y`` too; it is required for a conditional
    model (``n_classes > 0``) and refused otherwise. ``y`` is either integer classes (B,) or any
    (B, n_classes) vector, such as a point between two one-hot codes.
    """

    config_class = VAEConfig
    config_limits = {"latent_dim": (1, 512), "hidden_dim": (1, 4096), "n_components": (1, 4096), "beta": (0, 1e4),
                     "n_classes": (0, 1000), "prior": PRIORS, "architecture": ARCHITECTURES, "family": ("vae",),
                     "dataset": DATASET_NAMES, "likelihood": LIKELIHOODS, "sigma": (1e-3, 10), "image_channels": (1, 3)}
    sampler_name = "decoder means of prior draws"

    def __init__(self, config: VAEConfig):
        super().__init__(config)
        if config.prior not in PRIORS:
            raise ValueError(f"prior must be one of {PRIORS}, not {config.prior!r}")
        if config.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, not {config.architecture!r}")
        if config.latent_dim < 1 or config.hidden_dim < 1 or config.n_components < 1 or config.n_classes < 0:
            raise ValueError("latent_dim, hidden_dim and n_components must be positive, n_classes >= 0")
        if config.n_classes and config.prior == "vamp":
            raise ValueError("a conditional VAE with a VampPrior would need labelled pseudo-inputs; "
                             "use the gaussian or mog prior")
        if config.likelihood not in LIKELIHOODS:
            raise ValueError(f"likelihood must be one of {LIKELIHOODS}, not {config.likelihood!r}")
        if config.image_channels != image_channels(config.dataset):
            raise ValueError(f"{config.dataset} images have {image_channels(config.dataset)} channels, "
                             f"not {config.image_channels}")
        nets = (config.latent_dim, config.hidden_dim, config.architecture, config.n_classes, config.image_channels)
        self.encoder = Encoder(*nets)
        self.decoder = Decoder(*nets)
        if config.likelihood == "gaussian-learned":
            self.log_sigma = nn.Parameter(torch.tensor(math.log(config.sigma)))
        if config.prior == "gaussian":
            self.prior = GaussianPrior(config.latent_dim)
        elif config.prior == "mog":
            self.prior = MixtureOfGaussiansPrior(config.latent_dim, config.n_components)
        else:
            self.prior = VampPrior(self.encoder.forward, config.latent_dim, config.n_components, config.image_channels)

    def headline(self) -> str:
        c = self.config
        prior = {"gaussian": "standard Gaussian", "mog": f"mixture of {c.n_components} Gaussians",
                 "vamp": f"VampPrior ({c.n_components} pseudo-inputs)"}.get(c.prior, c.prior)
        kind = ("conditional " if c.n_classes else "") + ("conv" if c.architecture == "conv" else "MLP")
        beta = f", beta {c.beta:g}" if c.beta != 1 else ""
        likelihood = "" if c.likelihood == "bernoulli" else f", {self.likelihood_text()} likelihood"
        return f"{kind} VAE, {prior} prior, latent {c.latent_dim}{beta}{likelihood}"

    def likelihood_text(self) -> str:
        """p(x|z) in words: "Bernoulli", "Gaussian (sigma 0.1)", "Gaussian (sigma learned, now 0.08)"..."""
        c = self.config
        if c.likelihood == "gaussian":
            return f"Gaussian (sigma {c.sigma:g})"
        if c.likelihood == "gaussian-learned":
            return f"Gaussian (sigma learned, now {self.log_sigma.exp().item():.3g})"
        return {"bernoulli": "Bernoulli", "continuous-bernoulli": "continuous Bernoulli"}[c.likelihood]

    def unused_fields(self) -> set[str]:
        unused = {"n_components"} if self.config.prior == "gaussian" else set()
        return unused | ({"sigma"} if self.config.likelihood not in ("gaussian", "gaussian-learned") else set())

    def describe(self) -> str:
        c = self.config
        prior = {
            "gaussian": "a standard Gaussian N(0, I)",
            "mog": f"a mixture of {c.n_components} Gaussians with learned means, variances and weights",
            "vamp": f"a VampPrior with {c.n_components} learned pseudo-inputs",
        }[c.prior]
        label = f" and the one-hot label ({c.n_classes} classes)" if c.n_classes else ""
        pixels = 784 * c.image_channels
        out = f"the parameters of {pixels} pixels' {self.likelihood_text()} p(x|z)"
        if c.architecture == "mlp":
            nets = (f"Encoder: MLP on the {pixels} pixels{label}, {c.hidden_dim}-{c.hidden_dim} (ReLU), to the mean "
                    f"and log-variance of a {c.latent_dim}-dimensional Gaussian q(z|x). Decoder: MLP on z{label}, "
                    f"{c.hidden_dim}-{c.hidden_dim}-{pixels} (ReLU), to {out}.")
        else:
            a, b = CONV_CHANNELS
            nets = (f"Encoder: two 4x4 stride-2 convolutions ({a} and {b} channels, ReLU; 28x28 to 7x7), then "
                    f"on those features{label} a {c.hidden_dim}-unit layer, to the mean and log-variance of a "
                    f"{c.latent_dim}-dimensional Gaussian q(z|x). Decoder: the mirror image, z{label} through "
                    f"{c.hidden_dim} units to {b}x7x7, two 4x4 stride-2 transposed convolutions to {out}.")
        return f"{nets} Prior: {prior}. Trained on {c.dataset} with KL weight beta = {c.beta:g}."

    def condition(self, y: torch.Tensor | None, batch: int) -> torch.Tensor | None:
        """The networks' label input: one-hot for integer classes, any vector as given (``as_condition``)."""
        return as_condition(y, batch, self.config.n_classes, "VAE")

    def encode(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Mean and log-variance of the posterior q(z|x) (q(z|x,y) if conditional), each (B, latent_dim)."""
        return self.encoder(x, self.condition(y, len(x)))

    def decode(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The decoder's logits f(z), shaped (B, channels, 28, 28): p(x|z)'s parameters (p(x|z,y) if conditional)."""
        return self.decoder(z, self.condition(y, len(z)))

    def log_px_given_z(self, logits: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """log p(x|z) per image under this model's likelihood (see :func:`log_likelihood`)."""
        log_sigma = self.log_sigma if self.config.likelihood == "gaussian-learned" else math.log(self.config.sigma)
        return log_likelihood(logits, x, self.config.likelihood, log_sigma)

    def elbo_terms(self, x: torch.Tensor, y: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """The two terms of the ELBO per example: (E_q[log p(x|z)], KL(q(z|x) || p(z))).

        ELBO(x) = E_{q(z|x)}[log p(x|z)] - KL(q(z|x) || p(z)).
        With the Gaussian prior the KL is analytic. With the mixture or VampPrior it has no
        closed form, so we use the single-sample Monte Carlo estimate with the same z:
        KL ~= log q(z|x) - log p(z),  z = mu + sigma * eps,  eps ~ N(0, I)  (reparameterised).
        A conditional VAE (Sohn et al. 2015) conditions both q and p(x|z) on y: ELBO(x | y).
        """
        mu, logvar = self.encode(x, y)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        logits = self.decode(z, y)
        log_px_given_z = self.log_px_given_z(logits, x)
        if isinstance(self.prior, GaussianPrior):
            kl = kl_to_standard_normal(mu, logvar)
        else:
            kl = gaussian_log_prob(z, mu, logvar) - self.prior.log_prob(z)
        return log_px_given_z, kl

    def elbo(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The evidence lower bound log p(x) >= ELBO(x), one value per example, in nats."""
        log_px_given_z, kl = self.elbo_terms(x, y)
        return log_px_given_z - kl

    def loss(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """Training loss: the negative beta-weighted ELBO, averaged over the batch (Higgins et al. 2017)."""
        log_px_given_z, kl = self.elbo_terms(x, y)
        return -(log_px_given_z - self.config.beta * kl).mean()

    @torch.no_grad()
    def log_importance_weights(self, x: torch.Tensor, k: int, y: torch.Tensor | None = None,
                               chunk: int = 4096) -> torch.Tensor:
        """log w_i = log p(x, z_i) - log q(z_i|x) for z_i ~ q(z|x), shaped (k, B).

        Their mean is a k-sample ELBO estimate; their log-mean-exp is the IWAE bound. Samples are
        decoded ``chunk`` images at a time to bound memory.
        """
        y = self.condition(y, len(x))
        mu, logvar = self.encoder(x, y)
        std = (0.5 * logvar).exp()
        per_step = max(1, chunk // len(x))
        log_w = []
        for start in range(0, k, per_step):
            n = min(per_step, k - start)
            z = mu + std * torch.randn(n, *mu.shape, device=mu.device)  # (n, B, D)
            logits = self.decoder(z.flatten(0, 1), None if y is None else y.repeat(n, 1))  # (n * B, C, 28, 28)
            log_px_given_z = self.log_px_given_z(logits, x.repeat(n, 1, 1, 1)).view(n, len(x))
            log_w.append(log_px_given_z + self.prior.log_prob(z) - gaussian_log_prob(z, mu, logvar))
        return torch.cat(log_w)

    @torch.no_grad()
    def iwae(self, x: torch.Tensor, k: int = 100, y: torch.Tensor | None = None, chunk: int = 4096) -> torch.Tensor:
        """Importance-weighted bound (Burda et al. 2016), one value per example, in nats.

        log p(x) >= L_k = E[log 1/k sum_i p(x, z_i) / q(z_i|x)],  z_i ~ q(z|x).
        L_1 is the ELBO; L_k grows with k and tends to log p(x), so for large k it is the usual
        estimate of the test log-likelihood.
        """
        return torch.logsumexp(self.log_importance_weights(x, k, y, chunk), dim=0) - math.log(k)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, y: torch.Tensor | None = None) -> torch.Tensor:
        """n images in [0, 1]: the means of p(x|z) at z ~ p(z).

        A conditional VAE without y samples the classes 0, 1, 2, ... in turn.
        """
        if self.config.n_classes and y is None:
            y = torch.arange(n) % self.config.n_classes
        return self.decode_mean(self.prior.sample(n, generator=generator), y)

    @torch.no_grad()
    def decode_mean(self, z: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """E[x | z], the mean of p(x|z) (p(x|z,y) if conditional), sigmoid(f(z)) but for the continuous
        Bernoulli (:func:`likelihood_mean`): the image a code decodes to, in [0, 1]."""
        return likelihood_mean(self.decode(z, y), self.config.likelihood)

    @torch.no_grad()
    def reconstruct(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        """The mean of p(x | z = mu(x)): the decoding of the posterior mean."""
        return self.decode_mean(self.encode(x, y)[0], y)



@torch.no_grad()
def log_px_by_quadrature(model: VAE, x: torch.Tensor, half_width: float = 6.0, points: int = 241,
                         callback=None) -> torch.Tensor:
    """log p(x) = log int p(x|z) p(z) dz of a VAE with a 2-D latent, by the midpoint rule on a square grid of
    ``points`` x ``points`` codes over [-w, w]^2: log sum_j p(x|z_j) p(z_j) + log(dz^2). Exact to the grid's
    resolution (the posterior of a sharp digit is a few hundredths wide: 241 points over [-6, 6] are 0.05 apart),
    and possible only because z has two dimensions: with 32 the grid would need 241^32 points, which is why a
    VAE maximises the ELBO instead. ``callback(i, n)`` is called after each of n chunks of codes."""
    if model.config.latent_dim != 2 or model.config.n_classes:
        raise ValueError("quadrature over z needs an unconditional VAE with a 2-D latent")
    edges = torch.linspace(-half_width, half_width, points + 1)
    centres = (edges[1:] + edges[:-1]) / 2
    z = torch.cartesian_prod(centres, centres)  # (points^2, 2)
    dz = (edges[1] - edges[0]).item()
    log_joint = []  # (points^2, B): each code decoded once, its likelihood taken for every image
    chunks = z.split(2048)
    for i, chunk in enumerate(chunks):
        if callback:
            callback(i, len(chunks))
        logits = model.decode(chunk)
        log_px = torch.stack([model.log_px_given_z(logits, image.expand(len(chunk), -1, -1, -1)) for image in x], 1)
        log_joint.append(log_px + model.prior.log_prob(chunk).unsqueeze(1))
    return torch.logsumexp(torch.cat(log_joint), 0) + 2 * math.log(dz)
