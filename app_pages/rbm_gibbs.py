"""Gibbs sampling in an RBM: free-running chains from noise or from test digits, the free energy along the chain,
and how mixing slows as the model sharpens (Leuven 4.1, RBM question 3)."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    checkpoints_of,
    find_judge,
    lazy_tabs,
    load_or_stop,
    load_test_set,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.rbm import MIXING_CHAINS, MIXING_STEPS, RBM, mixing_curve

STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000)
MIXING_DEFAULTS = ("rbm-256-2ep", "rbm-256", "rbm-256-cd1")


def introduction() -> None:
    st.title("Gibbs sampling")
    st.markdown(
        "An RBM cannot hand out samples directly: $p(v) = e^{-F(v)}/Z$ is known only up to $Z$. But both of its "
        "conditionals factorise, so a Markov chain is cheap: draw every hidden unit given the pixels, then every "
        "pixel given the hidden units, and repeat. Its stationary distribution is the model's $p(v, h)$; "
        "started anywhere, after enough steps the chain's states are samples."
    )
    st.latex(r"h^{(t)} \sim p(h \mid v^{(t)}) = \prod_j \sigma\big(c_j + W_j v^{(t)}\big), \qquad "
             r"v^{(t+1)} \sim p(v \mid h^{(t)}) = \prod_i \sigma\big(b_i + W_{:i}^\top h^{(t)}\big)")
    st.markdown(
        "\"Enough\" is the catch. The free energy $F(v)$ is low on digits and high elsewhere; a chain rolls "
        "downhill into a valley (a digit) in a few steps, then must climb out over a ridge of improbable images "
        "to reach another. The sharper the model (more training, larger weights), the deeper the valleys and the "
        "longer the chain stays in one: it **mixes** slowly.\n\n"
        "**Question** (Leuven 4.1, RBM question 3): change the number of Gibbs steps. Can you explain the result?"
    )


def chain_controls() -> tuple[str, int, int, int]:
    c1, c2, c3, c4 = st.columns(4)
    start = c1.radio("Start the chains at", ["uniform noise", "test digits"], key="gibbs_start")
    chains = int(c2.slider("Chains", 1, 16, 8, key="gibbs_chains"))
    steps = int(c3.select_slider("Gibbs steps", options=STEPS, value=1000, key="gibbs_steps"))
    seed = int(c4.number_input("Seed", 0, 100_000, 0, key="gibbs_seed"))
    return start, chains, steps, seed


@st.cache_data(show_spinner="Running the chains...", max_entries=32)
def _trace(_model: RBM, key: str, start: str, chains: int, steps: int, seed: int) -> tuple[torch.Tensor, np.ndarray]:
    generator = torch.Generator().manual_seed(seed)
    if start == "test digits":
        images, _ = load_test_set("mnist")
        v = (images[seed % (len(images) - chains):][:chains] > 0.5).float().reshape(chains, -1)
    else:
        v = (torch.rand(chains, 784, generator=generator) < 0.5).float()
    frames, energies = _model.trace(v, steps, generator, record=STEPS)
    return torch.cat([v.reshape(1, chains, 1, 28, 28), frames]), energies.numpy()


def show_chains(model: RBM, start: str, chains: int, steps: int, seed: int) -> None:
    frames, energies = _trace(model, model_key(model), start, chains, steps, seed)
    shown = [0, *[s for s in STEPS if s <= steps]]
    st.subheader("The chains, step by step")
    rows = [0, *[i for i, s in enumerate(shown) if s in (1, 10, 100, 1000, 5000) or s == steps][1:]]
    rows = sorted(set(rows))
    show_images(frames[rows].reshape(-1, 1, 28, 28), nrow=chains, height=90 * len(rows) + 30,
                title="rows: the start, then p(v | h) after " + ", ".join(str(shown[r]) for r in rows[1:]) + " steps")
    tiles = np.stack([figures.tile(f, nrow=chains) for f in frames])[:, None]
    st.plotly_chart(figures.image_animation(tiles, ["start" if s == 0 else f"step {s}" for s in shown], height=170,
                                            title="every recorded step (press play or drag the slider)"),
                    width="stretch")
    # every step up to 100, then 200 steps evenly spaced on the chart's log axis (the same curve, fewer points)
    steps_axis = np.unique(np.concatenate([np.arange(1, min(len(energies), 100) + 1),
                                           np.geomspace(1, len(energies), 200).round().astype(int)]))
    energies = energies[steps_axis - 1]
    st.plotly_chart(figures.lines(steps_axis, {f"chain {i + 1}": energies[:, i].tolist() for i in range(chains)},
                                  "free energy F(v) of each chain's state", "Gibbs step", "F(v)", height=320,
                                  log_x=True), width="stretch")
    data_f = model.metrics.get("eval", {}).get("test_free_energy")
    st.markdown(
        "From noise, F falls steeply in the first tens of steps as the chain finds a digit-shaped valley; from a "
        "test digit it starts low and stays near the bottom. "
        + (f"For comparison, the mean free energy of the test digits is {data_f:.0f}. " if data_f else "")
        + "Then the chains wander at roughly constant F: they are exploring a valley, and now and then a chain "
        "crosses into another, which is what the step-by-step grid shows as a digit that changes identity."
    )


@st.cache_data(show_spinner=f"Running {MIXING_CHAINS} chains per model from test digits...", max_entries=16)
def _mixing(_model: RBM, key: str, _judge, judge_key: str, seed: int) -> list[float]:
    """The share of chains whose p(v | h), by the judge, still shows the digit they started at, per step."""
    images, labels = load_test_set("mnist")
    return mixing_curve(_model, _judge, images[:MIXING_CHAINS], labels[:MIXING_CHAINS], MIXING_STEPS, seed)


def mixing(model: RBM, judge) -> list[float]:
    """The curve recorded with the checkpoint (``python -m train.sample_quality --mixing``) when it was measured
    as this page would, else computed now (a second per model)."""
    recorded = model.metrics.get("mixing", {})
    if (recorded.get("steps") == list(MIXING_STEPS) and recorded.get("chains") == MIXING_CHAINS
            and recorded.get("seed") == 0 and len(recorded.get("share", [])) == len(MIXING_STEPS)):
        return recorded["share"]
    return _mixing(model, model_key(model), judge, model_key(judge), 0)


def show_mixing() -> None:
    st.subheader("Mixing slows as the model sharpens")
    judge = find_judge()
    options = checkpoints_of("rbm", required=False)
    if judge is None or not options:
        st.info("This comparison needs RBM checkpoints and the MNIST classifier (both are shipped).")
        return
    labels = [checkpoint_label(loc) for loc, _ in options]
    chosen = st.multiselect("RBMs to compare", labels, default=[m for m in MIXING_DEFAULTS if m in labels]
                            or labels[:2], key="gibbs_mixing_models")
    curves = {}
    for name in chosen:
        model = load_or_stop(options[labels.index(name)][0])
        epochs = model.metrics.get("epochs", "?")
        how = "CD-1" if not model.config.persistent else f"PCD-{model.config.cd_k}"
        curves[f"{name} ({model.config.n_hidden} hidden, {epochs} epochs, {how})"] = mixing(model, judge)
    if curves:
        st.plotly_chart(figures.lines(MIXING_STEPS, curves, f"{MIXING_CHAINS} chains started at test digits: share "
                                      "still showing their first digit", "Gibbs step", "share", height=360,
                                      log_x=True), width="stretch")
        st.caption("Curves recorded with a checkpoint (`python -m train.sample_quality CHECKPOINT --mixing --write`, "
                   "the same chains and seed) are read from its metrics.json; the others are computed here, once.")
    st.markdown(
        "Each chain starts at a test digit; the classifier reads p(v | h) at each step and the curve is the share"
        " of chains it still calls the digit they started at. The shipped RBMs answer question 3 with numbers "
        f"({MIXING_CHAINS} chains, seed 0): the 256-unit machine after 2 epochs forgets its start fast, half its "
        "chains show another digit (or none) by step 50 and about a fifth still hold on at step 1,000; the same "
        "machine after 20 epochs keeps more than half of them for all 1,000 steps. Training deepened the valleys "
        "(the free energy of test digits falls from about -206 to -404), so a chain needs far longer to climb "
        "out: sharper samples, slower mixing, and samples from 1,000 steps from noise that over-represent the "
        "digits whose valleys the chains happened to fall into (compare the chains in the first tab: they start from "
        "different noise and end in a few digits). The machine trained with CD-1 lets go as fast as the 2-epoch "
        "one, for another reason: its negative samples never left the data, so it never learned to raise the free"
        " energy of the places a free chain wanders to. Its chains from noise end in blobs, not digits (its model"
        " card's samples). PCD's chains keep moving, visit those places and push them up; annealing methods "
        "(parallel tempering, the AIS of the hyperparameters page) cross the ridges that plain Gibbs sampling "
        "cannot."
    )


introduction()
model: RBM = pick_checkpoint(__file__, key="checkpoint_gibbs")
lazy_tabs({"The chains, step by step": lambda: show_chains(model, *chain_controls()),
           "Mixing slows as the model sharpens": show_mixing}, key="gibbs_tab")
show_code(RBM.gibbs_chain, RBM.trace)
model_card(model)
