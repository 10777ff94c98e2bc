"""VAE math against independent references: torch.distributions, brute force, quadrature."""

import math

import pytest
import torch
from torch import distributions as D

from genmodels.vae import VAE, VAEConfig, gaussian_log_prob, kl_to_standard_normal


def test_gaussian_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    z, mu, logvar = torch.randn(3, 5, 4).unbind(0)
    ref = D.Independent(D.Normal(mu, (0.5 * logvar).exp()), 1).log_prob(z)
    assert torch.allclose(gaussian_log_prob(z, mu, logvar), ref, atol=1e-5)


def test_analytic_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(2, 6, 3).unbind(0)
    q = D.Independent(D.Normal(mu, (0.5 * logvar).exp()), 1)
    p = D.Independent(D.Normal(torch.zeros(3), torch.ones(3)), 1)
    assert torch.allclose(kl_to_standard_normal(mu, logvar), D.kl_divergence(q, p), atol=1e-5)


def test_gaussian_prior_log_prob_and_samples(tiny_vae):
    prior = tiny_vae("gaussian", latent_dim=3).prior
    z = torch.randn(10, 3)
    ref = D.Independent(D.Normal(torch.zeros(3), torch.ones(3)), 1).log_prob(z)
    assert torch.allclose(prior.log_prob(z), ref, atol=1e-5)
    s = prior.sample(20000, generator=torch.Generator().manual_seed(0))
    assert s.mean(0).abs().max() < 0.03 and (s.std(0) - 1).abs().max() < 0.03


def test_mixture_log_prob_matches_mixture_same_family(tiny_vae):
    prior = tiny_vae("mog", latent_dim=3).prior
    with torch.no_grad():
        prior.logits.copy_(torch.tensor([0.5, -1.0, 2.0, 0.0]))
        prior.logvars.copy_(torch.randn(4, 3) * 0.5)
    log_w, mu, logvar = prior.components()
    ref = D.MixtureSameFamily(D.Categorical(logits=prior.logits),
                              D.Independent(D.Normal(mu, (0.5 * logvar).exp()), 1))
    z = torch.randn(50, 3) * 2
    assert torch.allclose(prior.log_prob(z), ref.log_prob(z), atol=1e-4)


def test_mixture_samples_follow_the_weights(tiny_vae):
    prior = tiny_vae("mog", latent_dim=2).prior
    with torch.no_grad():
        prior.means.copy_(torch.tensor([[-10.0, 0], [10, 0], [0, 10], [0, -10]]))
        prior.logvars.fill_(-4.0)
        prior.logits.copy_(torch.log(torch.tensor([0.1, 0.2, 0.3, 0.4])))
        s = prior.sample(20000, generator=torch.Generator().manual_seed(1))
    nearest = torch.cdist(s, prior.means).argmin(1)
    freq = torch.bincount(nearest, minlength=4) / len(s)
    assert torch.allclose(freq, torch.tensor([0.1, 0.2, 0.3, 0.4]), atol=0.015)


def test_vamp_prior_is_the_average_posterior_of_its_pseudo_inputs(tiny_vae):
    model = tiny_vae("vamp", latent_dim=2)
    z = torch.randn(7, 2)
    with torch.no_grad():
        brute = []
        for u in model.prior.pseudo_inputs():
            mu, logvar = model.encoder(u[None])
            brute.append(D.Independent(D.Normal(mu[0], (0.5 * logvar[0]).exp()), 1).log_prob(z).exp())
        ref = torch.stack(brute).mean(0).log()
        assert torch.allclose(model.prior.log_prob(z), ref, atol=1e-4)


def test_vamp_prior_shares_the_encoder_weights(tiny_vae):
    model = tiny_vae("vamp")
    names = list(model.state_dict())
    assert not any(n.startswith("prior.encode") for n in names)
    assert "prior.pseudo_logits" in names
    with torch.no_grad():  # changing the encoder changes the prior
        before = model.prior.log_prob(torch.zeros(1, 2))
        model.encoder.head[-1].bias.add_(1.0)
        assert not torch.allclose(before, model.prior.log_prob(torch.zeros(1, 2)))


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_monte_carlo_kl_is_unbiased_against_the_analytic_one(tiny_vae, mnist_batch, prior):
    """Give the mixture/VampPrior a single N(0, I) component: its MC KL must average to the analytic KL."""
    model = tiny_vae(prior, latent_dim=2)
    with torch.no_grad():
        if prior == "mog":
            model.prior.means.zero_()
            model.prior.logvars.zero_()
        x = mnist_batch[:4]
        mu, logvar = model.encode(x)
        torch.manual_seed(0)
        model.prior.components = lambda: (torch.zeros(1), torch.zeros(1, 2), torch.zeros(1, 2))
        kl_mc = model.elbo_terms(x.repeat(4000, 1, 1, 1))[1].view(4000, 4).mean(0)
    assert torch.allclose(kl_mc, kl_to_standard_normal(mu, logvar), rtol=0.05, atol=0.05)


def tiny_exact_vae(prior: str) -> VAE:
    """A 1-D latent VAE whose log p(x) we can integrate numerically."""
    torch.manual_seed(3)
    return VAE(VAEConfig(prior=prior, latent_dim=1, hidden_dim=16, n_components=3)).eval()


def exact_log_px(model: VAE, x: torch.Tensor) -> torch.Tensor:
    """log p(x) = log int p(x|z) p(z) dz by the trapezoid rule on a fine grid."""
    z = torch.linspace(-12, 12, 6001).unsqueeze(1)
    with torch.no_grad():
        logits = model.decode(z).flatten(1)  # (G, 784)
        log_px_given_z = -torch.nn.functional.binary_cross_entropy_with_logits(
            logits[:, None, :].expand(-1, len(x), -1), x.flatten(1)[None].expand(len(z), -1, -1),
            reduction="none").sum(-1)  # (G, B)
        log_joint = log_px_given_z + model.prior.log_prob(z)[:, None]
    dz = (z[1] - z[0]).item()
    return torch.logsumexp(log_joint, dim=0) + math.log(dz)


@pytest.mark.parametrize("prior", ["gaussian", "mog", "vamp"])
def test_elbo_and_iwae_bound_the_exact_log_likelihood(mnist_batch, prior):
    model = tiny_exact_vae(prior)
    x = mnist_batch[:6]
    log_px = exact_log_px(model, x)
    torch.manual_seed(0)
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(200)]).mean(0)
        iwae_k1 = torch.stack([model.iwae(x, k=1) for _ in range(200)]).mean(0)
        iwae_5 = torch.stack([model.iwae(x, k=5) for _ in range(200)]).mean(0)
        iwae_50 = torch.stack([model.iwae(x, k=50) for _ in range(50)]).mean(0)
        iwae_big = model.iwae(x, k=20000)
    assert (elbo <= log_px + 1e-3).all()
    assert torch.allclose(iwae_k1, elbo, atol=0.02 * elbo.abs().max().item())  # L_1 is the ELBO
    assert (elbo <= iwae_5 + 1e-3).all() and (iwae_5 <= iwae_50 + 1e-3).all()  # increasing in k
    assert (iwae_50 <= log_px + 1e-3).all()
    assert torch.allclose(iwae_big, log_px, atol=0.05)  # and it converges to log p(x)


def test_iwae_never_below_the_elbo_on_a_fixed_model(tiny_vae, mnist_batch):
    """On the same samples log-mean-exp >= mean (Jensen), always; and on average over draws."""
    model = tiny_vae("mog", latent_dim=4)
    torch.manual_seed(0)
    for k in (2, 10, 100):
        log_w = model.log_importance_weights(mnist_batch, k)
        iwae = torch.logsumexp(log_w, 0) - math.log(k)
        assert (iwae >= log_w.mean(0) - 1e-4).all()
    with torch.no_grad():
        elbo = torch.stack([model.elbo(mnist_batch) for _ in range(200)]).mean(0)
        iwae_10 = torch.stack([model.iwae(mnist_batch, k=10) for _ in range(20)]).mean(0)
    assert (iwae_10 >= elbo).all()


def test_chunked_weights_have_the_right_shape_and_distribution(tiny_vae, mnist_batch):
    model = tiny_vae("gaussian", latent_dim=3)
    torch.manual_seed(0)
    a = model.log_importance_weights(mnist_batch[:4], k=300, chunk=40)  # 10 samples a chunk
    b = model.log_importance_weights(mnist_batch[:4], k=300, chunk=10**6)
    assert a.shape == b.shape == (300, 4)
    assert torch.allclose(a.mean(0), b.mean(0), atol=3 * (a.std(0) / 300**0.5).max().item())


def test_beta_weights_only_the_kl_term(tiny_vae, mnist_batch):
    model = tiny_vae("gaussian")
    torch.manual_seed(0)
    rec, kl = model.elbo_terms(mnist_batch)
    for beta in (0.5, 4.0):
        model.config.beta = beta
        torch.manual_seed(0)
        assert torch.allclose(model.loss(mnist_batch), -(rec - beta * kl).mean())


def test_public_methods_shapes_and_ranges(tiny_vae, mnist_batch):
    model = tiny_vae("vamp", latent_dim=5)
    mu, logvar = model.encode(mnist_batch)
    assert mu.shape == logvar.shape == (32, 5)
    assert model.elbo(mnist_batch).shape == (32,) and model.iwae(mnist_batch, 3).shape == (32,)
    s = model.sample(6, generator=torch.Generator().manual_seed(0))
    assert s.shape == (6, 1, 28, 28) and 0 <= s.min() and s.max() <= 1
    assert torch.equal(s, model.sample(6, generator=torch.Generator().manual_seed(0)))
    assert model.prior.sample(4).shape == (4, 5) and model.prior.log_prob(torch.zeros(3, 5)).shape == (3,)


def test_invalid_config_is_refused():
    with pytest.raises(ValueError, match="prior must be one of"):
        VAE(VAEConfig(prior="flow"))
    with pytest.raises(ValueError, match="positive"):
        VAE(VAEConfig(latent_dim=0))


def test_conv_architecture_shapes(mnist_batch):
    model = VAE(VAEConfig(architecture="conv", latent_dim=6, hidden_dim=32)).eval()
    mu, logvar = model.encode(mnist_batch)
    assert mu.shape == (32, 6) and model.decode(mu).shape == (32, 1, 28, 28)
    assert model.elbo(mnist_batch).shape == (32,) and "convolutions" in model.describe()


def test_conditional_vae_takes_labels_or_vectors(mnist_batch):
    model = VAE(VAEConfig(n_classes=10, latent_dim=3, hidden_dim=16)).eval()
    y = torch.arange(32) % 10
    torch.manual_seed(0)
    a = model.elbo(mnist_batch, y)
    torch.manual_seed(0)
    b = model.elbo(mnist_batch, torch.nn.functional.one_hot(y, 10).float())
    assert torch.equal(a, b)  # integer classes are one-hot codes
    z = torch.zeros(2, 3)
    between = model.decode(z, torch.tensor([[0.5, 0.5] + [0.0] * 8] * 2))  # a condition never seen in training
    assert between.shape == (2, 1, 28, 28)
    assert not torch.allclose(model.decode(z, torch.tensor([0, 0])), model.decode(z, torch.tensor([1, 1])))
    assert model.sample(4).shape == (4, 1, 28, 28)
    with pytest.raises(ValueError, match="is conditional"):
        model.elbo(mnist_batch)
    with pytest.raises(ValueError, match="shape"):
        model.decode(z, torch.zeros(2, 9))
    with pytest.raises(ValueError, match="not conditional"):
        VAE(VAEConfig(hidden_dim=16)).elbo(mnist_batch, y)
    with pytest.raises(ValueError, match="pseudo-inputs"):
        VAE(VAEConfig(n_classes=10, prior="vamp"))


def test_conditional_bounds_against_the_exact_conditional_likelihood(mnist_batch):
    torch.manual_seed(4)
    model = VAE(VAEConfig(latent_dim=1, hidden_dim=16, n_classes=10, prior="mog", n_components=2)).eval()
    x, y = mnist_batch[:4], torch.tensor([3, 1, 4, 1])
    z = torch.linspace(-12, 12, 6001).unsqueeze(1)
    with torch.no_grad():
        log_joint = torch.stack([
            -torch.nn.functional.binary_cross_entropy_with_logits(
                model.decode(z, y[i].repeat(len(z))).flatten(1), x[i].flatten()[None].expand(len(z), -1),
                reduction="none").sum(-1) + model.prior.log_prob(z)
            for i in range(4)], dim=1)
        log_px_given_y = torch.logsumexp(log_joint, 0) + math.log((z[1] - z[0]).item())
        elbo = torch.stack([model.elbo(x, y) for _ in range(200)]).mean(0)
        iwae = model.iwae(x, k=20000, y=y)
    assert (elbo <= log_px_given_y + 1e-3).all()
    assert torch.allclose(iwae, log_px_given_y, atol=0.05)


def test_decode_mean_is_the_bernoulli_mean_and_condition_path_mixes_one_hots(tiny_vae):
    from genmodels.latent import condition_path

    model = tiny_vae()
    z = torch.randn(5, 2)
    logits = model.decode(z)
    assert torch.allclose(model.decode_mean(z), torch.distributions.Bernoulli(logits=logits).mean)
    y = condition_path(1, 7, torch.tensor([0.0, 0.25, 1.0, 2.0]), 10)
    assert torch.equal(y[0], torch.nn.functional.one_hot(torch.tensor(1), 10).float())
    assert torch.equal(y[2], torch.nn.functional.one_hot(torch.tensor(7), 10).float())
    assert y[1, 1] == 0.75 and y[1, 7] == 0.25 and y[3, 1] == -1.0 and y[3, 7] == 2.0
    assert torch.allclose(y.sum(1), torch.ones(4))  # every condition on the line through e_a and e_b


@pytest.mark.parametrize("likelihood", ["bernoulli", "gaussian", "continuous-bernoulli"])
def test_likelihoods_against_torch_distributions(likelihood):
    from genmodels.vae import likelihood_mean, log_likelihood

    logits = torch.cat([torch.randn(3, 1, 28, 28) * 4, torch.full((1, 1, 28, 28), 1e-4)])  # and lambda near 1/2
    x = torch.rand(4, 1, 28, 28)
    lam = torch.sigmoid(logits)
    if likelihood == "bernoulli":
        reference = D.Bernoulli(logits=logits)
        x = (x > 0.5).float()
    elif likelihood == "gaussian":
        reference = D.Normal(lam, 0.3)
    else:  # in float64: torch's float32 formula loses digits near lambda = 1/2 (outside its Taylor window)
        reference = D.ContinuousBernoulli(logits=logits.double())
    ours = log_likelihood(logits, x, likelihood, math.log(0.3))
    expected = reference.log_prob(x.to(reference.mean.dtype)).flatten(1).sum(-1).float()
    assert torch.allclose(ours, expected, rtol=1e-5, atol=1e-2)
    assert torch.allclose(likelihood_mean(logits, likelihood), reference.mean.float(), atol=1e-5)


def test_likelihood_options_train_and_bound(mnist_batch):
    """Every likelihood gives a finite ELBO and gradients; the learned sigma is a parameter; colour takes 3 channels."""
    x = mnist_batch[:8]
    for likelihood in ("gaussian", "gaussian-learned", "continuous-bernoulli"):
        torch.manual_seed(0)
        model = VAE(VAEConfig(dataset="mnist", latent_dim=3, hidden_dim=16, likelihood=likelihood, sigma=0.2))
        loss = model.loss(x)
        loss.backward()
        assert torch.isfinite(loss) and model.decoder.head[0].weight.grad.abs().sum() > 0
        assert (likelihood == "gaussian-learned") == hasattr(model, "log_sigma")
        assert torch.isfinite(model.iwae(x, k=4)).all()
    model = VAE(VAEConfig(dataset="colored-mnist", image_channels=3, architecture="conv", latent_dim=3, hidden_dim=16,
                          likelihood="gaussian-learned"))
    assert model.sample(2).shape == (2, 3, 28, 28) and torch.isfinite(model.elbo(torch.rand(2, 3, 28, 28))).all()


def test_quadrature_log_px_of_a_2d_vae_agrees_with_a_large_iwae(mnist_batch):
    from genmodels.vae import log_px_by_quadrature

    torch.manual_seed(4)
    model = VAE(VAEConfig(latent_dim=2, hidden_dim=16)).eval()
    x = mnist_batch[:3]
    exact = log_px_by_quadrature(model, x, half_width=6.0, points=161)
    assert torch.allclose(exact, model.iwae(x, k=20_000), atol=0.05)  # IWAE tends to log p(x) from below
    with torch.no_grad():
        elbo = torch.stack([model.elbo(x) for _ in range(200)]).mean(0)
    assert (elbo <= exact).all()
    with pytest.raises(ValueError, match="2-D latent"):
        log_px_by_quadrature(VAE(VAEConfig(latent_dim=3, hidden_dim=8)), x)
