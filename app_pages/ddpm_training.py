"""DDPM training and sample quality: two hyperparameter settings compared, samples over the epochs,
the best and worst samples by the classifier's confidence, FID-MNIST and the bound in bits per dimension."""

import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    checkpoints_of,
    compute_slow,
    current_source,
    find_judge,
    lazy_tabs,
    load_model,
    long_computation,
    md,
    model_card,
    model_key,
    recorded_quality,
    refused_when_hosted,
    saved_samples,
    show_code,
    show_images,
    this_page,
)
from genmodels import diffusion, figures, metrics
from genmodels.checkpoint import CheckpointError
from genmodels.data import DATASET_TITLES, class_names
from genmodels.ddpm import APP_SAMPLER, DDPM, sampler_name

INLINE_SAMPLES = 64  # fresh samples drawn within the script run; more only from a button, in the background
HOSTED_SAMPLES = 128  # a hosted app's cap on fresh samples (half a minute of its shared CPU)
# DDIM-50 takes 0.2 s a sample on a 2-core CPU, one thread (python -m bench --only threads: 8 in 1.6 s); the app's
# sampler costs the same per network evaluation
SECONDS_PER_SAMPLE = 0.2 * APP_SAMPLER[1] / 50
FAST_NAME = sampler_name(APP_SAMPLER[1], APP_SAMPLER[0], APP_SAMPLER[2])


def introduction() -> None:
    st.title("DDPM training and sample quality")
    st.markdown(
        "The DDPM is trained on the simple loss, a squared error between the noise that was added and the noise "
        "the U-Net predicts, at a random step $t$. That loss is a reweighted version of the model's variational "
        "bound (Ho et al., eq. 14), so it falls as the model improves, but it says little about how the samples "
        "look: most of it comes from large $t$, where the noise is easy to predict. So this page shows the "
        "samples themselves after every epoch, and scores them with a classifier."
    )
    st.latex(r"-\log p_\theta(x_0) \le \underbrace{\mathrm{KL}\big(q(x_T\mid x_0)\,\|\,p(x_T)\big)}_{L_T}"
             r" + \sum_{t=2}^{T}\underbrace{\mathrm{KL}\big(q(x_{t-1}\mid x_t, x_0)\,\|\,"
             r"p_\theta(x_{t-1}\mid x_t)\big)}_{L_{t-1}} \underbrace{-\,\log p_\theta(x_0\mid x_1)}_{L_0}")
    st.markdown(
        "**Questions** (Cambridge 1(b) and 1(c), Graz DiffModel, DTU Part B): how do the loss and the samples "
        "evolve during training? How do two sets of hyperparameters differ? What do the best and the worst "
        "samples look like? How close are the samples to real digits by FID-MNIST, and what is the bound in "
        "bits per dimension?"
    )


def load_runs() -> dict[str, DDPM]:
    """Every unconditional DDPM of the source, by name; an error and a stop if there is none."""
    runs: dict[str, DDPM] = {}
    for location, _ in checkpoints_of("ddpm", this_page(__file__).accepts, what="unconditional DDPM checkpoint"):
        try:
            runs[checkpoint_label(location)] = load_model(location, current_source().revision)
        except CheckpointError as err:
            st.error(f"Could not load {md(checkpoint_label(location))}: {md(err)}")
    if not runs:
        st.stop()
    return runs


def settings_table(runs: dict[str, DDPM]) -> dict[str, list[str]]:
    """One row per run: its settings (metrics.json's training config) and its scores."""
    table = {"checkpoint": [], "data": [], "schedule": [], "U-Net widths": [], "learning rate": [], "batch": [],
             "epochs": [], "training time": [], "test loss (simple)": [], "bits/dim (bound)": [], "FID-MNIST": [],
             "confident > 0.9": []}
    for name, model in runs.items():
        m = model.metrics
        training = m.get("training", {})
        sampler, quality = recorded_quality(model, FAST_NAME)
        bpd = m.get("bits_per_dim")
        table["checkpoint"].append(name)
        table["data"].append(DATASET_TITLES.get(model.config.dataset, model.config.dataset))
        table["schedule"].append(f"{model.config.schedule}, T = {model.config.T}")
        table["U-Net widths"].append("/".join(str(c) for c in model.config.channels))
        table["learning rate"].append(f"{training['lr']:g}" if "lr" in training else "not recorded")
        table["batch"].append(str(training.get("effective_batch_size", "not recorded")))
        table["epochs"].append(str(m.get("epochs", "?")))
        device = m.get("device", "?")
        where = device.split("(NVIDIA ")[-1].split()[0] if "NVIDIA" in device else device.split(" (")[0].upper()
        table["training time"].append(f"{m.get('wall_time_s', 0) / 60:.0f} min, {where}")
        curves = m.get("curves", {})
        test_loss = m.get("eval", {}).get("test_loss", (curves.get("test_loss") or [None])[-1])
        table["test loss (simple)"].append("" if test_loss is None else f"{test_loss:.4f}")
        table["bits/dim (bound)"].append(f"{bpd['mean']:.2f} ± {bpd['stderr']:.2f}" if bpd else "not computed")
        table["FID-MNIST"].append(f"{quality['fid_mnist']:.1f}" if quality else "not computed")
        table["confident > 0.9"].append(f"{quality['confident_rate']:.1%}" if quality else "")
    return table


def show_settings(runs: dict[str, DDPM]) -> None:
    """The settings table, the loss curves on shared axes and the bound term by term."""
    st.subheader("Hyperparameter settings")
    st.dataframe(settings_table(runs), hide_index=True)
    scored = {name: (recorded_quality(m, FAST_NAME), m.metrics.get("bits_per_dim")) for name, m in runs.items()}
    details = "; ".join(f"{name}: FID-MNIST on {q[1]['n']:,} samples ({q[0]})"
                        + (f", bits/dim on {bpd['n']} test images" if bpd else "")
                        for name, (q, bpd) in scored.items() if q[1])
    st.caption("bits/dim (± its standard error), FID-MNIST and the confident rate come from `python -m "
               "train.sample_quality CHECKPOINT --n 10000 --bpd N --write` (recorded in each metrics.json; the "
               f"command for each is in its model card, at the foot of the page for the run chosen in *Good and bad "
               f"samples*). {details}.")
    st.plotly_chart(figures.loss_comparison({name: m.metrics for name, m in runs.items()}), width="stretch")
    bounds = {name: m.metrics["bits_per_dim"] for name, m in runs.items()
              if "terms" in m.metrics.get("bits_per_dim", {})}
    if bounds:
        st.markdown(
            "**Where the bound comes from.** Each term $L_t$ of the variational bound, in bits per dimension, "
            "averaged over test images. The terms are largest at small $t$, where the model must get the last "
            "details of the image right, and $L_0$, the decoder's discretised likelihood of the 8-bit pixels, "
            "is a large share: the simple loss weights all $t$ alike, so training spends little effort where "
            "the bound is decided, which is why DDPMs have good samples but middling likelihoods."
        )
        st.plotly_chart(figures.bound_terms(bounds), width="stretch")
    st.markdown(
        "The loss drops fast in the first epoch (the network learns to predict most of the noise at large $t$) "
        "and then slowly; the per-step curve stays noisy because each batch draws its own timesteps. The "
        "per-epoch loss (on held-out images; on test images for checkpoints trained before the validation split) "
        "uses the same images, timesteps and noise every epoch, so its changes are "
        "the model's. The two schedules weight timesteps differently, so their loss *values* are not "
        "comparable; the samples and the scores are."
    )


def show_sampler_curve(runs: dict[str, DDPM]) -> None:
    """FID-MNIST and the confident rate against the number of steps, for each fast sampler (where recorded)."""
    curves = {name: m.metrics["fid_curve"] for name, m in runs.items() if m.metrics.get("fid_curve", {}).get("points")}
    st.subheader("Sample quality against sampling time")
    if not curves:
        st.info("No checkpoint here has its sampler curve recorded. Record one with `python -m train.sample_quality "
                "CHECKPOINT --curve 5,10,20,50,100 --n 1000 --write`.")
        return
    name = next(iter(curves)) if len(curves) == 1 else st.radio("Checkpoint", list(curves), horizontal=True,
                                                                  key="curve_run")
    curve = curves[name]
    judge = find_judge()
    floor = judge.metrics.get("fid_floor", {}).get("confident_rate") if judge is not None else None
    st.plotly_chart(figures.fid_curve(curve, floor), width="stretch")
    exact = next((q for s, q in runs[name].metrics.get("sample_quality", {}).items() if s.startswith("DDPM, ")), None)
    exact_text = (f" The exact sampler, {runs[name].config.T} network evaluations, scores "
                  f"{exact['fid_mnist']:.1f} against a floor of {exact.get('floor_fid_mnist', float('nan')):.1f} "
                  f"and is {exact['confident_rate']:.1%} confident on {exact['n']:,} samples (FID depends on n: "
                  "compare each curve with its own floor)." if exact else "")
    st.markdown(
        "Each sampler's cost is its number of network evaluations: the U-Net's forward pass is nearly all of the "
        "time. Deterministic samplers (dashed) follow the probability-flow ODE: more steps follow it more exactly, "
        "but its end point is not better digits than the stochastic sampler's, so their curves level off above "
        "the floor. Fresh noise at each step (solid; $\\eta = 1$) corrects the errors of earlier steps, as the "
        "exact sampler's $T$ small steps do; DPM-Solver++ takes second-order steps, evenly spaced in log "
        "signal-to-noise ratio, and gets there in a few dozen evaluations. "
        f"The app draws with {FAST_NAME}." + exact_text
    )
    st.caption(f"`{curve['command']}` on {curve['device']}: {curve['n']:,} samples per point from seed "
               f"{curve['seed']}, against {curve['n']:,} training images; the floor is {curve['n']:,} real test "
               "images. At this n FID-MNIST is biased upwards (the floor is high) and noisy (a few points either way: "
               "a point below the floor is that noise); the ranking is what counts. Each step costs one U-Net "
               "evaluation, about 3.7 ms an image on a 2-core CPU in batches of 500 (`python -m bench --only ddpm` "
               "times 16 samples with each sampler).")


def show_progression(runs: dict[str, DDPM]) -> None:
    st.subheader("Samples after each epoch")
    with_samples = {name: m for name, m in runs.items() if m.training_samples is not None}
    if not with_samples:
        st.info("These checkpoints hold no per-epoch samples (they are saved by `python -m train ddpm`).")
        return
    last = max(m.training_samples.shape[0] for m in with_samples.values())
    epoch = st.slider("Epoch", 1, last, last, key="ddpm_epoch") if last > 1 else 1
    st.markdown("The same 16 starting noises (seed 0, DDIM with 50 steps) after each epoch, with the weights "
                "of that epoch: blobs first, then strokes, then digits.")
    columns = st.columns(len(with_samples))
    for column, (name, model) in zip(columns, with_samples.items(), strict=True):
        shots = model.training_samples
        if epoch <= shots.shape[0]:
            show_images(shots[epoch - 1].float() / 255, nrow=8, height=150, where=column,
                        title=f"{name}, epoch {epoch}")
        else:
            column.info(f"{md(name)} was trained for {shots.shape[0]} epochs.")
    name = st.selectbox("Progression of one run", list(with_samples), key="progression_run")
    shots = with_samples[name].training_samples
    picked = sorted({round(v) for v in torch.linspace(0, shots.shape[0] - 1, min(8, shots.shape[0])).tolist()})
    show_images(shots[picked, :8].flatten(0, 1).float() / 255, nrow=8, height=60 + 60 * len(picked),
                title="rows: epochs " + ", ".join(str(p + 1) for p in picked))


def default_run(runs: dict[str, DDPM]) -> str:
    """The run shown first: the first on grey MNIST (the data the judge knows best), else the first."""
    return next((name for name, model in runs.items() if model.config.dataset == "mnist"), next(iter(runs)))


def quality_controls(runs: dict[str, DDPM]) -> tuple[str, int, int]:
    """(run, number of samples, seed)."""
    c1, c2, c3 = st.columns(3)
    name = c1.selectbox("Checkpoint", list(runs), index=list(runs).index(default_run(runs)), key="quality_run")
    n = c2.select_slider("Samples", [16, 32, 64, 128, 256], value=16, key="quality_n",
                         help="With seed 0, the first 16 are the samples saved at the end of training (no "
                              "waiting); more, or another seed, are drawn now (the app's sampler, "
                              f"{FAST_NAME}: a second or two per 16 on a CPU).")
    seed = int(c3.number_input("Seed", 0, 100_000, 0, key="quality_seed"))
    return name, n, seed


def show_extremes(judge, most: torch.Tensor, least: torch.Tensor, where_from: str) -> None:
    """The most and the least confident samples side by side, each with the judge's class and confidence."""
    left, right = st.columns(2)
    for column, images, label in ((left, most, "most"), (right, least, "least")):
        confidence, predicted = judge.predict_proba(images).max(-1)
        show_images(images, nrow=8, height=170, where=column,
                    title=f"the {len(images)} {label} confident {where_from}")
        column.caption(", ".join(f"{int(digit)} ({p:.2f})" for digit, p in zip(predicted, confidence, strict=True)))


def show_good_and_bad(runs: dict[str, DDPM]) -> None:
    st.subheader("Good and bad samples")
    st.markdown(
        "A classifier trained on real digits (99 % test accuracy) scores fresh samples: its confidence is high "
        "for a clear digit and low for a shape between digits or no digit at all. Sorting by it puts the best "
        "and the worst samples side by side."
    )
    judge = find_judge()
    if judge is None:
        st.warning("No classifier checkpoint could be loaded, so samples cannot be scored. Train one with "
                   "`python -m train classifier --out checkpoints/mnist-classifier`.")
        return
    name, n, seed = quality_controls(runs)
    model = runs[name]
    images = saved_samples(model, n, seed)
    if images is None:
        key = ("quality", model_key(model), n, seed)
        text = f"Sampling {n} digits ({FAST_NAME})..."
        method, steps, eta = APP_SAMPLER

        def compute(callback):
            return model.sample(n, generator=torch.Generator().manual_seed(seed), steps=min(steps, model.config.T),
                                method=method, eta=eta, callback=callback)

        if n <= INLINE_SAMPLES:
            images = compute_slow(key, compute, text)
        elif refused_when_hosted(n, HOSTED_SAMPLES, "fresh samples"):
            return
        else:
            images = long_computation(key, compute, text, button=f"Draw {n} fresh samples ({FAST_NAME}: "
                                                                 f"about {n * SECONDS_PER_SAMPLE:.0f} s)")
            if images is None:
                return
    probabilities = judge.predict_proba(images)
    report, counted = metrics.class_report(probabilities), n
    judged = model.judged_samples if seed == 0 and n == 16 else None
    if judged is not None:  # the extremes of many samples, picked when the checkpoint was scored
        show_extremes(judge, judged["most"].float() / 255, judged["least"].float() / 255,
                      f"of {judged['n']:,} samples")
        st.caption(f"Picked from {judged['n']:,} samples ({judged['sampler']}) when the checkpoint was scored "
                   f"(`python -m train.sample_quality --gallery`): the worst of 16 samples are rarely bad ones. "
                   f"Another seed or more samples shows the extremes of samples drawn now.")
        _, recorded = recorded_quality(model, FAST_NAME)
        if recorded and "histogram" in recorded:
            report, counted = recorded, recorded["n"]
    else:
        order = probabilities.max(-1).values.argsort(descending=True)
        k = min(16, n // 2)
        show_extremes(judge, images[order[:k]], images[order.flip(0)[:k]], f"of these {n} samples")
    floor = judge.metrics.get("fid_floor", {}).get("confident_rate")
    st.metric(f"confident over 0.9, of {counted:,} samples", f"{report['confident_rate']:.0%}",
              delta=(f"{100 * (report['confident_rate'] - floor):+.0f} points against real test digits "
                     f"({floor:.0%})") if floor else None)
    st.plotly_chart(figures.class_histogram(report["histogram"], class_names("mnist"),
                                            title=f"predicted classes of {counted:,} samples"), width="stretch")
    st.markdown(
        "Early in training the worst samples are blobs. Once the model is trained they are rarely noise: "
        "they are digits that hesitate between two classes (a 4 that might be a 9), strokes that do not "
        "close, or two digits' features merged. A histogram far from uniform would mean the model "
        "under-produces some digits, a mild form of mode dropping (with few samples, expect some unevenness "
        "by chance alone, about 1 / sqrt(samples per class) relative)."
    )


introduction()
runs = load_runs()
lazy_tabs({"The two settings": lambda: show_settings(runs),
           "Steps against quality": lambda: show_sampler_curve(runs),
           "Over the epochs": lambda: show_progression(runs),
           "Good and bad samples": lambda: show_good_and_bad(runs)}, key="ddpm_training_tab")
model_card(runs[st.session_state.get("quality_run", default_run(runs))])
show_code(DDPM.loss, DDPM.update_ema, diffusion.variational_bound, metrics.frechet_distance)
