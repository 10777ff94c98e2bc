"""Cold diffusion: a deterministic degradation (pixelation, blur) instead of Gaussian noise, the network that
undoes it, the naive and improved samplers from the same starts, and a comparison with the Gaussian DDPM."""

from pathlib import Path

import streamlit as st
import torch

from app_pages.common import (
    checkpoint_metrics,
    checkpoints_of,
    compute_slow,
    lazy_tabs,
    load_test_set,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.cold import ColdDiffusion, StartDistribution
from genmodels.data import class_names
from genmodels.schedule import NoiseSchedule

COLUMNS = 11  # states shown along a process
N_SAMPLES = 8


def introduction() -> None:
    st.title("Cold diffusion: generation without noise")
    st.markdown(
        "Bansal et al. (2022) asked whether diffusion needs Gaussian noise at all. Take any **deterministic** "
        "degradation $D(x_0, t)$ that destroys an image gradually, from $D(x_0, 0) = x_0$ to a fully degraded "
        "$D(x_0, T)$, and train a network $R$ (here the DDPM's U-Net) to undo it, with the L1 loss:"
    )
    st.latex(r"\min_\theta\; \mathbb E_{x_0,\,t}\,\big\| R_\theta\big(D(x_0, t), t\big) - x_0 \big\|_1")
    st.markdown("Generation starts from a degraded image $x_T$ and alternates restoring and degrading again. The "
                "**naive** sampler (the paper's Algorithm 1) degrades the restoration to the next level:")
    st.latex(r"\hat x_0 = R(x_t, t),\qquad x_{t-1} = D(\hat x_0,\, t-1)")
    st.markdown("The **improved** sampler (Algorithm 2) keeps the current state and only adds the change the "
                "degradation makes between $t$ and $t-1$, so an error in $\\hat x_0$ mostly cancels:")
    st.latex(r"x_{t-1} = x_t - D(\hat x_0,\, t) + D(\hat x_0,\, t-1)")
    st.markdown(
        "With no noise anywhere, one start gives exactly one sample: all the variety of the samples must come from "
        "the start $x_T$. Here it is drawn from a Gaussian mixture fitted to the fully degraded training images (in "
        "their first few principal components), as the paper draws its blurred starts. **Questions** (Cambridge "
        "2(a) to 2(c)): what does each degradation keep of a digit at full strength? Why does the naive sampler "
        "fail where the improved one works? How do the samples compare with a Gaussian DDPM's, in fidelity, "
        "diversity and time?"
    )


def show_forward(model: ColdDiffusion, digit: torch.Tensor) -> None:
    st.subheader("The degradation, step by step, beside Gaussian noise")
    T = model.config.T
    ts = torch.linspace(0, T, COLUMNS).round().long()
    degraded = model.degrade(digit.expand(COLUMNS, -1, -1, -1), ts)
    schedule = NoiseSchedule(1000, "linear")
    tn = (ts.float() / T * 999).round().long()
    x0 = 2 * digit.expand(COLUMNS, -1, -1, -1) - 1
    noisy = (schedule.q_sample(x0, tn, torch.randn(x0.shape, generator=torch.Generator().manual_seed(0))) + 1) / 2
    show_images(torch.cat([degraded, noisy.clamp(0, 1)]), nrow=COLUMNS, height=230,
                title=f"top: {model.degradation.title}, t = 0 to {T}; bottom: Gaussian noise (a DDPM, linear "
                      f"schedule), same fractions of T")
    st.markdown(
        f"{model.degradation.describe()[0].upper()}{model.degradation.describe()[1:]}. Gaussian noise destroys "
        "every detail at once and ends in pure noise, the same distribution whatever the digit was; the "
        "deterministic degradation ends in an image that still depends on the digit (a coarse mosaic, a soft "
        "blob), which is why generation can start from a fitted distribution of such images."
    )


def show_restoration(model: ColdDiffusion, digit: torch.Tensor, index: int) -> None:
    st.subheader("Undoing the degradation of a real digit")
    T = model.config.T
    t = st.slider("Degrade the digit to step t, then restore it with the improved sampler", 1, T, T,
                  key="cold_restore_t")
    start = model.degrade(digit, t)
    traj = compute_slow(("cold_restore", model_key(model), index, t),
                        lambda callback: model.sample(1, steps=t, start=start, return_trajectory=True,
                                                      callback=callback, from_t=t),
                        "Restoring...")
    keep = torch.linspace(0, len(traj.xs) - 1, min(COLUMNS, len(traj.xs))).round().long()
    show_images(torch.cat([traj.xs[keep, 0], traj.x0_preds[keep.clamp(max=len(traj.x0_preds) - 1), 0]]),
                nrow=len(keep), height=230,
                title=f"top: the states x_t from t = {t} to 0; bottom: the network's restoration x0_hat at each")
    error = (traj.xs[-1, 0] - digit[0]).abs().mean().item()
    st.caption(f"Mean absolute difference between the restored digit and the original: {error:.3f} (pixel values "
               f"0 to 1). The restoration is a guess: at full strength several digits share one degraded image.")


def show_generation(model: ColdDiffusion, seed: int) -> None:
    st.subheader("Generation: naive against improved, from the same starts")
    shape = (model.config.image_channels, 28, 28)
    starts = model.start.sample(N_SAMPLES, shape, torch.Generator().manual_seed(seed))

    def run(method):
        return lambda callback: model.sample(N_SAMPLES, start=starts, method=method, return_trajectory=True,
                                             callback=callback)

    improved = compute_slow(("cold_improved", model_key(model), seed), run("improved"), "Improved sampler...")
    naive = compute_slow(("cold_naive", model_key(model), seed), run("naive"), "Naive sampler...")
    show_images(torch.cat([starts.clamp(0, 1), naive.xs[-1], improved.xs[-1]]), nrow=N_SAMPLES, height=330,
                title="top: the starts x_T (drawn from the mixture); middle: naive; bottom: improved")
    st.markdown(
        "The naive sampler throws away its state at every step and keeps only $D(\\hat x_0, t-1)$: wherever the "
        "restoration is uncertain (early on, it is a blurred average of the digits that fit), that uncertainty is "
        "frozen in by the degradation, and the sample ends near an average digit. The improved sampler changes "
        "its state only by $D(\\hat x_0, t-1) - D(\\hat x_0, t)$: for a degradation that varies slowly in "
        "$\\hat x_0$ this difference is nearly the same for any plausible $\\hat x_0$, so errors cancel and detail "
        "is added step by step (the paper's argument, its Section 3.3)."
    )
    steps = len(improved.timesteps) - 1
    i = st.select_slider("Step of the improved sampler", list(range(steps + 1)), value=steps // 2,
                         format_func=lambda j: f"t = {improved.timesteps[j]}", key="cold_step")
    pred = improved.x0_preds[min(i, steps - 1)]
    show_images(torch.cat([improved.xs[i], pred]), nrow=N_SAMPLES, height=230,
                title=f"top: the states at t = {improved.timesteps[i]}; bottom: the restoration x0_hat there")


def show_one_start(model: ColdDiffusion, seed: int) -> None:
    st.subheader("One start, one sample")
    shape = (model.config.image_channels, 28, 28)
    mean = model.start.mean.view(1, *shape).cpu().expand(N_SAMPLES, -1, -1, -1)
    same = compute_slow(("cold_same", model_key(model)),
                        lambda callback: model.sample(N_SAMPLES, start=mean, callback=callback),
                        "Sampling from one start...")
    drawn = compute_slow(("cold_drawn", model_key(model), seed),
                         lambda callback: model.sample(N_SAMPLES, start=model.start.sample(
                             N_SAMPLES, shape, torch.Generator().manual_seed(seed + 1)), callback=callback),
                         "Sampling from drawn starts...")
    show_images(torch.cat([same, drawn]), nrow=N_SAMPLES, height=230,
                title="top: eight runs from the same start (the mean degraded image); bottom: eight drawn starts")
    spread = (same - same.mean(0)).abs().max().item()
    st.caption(f"The top row is one image eight times (largest difference {spread:.1e}): the sampler adds no "
               f"randomness. A DDPM's eight runs from one seed's noise would differ, since it adds fresh noise at "
               f"every step (or, with DDIM, starts from different noise). The variety of cold diffusion's samples "
               f"is the variety of its starts: a mixture in {model.config.start_dims} principal components.")


def recorded_scores() -> list[tuple[str, bool, str, dict]]:
    """(name, whether it is cold diffusion, sampler, scores) of every recorded sample-quality run of the source's
    cold diffusion models and grey unconditional MNIST DDPMs, each model's runs from the largest n down."""
    found = []
    ddpm = checkpoints_of("ddpm", lambda c: not c.get("n_classes") and c.get("image_channels", 1) == 1
                          and c.get("dataset") == "mnist", required=False)
    for (location, _), cold in [(m, True) for m in checkpoints_of("cold", required=False)] + [(m, False) for m in ddpm]:
        scores = checkpoint_metrics(location).get("sample_quality", {})
        for sampler, q in sorted(scores.items(), key=lambda kv: -kv[1]["n"]):
            found.append((Path(location).name, cold, sampler, q))
    return found


def quality_table(records: list[tuple[str, bool, str, dict]], names: list[str]) -> dict[str, list[str]]:
    table = {"model": [], "sampler": [], "n": [], "FID-MNIST": [], "real floor": [], "confident": [],
             "smallest class": [], "largest class": [], "s per image": [], "measured on": []}
    for name, _, sampler, q in records:
        share = [h / sum(q["histogram"]) for h in q["histogram"]] if q.get("histogram") else []
        rarest = min(range(len(share)), key=share.__getitem__, default=None)
        commonest = max(range(len(share)), key=share.__getitem__, default=None)
        table["model"].append(name)
        table["sampler"].append(sampler)
        table["n"].append(f"{q['n']:,}")
        table["FID-MNIST"].append(f"{q['fid_mnist']:.1f}")
        table["real floor"].append(f"{q['floor_fid_mnist']:.1f}" if q.get("floor_fid_mnist") else "")
        table["confident"].append(f"{q['confident_rate']:.1%}")
        table["smallest class"].append(f"{names[rarest]}: {share[rarest]:.1%}" if share else "")
        table["largest class"].append(f"{names[commonest]}: {share[commonest]:.1%}" if share else "")
        table["s per image"].append(f"{q['seconds'] / q['n']:.4f}" if q.get("seconds") else "")
        table["measured on"].append(q.get("device", ""))
    return table


def show_comparison(model: ColdDiffusion, names: list[str]) -> None:
    st.subheader("Against the Gaussian DDPM")
    records = recorded_scores()
    if not records:
        st.info("No model of this source has recorded sample quality. Record it with `python -m train.sample_quality "
                "CHECKPOINT --n 10000 --floor --write`.")
        return
    st.table(quality_table(records, names))
    st.caption("Each model's recorded scores (`python -m train.sample_quality`, the commands are in each model "
               "card): FID-MNIST against the real-data floor at the same n, the share the judge calls with "
               "confidence over 0.9, the rarest and commonest class (a tenth each in the data), and the sampling "
               "time per image on the machine that measured it: compare times only on the same machine.")
    histograms = {}
    for name, _, _, q in records:  # one per model: its largest n
        if q.get("histogram"):
            histograms.setdefault(name, q["histogram"])
    if histograms:
        cols = st.columns(min(4, len(histograms)))
        for i, (label, histogram) in enumerate(list(histograms.items())[:8]):
            cols[i % len(cols)].plotly_chart(figures.class_histogram(histogram, names, title=label),
                                             width="stretch", config={"displayModeBar": False})
    show_verdict(records)
    st.markdown(
        "**Which wins on what.** On fidelity and diversity together (FID-MNIST) the Gaussian DDPM wins by a "
        "wide margin: its samples are as varied as the digits, while cold diffusion's variety is only what its "
        "start mixture holds (a few principal components of a coarse mosaic or a blob), and its restorations of an "
        "ambiguous start drift towards a few typical digits, so some classes are drawn several times as often as "
        "others (the class columns). On time they are even: T = 20 restorations against the app's 20 steps of "
        "DPM-Solver++, one network evaluation each (compare the seconds per image measured on the same machine), "
        "and both are 50 times cheaper than the exact 1000-step DDPM sampler. What cold diffusion offers is "
        "simplicity and control: no noise schedule and no noise, one start gives exactly one sample, and any "
        "degradation that can be undone step by step will do, which is the paper's point."
    )


def show_verdict(records: list[tuple[str, bool, str, dict]]) -> None:
    """The measured winners, in words: between the degradations, and the best cold model against the best DDPM
    (at the same n where the DDPM was scored at it: FID depends on n)."""
    cold = [(name, q) for name, is_cold, _, q in records if is_cold]
    if len({name for name, _ in cold}) >= 2:
        by_fid = min(cold, key=lambda r: r[1]["fid_mnist"])
        by_conf = max(cold, key=lambda r: r[1]["confident_rate"])
        st.markdown(f"Between the degradations: **{by_fid[0]}** has the lowest FID-MNIST "
                    f"({by_fid[1]['fid_mnist']:.1f}), **{by_conf[0]}** the most confident digits "
                    f"({100 * by_conf[1]['confident_rate']:.1f} %)"
                    + (" (one model wins both)." if by_fid[0] == by_conf[0] else
                       ": one covers more of the digits, the other draws fewer of them more cleanly, as the class "
                       "columns show."))
    ddpm = [(name, q) for name, is_cold, _, q in records if not is_cold]
    if cold and ddpm:
        best_cold = min(cold, key=lambda r: r[1]["fid_mnist"])
        n = best_cold[1]["n"]
        best_ddpm = min([r for r in ddpm if r[1]["n"] == n] or ddpm, key=lambda r: r[1]["fid_mnist"])
        st.markdown(f"Measured here: the best cold diffusion model, **{best_cold[0]}**, scores FID-MNIST "
                    f"{best_cold[1]['fid_mnist']:.1f}; the best Gaussian DDPM run, **{best_ddpm[0]}**, "
                    f"{best_ddpm[1]['fid_mnist']:.1f}"
                    + (f", both on {n:,} samples." if best_ddpm[1]["n"] == n else
                       " (at another n: the floor column says what real digits score at each n)."))


introduction()
model: ColdDiffusion = pick_checkpoint(__file__, key="checkpoint_cold")
names = class_names(model.config.dataset)
images, labels = load_test_set(model.config.dataset)
c1, c2 = st.columns(2)
index = int(c1.number_input("Test digit", 0, len(images) - 1, 0, key="cold_digit"))
seed = int(c2.number_input("Seed of the starts", 0, 100_000, 0, key="cold_seed"))
digit = torch.as_tensor(images[index : index + 1]).float()


def show_real_digit() -> None:
    show_forward(model, digit)
    show_restoration(model, digit, index)


lazy_tabs({"A real digit, degraded and restored": show_real_digit,
           "Generation": lambda: show_generation(model, seed),
           "One start, one sample": lambda: show_one_start(model, seed),
           "Against the Gaussian DDPM": lambda: show_comparison(model, names)}, key="cold_tab")
show_code(ColdDiffusion.degrade, ColdDiffusion.sample, StartDistribution.sample)
model_card(model)
