"""Conditional VAE: samples per class, and conditions between classes that training never showed."""

import streamlit as st
import torch
import torch.nn.functional as F

from app_pages.common import load_test_set, model_card, pick_checkpoint, show_code
from genmodels import figures
from genmodels.data import class_names
from genmodels.vae import VAE

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

model: VAE = pick_checkpoint("vae", accept=lambda c: c.get("n_classes", 0) > 0, default="cvae-conv-mnist",
                             key="checkpoint_cvae")
names = class_names(model.config.dataset)
n_classes = model.config.n_classes

st.subheader("Samples per class")
st.markdown("Each column is one $z$ from the prior, decoded with each label in turn (rows): the style stays "
            "within a column, the class changes down it.")
seed = st.number_input("Seed for z", 0, 10_000, 0, key="cvae_seed")
columns = 8
with torch.no_grad():
    z = model.prior.sample(columns, generator=torch.Generator().manual_seed(int(seed)))
    y = torch.arange(n_classes).repeat_interleave(columns)
    grid = torch.sigmoid(model.decode(z.repeat(n_classes, 1), y))
st.plotly_chart(figures.image_grid(grid, nrow=columns, height=520, title="rows: " + ", ".join(names)),
                width="stretch", config={"staticPlot": True})

st.subheader("Between two classes")
st.markdown(
    "The condition $y = (1 - t)\\,e_a + t\\,e_b$ mixes the one-hot codes of classes a and b. Only $t = 0$ and "
    "$t = 1$ were seen in training; everything between, and beyond (t < 0 or t > 1), is new to the decoder. "
    "Because the decoder is a smooth function of $y$, it still draws something, often a plausible morph, "
    "sometimes a blend that is neither class: the network was never asked what such a $y$ should mean."
)
c1, c2, c3 = st.columns(3)
a = c1.selectbox("Class a", range(n_classes), index=min(1, n_classes - 1), format_func=names.__getitem__,
                 key="class_a")
b = c2.selectbox("Class b", range(n_classes), index=min(7, n_classes - 1), format_func=names.__getitem__,
                 key="class_b")
t_range = c3.slider("Range of t", -1.0, 2.0, (0.0, 1.0), step=0.25, key="t_range")
steps = 11
t = torch.linspace(t_range[0], t_range[1], steps)
with torch.no_grad():
    e_a, e_b = F.one_hot(torch.tensor([a, b]), n_classes).float()
    conditions = (1 - t)[:, None] * e_a + t[:, None] * e_b  # (steps, C)
    rows = 4
    z = model.prior.sample(rows, generator=torch.Generator().manual_seed(int(seed) + 1))
    grid = torch.sigmoid(model.decode(z.repeat_interleave(steps, 0), conditions.repeat(rows, 1)))
st.plotly_chart(figures.image_grid(grid, nrow=steps, height=300,
                                   title=f"t from {t_range[0]:g} (left) to {t_range[1]:g} (right)"),
                width="stretch", config={"staticPlot": True})

st.subheader("Same style, every class")
st.markdown("Encode a test digit with its own label, keep its code $z$, and decode it with every label: an "
            "analogy machine.")
images, labels = load_test_set(model.config.dataset)
index = st.number_input(f"Test digit (0 to {len(images) - 1})", 0, len(images) - 1, 0, key="cvae_digit")
x = images[int(index): int(index) + 1]
with torch.no_grad():
    mu, _ = model.encode(x, torch.tensor([int(labels[int(index)])]))
    analogies = torch.sigmoid(model.decode(mu.repeat(n_classes, 1), torch.arange(n_classes)))
st.plotly_chart(figures.image_grid(torch.cat([x, analogies]), nrow=n_classes + 1, height=130,
                                   title=f"the test digit ({names[int(labels[int(index)])]}), then its style "
                                         f"as {names[0]} ... {names[-1]}"),
                width="stretch", config={"staticPlot": True})

show_code(VAE.condition, VAE.elbo_terms, VAE.decode)
model_card(model)
