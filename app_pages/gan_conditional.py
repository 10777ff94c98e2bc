"""Conditional GAN: one row per class from the same noise, and the label moved between two classes."""

import streamlit as st
import torch

from app_pages.common import find_judge, model_card, pick_checkpoint, show_code, show_images
from genmodels import figures
from genmodels.data import class_names
from genmodels.gan import GAN
from genmodels.latent import condition_path

COLUMNS = 8  # codes per class
STEPS = 11  # conditions between two classes


def introduction() -> None:
    st.title("Conditional GAN: asking for a digit")
    st.markdown(
        "A conditional GAN (Mirza and Osindero, 2014) gives the label $y$ to both networks: the generator draws "
        "$G(z, y)$, and the discriminator judges pairs, $D(x, y)$, so a well-drawn 3 labelled 7 is as fake as a "
        "blob. To win, $G$ must draw the asked-for class, and $z$ is left to hold the style."
    )
    st.latex(r"\min_G \max_D \; \mathbb{E}_{(x, y)}\big[\log D(x, y)\big] + "
             r"\mathbb{E}_{z, y}\big[\log\big(1 - D(G(z, y), y)\big)\big]")
    st.markdown(
        "**Questions** (CMI problem 3, Graz topic cGAN): does each row show its class? Does a column keep one "
        "style across classes? What does the generator draw for a label between two classes, which training "
        "never showed it?"
    )


def show_per_class(model: GAN, names: list[str]) -> int:
    """Each column one code, drawn as every class (the CMI report's figure 6); returns the seed."""
    st.subheader("One row per class, the same codes in every row")
    seed = int(st.number_input("Seed of the codes", 0, 100_000, 0, key="cgan_seed"))
    n_classes = model.config.n_classes
    z = model.sample_noise(COLUMNS, torch.Generator().manual_seed(seed))
    y = torch.arange(n_classes).repeat_interleave(COLUMNS)
    images = model.generate(z.repeat(n_classes, 1), y)
    show_images(images, nrow=COLUMNS, height=520, title="rows: " + ", ".join(names))
    judge = find_judge()
    if judge is not None:
        match = (judge.predict_proba(images).argmax(-1) == y).float().view(n_classes, COLUMNS).mean(1)
        st.caption("The judge calls these images the asked-for class: "
                   + ", ".join(f"{names[k]} {match[k]:.0%}" for k in range(n_classes))
                   + f" (all: {match.mean():.0%}).")
    recorded = model.metrics.get("eval", {}).get("test_class_match")
    if recorded is not None:
        st.caption(f"On 10,000 samples at the end of training (1,000 per class): {recorded:.1%} of the asked-for "
                   f"class.")
    return seed


def show_between(model: GAN, names: list[str], seed: int) -> None:
    st.subheader("Between two classes")
    st.markdown(
        "The label $y = (1 - t)\\,e_a + t\\,e_b$ mixes the one-hot codes of classes a and b with the codes fixed. "
        "Training only showed $t = 0$ and $t = 1$; the generator is a smooth function of $y$, so it draws "
        "something for every $t$, but the discriminator never judged these labels, and nothing asked the "
        "in-between images to be digits. Watch where the class flips, and whether it passes through a blend."
    )
    c1, c2, c3 = st.columns(3)
    n = len(names)
    a = c1.selectbox("Class a", range(n), index=min(1, n - 1), format_func=names.__getitem__, key="cgan_a")
    b = c2.selectbox("Class b", range(n), index=min(7, n - 1), format_func=names.__getitem__, key="cgan_b")
    t_range = c3.slider("Range of t", -1.0, 2.0, (0.0, 1.0), step=0.25, key="cgan_t")
    t = torch.linspace(t_range[0], t_range[1], STEPS)
    rows = 4
    z = model.sample_noise(rows, torch.Generator().manual_seed(seed + 1))
    images = model.generate(z.repeat_interleave(STEPS, 0), condition_path(a, b, t, n).repeat(rows, 1))
    show_images(images, nrow=STEPS, height=300, title=f"t from {t_range[0]:g} (left) to {t_range[1]:g} (right)")
    judge = find_judge()
    if judge is not None:
        p = judge.predict_proba(images).view(rows, STEPS, -1).mean(0)
        series = {f"p({names[a]})": p[:, a].tolist(), f"p({names[b]})": p[:, b].tolist()}
        st.plotly_chart(figures.lines(t.tolist(), series, "the judge along the label path (mean of the four rows)",
                                      "t", "probability"), width="stretch")


introduction()
model: GAN = pick_checkpoint(__file__, key="checkpoint_cgan")
names = class_names(model.config.dataset)
seed = show_per_class(model, names)
show_between(model, names, seed)
show_code(GAN.condition, condition_path, GAN.generate)
model_card(model)
