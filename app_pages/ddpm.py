"""DDPM step by step: noise becoming a digit, what the network predicts at each step, the schedule,
the forward process beside the reverse one, and the exact sampler against the fast ones (DDIM, DPM-Solver++)
from the same seed."""

import time

import streamlit as st
import torch

from app_pages.common import (
    HOSTING,
    compute_slow,
    load_test_set,
    long_computation,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import diffusion, figures
from genmodels.ddpm import APP_SAMPLER, DDPM, VIEW_SAMPLES, sampler_name
from genmodels.schedule import SCHEDULES, NoiseSchedule

COLUMNS = 10  # states in a film strip
HOSTED_DDIM_STEPS = 100  # a hosted app's cap on the comparison's fast-sampler steps (computed within the script run)
FAST = {  # the fast samplers: (method, eta) for DDPM.sample, and how the page names them
    "DPM-Solver++(2M)": ("dpm++", 1.0),
    "DDIM": ("ddim", 0.0),
}


def introduction() -> None:
    st.title("DDPM step by step: from noise to a digit")
    st.markdown(
        "A denoising diffusion probabilistic model (Ho et al., 2020) destroys images with a fixed **forward "
        "process** that adds a little Gaussian noise at each of $T$ steps, until only noise is left, and learns "
        "the **reverse process** that removes it one step at a time. The forward process has a closed form at "
        "any step, so training picks a random $t$, noises a digit to $x_t$ in one go, and asks a U-Net "
        "$\\epsilon_\\theta$ which noise was added:"
    )
    st.latex(r"q(x_t \mid x_0) = \mathcal N\!\big(\sqrt{\bar\alpha_t}\,x_0,\;(1-\bar\alpha_t)\,I\big),\qquad "
             r"L_{\text{simple}} = \mathbb E_{t,\,x_0,\,\epsilon}\,\big\|\epsilon - "
             r"\epsilon_\theta\big(\sqrt{\bar\alpha_t}\,x_0 + \sqrt{1-\bar\alpha_t}\,\epsilon,\;t\big)\big\|^2")
    st.markdown("Sampling (Algorithm 2 of the paper) starts from pure noise $x_T$ and applies, for $t = T, \\dots, 1$,")
    st.latex(r"x_{t-1} = \frac{1}{\sqrt{\alpha_t}}\Big(x_t - \frac{\beta_t}{\sqrt{1-\bar\alpha_t}}\,"
             r"\epsilon_\theta(x_t, t)\Big) + \sigma_t z,\qquad z \sim \mathcal N(0, I)")
    st.markdown(
        "**Questions** this page answers (DTU Part B/C, Cambridge 1(a), Graz DiffModel): what problem does the "
        "model solve, and how does the iterative sampler turn noise into a digit? What does the network believe "
        "the clean image is at each step? How do the noise schedule and the sampler (all $T$ DDPM steps, or a "
        "few steps of DDIM or DPM-Solver++) change the result? Training curves, samples over the epochs, good and "
        "bad samples and FID are on the next page."
    )


def _sampling(model: DDPM, steps: int | None, seed: int, method: str = "ddim", eta: float = 0.0):
    """(key, compute, progress text) of a sampling run of VIEW_SAMPLES images from ``seed`` (thinned to 100 steps)."""
    return (("trajectory", model_key(model), steps, seed) + ((method, eta) if steps is not None else ()),
            lambda callback: model.trajectory_view(seed, steps, method, eta, callback),
            f"Sampling {VIEW_SAMPLES} digits with {sampler_name(steps, method, eta, model.config.T)}...")


def trajectory(model: DDPM, seed: int, method: str, steps: int, eta: float) -> diffusion.Trajectory:
    """A fast sampler's run: the checkpoint's stored one for the default settings (``python -m train.views``),
    otherwise computed once per server within the script run (a second or two)."""
    steps = min(steps, model.config.T)
    stored = model.stored_trajectory(seed, steps, method, eta)
    return stored if stored is not None else compute_slow(*_sampling(model, steps, seed, method, eta))


@st.cache_resource(show_spinner=False, max_entries=8)
def seconds_per_step(key: str, _model: DDPM) -> float:
    """One network evaluation on VIEW_SAMPLES images, measured on this server (the faster of two, after one that
    warms up): the basis of the exact sampler's time estimate. ``key``: ``model_key`` of ``_model``."""
    x, eps, times = torch.zeros(VIEW_SAMPLES, _model.config.image_channels, 28, 28), _model.eps_fn(), []
    t = torch.full((VIEW_SAMPLES,), _model.config.T // 2)
    with torch.no_grad():
        for _ in range(3):
            started = time.perf_counter()
            eps(x, t)
            times.append(time.perf_counter() - started)
    return min(times[1:])


def exact_trajectory(model: DDPM, seed: int, where=st, place: str = "top") -> diffusion.Trajectory | None:
    """The exact sampler's run from ``seed``: None until a visitor starts it with the button and it is done."""
    key, compute, text = _sampling(model, None, seed)
    seconds = seconds_per_step(model_key(model), model) * model.config.T
    estimate = ("under a second" if seconds < 1 else f"about {seconds:.0f} s" if seconds < 90
                else f"about {seconds / 60:.0f} min")
    return long_computation(key, compute, text, where=where, place=place,
                            button=f"Run the exact sampler from seed {seed} ({model.config.T} steps, {estimate} here)")


def sampler_controls() -> tuple[tuple[str, int, float] | None, int]:
    """((method, steps, eta) of the fast sampler, or None for the exact one; seed)."""
    c1, c2 = st.columns([2, 1])
    method, steps, eta = APP_SAMPLER
    choices = {f"DPM-Solver++(2M), {steps} steps (fast)": APP_SAMPLER, "DDIM, 50 steps": ("ddim", 50, 0.0),
               "DDPM, every one of the T steps (exact; starts from a button)": None}
    sampler = c1.radio("Sampler", list(choices), horizontal=True, key="ddpm_sampler",
                       help="The DDPM ancestral sampler is the algorithm the model was derived for, one network "
                            "evaluation for each of the T steps. DDIM (Song et al., 2021) skips steps "
                            "deterministically; DPM-Solver++ (Lu et al., 2022) takes larger, second-order steps and "
                            "here adds fresh noise as DDPM does. The exact run is computed once per server, in the "
                            "background: other clicks do not interrupt it.")
    seed = int(c2.number_input("Seed", 0, 100_000, 0, key="ddpm_seed"))
    return choices[sampler], seed


def show_reverse_process(model: DDPM, traj: diffusion.Trajectory) -> int:
    """The state, the predicted x_0 and the predicted noise at a chosen step; returns that step's t."""
    S = len(traj.timesteps)
    i = st.select_slider("Step of the reverse process", options=list(range(S)), value=S // 2,
                         format_func=lambda j: f"t = {traj.timesteps[j]}", key=f"ddpm_step_{S}",
                         help="Left is pure noise (t = T - 1); right is the last step (t = 0).")
    t = traj.timesteps[i]
    ab = float(model.schedule.alpha_bars[t])
    st.caption(f"Step {i + 1} of {S}: t = {t}, alpha_bar_t = {ab:.4f} (signal standard deviation "
               f"{ab ** 0.5:.3f}, noise standard deviation {(1 - ab) ** 0.5:.3f}), signal-to-noise ratio "
               f"{ab / (1 - ab):.3g}.")
    left, middle, right = st.columns(3)
    show_images(traj.xs[i], nrow=4, height=230, value_range=(-0.5, 1.5), where=left,
                title="x_t, the state the network sees")
    show_images(traj.x0_preds[i], nrow=4, height=230, where=middle, title="its prediction of x_0")
    show_images(traj.eps_preds[i], nrow=4, height=230, value_range=(-3, 3), where=right,
                title="its prediction of the noise")
    st.markdown(
        "At the very start ($t$ near $T$) the prediction of $x_0$ is speckle over a faint blob: $x_t$ is almost "
        "pure noise, the best guess in squared error is close to the average digit, and what little the network "
        "reads from the noise shows as speckle. A few hundred steps later (about $t = 800$ to $700$ for the "
        "linear schedule) it is a blurry average digit; as $t$ falls further it commits to one digit and "
        "sharpens, and the state $x_t$ follows it. The predicted noise is almost all of $x_t$ at first and "
        "almost nothing at the end. (States are shown over [-0.5, 1.5] and the noise over [-3, 3], since "
        "noisy states leave the pixel range [0, 1].)"
    )
    strip = traj.spread(COLUMNS)
    rows = torch.stack([traj.xs[j][:4] for j in strip], 1).flatten(0, 1)  # 4 samples, each a row over the steps
    show_images(rows, nrow=COLUMNS, height=260, value_range=(-0.5, 1.5),
                title="x_t of four samples at t = " + ", ".join(str(traj.timesteps[j]) for j in strip))
    return t


def show_forward_beside_reverse(model: DDPM, traj: diffusion.Trajectory) -> None:
    st.subheader("The forward process on a real digit, beside the reverse process")
    st.markdown(
        "Top: a test digit noised with $q(x_t \\mid x_0)$ (one fixed noise draw), with $t$ falling from left to "
        "right as in the strips above, so the forward process reads from right to left. Bottom: the first "
        "sample above, at the same noise levels on its way back. At matching $t$ both rows hold the same amount of "
        "signal; at large $t$ neither shows which digit it is, which is why the sampler can start from noise."
    )
    images, _ = load_test_set(model.config.dataset)
    index = int(st.number_input(f"Test image number (0 to {len(images) - 1})", 0, len(images) - 1, 0, key="ddpm_digit"))
    shown = [traj.timesteps[j] for j in traj.spread(COLUMNS)]  # decreasing t, as the strips above
    x0 = 2 * images[index: index + 1] - 1
    noise = torch.randn(x0.shape, generator=torch.Generator().manual_seed(index))
    forward = torch.cat([model.schedule.q_sample(x0, torch.tensor([s]), noise) for s in shown])
    reverse = torch.stack([traj.xs[traj.index_of(s)][0] for s in shown])
    show_images(torch.cat([(forward + 1) / 2, reverse]), nrow=COLUMNS, height=200, value_range=(-0.5, 1.5),
                title="t = " + ", ".join(str(s) for s in shown) + " (left to right)")


def show_schedule(model: DDPM, t: int) -> None:
    st.subheader("The noise schedule")
    st.markdown(
        f"This model uses the **{model.config.schedule}** schedule. The linear schedule of Ho et al. raises "
        "$\\beta_t$ from $10^{-4}$ to $0.02$; for small images it destroys the signal early, and many of the "
        "last steps are spent on what is already noise. The cosine schedule of Nichol and Dhariwal (2021) makes "
        "$\\bar\\alpha_t$ fall slowly at both ends, so the signal-to-noise ratio falls more evenly on a log "
        "scale. The dotted line is the step chosen above."
    )
    curves = {f"{kind} (this model)" if kind == model.config.schedule else kind:
              (model.schedule if kind == model.config.schedule else NoiseSchedule(model.config.T, kind)).alpha_bars
              for kind in SCHEDULES}
    st.plotly_chart(figures.schedule_curves(curves, marker=t), width="stretch")


def comparison_controls(T: int, seed: int) -> tuple[str, int, float, int]:
    """(fast sampler's name, steps, eta, seed) of the comparison."""
    c0, c1, c2, c3 = st.columns([1.3, 1.2, 1.2, 0.8])
    name = c0.radio("Fast sampler", list(FAST), key="fast_sampler")
    most = min(T, HOSTED_DDIM_STEPS) if HOSTING.hosted else T
    steps = c1.select_slider("Steps (network evaluations)",
                             options=[s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if s <= most],
                             value=min(20, T), key=f"ddim_steps_{most}",
                             help=f"This hosted demo offers up to {most} steps; run the app on your own computer for "
                                  f"all {T}." if most < T else None)
    eta = c2.slider("eta (0: deterministic, 1: fresh noise as in DDPM)", 0.0, 1.0, FAST[name][1], step=0.1,
                    key=f"eta_{FAST[name][0]}")
    compare_seed = int(c3.number_input("Seed", 0, 100_000, seed, key="compare_seed"))
    return name, steps, eta, compare_seed


def explain_fast_samplers(T: int) -> None:
    st.markdown(
        "Both fast samplers start from the same $x_T$ (the same seed) and use the network's estimate of the clean "
        "image, $\\hat x_0 = (x_t - \\sqrt{1-\\bar\\alpha_t}\\,\\epsilon_\\theta)/\\sqrt{\\bar\\alpha_t}$. **DDIM** "
        "(Song et al., 2021) jumps from $x_t$ to an earlier step $s$ as if $\\hat x_0$ were right:"
    )
    st.latex(r"x_s = \sqrt{\bar\alpha_s}\,\hat x_0 + \sqrt{1-\bar\alpha_s-\sigma^2}\;\epsilon_\theta(x_t,t) "
             r"+ \sigma z,\qquad \sigma = \eta\,\sqrt{\tfrac{1-\bar\alpha_s}{1-\bar\alpha_t}}"
             r"\sqrt{1-\tfrac{\bar\alpha_t}{\bar\alpha_s}}")
    st.markdown(
        "With $\\eta = 0$ it is deterministic given $x_T$: with 10, 20 or 100 steps it draws nearly the same "
        "digit, because every step follows the network's own prediction. $\\eta = 1$ adds fresh noise at every "
        f"step as DDPM does, and with all {T} steps it *is* the DDPM sampler.\n\n"
        "**DPM-Solver++(2M)** (Lu et al., 2022) writes the same step in $\\lambda_t = \\log(\\alpha_t/\\sigma_t)$, "
        "half the log signal-to-noise ratio ($\\alpha_t = \\sqrt{\\bar\\alpha_t}$, $\\sigma_t = "
        "\\sqrt{1-\\bar\\alpha_t}$, $h = \\lambda_s - \\lambda_t$), where it is exact if $\\hat x_0$ stays constant "
        "over the step, and corrects for how $\\hat x_0$ changed since the step before (no extra network "
        "evaluation: the last one is remembered; $r$ is the ratio of the last step's $h$ to this one's):"
    )
    st.latex(r"x_s = \frac{\sigma_s}{\sigma_t}e^{-\eta h}\,x_t + \alpha_s\big(1-e^{-(1+\eta)h}\big)\,D + "
             r"\sigma_s\sqrt{1-e^{-2\eta h}}\;z,\qquad D = \hat x_0^{(t)} + \frac{\hat x_0^{(t)} - "
             r"\hat x_0^{(\text{before})}}{2r}")
    st.markdown(
        "With $D = \\hat x_0$ this is DDIM again (for $\\eta = 0$ and for $\\eta = 1$). Its steps are spread evenly "
        "in $\\lambda$, not in $t$, so more of them fall where the details are drawn. The DDPM digit usually "
        "differs from the fast ones: the noise added on the way changes which digit comes out."
    )


def show_fast_against_exact(model: DDPM, seed: int) -> None:
    T = model.config.T
    st.subheader("The exact sampler against the fast ones, from the same seed")
    explain_fast_samplers(T)
    name, steps, eta, compare_seed = comparison_controls(T, seed)
    method = FAST[name][0]
    label = sampler_name(steps, method, eta, T)
    # the same run as a trajectory above when the settings agree (the first view): computed once, shown twice
    fast = trajectory(model, compare_seed, method, steps, eta).xs[-1].clamp(0, 1)
    left, right = st.columns(2)
    show_images(fast, nrow=4, height=230, where=left, title=label.replace("eta", "eta ="))
    exact_run = exact_trajectory(model, compare_seed, where=right, place="comparison")
    if exact_run is not None:
        show_images(exact_run.xs[-1].clamp(0, 1), nrow=4, height=230, where=right, title=f"DDPM, all {T} steps")
    else:
        right.info(f"The exact sampler takes {T} network evaluations; the button runs it once, in the background, "
                   "and keeps the result for everyone.")
    st.caption("How good each sampler's digits are at each number of steps, measured on a thousand samples per "
               "point, is on the DDPM training page (FID-MNIST against network evaluations).")


introduction()
model: DDPM = pick_checkpoint(__file__)
st.subheader("Watching noise become digits")
fast_sampler, seed = sampler_controls()
traj = exact_trajectory(model, seed) if fast_sampler is None else None
if traj is None:
    method, steps, eta = fast_sampler or APP_SAMPLER
    if fast_sampler is None:
        st.info(f"Until the exact run is there, the page shows {sampler_name(steps, method, eta)} from the same seed.")
    traj = trajectory(model, seed, method, steps, eta)
t = show_reverse_process(model, traj)
show_forward_beside_reverse(model, traj)
show_schedule(model, t)
show_fast_against_exact(model, seed)
show_code(DDPM.loss, diffusion.ddpm_sample, diffusion.ddim_sample, diffusion.dpm_solver_sample, NoiseSchedule.q_sample)
model_card(model)
