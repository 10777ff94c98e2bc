"""Reconstruct missing rows with an RBM by clamped Gibbs sampling (Leuven 4.1, questions 4 and 5), and the same
rows filled by a VAE and a DDPM, scored on one chart."""

from dataclasses import dataclass

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    lazy_tabs,
    load_test_set,
    long_computation,
    model_card,
    model_key,
    pick_checkpoint,
    pick_other,
    show_code,
    show_images,
)
from genmodels import figures, missing
from genmodels.rbm import RBM, row_mask

PLACES = ("top", "middle", "bottom", "every other", "band")
CHART_PLACES = ("top", "middle", "bottom", "every other")
CHART_ROWS = (4, 8, 12, 16, 20)  # rows removed on the chart's x axis (every other: up to 14)
RECORD = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)  # chain steps shown as frames
DDPM_STEPS = 25  # DDIM steps of the DDPM's inpainting on the chart
DDPM_SECONDS_PER_DIGIT = 3  # measured: 10 digits x 18 masks x 25 steps in 28 s, one thread, idle 2-core CPU


def introduction() -> None:
    st.title("Reconstruct missing rows")
    st.markdown(
        "An RBM is a model of the joint distribution of all pixels, so it can answer questions about some "
        "pixels given others. Clamp the observed pixels $v_o$ to their values and run block Gibbs sampling on "
        "the rest: the hidden units read the whole image, the missing pixels are redrawn from $p(v \\mid h)$, "
        "and the observed ones are put back after every step. The chain's stationary distribution is then "
        "exactly the conditional:"
    )
    st.latex(r"h \sim p(h \mid v_o, v_m), \qquad v_m \sim p(v_m \mid h) = \prod_{i \in m} "
             r"\sigma\big(b_i + W_{:i}^\top h\big) \quad\Longrightarrow\quad v_m \sim p(v_m \mid v_o)"
             r"\text{ after enough steps.}")
    st.markdown(
        "The image shown is $p(v_m = 1 \\mid h)$ at the last step: the chain's current belief about each missing "
        "pixel, grey where it is unsure.\n\n"
        "**Questions** (Leuven 4.1, RBM questions 4 and 5): are the reconstructions good? What happens as more "
        "rows are removed, and does it matter where (top, middle, bottom)? The chart at the bottom answers with "
        "numbers, and sets a VAE and a DDPM beside the RBM on the same missing rows."
    )


@dataclass(frozen=True)
class Task:
    first: int  # the first test digit
    n: int  # digits
    rows: int
    place: str
    start: int  # first removed row of a band
    steps: int
    seed: int


def task_controls(n_images: int) -> Task:
    c1, c2, c3 = st.columns(3)
    first = int(c1.number_input(f"First test image number (0 to {n_images - 8})", 0, n_images - 8, 0, key="rows_first"))
    n = int(c1.slider("Digits", 1, 8, 8, key="rows_n"))
    place = c2.selectbox("Rows removed at", PLACES, index=PLACES.index("bottom"), key="rows_place",
                         help="every other: every second row from the top; band: a band starting at a row you pick")
    most = 14 if place == "every other" else 27
    rows = int(c2.slider("Rows removed", 1, most, min(12, most), key=f"rows_count_{most}"))
    start = 0
    if place == "band":
        start = int(c2.slider("Band starts at row", 0, 28 - rows, min(8, 28 - rows), key=f"rows_start_{rows}"))
    steps = int(c3.select_slider("Gibbs steps", options=RECORD, value=50, key="rows_steps"))
    seed = int(c3.number_input("Seed", 0, 100_000, 0, key="rows_seed"))
    return Task(first, n, rows, place, start, steps, seed)


def observed_mask(rows: int, place: str, start: int = 0) -> torch.Tensor:
    return row_mask(rows, place, start=start if place == "band" else None).reshape(1, 1, 28, 28)


@st.cache_data(show_spinner="Running the Gibbs chains...", max_entries=32)
def _fill(_model: RBM, key: str, _images: torch.Tensor, task: Task) -> tuple[torch.Tensor, torch.Tensor]:
    mask = observed_mask(task.rows, task.place, task.start)
    return missing.gibbs_fill(_model, _images, mask, task.steps, torch.Generator().manual_seed(task.seed),
                              record=RECORD)


def show_fill(model: RBM, images, task: Task) -> None:
    x = (images[task.first:task.first + task.n] > 0.5).float()  # the RBM's data: MNIST binarized at 0.5
    mask = observed_mask(task.rows, task.place, task.start)
    filled, frames = _fill(model, model_key(model), x, task)
    shown = torch.where(mask, x, torch.full_like(x, 0.5))
    error = missing.fill_error(filled, x, mask)
    st.subheader("The test digits, what the RBM sees, and its reconstruction")
    show_images(torch.cat([x, shown, filled]), nrow=task.n, height=300,
                title=f"top: test digits; middle: {task.rows} rows removed (grey); bottom: p(v | h) after "
                      f"{task.steps} clamped Gibbs steps")
    st.caption(f"Mean absolute error on the removed pixels: {error:.3f} (0 is perfect; predicting 0.5 everywhere "
               f"scores 0.5, predicting black everywhere scores the share of ink there, "
               f"{x[~mask.expand_as(x)].mean():.3f}).")
    steps = [s for s in RECORD if s <= task.steps]
    tiles = np.stack([figures.tile(frame, nrow=task.n) for frame in frames])[:, None]
    st.plotly_chart(figures.image_animation(tiles, [f"step {s}" for s in steps], height=200,
                                            title="the chain, step by step (press play or drag the slider)"),
                    width="stretch")
    st.markdown(
        "The first steps fill the gap with strokes that match the edges of the observed part; later steps keep "
        "resampling them, so a reconstruction is one draw from $p(v_m \\mid v_o)$, not the single best guess. "
        "Where the observed rows pin the digit down (the bottom of a 0) the chains agree with the truth; where "
        "they leave it open (only the top of a 4, 7 or 9) a chain may settle on another digit that fits."
    )


def chart_rows(place: str) -> list[int]:
    return [r for r in CHART_ROWS if place != "every other" or r <= 14]


CONFIGS = [(place, rows) for place in CHART_PLACES for rows in chart_rows(place)]


def chart_batch(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Every digit under every mask of the chart, as one batch (one chain of 18 x n images is far faster than
    18 chains of n): (images, observed masks), config-major."""
    masks = torch.cat([observed_mask(rows, place).expand(len(x), -1, -1, -1) for place, rows in CONFIGS])
    return x.repeat(len(CONFIGS), 1, 1, 1), masks


def errors_by_place(filled: torch.Tensor, truth: torch.Tensor, masks: torch.Tensor) -> dict[str, list[float]]:
    out: dict[str, list[float]] = {}
    for (place, _), f, t, m in zip(CONFIGS, filled.chunk(len(CONFIGS)), truth.chunk(len(CONFIGS)),
                                   masks.chunk(len(CONFIGS)), strict=True):
        out.setdefault(place, []).append(missing.fill_error(f, t, m))
    return out


@st.cache_data(show_spinner="Filling the chart's rows with the RBM and the VAE...", max_entries=16)
def _cheap_curves(_rbm, rbm_key: str, _vae, vae_key: str | None, _x: torch.Tensor, n: int, steps: int,
                  seed: int) -> dict[str, dict[str, list[float]]]:
    x, masks = chart_batch(_x)
    filled, _ = missing.gibbs_fill(_rbm, x, masks, steps, torch.Generator().manual_seed(seed))
    curves = {"RBM": errors_by_place(filled, x, masks)}
    if _vae is not None:
        filled = missing.vae_fill(_vae, x, masks, steps, torch.Generator().manual_seed(seed))
        curves["VAE"] = errors_by_place(filled, x, masks)
    return curves


def ddpm_curves(ddpm, x: torch.Tensor, grey: torch.Tensor, seed: int, where) -> dict[str, list[float]] | None:
    """The DDPM's errors on the chart's rows (DDIM, DDPM_STEPS steps): from a button, in the background, kept for
    every visitor; None until done. The DDPM was trained on grey MNIST: it sees the grey digits, and is scored on
    the binary ones."""
    batch, masks = chart_batch(grey)
    truth, _ = chart_batch(x)
    n, steps = len(x), min(DDPM_STEPS, ddpm.config.T)

    def compute(callback):
        filled = missing.ddpm_fill(ddpm, batch, masks, steps, torch.Generator().manual_seed(seed), callback)
        return errors_by_place(filled, truth, masks)

    return long_computation(("rows_ddpm", model_key(ddpm), n, seed), compute,
                            f"DDPM inpainting of {n} digits x {len(CONFIGS)} masks ({steps} DDIM steps)...",
                            button=f"Add the DDPM (about {n * DDPM_SECONDS_PER_DIGIT} s)", where=where)


def show_chart(model: RBM, images) -> None:
    st.subheader("Reconstruction error against rows removed, by place, three families")
    c1, c2, c3 = st.columns(3)
    n = int(c1.select_slider("Test digits scored", options=[10, 20, 50, 100], value=20, key="chart_n"))
    steps = int(c1.select_slider("Gibbs (and pseudo-Gibbs) steps", options=[10, 20, 50, 100], value=50,
                                 key="chart_steps"))
    picked_vae = pick_other("vae", lambda c: not c.get("n_classes") and "binarized" in c.get("dataset", ""),
                            "vae-gaussian-32d", "VAE on binarized MNIST", "chart_vae", where=c2)
    picked_ddpm = pick_other("ddpm", lambda c: not c.get("n_classes") and c.get("dataset", "mnist") == "mnist",
                             "ddpm-linear", "unconditional DDPM of grey MNIST",
                             "chart_ddpm", where=c3)
    grey = images[:n]
    x = (grey > 0.5).float()
    vae = picked_vae[0] if picked_vae else None
    curves = _cheap_curves(model, model_key(model), vae, model_key(vae) if vae else None, x, n, steps, 0)
    if picked_ddpm is not None:
        found = ddpm_curves(picked_ddpm[0], x, grey, 0, c3)
        if found is not None:
            curves["DDPM"] = found
        else:
            c3.caption(f"{n * len(CONFIGS) * DDPM_STEPS:,} passes of the U-Net on a 2-core CPU, in the background: "
                       f"other settings can change meanwhile, and the result is kept for every visitor.")
    st.plotly_chart(figures.fill_error_chart(curves, {p: chart_rows(p) for p in CHART_PLACES}), width="stretch")
    st.markdown(
        f"Each point is the mean absolute error on the removed pixels of the first {n} test digits, the same "
        "digits, masks and seed for every model. The RBM and the VAE run the same number of steps of their "
        f"chains from coin flips; the DDPM runs {DDPM_STEPS} DDIM steps with replacement. What to look for: "
        "the error per removed pixel grows with the rows removed, and where they are removed matters more than "
        "how many. The top and bottom rows are mostly background and are filled almost perfectly until the "
        "gap reaches the digit; the middle rows hold most of the ink and the strokes that tell digits apart, so "
        "removing 4 of them costs about as much as removing 12 at the top or bottom. Every other row is the "
        "easiest at any count: each missing row has observed rows on both sides and the strokes can be "
        "continued across it. With many rows gone the digit's identity goes with them, and a chain settles on "
        "any digit that fits what is left: a fair sample, but far from the truth pixel by pixel."
    )


introduction()
model: RBM = pick_checkpoint(__file__, key="checkpoint_rows")
images, _ = load_test_set("mnist")
lazy_tabs({"Fill in missing rows": lambda: show_fill(model, images, task_controls(len(images))),
           "Error against rows removed": lambda: show_chart(model, images)}, key="rows_tab")
show_code(RBM.gibbs_chain, missing.gibbs_fill, missing.vae_fill, row_mask)
model_card(model)
