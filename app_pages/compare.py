"""Compare every model: representative samples, sample quality and sampling time, one likelihood scoreboard,
the three VAE priors side by side, interpolation between two test digits, and the flow's and the DDPM's layers."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    available_checkpoints,
    checkpoint_label,
    checkpoint_metrics,
    course_order,
    current_source,
    encoded_test_set,
    find_judge,
    lazy_tabs,
    load_model,
    load_test_set,
    long_computation,
    md,
    model_key,
    show_code,
    show_images,
    torch_threads,
)
from genmodels import compare, figures, latent, registry
from genmodels.checkpoint import CheckpointError
from genmodels.compare import KINDS, recorded_quality

SHOWN = 4  # representative samples a model
POOL = 16  # samples they are chosen from: the first batch (seed 0)
BATCHES = 4  # batches of POOL (seeds 0, 1, ...) the click shows: 64 samples
PRIOR_POINTS = 2000  # test images encoded for each prior's plot
FRAMES = 9  # images of an interpolation, ends included
PRIOR_NAMES = {"gaussian": "standard Gaussian prior", "mog": "mixture of Gaussians prior", "vamp": "VampPrior"}
FAMILY_NAMES = {"vae": "VAE", "flow": "normalizing flow", "ddpm": "DDPM", "cold": "cold diffusion", "gan": "GAN",
                "rbm": "RBM", "dbm": "deep Boltzmann machine"}


def introduction() -> None:
    st.title("Compare every model: samples, likelihoods, sample quality")
    st.markdown(
        "Every family in this zoo learns $p(x)$ for the same digits, in a different way. This page sets them side "
        "by side as the DTU 02460 mini-project asks (Part B and C: four representative samples from each model, "
        "the sample quality, the likelihoods, the layer architectures; Part A: the three VAE priors together), "
        "and answers in the last tab what each family does well and badly, from the numbers of the others. Each tab "
        "computes only when it is opened: the first shows the samples."
    )


# --- which models ---------------------------------------------------------------------------------------------------
def candidates(source) -> list[tuple[str, dict, dict]]:
    """(location, config, metrics) of the source's generative models of grey digits, in course order."""
    try:
        found = available_checkpoints(source)
    except CheckpointError as err:
        st.error(f"Could not list checkpoints: {md(err)}")
        st.stop()
    grey = [(loc, cfg) for loc, cfg in found
            if registry.is_generative(cfg) and cfg.get("dataset") in compare.DATA]
    return [(loc, cfg, checkpoint_metrics(loc, source.revision)) for loc, cfg in course_order(grey)]


def choose(models: list[tuple[str, dict, dict]]) -> list[str]:
    """The locations of the models compared: the headline rule's by default, any others by choice."""
    if not models:
        st.error("This source has no generative model of MNIST digits to compare. Choose the shipped checkpoints "
                 "in the sidebar, or train one (`python -m train vae`, for example).")
        st.stop()
    labels = {loc: checkpoint_label(loc) for loc, _, _ in models}
    kept = st.session_state.get("compare_models")
    if kept is None or not set(kept) <= set(labels):  # a first visit, or another source: the rule's models
        st.session_state["compare_models"] = [loc for loc in kept or [] if loc in labels] or \
            compare.headline_models(models)
    chosen = st.multiselect("Models compared", list(labels), format_func=labels.get, key="compare_models")
    st.caption("Chosen at first by a rule: of each family's unconditional models of MNIST digits, the one with the "
               "lowest FID-MNIST recorded in its metrics.json. Add or remove any.")
    if not chosen:
        st.info("Choose at least one model above.")
        st.stop()
    return chosen


# --- samples --------------------------------------------------------------------------------------------------------
def draw_and_judge(model, judge, n: int, seed: int) -> dict:
    """n samples of a model from ``seed``, drawn as its recorded scores were (a diffusion model with DPM-Solver++,
    20 steps, eta 1), the time it took here, and the judge's confidence and class for each."""
    (images, sampler), seconds = compare.timed(
        lambda: compare.draw(model, n, torch.Generator().manual_seed(seed), **compare.FAST))
    probabilities = judge.predict_proba(images) if judge is not None else None
    return {"images": images.numpy(), "sampler": sampler, "seconds": seconds,
            "confidence": None if probabilities is None else probabilities.max(1).values.numpy(),
            "predicted": None if probabilities is None else probabilities.argmax(1).numpy()}


@st.cache_data(show_spinner=False, max_entries=128)
def judged_samples(location: str, revision: str | None, n: int, seed: int) -> dict:
    """``draw_and_judge`` of a checkpoint, once per server. A batch per seed: the 64 a click shows are seeds 0 to
    3, so the first view's 16 (seed 0) are among them."""
    return draw_and_judge(load_model(location, revision), find_judge(), n, seed)


def first_batch(location: str, revision: str | None, name: str, where) -> dict | None:
    """Seed 0's batch of a model: at once for a one-pass sampler; for an iterative one (a diffusion model, Gibbs
    chains: seconds each) in the background, so the other models show meanwhile (None until it is there)."""
    model = load_model(location, revision)
    if not compare.iterative(model):
        return judged_samples(location, revision, POOL, 0)
    judge = find_judge()
    return long_computation(("compare", model_key(model), POOL, 0),
                            lambda callback: draw_and_judge(model, judge, POOL, 0),
                            f"Drawing {POOL} samples of {name} in the background...",
                            button=f"Draw {POOL} samples of {name}", where=where, place=name, start=True)


def drawn_here(chosen: list[str], revision: str | None) -> dict[str, dict]:
    """The sampler and time of each chosen model's first batch, as the samples tab showed them to this visitor
    (a model not shown yet is left out: the other tabs never draw)."""
    shown = st.session_state.get("compare_drawn", {})
    return {loc: shown[(loc, revision)] for loc in chosen if (loc, revision) in shown}


def show_samples(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("Four representative samples of each model")
    st.markdown(
        f"Each model draws {POOL} samples from seed 0; the judge (the shipped MNIST classifier) gives each its "
        f"confidence, its top class probability. The {SHOWN} shown are the ones whose confidence lies **nearest "
        f"the median** of the {POOL}: typical samples, neither the best nor the worst, picked by rule, not by hand. "
        "A diffusion model samples with DPM-Solver++ in 20 steps (eta 1), the sampler its scores (the next tab) were "
        f"recorded with; the others with their own sampler. Models that sample step by step draw in the "
        f"background and appear when they are done. The switch under a model shows {POOL * BATCHES} of its "
        f"samples: seed 0's {POOL} (the first two rows) and those of seeds 1 to {BATCHES - 1}."
    )
    columns = st.columns(2)
    for i, location in enumerate(chosen):
        name = checkpoint_label(location)
        card = columns[i % 2].container(border=True)
        title = card.empty()
        title.markdown(f"**{md(name)}**")
        with card, st.spinner(f"Drawing {POOL} samples of {name}..."):
            try:
                d = first_batch(location, revision, name, card)
            except CheckpointError as err:
                st.error(f"Could not load {md(name)}: {md(err)}")
                continue
        if d is None:  # drawing in the background: its progress is in the card
            continue
        st.session_state.setdefault("compare_drawn", {})[(location, revision)] = {
            "sampler": d["sampler"], "seconds": d["seconds"]}
        with card:
            per_image = d["seconds"] / POOL
            title.markdown(f"**{md(name)}**: {md(d['sampler'])}")
            if d["confidence"] is None:
                picked = list(range(SHOWN))
                st.caption("No judge could be loaded: the first four samples are shown.")
            else:
                picked = compare.representative(torch.as_tensor(d["confidence"]), SHOWN)
            show_images(d["images"][picked], nrow=SHOWN, height=130)
            threads = torch_threads()
            st.caption((f"Median confidence {np.median(d['confidence']):.3f}; shown: samples "
                        f"{', '.join(str(i) for i in picked)} (counted from 0), confidence "
                        + ", ".join(f"{d['confidence'][i]:.3f}" for i in picked) + ". "
                        if d["confidence"] is not None else "")
                       + f"{POOL} samples in {d['seconds']:.2f} s here, {per_image * 1000:.1f} ms an image ("
                       f"{threads} torch thread{'s' * (threads != 1)}, when this server first drew them).")
            more_seconds = (BATCHES - 1) * d["seconds"]  # the same sampler, measured on the first batch
            label = f"Show {POOL * BATCHES} samples" + (f" (about {more_seconds:.0f} s more to draw)"
                                                       if more_seconds >= 1 else "")
            if st.toggle(label, key=f"compare_all_{name}"):
                with st.spinner(f"Drawing {POOL * (BATCHES - 1)} more samples of {name}..."):
                    more = [d, *(judged_samples(location, revision, POOL, seed) for seed in range(1, BATCHES))]
                show_images(np.concatenate([m["images"] for m in more]), nrow=8, height=550,
                            title=f"{POOL * BATCHES} samples: seeds 0 to {BATCHES - 1}, {POOL} each, row by row")
                if d["predicted"] is not None:
                    st.caption("The judge's class of each, row by row: " + " ".join(
                        str(c) for m in more for c in m["predicted"]))


def device_name(device: str) -> str:
    """"cuda (NVIDIA H100 80GB HBM3)" -> "H100"; "cpu (x86_64, 2 cores)" -> "CPU, 2 cores": short enough for a cell."""
    if device.startswith("cuda"):
        found = [w for w in device.replace("(", " ").split() if w[:1] in "AHLTV" and any(c.isdigit() for c in w)]
        return found[0] if found else "GPU"
    cores = [p.strip(" )") for p in device.split(",") if "core" in p]
    return "CPU" + (f", {cores[0]}" if cores else "")


def judge_floor() -> dict:
    """The judge's recorded real-data floor (``fid_floor`` of its metrics.json), {} if none."""
    judge = find_judge()
    return judge.metrics.get("fid_floor", {}) if judge is not None else {}


def floor_of(scores: dict, floor: dict) -> float | None:
    """The real-data floor of a recorded score: recorded with it, else the judge's ``floor`` if at the same n."""
    if scores.get("floor_fid_mnist"):
        return scores["floor_fid_mnist"]
    return floor.get("fid_mnist") if floor.get("n") == scores.get("n") else None


def recorded(location: str, revision: str | None, drawn: dict[str, dict]) -> tuple[str | None, dict | None]:
    """A compared model's recorded scores: of as many samples, those of the sampler the page drew with."""
    return recorded_quality(checkpoint_metrics(location, revision),
                            prefer=drawn[location]["sampler"] if location in drawn else None)


# --- sample quality -------------------------------------------------------------------------------------------------
def quality_rows(chosen: list[str], revision: str | None, drawn: dict[str, dict], floor: dict) -> tuple[dict, dict]:
    """The quality table (recorded scores, and the time per image measured here) and the class histograms."""
    rows = {k: [] for k in ("model", "sampler scored", "samples", "FID-MNIST", "floor", "x floor", "confident",
                            "classes", "ms an image here", "recorded ms an image")}
    histograms = {}
    for location in chosen:
        name = checkpoint_label(location)
        sampler, q = recorded(location, revision, drawn)
        here = f"{drawn[location]['seconds'] / POOL * 1000:.1f}" if location in drawn else ""
        if q is None:
            for k, v in zip(rows, [name, "none recorded", "", "", "", "", "", "", here, ""], strict=True):
                rows[k].append(v)
            continue
        lowest = floor_of(q, floor)
        shares = np.asarray(q["histogram"]) / max(1, sum(q["histogram"])) if q.get("histogram") else None
        there = (f"{q['seconds'] / q['n'] * 1000:.1f} ({device_name(q.get('device', '?'))})"
                 if q.get("seconds") else "")
        values = [name, sampler, f"{q['n']:,}", f"{q['fid_mnist']:.1f}", f"{lowest:.1f}" if lowest else "",
                  f"{q['fid_mnist'] / lowest:.1f}" if lowest else "", f"{q['confident_rate']:.1%}",
                  f"{shares.min():.1%} to {shares.max():.1%}" if shares is not None else "", here, there]
        for k, v in zip(rows, values, strict=True):
            rows[k].append(v)
        if q.get("histogram"):
            histograms[name] = q["histogram"]
    return rows, histograms


def show_quality(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("Sample quality and sampling time")
    st.markdown(
        "**FID-MNIST** is the Frechet distance between the judge's features of the samples and of real training "
        "digits (lower is better); it is biased upwards at small n, so each model's is set beside real test "
        "digits scored at the same n (the floor). **Confident** is the share the judge classifies with "
        "probability over 0.9 (real test digits: about 98 %). The **classes** should each hold about 10 % of the "
        "samples: a class far below is a mode the model dropped. These are the scores recorded by "
        "`python -m train.sample_quality` (usually on 10,000 samples); the time per image is measured here, on "
        f"the {POOL} samples the first tab drew (blank for a model whose samples it has not shown yet)."
    )
    drawn, floor = drawn_here(chosen, revision), judge_floor()
    rows, histograms = quality_rows(chosen, revision, drawn, floor)
    st.dataframe(rows, hide_index=True, width="stretch",
                 column_config={"sampler scored": st.column_config.TextColumn(width="medium")})
    st.caption("Floor: real test digits scored at the same n. Classes: the rarest and the commonest class's share "
               "of the samples. Recorded ms an image: the scoring run's own time, on the device it ran on.")
    if floor.get("histogram"):
        histograms = {f"real test digits ({floor['n']:,})": floor["histogram"], **histograms}
    if histograms:
        st.plotly_chart(figures.class_share_heatmap(histograms, [str(c) for c in range(10)]), width="stretch",
                        key="compare_classes")
        st.caption("The judge's class of each recorded sample: white cells hold a fair tenth, red ones too many, "
                   "blue ones too few.")


# --- likelihoods ----------------------------------------------------------------------------------------------------
def scoreboard(models: list[tuple[str, dict, dict]]) -> list[compare.Score]:
    scores = [s for loc, cfg, metrics in models
              for s in compare.likelihood_scores(checkpoint_label(loc), cfg, metrics)]
    kinds = list(KINDS)  # within one kind of data: best first, proxies last (they are not log p(x))
    return sorted(scores, key=lambda s: (s.dataset, s.kind == "proxy", -s.log_likelihood, kinds.index(s.kind)))


def show_likelihoods(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("One likelihood scoreboard")
    st.markdown(
        "Every likelihood any model of this source recorded, in nats per image (log p(x), higher is better) and "
        "in **bits per dimension**, $-\\log p(x) / (784 \\ln 2)$ (lower is better). Each number says what kind it "
        "is: " + "; ".join(f"**{k}**: {v}" for k, v in KINDS.items()) + ". A GAN and cold diffusion have no "
        "likelihood at all: they have no density to evaluate."
    )
    scores = scoreboard(models)
    if not scores:
        st.info("No model of this source recorded a likelihood.")
        return
    st.dataframe({
        "model": [s.model for s in scores],
        "data": [s.dataset for s in scores],
        "quantity": [s.quantity for s in scores],
        "kind": [s.kind for s in scores],
        "log p(x), nats": [f"{s.log_likelihood:.2f}" for s in scores],
        "standard error": ["" if s.stderr is None else f"{s.stderr:.2f}" for s in scores],
        "bits/dim": [f"{s.bits_per_dim:.4f}" for s in scores],
        "test images": ["all 10,000" if s.images is None else f"first {s.images:,}" for s in scores],
    }, hide_index=True, width="stretch")
    st.markdown(
        "**Why numbers on different data do not compare.** "
        + " ".join(f"*{name}*: {compare.DATA[name]}." for name in ("binarized-mnist", "mnist"))
        + " A binarized digit carries far less information than its 256-level original, so its bits per "
        "dimension are a few tenths where the grey digit's are above one: a VAE on binarized MNIST at 0.13 "
        "bits/dim is not ten times better than a flow at 1.2, it solves an easier problem. Within one kind of "
        "data the numbers do compare, with their kinds in mind: a bound can only understate log p(x), a proxy "
        "is not log p(x) at all (an RBM's pseudo-likelihood is far above its AIS estimate), and the flow's exact "
        "density of the dequantized digit is itself a bound on the 8-bit digit's probability (Jensen's "
        "inequality over the uniform noise). Numbers of one model on a few hundred images (the DDPM's bound) "
        "carry their standard error."
    )


# --- the three priors -----------------------------------------------------------------------------------------------
def prior_groups(models: list[tuple[str, dict, dict]]) -> dict[str, list[tuple[str, dict, dict]]]:
    """VAEs that differ only in their prior (and seed), grouped: latent size, data, networks; groups of two or more."""
    groups: dict[tuple, list] = {}
    for loc, cfg, metrics in models:
        if cfg.get("family") != "vae" or cfg.get("n_classes") or cfg.get("beta", 1.0) != 1.0:
            continue
        key = tuple(sorted((k, str(v)) for k, v in cfg.items() if k not in ("prior", "n_components")))
        groups.setdefault(key, []).append((loc, cfg, metrics))
    named = {}
    for members in groups.values():
        if len({cfg.get("prior") for _, cfg, _ in members}) >= 2:
            cfg = members[0][1]
            named[f"{cfg.get('latent_dim')}-d latent, {cfg.get('architecture', 'mlp')} networks, "
                  f"{cfg.get('dataset')}"] = members
    return named


def over_seeds(metrics: dict) -> tuple[str, str, str]:
    """(ELBO, IWAE, runs) as 'mean ± std' over training runs where recorded, else the single run's value."""
    runs, evaluation = metrics.get("eval_over_runs"), metrics.get("eval", {})
    if runs:
        k = runs["k"]
        return (f"{runs['test_elbo_mean']:.2f} ± {runs['test_elbo_std']:.2f}",
                f"{runs[f'test_iwae_k{k}_mean']:.2f} ± {runs[f'test_iwae_k{k}_std']:.2f} (k = {k})",
                f"{len(runs['runs'])} (seeds {runs['seeds']})")
    iwae = next(((name, v) for name, v in evaluation.items() if name.startswith("test_iwae_k")), None)
    return (f"{evaluation['test_elbo']:.2f}" if "test_elbo" in evaluation else "",
            f"{iwae[1]:.2f} (k = {iwae[0].removeprefix('test_iwae_k')})" if iwae else "", "1")


def show_priors(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("The three VAE priors side by side")
    groups = prior_groups(models)
    if not groups:
        st.info("This source has no VAEs that differ only in their prior.")
        return
    group = st.radio("VAEs", list(groups), horizontal=True, key="compare_prior_group")
    members = groups[group]
    st.markdown(
        "The same encoder and decoder, trained with a standard Gaussian, a mixture of Gaussians and a VampPrior. "
        f"Grey contours: the prior's log-density (1 nat apart) and a quarter of {PRIOR_POINTS:,} prior samples; "
        f"coloured dots: the posterior means of the first {PRIOR_POINTS:,} test digits, the aggregate posterior. "
        "The closer the two, the fewer prior samples land where the decoder has never been trained. The colours "
        "are the digits, as on the priors page (its legend names them); gold stars mark a mixture's components."
        + (" A latent space of more than two dimensions is drawn on the aggregate posterior's two principal axes; "
           "the contours are the prior's exact density in that plane." if "2-d latent" not in group else "")
    )
    columns = st.columns(len(members))
    for column, (loc, cfg, _) in zip(columns, members, strict=True):
        try:
            model = load_model(loc, revision)
        except CheckpointError as err:
            column.error(f"Could not load {md(checkpoint_label(loc))}: {md(err)}")
            continue
        _, labels = load_test_set(model.config.dataset)
        mu, logvar = (t.numpy() for t in encoded_test_set(model, PRIOR_POINTS))
        view = latent.prior_view(model.prior, mu, logvar, PRIOR_POINTS)
        fig = figures.latent_scatter(labels=labels[:PRIOR_POINTS], height=430, **view["figure"])
        fig.update_layout(showlegend=False, margin=dict(t=10))
        column.markdown(f"**{md(checkpoint_label(loc))}**: {PRIOR_NAMES.get(cfg.get('prior'), cfg.get('prior'))}")
        column.plotly_chart(fig, width="stretch", key=f"compare_prior_{checkpoint_label(loc)}")
    rows = {"model": [], "prior": [], "test ELBO (nats)": [], "test IWAE bound (nats)": [], "training runs": []}
    for loc, cfg, metrics in members:
        elbo, iwae, runs = over_seeds(metrics)
        for k, v in zip(rows, [checkpoint_label(loc), cfg.get("prior"), elbo, iwae, runs], strict=True):
            rows[k].append(v)
    st.dataframe(rows, hide_index=True, width="stretch")
    st.caption("Mean ± standard deviation over independent training runs (different seeds) where several were "
               "trained (`python -m train.evaluate ... --write`); one run's value otherwise. A difference between "
               "priors smaller than the spread over seeds is not a difference.")


# --- interpolation --------------------------------------------------------------------------------------------------
def show_interpolation(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("Between two test digits")
    st.markdown(
        "The CMI report's figure 2: encode two test digits, walk the straight line between their codes, decode "
        "every point. In pixel space the same walk is a cross-fade of two images. A model with an encoder can do "
        "this with real digits; a GAN, an RBM and a DDPM sampled this way have no encoder (the GAN page walks "
        "between two of its own codes instead)."
    )
    encoders = [(loc, cfg) for loc, cfg, _ in models if cfg.get("family") in ("vae", "flow")
                and not cfg.get("n_classes")]
    if not encoders:
        st.info("This source has no VAE or flow to encode digits with.")
        return
    default = [loc for loc, _ in encoders if loc in chosen] or [encoders[0][0]]
    c1, c2, c3 = st.columns([1, 1, 3])
    images, labels = load_test_set("mnist")
    a = int(c1.number_input(f"First test image (0 to {len(images) - 1})", 0, len(images) - 1, 0, key="compare_a"))
    b = int(c2.number_input(f"Second test image (0 to {len(images) - 1})", 0, len(images) - 1, 1, key="compare_b"))
    labels_of = {loc: checkpoint_label(loc) for loc, _ in encoders}
    picked = c3.multiselect("Models", list(labels_of), default=default, format_func=labels_of.get,
                            key="compare_encoders")
    t = torch.linspace(0, 1, FRAMES)[:, None]
    pair = torch.as_tensor(images[[a, b]])
    show_images((1 - t[:, :, None, None]) * pair[:1] + t[:, :, None, None] * pair[1:], nrow=FRAMES, height=110,
                title=f"pixels: (1 - t) x_a + t x_b (digits {int(labels[a])} and {int(labels[b])})")
    for loc in picked:
        try:
            model = load_model(loc, revision)
        except CheckpointError as err:
            st.error(f"Could not load {md(labels_of[loc])}: {md(err)}")
            continue
        with torch.no_grad():
            if model.config.family == "flow":
                z = model.encode(((pair * 255).round() + 0.5) / 256)
                path, what = model.decode((1 - t) * z[:1] + t * z[1:]), "exact codes f(x), decoded exactly"
            else:
                own, _ = load_test_set(model.config.dataset)  # a VAE of binarized digits encodes binarized ones
                mu, _ = model.encode(torch.as_tensor(own[[a, b]]))
                path, what = model.decode_mean((1 - t) * mu[:1] + t * mu[1:]), "posterior means, decoder means"
        show_images(path, nrow=FRAMES, height=110, title=f"{labels_of[loc]}: {what}")
    st.caption(
        "The flow's ends are the two digits themselves (it inverts exactly); a VAE's are reconstructions, blurred "
        "by its decoder's mean. The cross-fade passes through two faint overlaid digits; a model's path passes "
        "through digit-like images, because its decoder maps every code to something like a digit: the shape "
        "morphs rather than fades. Where a VAE's middle frames are blurry or look like a third digit, its "
        "straight line crossed a region between the classes' clusters (the VAE priors tab shows where those are)."
    )


# --- architectures --------------------------------------------------------------------------------------------------
def show_architectures(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("Layer architectures: the flow and the DDPM")
    by_family = {}
    for loc, cfg, _ in models:  # a chosen model of the family first, else the first the source has
        family = cfg.get("family")
        if family in ("flow", "ddpm") and (family not in by_family or (loc in chosen and by_family[family]
                                                                       not in chosen)):
            by_family[family] = loc
    if not by_family:
        st.info("This source has no flow or DDPM.")
        return
    for family, loc in sorted(by_family.items(), reverse=True):  # the flow first: the brief asks for its code too
        column = st.container()
        try:
            model = load_model(loc, revision)
        except CheckpointError as err:
            column.error(f"Could not load {md(checkpoint_label(loc))}: {md(err)}")
            continue
        x = torch.full((1, model.config.image_channels if family == "ddpm" else 1, 28, 28), 0.5)
        if family == "flow":
            table = compare.layer_table(model, lambda m=model, x=x: m.flow_forward(m.preprocess(x)[0]))
            network = "the flow"
        else:
            y = torch.zeros(1, dtype=torch.long) if model.config.n_classes else None
            table = compare.layer_table(model.unet, lambda m=model, x=x, y=y: m.unet(x, torch.tensor([500]), y))
            network = "its U-Net (the noise predictor)"
        column.markdown(f"**{md(checkpoint_label(loc))}**: {md(model.describe())}")
        column.dataframe({k: [row[k] for row in table] for k in ("block", "layer", "in", "out", "parameters")},
                         hide_index=True, width="stretch", height=min(600, 38 + 35 * len(table)))
        column.caption(f"The blocks of {network} in the order a forward pass calls them, with the shape of one "
                       f"image (channels x height x width) going in and out; {model.num_parameters():,} parameters "
                       "in all. Rows named 'between blocks' are the code between two blocks, with no parameters: "
                       + ("a squeeze (2 x 2 pixels into 4 channels) or half the channels factored out to the "
                          "Gaussian." if family == "flow" else
                          "upsampling, or the concatenation of a skip connection from the way down."))


# --- what each family does well and badly ---------------------------------------------------------------------------
STRENGTHS = {
    "vae": ("an encoder and a smooth latent space; sampling is one decoder pass; a likelihood bound (ELBO) and an "
            "estimate (IWAE)", "blurry samples: the decoder's mean averages over what the code leaves uncertain"),
    "flow": ("the exact likelihood, exact encoding and decoding, one pass to sample",
             "samples less sharp than a diffusion model's for the same size: every layer must stay invertible, so "
             "the network is long and narrow"),
    "ddpm": ("the best samples and every class covered; a likelihood bound",
             "the slowest sampler: one network pass per step (20 here, 1,000 for the exact sampler)"),
    "cold": ("shows that the noise is not essential: any degradation it can learn to undo can generate",
             "no likelihood; a deterministic restoration needs a random start, and its samples are poor"),
    "gan": ("sharp samples from one generator pass, without any likelihood model",
            "no likelihood and no encoder; training is a balancing act, and classes can go missing (mode "
            "collapse)"),
    "rbm": ("a few hundred weights that a student can read; exact conditionals for Gibbs sampling and "
            "filling in missing pixels",
            "the likelihood needs AIS to estimate; Gibbs chains mix slowly, so samples crowd into a few classes"),
    "dbm": ("a deeper energy model: more abstract features in its second layer",
            "harder still to train and to sample; no tractable likelihood"),
}


def show_verdict(models: list[tuple[str, dict, dict]], chosen: list[str], revision: str | None) -> None:
    st.header("What each family does well and badly")
    drawn, scores = drawn_here(chosen, revision), scoreboard(models)
    bullets, ranked, floor = [], [], judge_floor()
    for location in chosen:
        name = checkpoint_label(location)
        family = next(cfg for loc, cfg, _ in models if loc == location).get("family", "")
        good, bad = STRENGTHS.get(family, ("", ""))
        _, q = recorded(location, revision, drawn)
        facts = []
        if q is not None:
            ranked.append((name, q["fid_mnist"]))
            lowest = floor_of(q, floor)
            facts.append(f"FID-MNIST {q['fid_mnist']:.1f}" + (f" ({q['fid_mnist'] / lowest:.1f} x the floor)"
                                                               if lowest else "")
                         + f", {q['confident_rate']:.0%} confident")
            if q.get("histogram"):
                shares = np.asarray(q["histogram"]) / sum(q["histogram"])
                facts.append(f"classes {shares.min():.0%} to {shares.max():.0%}")
        if location in drawn:
            facts.append(f"{drawn[location]['seconds'] / POOL * 1000:.1f} ms an image here")
        own = [s for s in scores if s.model == name and s.kind != "proxy"]
        if own:
            best = max(own, key=lambda s: s.log_likelihood)
            facts.append(f"{best.bits_per_dim:.3f} bits/dim ({best.kind}, {best.dataset})")
        bullets.append(f"- **{FAMILY_NAMES.get(family, family)}** ({md(name)}: {'; '.join(facts) or 'no scores'}). "
                       + (f"Good: {good}. Bad: {bad}." if good else ""))
    st.markdown("\n".join(bullets))
    ranked.sort(key=lambda item: item[1])
    if len(ranked) >= 2:
        fastest = min(drawn, key=lambda loc: drawn[loc]["seconds"]) if drawn else None
        slowest = max(drawn, key=lambda loc: drawn[loc]["seconds"]) if drawn else None
        text = (f"By FID-MNIST the order is {', '.join(f'{n} ({f:.1f})' for n, f in ranked)}. ")
        if fastest and slowest and fastest != slowest:
            ratio = drawn[slowest]["seconds"] / max(drawn[fastest]["seconds"], 1e-9)
            text += (f"Sampling here, {checkpoint_label(slowest)} took {ratio:,.0f} times as long per image as "
                     f"{checkpoint_label(fastest)}. ")
        text += ("Quality, speed and a likelihood pull apart: the family with the best samples is rarely the "
                 "fastest, and only the flow gives log p(x) exactly.")
        st.markdown(text)


TABS = {"Samples": show_samples, "Sample quality": show_quality, "Likelihoods": show_likelihoods,
        "The three VAE priors": show_priors, "Between two digits": show_interpolation,
        "Layer architectures": show_architectures, "Strengths and weaknesses": show_verdict}

introduction()
source = current_source()
models = candidates(source)
chosen = choose(models)
lazy_tabs({label: (lambda show=show: show(models, chosen, source.revision)) for label, show in TABS.items()},
          key="compare_tab")  # only the open tab's section runs: a first view draws the samples alone
show_code(compare.representative, compare.likelihood_scores, compare.layer_table)
