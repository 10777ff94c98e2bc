"""DDPM step by step: noise becoming a digit, what the network predicts at each step, the schedule,
the forward process beside the reverse one, and DDPM against DDIM from the same seed."""

import streamlit as st
import torch

from app_pages.common import (
    HOSTING,
    compute_slow,
    load_test_set,
    long_computation,
    measured_seconds,
    model_card,
    model_key,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import diffusion, figures
from genmodels.ddpm import DDPM
from genmodels.schedule import SCHEDULES, NoiseSchedule

N_SAMPLES = 8
COLUMNS = 10  # states in a film strip
HOSTED_DDIM_STEPS = 100  # a hosted app's cap on the comparison's DDIM steps (computed within the script run)


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
        "few deterministic DDIM steps) change the result? Training curves, samples over the epochs, good and "
        "bad samples and FID are on the next page."
    )


def _sampling(model: DDPM, steps: int | None, seed: int):
    """(key, compute, progress text) of a sampling run of N_SAMPLES images from ``seed`` (thinned to 100 steps)."""
    name = f"DDPM, {model.config.T} steps" if steps is None else f"DDIM, {steps} step{'s' * (steps != 1)}"
    return (("trajectory", model_key(model), steps, seed),
            lambda callback: model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(seed), steps=steps,
                                          return_trajectory=True, callback=callback).thinned(100),
            f"Sampling {N_SAMPLES} digits with {name}...")


def trajectory(model: DDPM, steps: int, seed: int) -> diffusion.Trajectory:
    """A DDIM run, computed once per server within the script run (seconds)."""
    return compute_slow(*_sampling(model, steps, seed))


def exact_trajectory(model: DDPM, seed: int, where=st, place: str = "top") -> diffusion.Trajectory | None:
    """The exact sampler's run from ``seed``: None until a visitor starts it with the button and it is done."""
    key, compute, text = _sampling(model, None, seed)
    fast = measured_seconds(_sampling(model, min(50, model.config.T), 0)[0])
    estimate = f", about {fast * model.config.T / min(50, model.config.T) / 60:.0f} min here" if fast else ""
    return long_computation(key, compute, text, where=where, place=place,
                            button=f"Run the exact sampler from seed {seed} ({model.config.T} steps{estimate})")


def sampler_controls() -> tuple[bool, int]:
    """(the exact sampler?, seed)."""
    c1, c2 = st.columns([2, 1])
    sampler = c1.radio("Sampler",
                       ["DDIM, 50 steps (fast)", "DDPM, every one of the T steps (exact; starts from a button)"],
                       horizontal=True, key="ddpm_sampler",
                       help="DDIM (Song et al., 2021) skips steps deterministically; the DDPM ancestral sampler is "
                            "the algorithm the model was derived for. The exact run is computed once per server, "
                            "in the background: other clicks do not interrupt it.")
    seed = int(c2.number_input("Seed", 0, 100_000, 0, key="ddpm_seed"))
    return sampler.startswith("DDPM"), seed


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


def comparison_controls(T: int, seed: int) -> tuple[int, float, int]:
    """(DDIM steps, eta, seed) of the comparison."""
    c1, c2, c3 = st.columns(3)
    most = min(T, HOSTED_DDIM_STEPS) if HOSTING.hosted else T
    steps = c1.select_slider("DDIM steps", options=[s for s in (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000) if s <= most],
                             value=min(20, T), key=f"ddim_steps_{most}",
                             help=f"This hosted demo offers up to {most} steps; run the app on your own computer for "
                                  f"all {T}." if most < T else None)
    eta = c2.slider("eta (0: deterministic, 1: DDPM-like noise)", 0.0, 1.0, 0.0, step=0.1, key="ddim_eta")
    compare_seed = int(c3.number_input("Seed", 0, 100_000, seed, key="compare_seed"))
    return steps, eta, compare_seed


def show_ddpm_against_ddim(model: DDPM, seed: int) -> None:
    T = model.config.T
    st.subheader("DDPM against DDIM from the same seed")
    st.markdown(
        "Both samplers start from the same $x_T$ (the same seed). DDIM with $\\eta = 0$ is deterministic given "
        "$x_T$: with 10, 20 or 100 steps it draws nearly the same digit, because every step follows the "
        "network's own prediction. $\\eta = 1$ adds fresh noise at every step as DDPM does, and with all "
        f"{T} steps it *is* the DDPM sampler. The DDPM digit usually differs from the DDIM one: the noise added "
        "on the way changes which digit comes out."
    )
    steps, eta, compare_seed = comparison_controls(T, seed)
    ddim = compute_slow(("ddim", model_key(model), steps, eta, compare_seed),
                        lambda callback: model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(compare_seed),
                                                      steps=steps, eta=eta, callback=callback),
                        f"DDIM, {steps} step{'s' * (steps != 1)}...")
    left, right = st.columns(2)
    show_images(ddim, nrow=4, height=230, where=left, title=f"DDIM, {steps} step{'s' * (steps != 1)}, eta = {eta:g}")
    exact_run = exact_trajectory(model, compare_seed, where=right, place="comparison")
    if exact_run is not None:
        show_images(exact_run.xs[-1].clamp(0, 1), nrow=4, height=230, where=right, title=f"DDPM, all {T} steps")
    else:
        right.info(f"The exact sampler takes {T} network evaluations; the button runs it once, in the background, "
                   "and keeps the result for everyone.")


introduction()
model: DDPM = pick_checkpoint(__file__)
st.subheader("Watching noise become digits")
exact, seed = sampler_controls()
traj = exact_trajectory(model, seed) if exact else None
if traj is None:
    if exact:
        st.info("Until the exact run is there, the page shows DDIM with 50 steps from the same seed.")
    traj = trajectory(model, min(50, model.config.T), seed)
t = show_reverse_process(model, traj)
show_forward_beside_reverse(model, traj)
show_schedule(model, t)
show_ddpm_against_ddim(model, seed)
show_code(DDPM.loss, diffusion.ddpm_sample, diffusion.ddim_sample, NoiseSchedule.q_sample)
model_card(model)
