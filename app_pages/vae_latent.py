"""Latent space explorer: decode any point of a 2-D VAE's latent plane."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    encoded_test_set,
    load_test_set,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import figures, latent
from genmodels.vae import VAE


def introduction() -> None:
    st.title("Latent space explorer")
    st.markdown(
        "A VAE with a 2-dimensional latent space can be drawn whole: every point $z$ of the plane decodes to "
        "an image, the mean of $p(x\\mid z)$. The grid shows decodings over a square of the plane; the point "
        "you move shows one decoding large, over the encoded test set. Watch how digits morph into each other "
        "along a path, and what comes out far from the data."
    )
    st.latex(r"\hat{x}(z) = \mathbb{E}[x \mid z] = \sigma\big(f_\theta(z)\big)")
    st.markdown("**Questions**: which digits are neighbours in the latent space, and why? What does the decoder "
                "produce between two clusters, and outside all of them?")


def plane_controls() -> tuple[float, int, float, float]:
    """(half-width of the decoded square, decodings per side, z1, z2)."""
    c1, c2, c3 = st.columns(3)
    extent = c1.slider("Half-width of the decoded square", 0.5, 6.0, 3.0, step=0.25)
    steps = c1.slider("Decodings per side", 5, 25, 15)
    z1 = c2.slider("z1", -extent, extent, 0.0, step=extent / 50)
    z2 = c3.slider("z2", -extent, extent, 0.0, step=extent / 50)
    return extent, steps, z1, z2


@st.cache_data(show_spinner=False, max_entries=32)
def decode_grid(_model: VAE, key: str, extent: float, steps: int) -> np.ndarray:
    """Decodings on a steps x steps grid over [-extent, extent]^2, rows from top (z2 high) to bottom."""
    return _model.decode_mean(latent.plane_grid(extent, steps)).numpy()


def show_plane(model: VAE, labels: np.ndarray, extent: float, steps: int, z1: float, z2: float) -> None:
    left, right = st.columns([3, 2])
    show_images(decode_grid(model, model_key(model), extent, steps), nrow=steps, height=620, where=left,
                title=f"decodings over [-{extent:g}, {extent:g}]², z2 upwards")
    point = model.decode_mean(torch.tensor([[z1, z2]], dtype=torch.float32))
    show_images(point, nrow=1, height=240, where=right, title=f"decoding of z = ({z1:.2f}, {z2:.2f})")
    mu, _ = encoded_test_set(model, 2000)
    scatter = figures.latent_scatter(np.array([[z1, z2]]), mu.numpy(), labels[:2000], height=380)
    scatter.data[0].update(name="your point", marker=dict(size=16, color="red", symbol="x", opacity=1))
    right.plotly_chart(scatter, width="stretch")


introduction()
model: VAE = pick_checkpoint(__file__)
_, labels = load_test_set(model.config.dataset)
show_plane(model, labels, *plane_controls())
show_code(VAE.decode_mean, latent.plane_grid, decode_grid)
model_card(model)
