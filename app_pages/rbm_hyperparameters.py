"""RBM hyperparameters: hidden units, learning rate and epochs against pseudo-likelihood, reconstruction of unseen
test digits and an AIS estimate of the likelihood (Leuven 4.1, RBM questions 1 and 2)."""

import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    checkpoints_of,
    lazy_tabs,
    load_or_stop,
    load_test_set,
    model_card,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.rbm import RBM

ORDER = ("rbm-16", "rbm-64", "rbm-256", "rbm-500", "rbm-256-lr0.01", "rbm-256-lr0.2", "rbm-256-2ep", "rbm-256-cd1")
EXACT_LIMIT = 20  # hidden units up to which log Z is enumerated exactly (2^20 states)


def introduction() -> None:
    st.title("RBM hyperparameters")
    st.markdown(
        "The log-likelihood of an RBM, $\\log p(v) = -F(v) - \\log Z$, needs the partition function "
        "$Z = \\sum_v e^{-F(v)}$: a sum over $2^{784}$ images. Training never computes it: the gradient of "
        "$\\log Z$ is an expectation under the model, estimated from Gibbs chains (contrastive divergence). "
        "What training can report instead is the **pseudo-likelihood**, the product of every pixel's "
        "probability given all the others, in which $Z$ cancels:"
    )
    st.latex(r"\log \mathrm{PL}(v) = \sum_{i=1}^{784} \log p(v_i \mid v_{-i}) = "
             r"\sum_i \log \sigma\big(F(\tilde v^{(i)}) - F(v)\big), \qquad "
             r"\tilde v^{(i)} = v \text{ with pixel } i \text{ flipped}")
    st.markdown(
        "scikit-learn (and the course notebook) estimates it with one random pixel per image, times 784. "
        "**What follows** (Leuven question 1): the number that training reports is a proxy. It rewards a model "
        "for predicting each pixel from its neighbours, which a model can do well while its samples are poor "
        "(it never asks whether the whole image is likely), and it is noisy. Neither it nor the gradient tells "
        "you when the Gibbs chains behind the gradient have stopped mixing. The likelihood itself can only be "
        "estimated, after training, by **annealed importance sampling** (Salakhutdinov and Murray 2008): "
        "chains that walk from a model with known $Z$ to the RBM through 10,000 intermediate temperatures. "
        "For the 16-unit RBM, $Z$ is a sum over $2^{16}$ hidden states and is computed exactly in the tab "
        "*On the test digits*, a check of the estimate.\n\n"
        "**Question 2**: what do the number of hidden units, the learning rate and the number of iterations do?"
    )


@st.cache_data(show_spinner="Computing log Z exactly...", max_entries=8)
def _exact_log_z(_model: RBM, location: str) -> float:
    return _model.log_partition_exact()


def show_table(models: dict[str, RBM]) -> None:
    st.subheader("Every RBM of the source, on the 10,000 test digits")
    rows = []
    for name, model in models.items():
        c, e = model.config, model.metrics.get("eval", {})
        optimiser = model.metrics.get("training", {}).get("optimizers", {}).get("rbm", {})
        exact = ""
        if c.n_hidden <= EXACT_LIMIT and "test_free_energy" in e:
            exact = f"{-e['test_free_energy'] - _exact_log_z(model, name):.1f}"
        rows.append({
            "checkpoint": name, "hidden": c.n_hidden, "lr": optimiser.get("lr", ""),
            "epochs": model.metrics.get("epochs", ""),
            "chains": f"PCD-{c.cd_k}" if c.persistent else f"CD-{c.cd_k}",
            "pseudo-LL": round(e["test_pseudo_likelihood"], 1) if "test_pseudo_likelihood" in e else None,
            "recon. MSE": round(e["test_reconstruction_error"], 4)
            if "test_reconstruction_error" in e else None,
            "log p, AIS": (f"{e['test_ais_log_likelihood']:.1f} ± {e['test_ais_log_z_spread']:.1f}"
                                             if "test_ais_log_likelihood" in e else ""),
            "log p, exact": exact,
            "fill error": round(e["test_fill_error_bottom_half"], 3)
            if "test_fill_error_bottom_half" in e else None,
            "time (s)": round(model.metrics.get("wall_time_s", 0)),
        })
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption(
        "In nats per test digit. lr: learning rate; chains: how the negative phase was drawn (persistent or "
        "restarted at the data, k Gibbs steps). Pseudo-LL: the pseudo-likelihood, scikit-learn's one-pixel "
        "estimate with a fixed seed. Recon. MSE: mean squared error per pixel of p(v | p(h | v)), one "
        "mean-field step. log p: the log-likelihood, estimated by AIS (100 "
        "runs, 10,000 temperatures, from the pixels' independent model; ± is the standard error of log Z over "
        "runs (AIS tends to underestimate log Z, so to overestimate the likelihood). Fill error: mean absolute "
        "error on the 14 bottom rows after 50 clamped Gibbs steps (the Reconstruct missing rows page)."
    )


def show_curves(models: dict[str, RBM]) -> None:
    st.subheader("Over training")
    runs = {name: m.metrics for name, m in models.items() if m.metrics.get("curves", {}).get("epoch")}
    st.plotly_chart(figures.epoch_curves(runs, {"pseudo-likelihood (validation)": "val_pseudo_likelihood",
                                                "reconstruction error (validation)": "val_reconstruction_error",
                                                "mean free energy of validation digits": "val_free_energy"}),
                    width="stretch")
    st.markdown(
        "**What the shipped runs show** (256 units and learning rate 0.05 unless named; PCD-1, batch 64):\n"
        "- **Hidden units.** 16 units can only sketch a digit (pseudo-likelihood -130, blurry reconstructions); "
        "64, 256 and 500 raise the pseudo-likelihood to -89, -58 and -55 and halve the reconstruction error at "
        "each step. Each unit is a feature detector the model can spend on a stroke.\n"
        "- **Learning rate.** 0.01 is still climbing after 20 epochs (-79 on the validation digits and rising); "
        "0.2 gets to -80 in three epochs and then wobbles without improving; 0.05 is in between.\n"
        "- **Iterations.** The curves keep rising slowly for 20 epochs while the mean free energy of the data keeps "
        "falling: the valleys deepen, which is what makes Gibbs chains mix slowly (the Gibbs sampling page).\n"
        "- **The proxy and the likelihood disagree** (question 1 in numbers): by pseudo-likelihood the CD-1 "
        "machine is the best of the 256-unit ones (-53.5) and the 0.2 learning rate as good as 0.01; by the AIS "
        "estimate of log p(v) the CD-1 machine is among the worst (-153) and 0.2 by far the worst (-265), while "
        "the slow learning rate 0.01, last but one by pseudo-likelihood, has the best likelihood of all (-103). "
        "The pseudo-likelihood only asks each pixel to agree with its neighbours; the likelihood also charges "
        "the model for every image it wrongly finds probable, such as the blobs that CD-1's chains fall into. "
        "The samples (Filters and samples page) side with the likelihood."
    )


def show_reconstructions(models: dict[str, RBM]) -> None:
    st.subheader("Reconstructing unseen test digits")
    c1, c2 = st.columns(2)
    first = int(c1.number_input("First test image number", 0, 9990, 0, key="hyper_first"))
    steps = int(c2.select_slider("Gibbs steps before reading p(v | h)", options=[1, 10, 100, 1000], value=1,
                                 key="hyper_steps", help="1: one up-and-down pass (what the reconstruction "
                                                         "error measures); more: the chain drifts from the digit"))
    images, _ = load_test_set("mnist")
    x = (images[first:first + 10] > 0.5).float().reshape(10, -1)
    rows = [x]
    for model in models.values():
        generator = torch.Generator().manual_seed(0)
        probs = x
        for _, probs in model.gibbs_chain(x, steps, generator):  # noqa: B007
            pass
        rows.append(probs)
    show_images(torch.cat(rows).reshape(-1, 1, 28, 28), nrow=10, height=70 * len(rows) + 40,
                title="rows: the test digits, then " + ", ".join(models))


def pick_models() -> dict[str, RBM]:
    options = checkpoints_of("rbm", what="RBM checkpoint")
    labels = [checkpoint_label(loc) for loc, _ in options]
    order = {name: i for i, name in enumerate(ORDER)}
    labels_sorted = sorted(labels, key=lambda name: (order.get(name, len(order)), name))
    default = [name for name in labels_sorted if name.startswith("rbm-")] or labels_sorted
    chosen = st.multiselect("RBMs", labels_sorted, default=default, key="hyper_models")
    if not chosen:
        st.info("Choose at least one RBM.")
        st.stop()
    return {name: load_or_stop(options[labels.index(name)][0]) for name in chosen}


introduction()
models = pick_models()
lazy_tabs({"On the test digits": lambda: show_table(models), "Over training": lambda: show_curves(models),
           "Reconstructing unseen digits": lambda: show_reconstructions(models)}, key="rbm_hyper_tab")
show_code(RBM.pseudo_likelihood, RBM.ais_log_partition)
model_card(next(iter(models.values())))
