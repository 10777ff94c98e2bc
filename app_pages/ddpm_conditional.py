"""Class-conditional diffusion with classifier-free guidance: ask for a digit, turn the guidance up, move the
condition between two classes with the noise fixed, and the recorded trade-off between quality and adherence."""

import streamlit as st
import torch

from app_pages.common import (
    compute_slow,
    find_judge,
    lazy_tabs,
    long_computation,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.data import class_names
from genmodels.ddpm import APP_SAMPLER, DDPM, DEFAULT_GUIDANCE, VIEW_SAMPLES, sampler_name
from genmodels.latent import condition_path
from genmodels.unet import UNet

N_SAMPLES = VIEW_SAMPLES  # samples of the asked class; also the columns of the one-row-per-class grid
BETWEEN = 9  # conditions from class a to class b
BETWEEN_ROWS = 2  # noises along the path
GUIDANCE = (0.0, 0.1, 0.2, 0.5, 1.0, 2.0, 4.0, 8.0)  # the weights the slider offers
STEPS = (5, 10, 20, 50)  # sampler steps the page offers


def introduction() -> None:
    st.title("Class-conditional diffusion: asking for a digit")
    st.markdown(
        "The DDPM's U-Net can take a label: the class's learned embedding is added to the time embedding, so the "
        "noise predictor becomes $\\epsilon_\\theta(x_t, t, y)$. Training drops the label of a random 10 % of the "
        "images (**label dropout**), replacing it by an extra *null* class $\\varnothing$, so one network learns "
        "both the conditional predictor $\\epsilon_\\theta(x_t, t, y)$ and the unconditional "
        "$\\epsilon_\\theta(x_t, t, \\varnothing)$. **Classifier-free guidance** (Ho and Salimans, 2022) samples "
        "with a mix of the two, pushed away from the unconditional one by a weight $w$:"
    )
    st.latex(r"\tilde\epsilon_\theta(x_t, t, y) = (1 + w)\,\epsilon_\theta(x_t, t, y) - "
             r"w\,\epsilon_\theta(x_t, t, \varnothing)")
    st.markdown(
        "Since $\\epsilon$ is a scaled score, $-\\sqrt{1-\\bar\\alpha_t}\\,\\nabla_{x_t}\\log p(x_t)$, this samples "
        "from a sharpened $p(x_t \\mid y)\\,p(y \\mid x_t)^{w}$: $w = 0$ is the plain conditional model, and a "
        "larger $w$ trades diversity for images that are more clearly the asked class. Each step costs two network "
        "evaluations instead of one (none extra at $w = 0$)."
    )
    st.markdown(
        "**Questions** (Cambridge 2, Graz cDiffModel): does the model draw the digit you ask for, and how often "
        "(the shipped MNIST classifier judges)? What does guidance buy, and what does it cost in FID-MNIST? What "
        "does it draw for a condition between two classes, which training never showed it?"
    )


def guidance_control() -> tuple[float, int, int]:
    """(guidance weight, sampler steps, seed) from the page's controls."""
    c1, c2, c3 = st.columns([3, 2, 1])
    default = DEFAULT_GUIDANCE if DEFAULT_GUIDANCE in GUIDANCE else GUIDANCE[0]
    w = c1.select_slider("Guidance weight w", GUIDANCE, value=default, key="cond_w",
                         help=f"0: the conditional model alone. The app's default is {DEFAULT_GUIDANCE:g}, the "
                              "weight where the recorded scores (the last tab) meet the project's targets.")
    method, default_steps, eta = APP_SAMPLER
    steps = c2.select_slider("Sampler steps", STEPS, value=default_steps, key="cond_steps",
                             help=f"{sampler_name(default_steps, method, eta)} by default; fewer steps are faster "
                                  "and rougher.")
    seed = int(c3.number_input("Seed", 0, 100_000, 0, key="cond_seed"))
    return float(w), int(steps), seed


def judge_line(images: torch.Tensor, names: list[str]) -> str | None:
    judge = find_judge()
    if judge is None:
        return None
    p = judge.predict_proba(images)
    read = p.argmax(-1)
    return "The judge reads: " + ", ".join(f"{names[k]} ({p[i, k]:.2f})" for i, k in enumerate(read.tolist())) + "."


def show_asked(model: DDPM, names: list[str], w: float, steps: int, seed: int) -> None:
    st.subheader("Ask for a digit")
    k = st.radio("Class", range(len(names)), index=min(3, len(names) - 1), format_func=names.__getitem__,
                 horizontal=True, key="cond_class")
    stored = model.stored_class_rows(w, steps, seed)  # every class's row, for the default settings
    images = stored[k * N_SAMPLES:(k + 1) * N_SAMPLES] if stored is not None else compute_slow(
        ("cond_asked", model_key(model), k, w, steps, seed),
        lambda callback: model.guided_sample(torch.full((N_SAMPLES,), k), w, steps, seed, callback),
        f"Sampling {N_SAMPLES} images of class {names[k]}...")
    show_images(images, nrow=N_SAMPLES, height=150, title=f"asked for {names[k]}, w = {w:g}, {steps} steps")
    line = judge_line(images, names)
    if line:
        st.caption(line)


def show_every_class(model: DDPM, names: list[str], w: float, steps: int, seed: int) -> None:
    st.subheader("The same noise, every class")
    st.markdown(
        "Each row asks for one class, and every row starts from the same noise (and, with DPM-Solver++'s fresh "
        "noise at each step, draws the same noise all the way): what changes down a column is the label alone. "
        "Does a column keep its style (slant, thickness) across classes?"
    )
    n = len(names)
    images = model.stored_class_rows(w, steps, seed)  # the default settings' rows are stored with the checkpoint
    if images is None:
        images = long_computation(("cond_grid", model_key(model), w, steps, seed),
                                  lambda callback: model.class_rows(w, steps, seed, callback),
                                  f"Sampling {N_SAMPLES} images of each class...",
                                  button=f"Draw {N_SAMPLES} of each class from seed {seed} (w = {w:g}, {steps} "
                                         f"steps; about {n * N_SAMPLES} samples, tens of seconds here)")
    if images is None:
        return
    show_images(images, nrow=N_SAMPLES, height=560, title="rows: " + ", ".join(names))
    judge = find_judge()
    if judge is not None:
        asked = torch.arange(n).repeat_interleave(N_SAMPLES)
        match = (judge.predict_proba(images).argmax(-1) == asked).float().view(n, N_SAMPLES).mean(1)
        st.caption("The judge reads the asked class: " + ", ".join(f"{names[k]} {match[k]:.0%}" for k in range(n))
                   + f" (all: {match.mean():.0%}).")


def show_between(model: DDPM, names: list[str], w: float, steps: int, seed: int) -> None:
    st.subheader("Between two classes")
    st.markdown(
        "The condition $y = (1 - t)\\,e_a + t\\,e_b$ mixes two one-hot vectors. The network's class embedding is "
        "a table, which is a linear layer on one-hot vectors, so this is the same as mixing the two classes' "
        "embeddings, $(1 - t)\\,E_a + t\\,E_b$: a condition training never showed. The noise is fixed along each "
        "row. Where does the digit switch, and does it pass through a blend or a clean jump?"
    )
    c1, c2 = st.columns(2)
    n = len(names)
    a = c1.selectbox("Class a", range(n), index=min(1, n - 1), format_func=names.__getitem__, key="cond_a")
    b = c2.selectbox("Class b", range(n), index=min(7, n - 1), format_func=names.__getitem__, key="cond_b")
    t = torch.linspace(0, 1, BETWEEN)
    y = condition_path(a, b, t, n)

    def compute(callback):  # one call per condition from the same seed: every condition gets the same noises
        columns = [model.guided_sample(y[j:j + 1].repeat(BETWEEN_ROWS, 1), w, steps, seed + 1,
                                       lambda i, total, j=j: callback(j * total + i, BETWEEN * total))
                   for j in range(BETWEEN)]
        return torch.stack(columns, 1).flatten(0, 1)  # (rows, conditions) in reading order

    images = compute_slow(("cond_between", model_key(model), a, b, w, steps, seed), compute,
                          f"Sampling {BETWEEN} conditions from {names[a]} to {names[b]}...")
    show_images(images, nrow=BETWEEN, height=230, title=f"t from 0 ({names[a]}, left) to 1 ({names[b]}, right)")
    judge = find_judge()
    if judge is not None:
        p = judge.predict_proba(images).view(BETWEEN_ROWS, BETWEEN, -1).mean(0)
        st.plotly_chart(figures.lines(t.tolist(), {f"p({names[a]})": p[:, a].tolist(),
                                                    f"p({names[b]})": p[:, b].tolist()},
                                      "the judge along the condition path (mean of the rows)", "t", "probability"),
                        width="stretch")


def show_quality(model: DDPM) -> None:
    st.subheader("Quality against adherence: the guidance curve")
    curve = model.metrics.get("guidance_curve")
    if not curve:
        st.info("This checkpoint has no recorded guidance curve. Record one with `python -m train.sample_quality "
                "CHECKPOINT --guidance-curve 0,0.5,1,2,4 --n 1000 --steps 20 --method dpm++ --eta 1 --write`.")
    else:
        points = curve["points"]
        ws = [p["guidance"] for p in points]
        left, right = st.columns(2)
        left.plotly_chart(figures.lines(ws, {"samples": [p["fid_mnist"] for p in points],
                                             "real test images (floor)": [curve["floor_fid_mnist"]] * len(ws)},
                                        f"FID-MNIST (n = {curve['n']:,}; lower is better)", "guidance weight w",
                                        "FID-MNIST"), width="stretch", config={"displayModeBar": False})
        right.plotly_chart(figures.lines(ws, {"asked class": [100 * p["class_match"] for p in points],
                                              "confident (> 0.9)": [100 * p["confident_rate"] for p in points]},
                                         "what the judge reads (%)", "guidance weight w", "% of samples"),
                           width="stretch", config={"displayModeBar": False})
        st.caption(f"{curve['sampler']}, {curve['n']:,} samples at each weight (a tenth of each class), seed "
                   f"{curve['seed']}, on {curve['device']}: `{curve['command']}`. FID is biased upwards at small n, "
                   f"so compare it with the floor at the same n, not with the table below.")
    rows = {s: q for s, q in model.metrics.get("sample_quality", {}).items() if "guidance" in q}
    if rows:
        table = {"guidance w": [], "FID-MNIST": [], "real floor": [], "times the floor": [], "confident": [],
                 "asked class": [], "n": []}
        for q in sorted(rows.values(), key=lambda q: q["guidance"]):
            floor = q.get("floor_fid_mnist")
            table["guidance w"].append(f"{q['guidance']:g}")
            table["FID-MNIST"].append(f"{q['fid_mnist']:.1f}")
            table["real floor"].append(f"{floor:.1f}" if floor else "")
            table["times the floor"].append(f"{q['fid_mnist'] / floor:.2f}" if floor else "")
            table["confident"].append(f"{q['confident_rate']:.1%}")
            table["asked class"].append(f"{q['class_match']:.1%}")
            table["n"].append(f"{q['n']:,}")
        st.table(table)
        st.caption("The project's targets at the default weight: the asked class at least 97 % of the time, at "
                   "least 93 % confident, FID-MNIST within twice the real floor at the same n.")
    steps = model.metrics.get("fid_curve")
    if steps:
        st.markdown(f"**The number of steps**, at the default weight w = {DEFAULT_GUIDANCE:g}: each fast sampler at "
                    "5 to 50 steps (network evaluations per guided pair), with the floor at the same n.")
        st.plotly_chart(figures.fid_curve(steps), width="stretch", config={"displayModeBar": False})
        app_method, _, app_eta = APP_SAMPLER
        app = sorted((p for p in steps["points"] if p["method"] == app_method and p["eta"] == app_eta
                      and "class_match" in p), key=lambda p: p["steps"])
        st.caption(f"{steps['n']:,} samples per point (a tenth of each class; FID at this n is far above the "
                   f"10,000-sample numbers), on {steps['device']}: `{steps['command']}`."
                   + (" The asked class with the app's sampler: " + ", ".join(
                       f"{p['class_match']:.0%} at {p['steps']} steps" for p in app) + "." if app else ""))
    st.markdown(
        "**Reading the curve.** Guidance moves the judge's numbers up and FID-MNIST up with them: at a large $w$ "
        "nearly every sample is a confident, unmistakable digit of the asked class, but they are all the most "
        "typical kind of that digit (thick, upright, centred), so their features cover a smaller part of the data "
        "distribution than real digits do, and the Fréchet distance, which compares means *and* covariances, "
        "grows. A little guidance buys adherence almost for free; beyond that it costs diversity. The digit "
        "picker (the first tab) shows it: raise $w$ and the eight samples start to look alike."
    )


introduction()
model: DDPM = pick_checkpoint(__file__, key="checkpoint_ddpm_conditional")
names = class_names(model.config.dataset)
w, steps, seed = guidance_control()
lazy_tabs({"Ask for a digit": lambda: show_asked(model, names, w, steps, seed),
           "Between two classes": lambda: show_between(model, names, w, steps, seed),
           "Every class from the same noise": lambda: show_every_class(model, names, w, steps, seed),
           "Quality against adherence": lambda: show_quality(model)}, key="cond_tab")
show_code(DDPM.eps_fn, UNet.class_embedding, condition_path)
model_card(model)
