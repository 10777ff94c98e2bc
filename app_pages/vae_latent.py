"""Latent space explorer: decode any point of a 2-D VAE's latent plane."""

import numpy as np
import plotly.graph_objects as go
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


PATH_FRAMES = 10


def plane_controls(largest: float) -> tuple[float, int, tuple[float, float], tuple[float, float]]:
    """(half-width of the decoded square, decodings per side, point A, point B). The points' sliders span the whole
    encoded test set whatever the square, so changing the square keeps them where they are."""
    reach = float(max(6.0, np.ceil(largest)))
    c1, c2, c3 = st.columns(3)
    extent = c1.slider("Half-width of the decoded square", 0.5, reach, min(3.0, reach), step=0.25, key="plane_extent",
                       help=f"Up to {reach:g}: the encoded test digits reach {largest:.1f} in some coordinate.")
    steps = c1.slider("Decodings per side", 5, 25, 15, key="plane_steps")
    step = reach / 100
    a = (c2.slider("Point A: z1", -reach, reach, 0.0, step=step, key="point_a1"),
         c2.slider("Point A: z2", -reach, reach, 0.0, step=step, key="point_a2"))
    b = (c3.slider("Point B: z1", -reach, reach, min(2.0, reach), step=step, key="point_b1"),
         c3.slider("Point B: z2", -reach, reach, 0.0, step=step, key="point_b2"))
    return extent, steps, a, b


@st.cache_data(show_spinner=False, max_entries=32)
def decode_grid(_model: VAE, key: str, extent: float, steps: int) -> np.ndarray:
    """Decodings on a steps x steps grid over [-extent, extent]^2, rows from top (z2 high) to bottom."""
    return _model.decode_mean(latent.plane_grid(extent, steps)).numpy()


def show_plane(model: VAE, mu: np.ndarray, labels: np.ndarray, extent: float, steps: int,
               a: tuple[float, float], b: tuple[float, float]) -> None:
    left, right = st.columns([3, 2])
    show_images(decode_grid(model, model_key(model), extent, steps), nrow=steps, height=620, where=left,
                title=f"decodings: z1 from {-extent:g} (left) to {extent:g} (right), z2 from {extent:g} (top) "
                      f"to {-extent:g} (bottom)")
    points = model.decode_mean(torch.tensor([a, b], dtype=torch.float32))
    show_images(points, nrow=2, height=200, where=right,
                title=f"A = ({a[0]:.2f}, {a[1]:.2f}) and B = ({b[0]:.2f}, {b[1]:.2f})")
    scatter = figures.latent_scatter(np.zeros((0, 2)), mu, labels, height=420)
    scatter.add_shape(type="rect", x0=-extent, y0=-extent, x1=extent, y1=extent,
                      line=dict(color="black", width=1.5, dash="dot"))
    scatter.add_trace(go.Scatter(x=[a[0], b[0]], y=[a[1], b[1]], mode="lines+markers+text", text=["A", "B"],
                                 textposition="top center", name="the path from A to B",
                                 line=dict(color="red", width=2),
                                 marker=dict(size=14, color="red", symbol="x", line=dict(width=1, color="white"))))
    right.plotly_chart(scatter, width="stretch")
    right.caption("The encoded test digits (posterior means), the decoded square (dotted) and the path from A to B "
                  "(red, drawn above the clouds).")
    t = torch.linspace(0, 1, PATH_FRAMES)[:, None]
    path = (1 - t) * torch.tensor([a]) + t * torch.tensor([b])
    show_images(model.decode_mean(path.float()), nrow=PATH_FRAMES, height=130,
                title=f"decodings along the straight path from A to B, {PATH_FRAMES} points")
    st.markdown(
        "Along the path the decoded digit changes smoothly: the decoder is a continuous function of z. Where "
        "the path crosses the gap between two clusters of the encoded digits, the image passes through a blend "
        "of the two (a 4 opening into a 9); outside every cluster, where no training digit was encoded, the "
        "decoder has had no data and draws blurred or implausible shapes."
    )


introduction()
model: VAE = pick_checkpoint(__file__)
_, labels = load_test_set(model.config.dataset)
mu = encoded_test_set(model, 2000)[0].numpy()
show_plane(model, mu, labels[:2000], *plane_controls(float(np.abs(mu).max())))
show_code(VAE.decode_mean, latent.plane_grid, decode_grid)
model_card(model)
