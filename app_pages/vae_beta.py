"""beta-VAE sweep: what the weight of the KL term does to reconstructions, samples and the latent space."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    available_checkpoints,
    current_source,
    encoded_test_set,
    load_model,
    load_test_set,
    model_card,
    show_code,
)
from genmodels import figures, latent
from genmodels.checkpoint import CheckpointError
from genmodels.vae import VAE

st.title("beta-VAE: trading reconstruction for a simpler latent space")
st.markdown(
    "A beta-VAE (Higgins et al., 2017) weights the KL term of the ELBO by $\\beta$. With $\\beta = 1$ it is "
    "a plain VAE. A small $\\beta$ lets the encoder spend many nats on each image and reconstruct it well; a "
    "large $\\beta$ makes every nat of information expensive, so the code keeps only the factors that pay for "
    "themselves most, and dimensions that do not pay collapse to the prior."
)
st.latex(r"\mathcal{L}_\beta(x) = \mathbb{E}_{q(z\mid x)}\big[\log p(x\mid z)\big]"
         r" - \beta\,\mathrm{KL}\big(q(z\mid x)\,\|\,\mathcal{N}(0, I)\big)")
st.markdown(
    "**Questions** (Graz, topic beta-VAE): how does $\\beta$ influence training and the generated samples? "
    "Why is the latent space pushed towards uncorrelated, independent components when $\\beta$ is large?"
)

# The sweep: unconditional VAEs with a Gaussian prior that differ only in beta.
SAME = ("dataset", "architecture", "latent_dim", "hidden_dim", "prior")
source = current_source()
try:
    candidates = [(loc, cfg) for loc, cfg in available_checkpoints(source)
                  if cfg.get("family") == "vae" and not cfg.get("n_classes") and cfg.get("prior") == "gaussian"]
except CheckpointError as err:
    st.error(f"Could not list checkpoints: {err}")
    st.stop()
sweeps: dict[tuple, dict[float, str]] = {}
for loc, cfg in candidates:
    sweeps.setdefault(tuple(cfg.get(k) for k in SAME), {})[float(cfg.get("beta", 1.0))] = loc
sweeps = {k: v for k, v in sweeps.items() if len(v) >= 2}
if not sweeps:
    st.error("The chosen source has no beta sweep: at least two Gaussian-prior VAE checkpoints that differ only "
             "in beta. Choose the shipped checkpoints in the sidebar, or train a sweep with "
             "`python -m train vae --architecture conv --latent-dim 10 --beta B --out checkpoints/beta-vae-B`.")
    st.stop()
sweep_key = max(sweeps, key=lambda k: len(sweeps[k]))
sweep = dict(sorted(sweeps[sweep_key].items()))
betas = list(sweep)
beta = st.select_slider("beta", betas, value=1.0 if 1.0 in betas else betas[0], key="beta",
                        format_func=lambda b: f"{b:g}")
try:
    model: VAE = load_model(sweep[beta], source.revision)
    sweep_models = {b: load_model(loc, source.revision) for b, loc in sweep.items()}
except CheckpointError as err:
    st.error(f"Could not load a checkpoint of the sweep: {err}")
    st.stop()
images, labels = load_test_set(model.config.dataset)


mu, logvar = encoded_test_set(model, 2000)
kl = latent.kl_per_dimension(mu, logvar)
active = latent.active_units(mu)
collapsed = int((~active).sum())

left, right = st.columns(2)
with left:
    st.markdown("**Reconstructions**: test digits (top) and the decoding of their posterior means (bottom)")
    x = images[:10]
    st.plotly_chart(figures.image_grid(torch.cat([x, model.reconstruct(x)]), nrow=10, height=150),
                    width="stretch", config={"staticPlot": True})
    st.markdown("**Samples** from the prior")
    st.plotly_chart(figures.image_grid(model.sample(30, generator=torch.Generator().manual_seed(0)), nrow=10,
                                       height=200), width="stretch", config={"staticPlot": True})
with right:
    st.plotly_chart(figures.kl_bars(kl, active), width="stretch")
    if collapsed == len(kl):
        st.warning("Posterior collapse: every latent dimension carries no information about the input "
                   "(its posterior is the prior for every image). The decoder ignores z and samples all look "
                   "alike.")
    elif collapsed:
        st.warning(f"{collapsed} of {len(kl)} latent dimensions have collapsed to the prior (grey bars): their "
                   f"posterior is the same for every image, so they carry no information. Higher beta, more "
                   f"collapsed dimensions.")
    else:
        st.info(f"All {len(kl)} latent dimensions are active (Var_x E[z_j|x] > 0.01).")

st.subheader("Latent traversals")
st.markdown("Each row changes one latent dimension of a test digit's code from -3 to 3, keeping the others; rows "
            "are sorted by KL, most informative first. Collapsed dimensions change nothing.")
c1, c2 = st.columns([1, 3])
digit = c1.number_input(f"Test digit (0 to {len(images) - 1})", 0, len(images) - 1, 0, key="traverse_digit")
with torch.no_grad():
    z0 = model.encode(images[int(digit): int(digit) + 1])[0][0]
    order = list(np.argsort(-kl))
    values = torch.linspace(-3, 3, 11)
    grid = torch.sigmoid(model.decode(latent.traversal_codes(z0, values, order)))
c1.plotly_chart(figures.image_grid(images[int(digit): int(digit) + 1], nrow=1, height=120, title="start"),
                width="stretch", config={"staticPlot": True})
c1.caption("Rows, top to bottom: " + ", ".join(f"z{j} ({kl[j]:.1f} nats)" for j in order))
c2.plotly_chart(figures.image_grid(grid, nrow=len(values), height=60 * len(order)), width="stretch",
                config={"staticPlot": True})

st.subheader("Across the sweep")
rates = [m.metrics.get("eval", {}).get("test_kl", float("nan")) for m in sweep_models.values()]
distortions = [-m.metrics.get("eval", {}).get("test_log_px_given_z", float("nan")) for m in sweep_models.values()]
c1, c2 = st.columns(2)
c1.plotly_chart(figures.rate_distortion(betas, rates, distortions, beta), width="stretch")
c2.plotly_chart(figures.correlation_heatmap(latent.correlation(mu[:, active] if active.any() else mu)),
                width="stretch")
off_diagonal = {}
for b, m in sweep_models.items():
    mb, _ = encoded_test_set(m, 2000)
    act = latent.active_units(mb)
    corr = latent.correlation(mb[:, act]) if act.sum() > 1 else np.eye(1)
    off_diagonal[b] = float(np.abs(corr[~np.eye(len(corr), dtype=bool)]).mean()) if len(corr) > 1 else 0.0
st.table({"beta": [f"{b:g}" for b in betas],
          "rate KL (nats)": [f"{r:.2f}" for r in rates],
          "distortion (nats)": [f"{d:.2f}" for d in distortions],
          "test ELBO (nats)": [f"{m.metrics.get('eval', {}).get('test_elbo', float('nan')):.2f}"
                               for m in sweep_models.values()],
          "active dimensions": [int(latent.active_units(encoded_test_set(m, 2000)[0]).sum())
                                for m in sweep_models.values()],
          "mean |corr| between active dims": [f"{off_diagonal[b]:.3f}" for b in betas]})

st.markdown(
    "**Why a large beta pushes towards independent components.** Averaged over the data, the KL term splits "
    "into three parts (Hoffman & Johnson, 2016; Chen et al., 2018): the information the code holds about the "
    "input, the **total correlation** of the aggregate posterior, $\\mathrm{KL}(q(z)\\,\\|\\,\\prod_j q(z_j))$, "
    "which is zero exactly when the dimensions are independent, and the mismatch of each $q(z_j)$ with "
    "$\\mathcal{N}(0,1)$. Multiplying the whole term by a large $\\beta$ makes correlation between dimensions "
    "expensive, because the prior is factorised. And each posterior is a *diagonal* Gaussian: when the KL "
    "budget is tight, the cheapest code puts independent factors of variation on separate axes, so the decoder "
    "can read each axis on its own (Rolinek et al., 2019). The price is in the rate-distortion plot: less "
    "information in $z$ (lower rate) means blurrier reconstructions (higher distortion)."
)

show_code(VAE.loss, VAE.elbo_terms, latent.kl_per_dimension, latent.active_units, latent.traversal_codes)
model_card(model)
