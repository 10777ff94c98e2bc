"""An autoencoder against a VAE with the same networks: reconstructions, code spaces, samples, and why the ELBO."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    checkpoints_of,
    encoded_test_set,
    lazy_tabs,
    load_or_stop,
    load_test_set,
    long_computation,
    model_card,
    model_key,
    pick_checkpoint,
    pick_other,
    recorded_quality,
    show_code,
    show_images,
)
from genmodels import figures, latent
from genmodels.autoencoder import Autoencoder, reconstruction_loss
from genmodels.vae import VAE, log_px_by_quadrature

ROW = 8  # test digits in the reconstruction rows
N_CODES = 1000  # test digits encoded for the code-space pictures and the metrics
KS = (1, 10, 100, 1000)  # importance samples for the bound against k


def introduction() -> None:
    st.title("Autoencoder against VAE: same networks, different question")
    st.markdown(
        "Both squeeze a digit through a small code and rebuild it, with the **same** encoder and decoder networks. "
        "The autoencoder learns a code $z = f(x)$ and minimises the reconstruction error alone. The VAE learns a "
        "distribution: a posterior $q(z\\mid x)$, a decoder $p(x\\mid z)$ and a prior $p(z)$, and maximises the "
        "evidence lower bound:"
    )
    st.latex(r"\underbrace{-\,\ell\big(g(f(x)),\,x\big)}_{\text{autoencoder}}"
             r"\qquad\text{against}\qquad"
             r"\underbrace{\mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]"
             r" - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)}_{\text{VAE: ELBO}(x)\;\le\;\log p(x)}")
    st.markdown(
        "**Questions** (Leuven, section 4.3): why does the VAE maximise the ELBO and not the likelihood "
        "$\\log p(x)$? How does it compare with a stacked autoencoder, and what is the reconstruction metric of "
        "each? (CMI report, problem 1): what does a VAE with a squared-error reconstruction loss do on "
        "Fashion-MNIST?"
    )



def pick_pair() -> tuple[Autoencoder, VAE]:
    """The autoencoder (the page's checkpoint box) and a VAE with its networks, data and code size."""
    left, right = st.columns(2)
    ae = pick_checkpoint(__file__, where=left)
    c = ae.config

    def same_networks(config: dict) -> bool:
        return (config.get("architecture", "mlp") == "mlp" and not config.get("n_classes")
                and config.get("latent_dim") == c.bottleneck and config.get("hidden_dim") == c.hidden_dim
                and config.get("dataset") == c.dataset and config.get("image_channels", 1) == c.image_channels)

    picked = pick_other("vae", same_networks, f"vae-gaussian-{c.bottleneck}d",
                        f"VAE with the same networks ({c.dataset}, code of {c.bottleneck})", "ae_vae", where=right)
    if picked is None:
        st.info(f"Train one with `python -m train vae --dataset {c.dataset} --latent-dim {c.bottleneck} "
                f"--hidden-dim {c.hidden_dim}` to compare.")
        st.stop()
    return ae, picked[0]


@st.cache_data(show_spinner="Reconstructing the test digits...", max_entries=16)
def reconstruction_metrics(_ae: Autoencoder, _vae: VAE, key: str, dataset: str, n: int) -> dict[str, float]:
    """Mean per digit over the first n test digits: each model's cross-entropy of its reconstruction (the VAE's at
    the mean code), and the VAE's two ELBO terms (one draw of z per digit, a fixed seed)."""
    images, _ = load_test_set(dataset)
    x = images[:n]
    torch.manual_seed(0)
    with torch.no_grad():
        log_px_given_z, kl = _vae.elbo_terms(x)
        return {"ae": reconstruction_loss(_ae.decode(_ae.encode(x)), x, "bce").mean().item(),
                "vae": reconstruction_loss(_vae.decode(_vae.encode(x)[0]), x, "bce").mean().item(),
                "log_px_given_z": log_px_given_z.mean().item(), "kl": kl.mean().item()}


def show_reconstructions(ae: Autoencoder, vae: VAE, x: torch.Tensor) -> None:
    st.subheader("Reconstructions and their metrics")
    with torch.no_grad():
        ae_x = ae.reconstruct(x)
        vae_x = vae.decode_mean(vae.encode(x)[0])
    # One picture for the three rows.
    show_images(torch.cat([x, ae_x, vae_x]), nrow=ROW, height=330,
                title="rows: test digits; the autoencoder's g(f(x)); the VAE's mean of p(x | z = mean of q(z|x))")
    m = reconstruction_metrics(ae, vae, model_key(ae) + model_key(vae), ae.config.dataset, N_CODES)
    c1, c2, c3 = st.columns(3)
    c1.metric("autoencoder: cross-entropy", f"{m['ae']:.1f} nats")
    c2.metric("VAE: cross-entropy at the mean code", f"{m['vae']:.1f} nats")
    c3.metric("VAE: ELBO", f"{m['log_px_given_z'] - m['kl']:.1f} nats")
    better = "autoencoder" if m["ae"] < m["vae"] else "VAE"
    st.markdown(
        f"Means per digit over the first {N_CODES:,} test digits, summed over the 784 pixels; the ELBO is "
        f"E[log p(x|z)] = {m['log_px_given_z']:.1f} minus KL = {m['kl']:.1f}. The autoencoder's metric is a "
        f"**distance** between an image and its reconstruction: the {better} reconstructs better here, by "
        f"{abs(m['ae'] - m['vae']):.1f} nats (all of the autoencoder's code serves reconstruction; the VAE also pays "
        f"for keeping its codes near the prior, which matters more as the code grows). The cross-entropy "
        f"$-\\sum_i [x_i \\log \\hat x_i + (1 - x_i) \\log(1 - \\hat x_i)]$ looks like a log-likelihood, but it "
        f"is one only of $x$ **given its own code**: without a distribution over codes the autoencoder gives no "
        f"probability to a new image, so it has no likelihood to report. The VAE's ELBO is a bound on "
        f"$\\log p(x)$ itself, the probability of the digit under the whole model: that is what makes it a "
        f"generative model, and what the next sections are about."
    )


def show_code_spaces(ae: Autoencoder, vae: VAE, labels: np.ndarray) -> None:
    st.subheader("Code spaces")
    codes = encoded_test_set(ae, N_CODES).numpy()
    mu = encoded_test_set(vae, N_CODES)[0].numpy()
    generator = torch.Generator().manual_seed(0)
    if ae.config.bottleneck == 2:
        draws = ae.sample_codes(N_CODES, generator).float().numpy()
        xs, ys = latent.grid_around(np.concatenate([draws, codes]))
        density = latent.density_grid(np.zeros(1), ae.code_mean.double().numpy()[None],
                                      ae.code_covariance().double().numpy()[None], xs, ys)
        st.plotly_chart(figures.latent_scatter(draws, codes, labels[:N_CODES], density=(xs, ys, density), height=460,
                                               posterior_name="code f(x)", prior_name="fitted Gaussian"),
                        width="stretch", key="ae_codes")
        prior_z = vae.prior.sample(N_CODES, generator=generator).numpy()
        xs, ys = latent.grid_around(np.concatenate([prior_z, mu]))
        density = latent.prior_density_grid(vae.prior, latent.fit_projection(mu), xs, ys)  # the identity in 2-D
        st.plotly_chart(figures.latent_scatter(prior_z, mu, labels[:N_CODES], density=(xs, ys, density), height=460,
                                               posterior_name="mean of q(z|x)", prior_name="prior"),
                        width="stretch", key="vae_codes")
        st.caption(f"Top: the autoencoder's codes of {N_CODES:,} test digits and a Gaussian fitted to its codes "
                   f"(grey). Bottom: the VAE's posterior means and its prior. Mind the axes: nothing fixes the scale "
                   f"or the place of the autoencoder's codes.")
    st.markdown(
        "The autoencoder puts each digit wherever reconstruction is easiest: classes in long thin arms or tight "
        "islands, and empty space between them. Nothing asked its codes to fill any region, so a point between "
        "the arms decodes to something no training image was mapped near. The VAE's KL term pulls every posterior "
        "towards $N(0, I)$, so its codes fill the prior's region with few holes, and a draw from the prior lands "
        "where the decoder has been trained."
    )
    ae_samples = ae.sample(32, generator=torch.Generator().manual_seed(1))
    vae_samples = vae.sample(32, generator=torch.Generator().manual_seed(1))
    left, right = st.columns(2)
    show_images(ae_samples, nrow=8, height=190, title="autoencoder: decoded draws from the fitted Gaussian",
                where=left)
    show_images(vae_samples, nrow=8, height=190, title="VAE: decoded draws from the prior", where=right)
    scores = {}
    for column, model in ((left, ae), (right, vae)):
        _, quality = recorded_quality(model)
        if quality:
            scores[column] = quality
            column.caption(f"FID-MNIST {quality['fid_mnist']:.1f}, {quality['confident_rate']:.1%} classified with "
                           f"confidence over 0.9 ({quality['n']:,} samples; lower FID is better)")
    if len(scores) == 2:
        ratio = scores[left]["fid_mnist"] / scores[right]["fid_mnist"]
        st.markdown(f"By FID-MNIST the autoencoder's draws are {ratio:.1f} times as far from real digits as the "
                    f"VAE's. The gap grows with the code: in 2 dimensions a Gaussian covers the autoencoder's few "
                    f"arms fairly well, in 32 most of its volume lies between the places real digits are encoded.")
    st.caption("Both grids decode codes drawn from a Gaussian. The autoencoder's was fitted after training to the "
               "codes of 5,000 held-out training images (their mean and full covariance), the best a Gaussian can "
               "do; the VAE's is the prior it was trained with.")


QUADRATURE = (6.0, 241)  # half-width and points a side of the grid over a 2-D code


@st.cache_data(show_spinner="Computing the bounds...", max_entries=16)
def bounds(_vae: VAE, key: str, first: int, dataset: str) -> list[float]:
    """Mean over ROW test digits of the IWAE bound at each k in KS (k = 1 is the ELBO); a fixed seed, so the same
    for every visitor."""
    images, _ = load_test_set(dataset)
    x = images[first: first + ROW]
    torch.manual_seed(0)
    return [_vae.iwae(x, k=k).mean().item() for k in KS]


def exact_log_px(vae: VAE, first: int) -> float | None:
    """Mean log p(x) of the ROW digits by quadrature, computed from a button (seconds of decoding) and kept."""
    half, points = QUADRATURE
    images, _ = load_test_set(vae.config.dataset)
    x = images[first: first + ROW]

    def compute(callback):
        with torch.no_grad():
            return log_px_by_quadrature(vae, x, half, points, callback).mean().item()

    return long_computation(("log p(x) by quadrature", model_key(vae), first, half, points), compute,
                            "Decoding the grid of codes...",
                            button=f"Compute log p(x) exactly: {points} x {points} = {points * points:,} codes "
                                   f"decoded (seconds)")


def show_why_elbo(vae: VAE, first: int) -> None:
    st.subheader("Why the ELBO, and not log p(x)?")
    st.markdown("The likelihood of a VAE is an integral over every code:")
    st.latex(r"\log p(x) = \log \int p(x\mid z)\, p(z)\, dz"
             r" = \log \mathbb{E}_{q(z\mid x)}\Big[\frac{p(x\mid z)\,p(z)}{q(z\mid x)}\Big]"
             r"\;\ge\; \mathbb{E}_{q(z\mid x)}\Big[\log \frac{p(x\mid z)\,p(z)}{q(z\mid x)}\Big] = \mathrm{ELBO}(x)")
    st.markdown(
        "The integral has no closed form (the decoder is a neural network), and estimating it by drawing $z$ "
        "from the prior wastes almost every draw: few codes explain a given digit. Jensen's inequality moves the "
        "log inside the expectation; what is left is an expectation under $q(z\\mid x)$ that **one** sample "
        "estimates without bias, and whose gradient flows through $z = \\mu(x) + \\sigma(x)\\,\\varepsilon$ "
        "(the reparameterisation trick). The gap is exactly $\\mathrm{KL}(q(z\\mid x)\\,\\|\\,p(z\\mid x))$: "
        "training pushes the bound up and the posterior approximation towards the true one at once. Averaging "
        "$k$ importance weights inside the log (IWAE, Burda et al. 2016) tightens the bound as $k$ grows:"
    )
    iwae = bounds(vae, model_key(vae), first, vae.config.dataset)
    two_d = vae.config.latent_dim == 2 and not vae.config.n_classes
    exact = exact_log_px(vae, first) if two_d else None
    series = {"IWAE bound L_k (k = 1: the ELBO)": iwae}
    if exact is not None:
        series["log p(x) by quadrature"] = [exact] * len(KS)
    st.plotly_chart(figures.lines(KS, series, "Mean bound on log p(x) over the eight chosen test digits",
                                  "importance samples k", "nats per digit", height=320, log_x=True), width="stretch")
    text = f"From k = 1 to k = {KS[-1]:,} the bound rises by {iwae[-1] - iwae[0]:.1f} nats. "
    half, points = QUADRATURE
    if exact is not None:
        text += (f"With a 2-D code the integral can be done on a grid ({points} x {points} codes over "
                 f"[-{half:g}, {half:g}]^2): log p(x) = {exact:.1f} nats, {exact - iwae[0]:.1f} above the ELBO and "
                 f"{exact - iwae[-1]:.1f} above L_{KS[-1]}. With 32 dimensions the same grid would need "
                 f"{points}^32 decoder passes: that is why the VAE trains on the bound.")
    elif two_d:
        text += ("With a 2-D code the integral itself can be computed on a grid of codes: the button above does it "
                 "and draws log p(x) on the chart.")
    else:
        text += (f"With {vae.config.latent_dim} dimensions no grid can do the integral ({points} points a side "
                 f"would be {points}^{vae.config.latent_dim} decoder passes): the bound is what can be computed.")
    st.markdown(text)


def show_likelihoods() -> None:
    st.subheader("The reconstruction loss is a likelihood: squared error is a Gaussian")
    found = checkpoints_of("vae", lambda c: c.get("dataset") == "fashion-mnist" and not c.get("n_classes"),
                           required=False)
    if len(found) < 2:
        st.info("The chosen source has fewer than two Fashion-MNIST VAEs; the shipped checkpoints have three "
                "(Bernoulli, squared error, learned sigma).")
        return
    st.markdown(
        "A VAE's reconstruction term is $\\log p(x\\mid z)$, so choosing the loss chooses the likelihood. The "
        "squared error is a Gaussian with a fixed $\\sigma$: $-\\log \\mathcal N(x; \\hat x, \\sigma^2) = "
        "\\frac{(x - \\hat x)^2}{2\\sigma^2} + \\text{const}$, and \"MSE + KL\" is $\\sigma^2 = 1/2$. The "
        "$\\sigma$ weighs reconstruction against the KL, as $\\beta$ does: a large one lets the KL win and the "
        "images blur; learning it (one $\\sigma$ for all pixels, Rybkin et al. 2021) sets the weight from the "
        "data. Below, the same Fashion-MNIST VAE with three likelihoods."
    )
    images, _ = load_test_set("fashion-mnist")
    x = images[:ROW]
    columns = st.columns(len(found))
    rows = []
    for column, (location, _) in zip(columns, sorted(found, key=lambda f: checkpoint_label(f[0])), strict=True):
        model = load_or_stop(location)
        column.markdown(f"**{checkpoint_label(location)}**: {model.likelihood_text()}")
        pictures = torch.cat([model.reconstruct(x), model.sample(16, generator=torch.Generator().manual_seed(0))])
        show_images(pictures, nrow=4, height=330, title="2 rows of reconstructions, 4 of samples", where=column)
        evaluation = model.metrics.get("eval", {})
        with torch.no_grad():
            mse = (model.reconstruct(images[:500]) - images[:500]).pow(2).mean().item()
        rows.append({"checkpoint": checkpoint_label(location), "likelihood": model.likelihood_text(),
                     "test ELBO (nats)": round(evaluation.get("test_elbo", float("nan")), 1),
                     "of which KL": round(evaluation.get("test_kl", float("nan")), 1),
                     "squared error per pixel": round(mse, 4)})
    st.dataframe(rows, hide_index=True, width="stretch")
    st.markdown(
        "The ELBOs in this table do not compare across likelihoods. The Bernoulli's is a log-**probability** of "
        "pixels read as coin flips, at most 0; a Gaussian's is a log-**density** of real numbers, which grows "
        "without bound as $\\sigma$ shrinks (a density can exceed 1). Compare the squared error, the KL (how much "
        "of the code the model uses), and the pictures; to compare likelihoods honestly, the data must be the "
        "same discrete images under every model, which is what bits per dimension on dequantized pixels does."
    )


introduction()
ae, vae = pick_pair()
images, labels = load_test_set(ae.config.dataset)
first = int(st.number_input(f"First test digit (0 to {len(images) - ROW})", 0, len(images) - ROW, 0,
                            key="ae_vae_first"))
lazy_tabs({"Reconstructions": lambda: show_reconstructions(ae, vae, images[first: first + ROW]),
           "Code spaces and samples": lambda: show_code_spaces(ae, vae, labels),
           "Why a VAE trains on a bound": lambda: show_why_elbo(vae, first),
           "Likelihoods on Fashion-MNIST": show_likelihoods}, key="ae_vae_tab")
model_card(ae)
show_code(Autoencoder.loss, VAE.elbo_terms, log_px_by_quadrature)
