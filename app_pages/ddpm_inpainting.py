"""Inpainting with an unconditional DDPM: fill in the hidden pixels of a test digit, several ways."""

import streamlit as st
import torch

from app_pages.common import compute_slow, load_test_set, model_card, model_key, pick_checkpoint, show_code
from genmodels import diffusion, figures
from genmodels.data import class_names
from genmodels.ddpm import DDPM

st.title("Inpainting: sampling the missing pixels")
st.markdown(
    "Given the observed pixels $x^{\\text{obs}}$ of an image, inpainting draws the rest from "
    "$p_\\theta(x^{\\text{unobs}} \\mid x^{\\text{obs}})$. A DDPM trained only on whole digits can do this "
    "without retraining: run the reverse process as usual, and after every step overwrite the observed "
    "pixels with the observation noised to that step, so the network always sees a consistent noisy image "
    "and fills in the rest to match it:"
)
st.latex(r"x_{t-1} = m \odot \underbrace{\big(\sqrt{\bar\alpha_{t-1}}\,x^{\text{obs}} + "
         r"\sqrt{1-\bar\alpha_{t-1}}\,\epsilon\big)}_{\sim\, q(x_{t-1}\mid x^{\text{obs}})}"
         r" \;+\; (1-m) \odot \underbrace{x_{t-1}}_{\sim\, p_\theta(x_{t-1}\mid x_t)}")
st.markdown(
    "The replacement only tells the unknown pixels about the known ones through the network, one step at a "
    "time, so the two halves can disagree at the seam. **RePaint** (Lugmayr et al., 2022) repeats each step "
    "r times, going back to $x_t$ with fresh forward noise in between, which gives the unknown region time "
    "to harmonise with the known one, at r times the cost.\n\n"
    "**Questions** (Graz, DiffModelInpaint): are the completions plausible, and how much do they vary? Which "
    "masks are hard (the bottom rows of a 7 or a 9; the centre of an 8)? What do the sampler and resampling "
    "change?"
)

model: DDPM = pick_checkpoint("ddpm", accept=lambda c: not c.get("n_classes"), default="ddpm-linear",
                             key="checkpoint_inpaint")
T = model.config.T
images, labels = load_test_set(model.config.dataset)
names = class_names(model.config.dataset)

c1, c2, c3 = st.columns(3)
index = int(c1.number_input(f"Test digit (0 to {len(images) - 1})", 0, len(images) - 1, 7, key="inpaint_digit"))
kind = c2.selectbox("Observed pixels", diffusion.MASKS, index=diffusion.MASKS.index("top rows"), key="inpaint_mask")
n = int(c3.slider("Completions", 1, 8, 6, key="inpaint_n"))
c1, c2, c3 = st.columns(3)
rows = fraction = None
if kind in ("top rows", "bottom rows"):
    rows = int(c1.slider("Rows observed", 1, 27, 14, key="inpaint_rows"))
elif kind == "random pixels":
    fraction = float(c1.slider("Share of pixels observed", 0.05, 0.95, 0.3, step=0.05, key="inpaint_fraction"))
sampler = c2.radio("Sampler", ["DDIM, 50 steps, eta 1 (fast)", "DDPM, every one of the T steps (exact)"],
                   key="inpaint_sampler")
resample = int(c3.slider("RePaint resampling r", 1, 5, 1, key="inpaint_resample",
                         help="Each step is repeated r times; 1 is plain replacement."))
seed = int(c3.number_input("Seed", 0, 100_000, 0, key="inpaint_seed"))
steps = None if sampler.startswith("DDPM") else min(50, T)

x = images[index: index + 1].repeat(n, 1, 1, 1)
mask = diffusion.make_mask(kind, 1, rows=rows or 14, fraction=fraction or 0.5,
                           generator=torch.Generator().manual_seed(seed)).repeat(n, 1, 1, 1)
cost = (T if steps is None else steps) * resample
result = compute_slow(
    ("inpaint", model_key(model), index, kind, rows, fraction, n, steps, resample, seed),
    lambda callback: model.inpaint(x, mask, generator=torch.Generator().manual_seed(seed), steps=steps,
                                   resample=resample, return_trajectory=True, callback=callback).thinned(100),
    f"Inpainting {n} completions ({cost} network evaluations)...")

observed = torch.where(mask[:1], x[:1], torch.full_like(x[:1], 0.5))
st.subheader(f"Completions of a {names[int(labels[index])]}")
st.plotly_chart(figures.image_grid(torch.cat([x[:1], observed, result.xs[-1].clamp(0, 1)]), nrow=n + 2,
                                   height=170, title="the test digit, what the model sees (hidden pixels grey), "
                                                     f"then {n} completions"),
                width="stretch", config={"staticPlot": True})
st.markdown(
    "Every completion keeps the observed pixels exactly. Where the observation leaves the class open (only "
    "the top rows of a 7, 9 or 4), completions differ in class as well as style; where it pins the digit "
    "down, they differ only in style: the model samples the conditional distribution, it does not pick "
    "the most likely completion."
)

st.subheader("The trajectory of the completions")
S = len(result.timesteps)
i = st.select_slider("Step", options=list(range(S)), value=S // 2, key=f"inpaint_step_{S}",
                     format_func=lambda j: f"t = {result.timesteps[j]}")
left, right = st.columns(2)
left.plotly_chart(figures.image_grid(result.xs[i], nrow=min(n, 4), height=240, value_range=(-0.5, 1.5),
                                     title=f"x_t at t = {result.timesteps[i]}: known pixels noised to this step"),
                  width="stretch", config={"staticPlot": True})
right.plotly_chart(figures.image_grid(result.x0_preds[i], nrow=min(n, 4), height=240,
                                      title="the network's prediction of x_0"),
                   width="stretch", config={"staticPlot": True})
columns = 10
strip = result.spread(columns)
st.plotly_chart(figures.image_grid(torch.stack([result.xs[j][0] for j in strip]), nrow=columns, height=110,
                                   value_range=(-0.5, 1.5),
                                   title="first completion, x_t at t = "
                                         + ", ".join(str(result.timesteps[j]) for j in strip)),
                width="stretch", config={"staticPlot": True})
st.plotly_chart(figures.image_grid(torch.stack([result.x0_preds[j][0] for j in strip]), nrow=columns, height=110,
                                   title="and the network's prediction of x_0 at the same steps"),
                width="stretch", config={"staticPlot": True})

show_code(DDPM.inpaint, diffusion.ddpm_sample, diffusion.make_mask)
model_card(model)
