"""Conditional VAE: samples per class, and conditions between classes that training never showed."""

import streamlit as st
import torch

from app_pages.common import load_test_set, model_card, pick_checkpoint, show_code, show_images
from genmodels.data import class_names
from genmodels.latent import condition_path
from genmodels.vae import VAE

COLUMNS = 8  # samples per class
STEPS = 11  # conditions between two classes


def introduction() -> None:
    st.title("Conditional VAE: choosing the class, keeping the style")
    st.markdown(
        "A conditional VAE (Sohn et al., 2015) gives the label $y$ to both the encoder and the decoder. The "
        "decoder then no longer has to store *which* digit it draws in $z$: the label says that, and $z$ is free "
        "to hold the **style** (slant, thickness, size). Fix $z$ and change $y$: the same style, another digit."
    )
    st.latex(r"\log p(x\mid y) \;\ge\; \mathbb{E}_{q(z\mid x, y)}\big[\log p(x\mid z, y)\big]"
             r" - \mathrm{KL}\big(q(z\mid x, y)\,\|\,p(z)\big)")
    st.markdown(
        "**Questions** (Graz, topic cVAE): do the class-conditional samples look like their class? What happens "
        "when the decoder gets a condition vector it never saw in training, such as a point between two one-hot "
        "codes?"
    )


def show_per_class(model: VAE, names: list[str]) -> int:
    """Each column one z, decoded with every label; returns the seed chosen."""
    st.subheader("Samples per class")
    st.markdown("Each column is one $z$ from the prior, decoded with each label in turn (rows): the style stays "
                "within a column, the class changes down it.")
    seed = int(st.number_input("Seed for z", 0, 10_000, 0, key="cvae_seed"))
    n_classes = model.config.n_classes
    z = model.prior.sample(COLUMNS, generator=torch.Generator().manual_seed(seed))
    grid = model.decode_mean(z.repeat(n_classes, 1), torch.arange(n_classes).repeat_interleave(COLUMNS))
    show_images(grid, nrow=COLUMNS, height=520, title="rows: " + ", ".join(names))
    return seed


def between_controls(names: list[str]) -> tuple[int, int, tuple[float, float]]:
    """(class a, class b, range of t)."""
    c1, c2, c3 = st.columns(3)
    n = len(names)
    a = c1.selectbox("Class a", range(n), index=min(1, n - 1), format_func=names.__getitem__, key="class_a")
    b = c2.selectbox("Class b", range(n), index=min(7, n - 1), format_func=names.__getitem__, key="class_b")
    t_range = c3.slider("Range of t", -1.0, 2.0, (0.0, 1.0), step=0.25, key="t_range")
    return a, b, t_range


def show_between(model: VAE, names: list[str], seed: int) -> None:
    st.subheader("Between two classes")
    st.markdown(
        "The condition $y = (1 - t)\\,e_a + t\\,e_b$ mixes the one-hot codes of classes a and b. Only $t = 0$ "
        "and $t = 1$ were seen in training; everything between, and beyond (t < 0 or t > 1), is new to the "
        "decoder. Because the decoder is a smooth function of $y$, it still draws something, often a plausible "
        "morph, sometimes a blend that is neither class: the network was never asked what such a $y$ should mean."
    )
    a, b, t_range = between_controls(names)
    ts = torch.linspace(t_range[0], t_range[1], STEPS)
    conditions = condition_path(a, b, ts, model.config.n_classes)
    rows = 4
    z = model.prior.sample(rows, generator=torch.Generator().manual_seed(seed + 1))
    grid = model.decode_mean(z.repeat_interleave(STEPS, 0), conditions.repeat(rows, 1))
    show_images(grid, nrow=STEPS, height=300, title="columns, t = " + ", ".join(f"{t:.2g}" for t in ts.tolist())
                + f" ({names[a]} at t = 0, {names[b]} at t = 1)")


def show_analogies(model: VAE, names: list[str]) -> None:
    st.subheader("Same style, every class")
    st.markdown("Encode a test digit with its own label, keep its code $z$, and decode it with every label: an "
                "analogy machine.")
    images, labels = load_test_set(model.config.dataset)
    index = int(st.number_input(f"Test image number (0 to {len(images) - 1})", 0, len(images) - 1, 0, key="cvae_digit"))
    x = images[index: index + 1]
    n_classes = model.config.n_classes
    with torch.no_grad():
        mu, _ = model.encode(x, torch.tensor([int(labels[index])]))
    analogies = model.decode_mean(mu.repeat(n_classes, 1), torch.arange(n_classes))
    show_images(torch.cat([x, analogies]), nrow=n_classes + 1, height=130,
                title=f"the test digit ({names[int(labels[index])]}), then its style as {names[0]} ... {names[-1]}")


introduction()
model: VAE = pick_checkpoint(__file__, key="checkpoint_cvae")
names = class_names(model.config.dataset)
seed = show_per_class(model, names)
show_between(model, names, seed)
show_analogies(model, names)
show_code(VAE.condition, condition_path, VAE.elbo_terms, VAE.decode_mean)
model_card(model)
