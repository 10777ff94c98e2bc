"""Filters and samples: the RBM's weights beside the DBM's first and second layer, and samples of both scored by
the FID-MNIST judge (Leuven 4.1, DBM questions 1 and 2)."""

import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    find_judge,
    model_card,
    model_key,
    pick_checkpoint,
    pick_other,
    recorded_quality,
    show_code,
    show_images,
)
from genmodels.metrics import class_report
from genmodels.rbm import DBM, RBM, layer2_filters

FILTERS = 48  # filters shown per layer
SAMPLES = 32


def introduction() -> None:
    st.title("Filters and samples: RBM and DBM")
    st.markdown(
        "A deep Boltzmann machine stacks a second hidden layer on the first, and keeps every connection "
        "undirected: the first layer hears the pixels below it and the second layer above it,"
    )
    st.latex(r"E(v, h^1, h^2) = -v^\top b - {h^1}^\top c^1 - {h^2}^\top c^2 - {h^1}^\top W^1 v "
             r"- {h^2}^\top W^2 h^1, \qquad p(h^1_j = 1 \mid v, h^2) = \sigma\big(c^1_j + W^1_j v + "
             r"{W^2_{:j}}^\top h^2\big)")
    st.markdown(
        "It is trained greedily first (each layer as an RBM, with doubled inputs where the other layer will "
        "later add its share), then jointly: mean-field inference for the data statistics, since $p(h \\mid v)$ "
        "no longer factorises, and persistent Gibbs chains for the model statistics. A filter of the first "
        "layer is a row of $W^1$: the pixel pattern that turns its unit on. A unit of the second layer sees no "
        "pixels; its filter is drawn as $W^2_k W^1$, the first-layer filters weighted by how much it listens to "
        "each.\n\n"
        "**Questions** (Leuven 4.1, DBM questions 1 and 2): how do the RBM's filters differ from the DBM's, and "
        "the DBM's first layer from its second? Are the DBM's samples better than the RBM's?"
    )


def strongest(filters: torch.Tensor, n: int) -> torch.Tensor:
    """The n filters (rows) with the largest norm, each scaled to [0, 1] for display."""
    order = filters.norm(dim=1).argsort(descending=True)[:n]
    f = filters[order]
    low, high = f.min(1, keepdim=True).values, f.max(1, keepdim=True).values
    return ((f - low) / (high - low).clamp(min=1e-8)).reshape(-1, 1, 28, 28)


def show_filters(rbm: RBM | None, rbm_name: str, dbm: DBM) -> None:
    st.subheader("Filters")
    columns = st.columns(3 if rbm is not None else 2)
    panels = [("DBM, first layer (rows of W1)", dbm.weight1.detach()),
              ("DBM, second layer (W2 W1)", layer2_filters(dbm).detach())]
    if rbm is not None:
        panels.insert(0, (f"{rbm_name} (rows of W)", rbm.weight.detach()))
    for column, (title, filters) in zip(columns, panels, strict=True):
        show_images(strongest(filters, FILTERS), nrow=6, height=480, title=title, where=column)
    st.caption(f"The {FILTERS} filters of largest norm in each layer, each scaled to its own range: white pushes "
               f"the unit on, black off.")
    st.markdown(
        "The RBM's and the DBM's first-layer filters are alike: localised strokes and blobs with an "
        "inhibitory surround, pieces of digits at particular places. The second layer's are larger and more "
        "global: each is a combination of many first-layer pieces, closer to whole digits or digit parts "
        "(a loop, a slanted bar with its context), since a second-layer unit models which strokes occur "
        "together."
    )


@st.cache_data(show_spinner="Running Gibbs chains (1,000 steps)...", max_entries=16)
def _samples(_model, key: str, n: int, seed: int) -> torch.Tensor:
    return _model.sample(n, generator=torch.Generator().manual_seed(seed))


def show_samples(rbm: RBM | None, rbm_name: str, dbm: DBM, dbm_name: str) -> None:
    st.subheader("Samples")
    seed = int(st.number_input("Seed", 0, 100_000, 0, key="filters_seed"))
    judge = find_judge()
    models = [(dbm_name, dbm)] + ([(rbm_name, rbm)] if rbm is not None else [])
    columns = st.columns(len(models))
    rows = []
    for column, (name, model) in zip(columns, models, strict=True):
        images = _samples(model, model_key(model), SAMPLES, seed)
        show_images(images, nrow=8, height=300, where=column,
                    title=f"{name}: p(v | h) after {model.config.sample_steps} Gibbs steps from noise")
        row = {"model": name, "parameters": f"{model.num_parameters():,}"}
        if judge is not None:
            row["confident > 0.9, these samples"] = f"{class_report(judge.predict_proba(images))['confident_rate']:.0%}"
        sampler, quality = recorded_quality(model)
        if quality:
            row["FID-MNIST (recorded)"] = f"{quality['fid_mnist']:.1f} (n = {quality['n']:,})"
            row["confident > 0.9 (recorded)"] = f"{quality['confident_rate']:.1%}"
            if quality.get("floor_fid_mnist"):
                row["real-data floor"] = f"{quality['floor_fid_mnist']:.1f}"
        rows.append(row)
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("Recorded: `python -m train.sample_quality` on 10,000 samples from seed 0, against 10,000 "
               "training digits; the floor is 10,000 real test digits scored the same way.")


introduction()
dbm: DBM = pick_checkpoint(__file__, key="checkpoint_dbm")
dbm_name = checkpoint_label(dbm.source)
picked = pick_other("rbm", None, "rbm-500", "RBM", "filters_rbm")
rbm, rbm_name = picked if picked else (None, "")
show_filters(rbm, rbm_name, dbm)
show_samples(rbm, rbm_name, dbm, dbm_name)
show_code(DBM.mean_field, DBM.joint_gradients, layer2_filters)
model_card(dbm)
