"""VAE priors: the prior against the aggregate posterior, and the test log-likelihood."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    compute_slow,
    encoded_test_set,
    lazy_tabs,
    load_test_set,
    long_computation,
    model_card,
    model_key,
    pick_checkpoint,
    refused_when_hosted,
    show_code,
    show_images,
)
from genmodels import figures, latent
from genmodels.data import class_names
from genmodels.gaussian import kl_to_standard_normal
from genmodels.vae import VAE, MixturePrior, VampPrior


def introduction() -> None:
    st.title("VAE priors: prior versus aggregate posterior")
    st.markdown(
        "A variational autoencoder learns an encoder $q(z\\mid x)$ and a decoder $p(x\\mid z)$ by maximising "
        "the evidence lower bound (ELBO). The prior $p(z)$ is what we sample from to generate; the **aggregate "
        "posterior** $q(z) = \\frac{1}{N}\\sum_n q(z\\mid x_n)$ is where the encoder actually puts the data. "
        "Samples are only good where the two agree: a region the prior covers but no data reaches decodes to "
        "something that is not a digit."
    )
    st.latex(r"\log p(x) \;\ge\; \mathcal{L}(x) = \mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]"
             r" - \mathrm{KL}\big(q(z\mid x)\,\|\,p(z)\big)")
    st.markdown(
        "**Questions this page answers** (DTU 02460, mini-project 1, Part A): how well does each prior match "
        "the aggregate posterior? How does the test log-likelihood compare across a standard Gaussian, a "
        "mixture of Gaussians and a VampPrior? Choose a checkpoint to compare; each was trained with the same "
        "encoder and decoder and a different prior."
    )


def plot_controls(n_test: int) -> tuple[int, bool, int]:
    """The plot's controls; returns (points, posterior as means?, picked test index)."""
    c1, c2, c3 = st.columns(3)
    n = c1.slider("Points (test images and prior samples)", 200, 5000, 2000, step=200, key="n_points")
    representation = c2.radio("Aggregate posterior drawn as", ["posterior means", "one sample per image"],
                              horizontal=True, key="representation")
    picked = c3.number_input(f"Test image number to inspect (0 to {n_test - 1})", 0, n_test - 1, 0, step=1,
                              key="picked_digit")
    return n, representation == "posterior means", int(picked)


def show_prior_against_posterior(model: VAE, images, labels, n: int, use_means: bool, picked: int) -> None:
    """The prior's samples and density over the encoded test set, in the latent plane or its projection."""
    mu, logvar = (t.numpy() for t in encoded_test_set(model, max(n, picked + 1)))
    view = latent.prior_view(model.prior, mu, logvar, n, use_means, picked)
    projection = view["projection"]

    left, right = st.columns([3, 1])
    with left:
        st.plotly_chart(figures.latent_scatter(labels=labels[:n], class_names=class_names(model.config.dataset),
                                               **view["figure"]), width="stretch")
        if not projection.is_identity:
            st.caption(f"The latent space has {model.config.latent_dim} dimensions. Both clouds are projected on "
                       f"the two principal axes of the aggregate posterior; the prior's contours are its exact "
                       f"density in that plane (a linear projection of a Gaussian mixture is a Gaussian mixture).")
    with right:
        x = images[picked: picked + 1]
        st.markdown(f"**Test image number {picked}** (class: {class_names(model.config.dataset)[int(labels[picked])]}) "
                    f"and its reconstruction")
        show_images(torch.cat([x, model.reconstruct(x)]), nrow=2, height=150)
        sigma = np.exp(0.5 * logvar[picked])
        st.caption(f"Red circle and ellipses: the mean and the 1 and 2 standard deviation contours of its "
                   f"posterior q(z|x), often far narrower than the aggregate posterior. Posterior std per "
                   f"dimension: {', '.join(f'{v:.3f}' for v in sigma[:6])}{' ...' if len(sigma) > 6 else ''}"
                   + (f"; the aggregate posterior spreads {spread:.2f} per dimension, {spread / sigma.mean():.0f} "
                      f"times wider, so at this scale the ellipses are a few pixels: zoom in on the red circle "
                      f"(drag a box on the plot)." if (spread := float(mu[:n].std(0).mean())) > 20 * sigma.mean()
                      else "."))
        if isinstance(model.prior, MixturePrior) and not isinstance(model.prior, VampPrior):  # Vamp: uniform
            log_w, _, _ = model.prior.components()
            st.markdown("**Mixture weights**")
            st.bar_chart(log_w.detach().exp().numpy(), height=150, x_label="component", y_label="weight")

    if isinstance(model.prior, VampPrior):
        st.markdown("**The VampPrior's pseudo-inputs** u_k: learned images whose posteriors make up the prior "
                    "(numbered as the stars in the plot).")
        show_images(model.prior.pseudo_inputs().detach(), nrow=16, height=120)

    st.markdown(
        "**What to look for.** Where prior samples (black crosses) land far from every coloured cloud, the "
        "decoder has never been trained and samples there are poor. Where the coloured clouds leave gaps "
        "inside the prior's mass, the KL term pays for prior mass that is wasted. The standard Gaussian forces "
        "every class towards one round blob, so classes are squeezed together and holes appear between them; a "
        "mixture can put a component on each cluster; the VampPrior is built from the encoder itself, so it "
        "follows the aggregate posterior most closely, at the cost of running the encoder on the pseudo-inputs."
    )


K_VALUES = (1, 5, 10, 50, 100, 500)
INLINE_COST = 50_000  # importance samples (all k of the curve, times images) within the script run; more: a button
HOSTED_SAMPLES = 300_000  # a hosted app's cap: about 10 s of its shared CPU
SAMPLES_PER_SECOND = 30_000  # measured: IWAE of a 2-d VAE, k = 100 on 500 images in 1.6 s, one thread, busy CPU


def compute_bounds(model: VAE, n_eval: int, k: int, callback=None) -> dict:
    """Per-image ELBO and IWAE bounds L_j for every j in K_VALUES up to k, on the first n_eval test images:
    means, standard errors of the means, and the paired gap L_k - ELBO (the same images, so its standard error
    is that of the per-image differences, far smaller than either bound's spread over images)."""
    images, _ = load_test_set(model.config.dataset)
    torch.manual_seed(0)
    x = images[:n_eval]
    ks = [j for j in K_VALUES if j <= k]
    with torch.no_grad():
        elbo = model.elbo(x)
        curve = {}
        for i, j in enumerate(ks):
            curve[j] = model.iwae(x, k=j)
            if callback:
                callback(i + 1, len(ks))
    gap = curve[k] - elbo

    def summary(values: torch.Tensor) -> tuple[float, float]:
        return values.mean().item(), (values.std() / len(values) ** 0.5).item()

    return {"elbo": summary(elbo), "iwae": summary(curve[k]), "gap": summary(gap),
            "curve": {j: summary(v) for j, v in curve.items()}}


def bounds(model: VAE, n_eval: int, k: int, where) -> dict | None:
    """``compute_bounds`` once per server; a large k x images only from a button, in the background."""
    key = ("bounds", model_key(model), n_eval, k)
    compute = lambda callback: compute_bounds(model, n_eval, k, callback)  # noqa: E731
    samples = sum(j for j in K_VALUES if j <= k) * n_eval  # the whole curve of L_j
    if samples <= INLINE_COST:
        return compute_slow(key, compute, "Computing the bounds...")
    if refused_when_hosted(samples, HOSTED_SAMPLES, "the importance samples of one run", where):
        return None
    seconds = samples / SAMPLES_PER_SECOND
    return long_computation(key, compute, "Computing the bounds...", where=where,
                            button=f"Compute: {samples:,} importance samples, about {seconds:.0f} s")


def likelihood_controls(where) -> tuple[int, int]:
    """(importance samples k, test images)."""
    k = where.select_slider("Importance samples k", K_VALUES, value=100, key="iwae_k")
    n_eval = where.select_slider("Test images", [100, 200, 500, 1000, 2000], value=200, key="n_eval")
    return k, n_eval


def likelihood_table(model: VAE, b: dict, n_eval: int, k: int) -> dict[str, list[str]]:
    """The bounds computed here, those recorded at training time, and the spread over training runs."""
    rows = {
        "quantity": [f"ELBO on {n_eval} test images", f"IWAE bound, k = {k}, on {n_eval} test images",
                     f"gap: IWAE bound minus ELBO, image by image (k = {k})"],
        "kind": ["lower bound on log p(x)", "lower bound; estimate of log p(x) for large k", "paired difference"],
        "mean (nats)": [f"{b['elbo'][0]:.2f}", f"{b['iwae'][0]:.2f}", f"{b['gap'][0]:.2f}"],
        "standard error": [f"{b['elbo'][1]:.2f}", f"{b['iwae'][1]:.2f}", f"{b['gap'][1]:.3f}"],
    }
    for name, value in model.metrics.get("eval", {}).items():
        if name.startswith("test_elbo") or name.startswith("test_iwae"):
            full_k = name.removeprefix("test_iwae_k")
            rows["quantity"].append(f"{'ELBO' if name == 'test_elbo' else f'IWAE bound, k = {full_k}'}, "
                                    f"all 10,000 test images (at training time)")
            rows["kind"].append("lower bound" if name == "test_elbo" else "estimate of log p(x)")
            rows["mean (nats)"].append(f"{value:.2f}")
            rows["standard error"].append("")
    over_runs = model.metrics.get("eval_over_runs")
    if over_runs:
        k_runs = over_runs["k"]
        for name, kind in (("test_elbo", "lower bound"), (f"test_iwae_k{k_runs}", "estimate of log p(x)")):
            label = "ELBO" if name == "test_elbo" else f"IWAE bound, k = {k_runs}"
            rows["quantity"].append(f"{label}, all test images, over {len(over_runs['runs'])} training runs "
                                    f"(seeds {over_runs['seeds']})")
            rows["kind"].append(kind)
            rows["mean (nats)"].append(f"{over_runs[name + '_mean']:.2f}")
            rows["standard error"].append(f"{over_runs[name + '_std']:.2f} (std over runs)")
    return rows


def show_likelihood(model: VAE) -> None:
    st.subheader("Test log-likelihood")
    st.markdown(
        "The ELBO is a **lower bound** on log p(x). The importance-weighted bound with k samples, "
        r"$\mathcal{L}_k = \mathbb{E}\big[\log \frac{1}{k}\sum_{i=1}^k \frac{p(x, z_i)}{q(z_i\mid x)}\big]$, is "
        "tighter as k grows (it equals the ELBO at k = 1) and is the usual **estimate** of the test "
        "log-likelihood for large k."
    )
    c1, c2 = st.columns([1, 2])
    k, n_eval = likelihood_controls(c1)
    b = bounds(model, n_eval, k, c1)
    if b is None:
        c2.info(f"k = {k} on {n_eval} test images is a long computation: the button starts it in the background "
                "and keeps the result for everyone.")
        return
    c2.table(likelihood_table(model, b, n_eval, k))
    ks = list(b["curve"])
    c2.plotly_chart(figures.lines(ks, {"IWAE bound L_k": [b["curve"][j][0] for j in ks],
                                       "ELBO": [b["elbo"][0]] * len(ks)},
                                  f"the bound tightens as k grows ({n_eval} test images)", "k (importance samples)",
                                  "nats", height=260, log_x=True), width="stretch")
    st.caption(
        "Standard errors are those of the means over the test images. The spread of log p(x) from image to image "
        "is large (tens of nats), but both bounds are computed on the same images, so their difference is "
        "measured image by image: its standard error, not the bounds' spread, says whether the gap is real."
    )


introduction()
model: VAE = pick_checkpoint(__file__)
images, labels = load_test_set(model.config.dataset)
lazy_tabs({"Prior against aggregate posterior":
           lambda: show_prior_against_posterior(model, images, labels, *plot_controls(len(images))),
           "Test log-likelihood": lambda: show_likelihood(model)}, key="priors_tab")
show_code(VAE.elbo_terms, kl_to_standard_normal, MixturePrior.log_prob, VampPrior.components, VAE.iwae)
model_card(model)
