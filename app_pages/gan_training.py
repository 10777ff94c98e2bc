"""GAN training dynamics: the two losses, the discriminator's accuracy and outputs, the fixed-noise grid
after every epoch and the class histogram over epochs, for healthy, trick-free and unbalanced runs."""

import streamlit as st

from app_pages.common import (
    checkpoint_label,
    checkpoints_of,
    load_or_stop,
    md,
    model_card,
    recorded_quality,
    show_code,
    show_images,
    this_page,
)
from genmodels import figures
from genmodels.data import class_names
from genmodels.gan import GAN, discriminator_loss, generator_loss


def introduction() -> None:
    st.title("GAN training dynamics")
    st.markdown(
        "Training a GAN is a two-player game, not the minimisation of one loss. After every discriminator step "
        "and generator step the page's runs recorded both losses, the discriminator's accuracy on real and on "
        "generated images, and its mean outputs $D(x)$ and $D(G(z))$; after every epoch the images of 16 fixed "
        "codes and the share of each digit among 1,000 samples (as the shipped classifier sees them)."
    )
    st.latex(r"L_D = -\mathbb{E}_x\big[\log D(x)\big] - \mathbb{E}_z\big[\log(1 - D(G(z)))\big],\qquad "
             r"L_G^{\text{non-sat.}} = -\mathbb{E}_z\big[\log D(G(z))\big]")
    st.markdown(
        "**Questions** (Leuven 4.2.1 to 4.2.3): explain the losses and the results in the GAN framework. What "
        "happens when the discriminator is much better than the generator? Discuss the convergence and "
        "stability of GANs; where does mode collapse show?"
    )


def load_runs() -> dict[str, GAN]:
    return {checkpoint_label(loc): load_or_stop(loc)
            for loc, _ in checkpoints_of("gan", this_page(__file__).accepts, what="GAN checkpoint")}


def settings_table(runs: dict[str, GAN]) -> dict[str, list[str]]:
    """Each run's backbone, tricks, learning rates and scores (metrics.json)."""
    rows = {"run": [], "backbone": [], "D lr / G lr": [], "D steps": [], "tricks": [], "epochs": [],
            "time": [], "FID-MNIST (10,000)": [], "confident > 0.9": [], "rarest / commonest digit": []}
    for name, model in runs.items():
        c, m = model.config, model.metrics
        optimizers = m.get("training", {}).get("optimizers", {})
        lr = [optimizers.get(net, {}).get("lr") for net in ("discriminator", "generator")]
        evaluation = m.get("eval", {})
        shares = [evaluation.get(f"test_share_{d}") for d in range(10)]
        rows["run"].append(name)
        rows["backbone"].append(c.backbone + (", conditional" if c.n_classes else ""))
        rows["D lr / G lr"].append(" / ".join(f"{v:g}" if v else "?" for v in lr))
        rows["D steps"].append(str(c.d_steps))
        rows["tricks"].append(", ".join(tricks(model)) or "none")
        rows["epochs"].append(str(m.get("epochs", "?")))
        rows["time"].append(f"{m.get('wall_time_s', 0) / 60:.0f} min on {m.get('device', '?').split(' (')[0]}")
        _, quality = recorded_quality(model)
        rows["FID-MNIST (10,000)"].append(f"{quality['fid_mnist']:.1f}" if quality else "")
        rows["confident > 0.9"].append(f"{quality['confident_rate']:.1%}" if quality else "")
        rows["rarest / commonest digit"].append(f"{min(shares):.1%} / {max(shares):.1%}" if None not in shares else "")
    return rows


def show_curves(runs: dict[str, GAN]) -> list[str]:
    """The per-step dynamics of the chosen runs; returns their names."""
    st.subheader("The game, step by step")
    preferred = [n for n in ("gan-dcgan", "gan-dcgan-plain", "gan-mlp-unbalanced") if n in runs]
    chosen = st.multiselect("Runs", list(runs), default=preferred or list(runs)[:3], key="gan_runs",
                            help="By default the healthy DCGAN, the one without tricks and the unbalanced run.")
    if not chosen:
        st.info("Choose at least one run.")
        return []
    st.plotly_chart(figures.gan_dynamics({name: runs[name].metrics for name in chosen}), width="stretch")
    st.markdown(
        "**Reading the losses.** $L_D$ is a cross-entropy: $2\\log 2 \\approx 1.39$ when $D$ outputs 0.5 for "
        "everything, the value at the game's equilibrium, where $G$'s images are indistinguishable from data. A "
        "healthy run does not converge to a minimum: the losses settle into a band and oscillate, $D$'s accuracy "
        "stays between chance and certainty, and $D(x)$ stays above $D(G(z))$ by a margin that neither network "
        "can close. The losses alone do not say whether samples are good; the grids and the scores below do."
    )
    return chosen


def show_epochs(runs: dict[str, GAN], chosen: list[str]) -> None:
    st.subheader("The same 16 codes after every epoch")
    with_samples = [name for name in chosen if runs[name].training_samples is not None]
    if not with_samples:
        st.info("These checkpoints hold no per-epoch samples (they are saved by `python -m train gan`).")
        return
    lengths = [runs[name].training_samples.shape[0] for name in with_samples]
    last = max(lengths)
    epoch = st.slider("Epoch", 1, last, min(lengths), key="gan_epoch",
                      help="Starts at the last epoch every chosen run reached.") if last > 1 else 1
    for column, name in zip(st.columns(len(with_samples)), with_samples, strict=True):
        shots = runs[name].training_samples
        if epoch <= shots.shape[0]:
            show_images(shots[epoch - 1].float() / 255, nrow=4, height=230, where=column,
                        title=f"{name}, epoch {epoch}")
        else:
            column.info(f"{md(name)} was trained for {shots.shape[0]} epochs.")
    curves = {name: runs[name].metrics.get("curves", {}) for name in with_samples}
    shares = {name: [curves[name].get(f"val_share_{d}") for d in range(10)] for name in with_samples}
    recorded = [name for name in with_samples if None not in shares[name]]
    if recorded:
        st.markdown("**Which digits each run draws**: the share of each digit among 1,000 samples after every "
                    "epoch, as the shipped classifier reads them.")
    for column, name in zip(st.columns(len(recorded)) if recorded else [], recorded, strict=True):
        column.plotly_chart(figures.class_shares(curves[name]["epoch"], shares[name], class_names("mnist"), name),
                            width="stretch", key=f"gan_shares_{name}")
    st.markdown(
        "**Mode collapse** shows in the heatmaps: a healthy generator draws every digit about a tenth of the time "
        "(an even band); a collapsing one lets some rows go dark while others glow, often moving from digit to "
        "digit between epochs as $D$ learns to reject whatever $G$ over-produces and $G$ jumps to another mode."
    )


def show_answers(runs: dict[str, GAN]) -> None:
    st.subheader("What the runs answer")
    unbalanced = [n for n, m in runs.items() if _lr_ratio(m) >= 5]
    text = (
        "**A discriminator much better than the generator** (Leuven 4.2.2). With the saturating loss "
        "$\\log(1 - D(G(z)))$, a confident $D$ leaves $G$ no gradient: at $D(G(z)) = 0.001$ the gradient of the "
        "loss with respect to $D$'s logit is about 0.001, against about 1 for the non-saturating loss "
        "$-\\log D(G(z))$ used here. Even with the non-saturating loss, a $D$ that wins every round gives $G$ "
        "gradients that point wherever $D$ is weakest at the moment, not towards the data: samples stop improving "
        "or get worse, and $D$'s accuracy on fakes sits near 100 %."
    )
    if unbalanced:
        name = unbalanced[0]
        curves = runs[name].metrics.get("curves", {})
        accuracy = curves.get("train_d_accuracy_fake") or [float("nan")]
        text += (f" In **{name}** (the discriminator's learning rate {_lr_ratio(runs[name]):g} times the "
                 f"generator's) D's accuracy on fakes averaged {accuracy[-1]:.0%} in the last epoch; compare its "
                 "grid and its FID with the healthy runs above.")
    st.markdown(text)
    comparison = tricks_comparison(runs)
    if comparison:
        st.markdown(comparison)
    st.markdown(
        "**Convergence and stability** (Leuven 4.2.3). Each player takes a gradient step against the other's "
        "current strategy; simultaneous gradient descent on a min-max game can circle around the equilibrium "
        "instead of reaching it, so the curves oscillate and a run can degrade after being good. The tricks a run "
        "can switch on (flags of `python -m train gan`) all aim at a steadier game: spectral normalisation bounds "
        "how fast $D$ can change with its input (Miyato et al., 2018), batch norm in $D$ (Radford et al., 2016) "
        "normalises each batch of real or of fake images by its own statistics, keeping $D$'s layers well scaled "
        "while the fakes change, "
        "one-sided label smoothing stops $D$ from pushing its confidence on real "
        "digits to 1 (Salimans et al., 2016), instance noise blurs the two distributions so that they overlap "
        "(Sonderby et al., 2017), and the moving average of the generator's weights, which draws every sample "
        "here, averages out the last steps' oscillation."
    )


def tricks(model: GAN) -> list[str]:
    """The stabilisation tricks a run switched on, in words."""
    c = model.config
    return [name for name, on in (("spectral norm", c.spectral_norm), ("batch norm in D", c.d_batch_norm),
                                  (f"label smoothing {c.label_smoothing:g}",
                                  c.label_smoothing), (f"instance noise {c.instance_noise:g}", c.instance_noise),
                                  (f"a moving average of G (decay {c.ema_decay:g})", c.ema_decay),
                                  (f"the {c.loss} loss", c.loss != "non-saturating")) if on]


def tricks_comparison(runs: dict[str, GAN]) -> str | None:
    """What changed between two runs of one backbone, one with tricks and one without, at their last common
    epoch (the confident rate of 1,000 samples and D's accuracy on fakes), or None if there is no such pair."""
    for backbone in ("dcgan", "mlp"):
        same = {n: m for n, m in runs.items() if m.config.backbone == backbone and not m.config.n_classes
                and _lr_ratio(m) < 5}
        plain = [n for n, m in same.items() if not tricks(m)]
        tricked = [n for n, m in same.items() if tricks(m)]
        if plain and tricked:
            a, b = tricked[0], plain[0]
            curves = {n: runs[n].metrics.get("curves", {}) for n in (a, b)}
            epoch = min(len(curves[n].get("val_confident_rate", [])) for n in (a, b))
            if not epoch:
                return None
            rate = {n: curves[n]["val_confident_rate"][epoch - 1] for n in (a, b)}
            fake = {n: (curves[n].get("train_d_accuracy_fake") or [float("nan")] * epoch)[epoch - 1] for n in (a, b)}
            lr = {n: runs[n].metrics.get("training", {}).get("lr") for n in (a, b)}
            besides = (f", with a learning rate of {lr[a]:g} against {lr[b]:g} for both networks"
                       if lr[a] and lr[b] and lr[a] != lr[b] else "")
            size = {n: runs[n].network_sizes()[0] for n in (a, b)}
            if size[a] != size[b]:  # not the tricks alone: say so
                besides += f", and a generator of {size[a]:,} parameters against {size[b]:,}"
            return (f"**With and without tricks.** **{a}** ({', '.join(tricks(runs[a]))}{besides}) against **{b}** "
                    f"(none), both {backbone.upper() if backbone == 'dcgan' else 'MLP'} from the same seed: after "
                    f"epoch {epoch}, {rate[a]:.0%} against {rate[b]:.0%} of 1,000 samples are confident digits, and "
                    f"D caught {fake[a]:.0%} against {fake[b]:.0%} of the fakes in that epoch. Slide the epochs "
                    f"above to see when the two runs part.")
    return None


def _lr_ratio(model: GAN) -> float:
    optimizers = model.metrics.get("training", {}).get("optimizers", {})
    d, g = (optimizers.get(net, {}).get("lr") for net in ("discriminator", "generator"))
    return d / g if d and g else 1.0


introduction()
runs = load_runs()
st.subheader("The runs")
st.dataframe(settings_table(runs), hide_index=True)
chosen = show_curves(runs)
show_epochs(runs, chosen)
show_answers(runs)
show_code(discriminator_loss, generator_loss, GAN.critic, GAN.update_ema)
if chosen:
    model_card(runs[chosen[0]])
