"""GAN backbones: an MLP GAN against a DCGAN on samples, size, speed and scores, and GANs against the VAEs
and DDPMs of this app, with the evidence for each claim."""

import hashlib
import json
import time

import streamlit as st
import torch

from app_pages.common import (
    available_checkpoints,
    checkpoint_label,
    checkpoint_metrics,
    checkpoints_of,
    current_source,
    load_model,
    load_or_stop,
    long_computation,
    md,
    model_card,
    recorded_quality,
    show_code,
    show_images,
    this_page,
)
from genmodels import compare, registry
from genmodels.checkpoint import CheckpointError
from genmodels.gan import GAN, DCGANDiscriminator, DCGANGenerator, MLPDiscriminator, MLPGenerator


def introduction() -> None:
    st.title("GAN backbones: MLP and DCGAN")
    st.markdown(
        "The GAN framework fixes the game, not the networks. The **backbone** is the pair of networks inside: "
        "here fully connected layers that see an image as 784 unrelated numbers, or the convolutional DCGAN of "
        "Radford et al. (2016), whose generator paints with transposed convolutions and whose discriminator "
        "looks at local strokes first. The same loss, the same optimisers, different inductive biases."
    )
    st.markdown(
        "**Questions** (Leuven 4.2.5 and 4.2.6): try the CNN-based backbone and discuss. What are the advantages "
        "and disadvantages of GANs compared with autoencoders and diffusion models: conceptually, in the quality "
        "of the results, in training?"
    )


def gan_facts(model: GAN) -> dict[str, str]:
    m, evaluation = model.metrics, model.metrics.get("eval", {})
    _, quality = recorded_quality(model)
    g, d = model.network_sizes()
    epochs = max(1, m.get("epochs", 1))
    shares = [evaluation.get(f"test_share_{k}") for k in range(10)]
    return {
        "generator / discriminator parameters": f"{g:,} / {d:,}",
        "training time per epoch": f"{m.get('wall_time_s', 0) / epochs:.0f} s on {m.get('device', '?')}",
        "epochs": str(m.get("epochs", "?")),
        "FID-MNIST (10,000 samples)": f"{quality['fid_mnist']:.1f}" if quality else "",
        "confident > 0.9": f"{quality['confident_rate']:.1%}" if quality else "",
        "rarest / commonest digit": f"{min(shares):.1%} / {max(shares):.1%}" if None not in shares else "",
    }


def show_side_by_side(runs: dict[str, GAN]) -> None:
    st.subheader("Side by side")
    by_backbone: dict[str, str] = {}
    for name, model in runs.items():
        by_backbone.setdefault(model.config.backbone, name)
    names = list(by_backbone.values())
    if len(names) < 2:
        st.info("The chosen source has GANs of one backbone only; the shipped checkpoints have both.")
    for column, name in zip(st.columns(len(names)), names, strict=True):
        model = runs[name]
        column.markdown(f"**{md(name)}** ({model.config.backbone})")
        show_images(model.sample(32, generator=torch.Generator().manual_seed(0)), nrow=8, height=180, where=column)
        facts = gan_facts(model)
        column.table({"": list(facts), "value": list(facts.values())})
    st.markdown(
        "What to compare: the MLP must learn every stroke at every position separately, while the DCGAN's "
        "convolutions share one stroke detector (and one painter) across the image. That prior usually shows as "
        "cleaner, more connected strokes from fewer generator parameters, and MLP samples as speckle and broken "
        "strokes; the price is time, since convolutions over 28x28 maps cost a CPU more than a few matrix "
        "products (the time per epoch above). The FID-MNIST and the confident rate say which won here."
    )


def sampling_times(models: dict[str, torch.nn.Module], callback) -> dict[str, float]:
    """Milliseconds per image when drawing 4 with each model's fast sampler. A Gibbs chain's cost is linear in
    its steps, so a tenth of them is timed and the time multiplied by ten."""
    times = {}
    for i, (label, model) in enumerate(models.items()):
        steps = getattr(model.config, "sample_steps", None)
        kwargs, scale = ({"steps": steps // 10}, 10.0) if steps and steps >= 100 else ({}, 1.0)
        start = time.perf_counter()
        model.sample(4, generator=torch.Generator().manual_seed(0), **kwargs)
        times[label] = 1000 * scale * (time.perf_counter() - start) / 4
        callback(i + 1, len(models))
    return times


def family_table() -> dict[str, list[str]]:
    """Every scored generative model of the source: family, FID-MNIST, confident rate (read from each metrics.json,
    no model loaded), and the time per sample measured on this server once a visitor asks for it (loading and
    timing every model costs seconds: not on a first view)."""
    source = current_source()
    rows = {"model": [], "family": [], "FID-MNIST": [], "confident > 0.9": []}
    try:
        found = [(loc, cfg) for loc, cfg in available_checkpoints(source) if registry.is_generative(cfg)]
    except CheckpointError:
        return rows
    scored, records = {}, []
    for location, config in found:
        metrics = checkpoint_metrics(location, source.revision)
        _, quality = compare.recorded_quality(metrics)
        if quality is None:
            continue
        label = checkpoint_label(location)
        scored[label] = location
        records.append(hashlib.sha1(json.dumps(metrics, sort_keys=True).encode()).hexdigest()[:16])
        rows["model"].append(label)
        rows["family"].append(config["family"])
        rows["FID-MNIST"].append(f"{quality['fid_mnist']:.1f}")
        rows["confident > 0.9"].append(f"{quality['confident_rate']:.1%}")
    if scored:
        revision = source.revision
        # the checkpoints named by their training records (a retrained one writes a new metrics.json): a Hub
        # source downloads no weights until a visitor asks for the timing
        key = ("sampling times", revision, tuple(zip(scored.values(), records, strict=True)))

        def load_and_time(callback) -> dict[str, float]:  # models that do not load are left out of the timing
            models, n = {}, len(scored)
            for i, (label, location) in enumerate(scored.items()):
                try:
                    models[label] = load_model(location, revision)
                except CheckpointError:
                    pass
                callback(i + 1, 2 * n)  # loading is the first half of the progress, timing the second
            return sampling_times(models, lambda done, total: callback(n + done, n + total))

        times = long_computation(key, load_and_time, f"Timing {len(scored)} samplers...",
                                 button=f"Time the {len(scored)} samplers on this server (seconds)")
        if times is not None:
            rows["ms per sample (here)"] = [f"{times[label]:.1f}" if label in times else "" for label in rows["model"]]
    return rows


def show_against_other_families() -> None:
    st.subheader("GANs against VAEs and diffusion models")
    st.dataframe(family_table(), hide_index=True)
    st.caption("FID-MNIST and the confident rate on 10,000 samples each against 10,000 training images "
               "(`python -m train.sample_quality`; real test images score 5.1 and 97.9 %); the times, once "
               "asked for with the button above the table, are measured on this server (DDPM: DDIM with 50 steps; "
               "RBM and DBM: a tenth of their 1,000 Gibbs steps, times ten).")
    st.markdown(
        "- **Sampling speed**: a GAN draws an image in one pass of its generator, like a VAE's decoder; a DDPM "
        "needs tens (DDIM) to a thousand network passes. The table's timing column (the button above it) is "
        "the evidence.\n"
        "- **Sharpness**: a GAN's discriminator punishes blur, so its samples are sharp; a VAE's decoder outputs "
        "the mean of $p(x\\mid z)$, blurry where it is unsure. Compare the walks on the latent-walk page.\n"
        "- **Likelihood and coverage**: a GAN has no likelihood and no encoder, so there is no test log-likelihood "
        "to report and no way to find the code of a real digit; nothing in its loss makes it cover every digit, "
        "so mode dropping must be checked (the class shares in the table above and on the training page). A VAE "
        "gives a bound on log p(x) and an encoder; a DDPM gives a bound too, and covers the data best.\n"
        "- **Training**: a VAE or a DDPM minimises one loss and is stable; a GAN plays a game whose loss says "
        "little about quality, is sensitive to the balance of the two networks and their learning rates, and "
        "needs the tricks of the training page. The best samples here come from the DDPM, at the highest cost "
        "per sample."
    )


introduction()
runs = {checkpoint_label(loc): load_or_stop(loc)
        for loc, _ in checkpoints_of("gan", this_page(__file__).accepts, what="unconditional GAN checkpoint")}
show_side_by_side(runs)
show_against_other_families()
show_code(MLPGenerator.__init__, MLPDiscriminator.__init__, DCGANGenerator.__init__, DCGANDiscriminator.__init__)
model_card(next(iter(runs.values())))
