"""Inpainting with an unconditional DDPM: fill in the hidden pixels of a test digit, several ways."""

import dataclasses
from dataclasses import dataclass

import streamlit as st
import torch

from app_pages.common import (
    compute_slow,
    load_test_set,
    long_computation,
    measured_seconds,
    model_card,
    model_key,
    pick_checkpoint,
    refused_when_hosted,
    show_code,
    show_images,
)
from genmodels import diffusion
from genmodels.data import class_names
from genmodels.ddpm import DDPM, INPAINTING_DEFAULT, inpainting_task

COLUMNS = 10  # states in a film strip
HOSTED_EVALUATIONS = 1000  # a hosted app's cap: the exact sampler once, or DDIM-50 with resampling
MASK_LABELS = {"left half": "the left half", "right half": "the right half", "top rows": "the top rows",
               "bottom rows": "the bottom rows", "centre square": "all but the centre square",
               "random pixels": "random pixels"}


def introduction() -> None:
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


@dataclass(frozen=True)
class Task:
    """One inpainting request: what is observed and how the rest is sampled."""

    index: int  # the test digit
    kind: str  # one of diffusion.MASKS
    rows: int | None  # observed rows, for the row masks
    fraction: float | None  # observed share, for random pixels
    n: int  # completions
    steps: int | None  # DDIM steps, or None for every DDPM step
    resample: int  # RePaint's r
    seed: int


def task_controls(n_images: int, T: int) -> Task:
    first = INPAINTING_DEFAULT  # the defaults, whose completions the checkpoint may hold ready (train.views)
    c1, c2, c3 = st.columns(3)
    index = int(c1.number_input(f"Test image number (0 to {n_images - 1})", 0, n_images - 1,
                                min(first["index"], n_images - 1), key="inpaint_digit"))
    kind = c2.selectbox("Observed pixels", diffusion.MASKS, index=diffusion.MASKS.index(first["kind"]),
                        key="inpaint_mask", format_func=MASK_LABELS.get,
                        help="What the model is shown; it fills in the rest.")
    n = int(c3.slider("Completions", 1, 8, first["n"], key="inpaint_n"))
    c1, c2, c3 = st.columns(3)
    rows = fraction = None
    if kind in ("top rows", "bottom rows"):
        rows = int(c1.slider("Rows observed", 1, 27, first["rows"], key="inpaint_rows"))
    elif kind == "random pixels":
        fraction = float(c1.slider("Share of pixels observed", 0.05, 0.95, 0.3, step=0.05, key="inpaint_fraction"))
    sampler = c2.radio("Sampler", [f"DDIM, {first['steps']} steps, eta 1 (fast)",
                                   "DDPM, every one of the T steps (exact)"], key="inpaint_sampler")
    resample = int(c3.slider("RePaint resampling r", 1, 5, first["resample"], key="inpaint_resample",
                             help="Each step is repeated r times; 1 is plain replacement."))
    seed = int(c3.number_input("Seed", 0, 100_000, first["seed"], key="inpaint_seed"))
    return Task(index, kind, rows, fraction, n, None if sampler.startswith("DDPM") else min(first["steps"], T),
                resample, seed)


def inpaint(model: DDPM, images, task: Task) -> tuple[torch.Tensor, torch.Tensor, diffusion.Trajectory | None]:
    """(the digit repeated n times, the mask, the completions' trajectory): the checkpoint's stored one for the
    first task, otherwise computed once per server; a long run (the exact sampler, resampling) only from a button,
    in the background: None until it is done."""
    settings = dataclasses.asdict(task)
    x, mask = inpainting_task(images, task.index, task.kind, task.rows, task.fraction, task.n, task.seed)
    stored = model.stored_inpainting(**settings)
    if stored is not None:
        return x, mask, stored
    cost = (model.config.T if task.steps is None else task.steps) * task.resample
    # plain values: this script's Task class is defined anew on every run, and an instance of an earlier run's
    # class never equals one of this run's, so a Task in the key would never find a kept result
    key = ("inpaint", model_key(model), dataclasses.astuple(task))
    text = f"Inpainting {task.n} completions ({cost} network evaluations)..."

    def compute(callback):
        return model.inpainting_view(images, **settings, callback=callback)

    fast = min(50, model.config.T)
    if cost <= fast:  # DDIM-50 without resampling: seconds, within the script run
        return x, mask, compute_slow(key, compute, text)
    if refused_when_hosted(cost, HOSTED_EVALUATIONS, "the network evaluations of one inpainting run"):
        return x, mask, None
    measured = measured_seconds(("inpaint", model_key(model),
                                 dataclasses.astuple(dataclasses.replace(task, steps=fast, resample=1))))
    estimate = f", about {measured / fast * cost:.0f} s here" if measured else ""
    result = long_computation(key, compute, text, button=f"Run it: {cost} network evaluations{estimate}")
    if result is None:
        st.info(f"The exact sampler and RePaint resampling cost {cost} network evaluations ({cost // fast} times the "
                f"default). The button runs them once, in the background, and keeps the result for everyone; "
                f"other settings can be changed meanwhile.")
    return x, mask, result


def show_completions(x: torch.Tensor, mask: torch.Tensor, result: diffusion.Trajectory, name: str) -> None:
    n = len(x)
    observed = torch.where(mask[:1], x[:1], torch.full_like(x[:1], 0.5))
    st.subheader(f"Completions of a {name}")
    show_images(torch.cat([x[:1], observed, result.xs[-1].clamp(0, 1)]), nrow=n + 2, height=170,
                title=f"the test digit, what the model sees (hidden pixels grey), then {n} completions")
    st.markdown(
        "Every completion keeps the observed pixels exactly. Where the observation leaves the class open (only "
        "the top rows of a 7, 9 or 4), completions differ in class as well as style; where it pins the digit "
        "down, they differ only in style: the model samples the conditional distribution, it does not pick "
        "the most likely completion."
    )


def show_trajectory(result: diffusion.Trajectory, n: int) -> None:
    st.subheader("The trajectory of the completions")
    S = len(result.timesteps)
    i = st.select_slider("Step", options=list(range(S)), value=S // 2, key=f"inpaint_step_{S}",
                         format_func=lambda j: f"t = {result.timesteps[j]}")
    left, right = st.columns(2)
    show_images(result.xs[i], nrow=min(n, 4), height=240, value_range=(-0.5, 1.5), where=left,
                title=f"x_t at t = {result.timesteps[i]}: known pixels noised to this step")
    show_images(result.x0_preds[i], nrow=min(n, 4), height=240, where=right, title="the network's prediction of x_0")
    strip = result.spread(COLUMNS)
    show_images(torch.stack([result.xs[j][0] for j in strip]), nrow=COLUMNS, height=110, value_range=(-0.5, 1.5),
                title="first completion, x_t at t = " + ", ".join(str(result.timesteps[j]) for j in strip))
    show_images(torch.stack([result.x0_preds[j][0] for j in strip]), nrow=COLUMNS, height=110,
                title="and the network's prediction of x_0 at the same steps")


introduction()
model: DDPM = pick_checkpoint(__file__, key="checkpoint_inpaint")
images, labels = load_test_set(model.config.dataset)
task = task_controls(len(images), model.config.T)
x, mask, result = inpaint(model, images, task)
if result is not None:
    show_completions(x, mask, result, class_names(model.config.dataset)[int(labels[task.index])])
    show_trajectory(result, task.n)
show_code(DDPM.inpaint, diffusion.ddpm_sample, diffusion.make_mask)
model_card(model)
