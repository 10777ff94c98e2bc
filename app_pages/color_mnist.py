"""Coloured MNIST: how the colour images are made, and how a colour sample is scored (its shape and its colours)."""

import inspect

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    available_checkpoints,
    checkpoint_label,
    course_order,
    current_source,
    find_judge,
    load_or_stop,
    load_test_set,
    md,
    model_card,
    pick_checkpoint,
    recorded_quality,
    samples,
    show_code,
    show_images,
)
from genmodels import figures, registry
from genmodels.checkpoint import CheckpointError
from genmodels.data import COLOR_SEEDS, MIN_HUE_GAP, decolorize, digit_colors, hue_gap
from genmodels.metrics import frechet_distance

SHOWN = 16  # images per grid, and the images the split can be shown on
PAIRS = 400  # colour pairs in the scatter (as many as train.sample_quality keeps)


def introduction() -> None:
    st.title("Coloured MNIST: colour samples and how to score them")
    st.markdown(
        "The Graz course asks for colour images, and allows a coloured version of a greyscale dataset. "
        "**Coloured MNIST** paints each MNIST digit $g$ (grey values in $[0, 1]$) with two colours: a bright "
        "stroke colour $c_f$ of any hue and a dark background colour $c_b$ whose hue is at least a quarter turn "
        "around the colour wheel from the stroke's. Every pixel mixes the two by its grey value:"
    )
    st.latex(r"x_{\text{rgb}}(i, j) = g(i, j)\, c_f + \big(1 - g(i, j)\big)\, c_b,"
             r"\qquad |\,\text{hue}(c_f) - \text{hue}(c_b)\,|_{\circ} \ge \tfrac14\ \text{turn}")
    st.markdown(
        "The colours come from a seeded generator, so test image $i$ has the same colours everywhere "
        "(`genmodels.data.digit_colors`). A model of these images must learn three things: the digit's shape, "
        "which colours occur, and the **rule** tying the two colours together."
    )
    st.markdown(
        "**Questions.** How can a classifier trained on grey MNIST score colour samples? Which part of a colour "
        "image does each score look at? A model can draw good shapes in wrong colours, or the right colours in "
        "a pair the dataset never has: which number shows which?"
    )


def color_checkpoints() -> list[tuple[str, dict]]:
    """(location, config) of the source's generative checkpoints of colour images, in course order."""
    try:
        found = available_checkpoints(current_source())
    except CheckpointError as err:
        st.error(f"Could not list checkpoints: {md(err)}")
        st.stop()
    return course_order([(loc, cfg) for loc, cfg in found
                         if registry.is_generative(cfg) and cfg.get("image_channels", 1) == 3])


def pick_model(found: list[tuple[str, dict]]):
    if not found:
        st.error("The chosen source has no generative model of colour images. Choose the shipped checkpoints in the "
                 "sidebar, or train one: `python -m train vae --dataset colored-mnist --architecture conv "
                 "--likelihood gaussian-learned --out checkpoints/my-color-vae`.")
        st.stop()
    model = pick_checkpoint(__file__, options=found, key="color_model", describe=lambda c: c["family"].upper())
    return model, checkpoint_label(model.source)


def model_images(model) -> np.ndarray:
    """SHOWN samples of the model (seed 0; the ones saved after training where it has them)."""
    return samples(model.source, model.revision, SHOWN, 0)


def show_split(real: torch.Tensor, generated: np.ndarray, name: str) -> None:
    st.subheader("One colour image = a shape and two colours")
    st.markdown(
        "To score a colour sample, split it back into what the rule above put together. The **background** "
        "colour is the median of the border pixels (no MNIST digit reaches the border); the **stroke** colour "
        "is the pixel farthest from it; each pixel's grey value is where it lies on the line from background to "
        "stroke colour. For a real image this gives back the grey digit exactly (up to the brightest pixel "
        "being full ink) and both colours; for a sample, the shape it drew and the colours it chose."
    )
    c1, c2 = st.columns([1, 2])
    source = c1.radio("Image", ["real test images", f"samples of {name}"], key="color_split_source")
    index = c2.slider("Which image", 0, SHOWN - 1, 0, key="color_split_index")
    images = real if source == "real test images" else torch.from_numpy(generated)
    x = images[index:index + 1].float()
    shape, fg, bg = decolorize(x)
    judge = find_judge()
    cols = st.columns(4)
    show_images(x, nrow=1, height=170, title="colour image", where=cols[0])
    show_images(bg.view(1, 3, 1, 1).expand(1, 3, 28, 28), nrow=1, height=170, title="background colour",
                where=cols[1])
    show_images(fg.view(1, 3, 1, 1).expand(1, 3, 28, 28), nrow=1, height=170, title="stroke colour", where=cols[2])
    show_images(shape, nrow=1, height=170, title="grey shape", where=cols[3])
    gap = hue_gap(fg, bg).item()
    reading = ""
    if judge is not None:
        p = judge.predict_proba(shape)[0]
        reading = f"The MNIST classifier reads the shape as a **{int(p.argmax())}** (probability {p.max():.2f}). "
    st.markdown(f"{reading}The two hues are **{gap:.2f}** of a turn apart: "
                + ("the dataset's rule holds." if gap >= MIN_HUE_GAP else
                   f"**closer than the dataset ever paints** ({MIN_HUE_GAP:g} of a turn at least)."))


def score_rows(found: list[tuple[str, dict]]) -> dict[str, list]:
    rows: dict[str, list] = {k: [] for k in ("model", "sampler", "n", "FID-MNIST of the shapes", "confident > 0.9",
                                             "colour FD", "hue rule kept")}
    floor = None
    for location, _ in found:
        model = load_or_stop(location)
        sampler, q = recorded_quality(model)
        if q is None or "fd_colors" not in q:
            continue
        floor = floor or q
        rows["model"].append(checkpoint_label(location))
        rows["sampler"].append(sampler)
        rows["n"].append(f"{q['n']:,}")
        rows["FID-MNIST of the shapes"].append(f"{q['fid_mnist']:.1f}")
        rows["confident > 0.9"].append(f"{q['confident_rate']:.1%}")
        rows["colour FD"].append(f"{q['fd_colors']:.4f}")
        rows["hue rule kept"].append(f"{q['hue_rule']:.1%}" if "hue_rule" in q else "")
    if floor is not None and "floor_fid_mnist" in floor:
        judge = find_judge()
        judged = judge.metrics.get("fid_floor", {}) if judge is not None else {}
        confident = f"{judged['confident_rate']:.1%}" if judged.get("n") == floor["n"] else ""
        fg, bg = digit_colors(floor["n"], COLOR_SEEDS[False])
        for key, value in (("model", "real coloured test images (the floor)"), ("sampler", ""),
                           ("n", f"{floor['n']:,}"), ("FID-MNIST of the shapes", f"{floor['floor_fid_mnist']:.1f}"),
                           ("confident > 0.9", confident),
                           ("colour FD", f"{floor.get('floor_fd_colors', float('nan')):.4f}"),
                           ("hue rule kept", f"{(hue_gap(fg, bg) >= MIN_HUE_GAP).float().mean():.1%}")):
            rows[key].insert(0, value)
    return rows


def show_scores(found: list[tuple[str, dict]]) -> None:
    st.subheader("Two scores: the shape and the colours")
    st.markdown(
        "**Shape.** The split's grey shapes go to the MNIST classifier that scores every grey model in this app: "
        "**FID-MNIST** is the Fréchet distance between its features of the shapes and of real training digits, "
        "and *confident* the share it reads with probability over 0.9. **Colours.** Each image's two colours are "
        "six numbers (stroke RGB, background RGB); the **colour FD** is the Fréchet distance between a Gaussian "
        "fitted to the samples' six numbers and one fitted to those of real images. It sees which colours occur "
        "and how the two go together, up to second moments. **Hue rule kept** is the share of samples whose two "
        "hues are at least a quarter turn apart, as every real image's are."
    )
    st.latex(r"\mathrm{FD} = \lVert \mu_s - \mu_r \rVert^2 + \operatorname{tr}\!\big(\Sigma_s + \Sigma_r"
             r" - 2\,(\Sigma_s \Sigma_r)^{1/2}\big)")
    rows = score_rows(found)
    if not rows["model"]:
        st.info("No colour model of this source has recorded scores: run `python -m train.sample_quality "
                "CHECKPOINT --floor --write` to measure them.")
        return
    st.table(rows)
    st.caption("Recorded by `python -m train.sample_quality CHECKPOINT --floor --write` (each checkpoint's "
               "metrics.json); the floor is real coloured test images scored the same way, at the same n. A Gaussian "
               "fitted to the colour pairs cannot tell a band of forbidden pairs from allowed ones around it: the "
               "hue rule is checked on its own.")


def model_pairs(model, scores: dict | None) -> np.ndarray | None:
    """(N, 6) colour pairs of the model's samples: the recorded ones, else drawn now if sampling is cheap."""
    if scores is not None and scores.get("color_pairs"):
        return np.asarray(scores["color_pairs"], dtype=np.float32)
    if "steps" in inspect.signature(model.sample).parameters:  # an iterative sampler (diffusion): too slow here
        return None
    with torch.no_grad():
        x = model.sample(PAIRS, generator=torch.Generator().manual_seed(0)).float()
    _, fg, bg = decolorize(x)
    return torch.cat([fg, bg], 1).numpy()


def show_pairs(model, name: str) -> None:
    st.subheader("Does the model know the rule?")
    fg, bg = digit_colors(10_000, COLOR_SEEDS[False])
    real = torch.cat([fg, bg], 1)[:PAIRS].numpy()
    _, scores = recorded_quality(model)
    pairs = model_pairs(model, scores)
    shown = {"real test images": real}
    if pairs is None:
        st.info(f"{name} has no recorded colour pairs, and its sampler is too slow to draw {PAIRS} samples on a page "
                f"view: run `python -m train.sample_quality CHECKPOINT --floor --write` to record them.")
    else:
        shown[f"{name} samples"] = pairs
        kept = (hue_gap(torch.from_numpy(pairs[:, :3]), torch.from_numpy(pairs[:, 3:])) >= MIN_HUE_GAP).float()
        fd = frechet_distance(torch.from_numpy(pairs), torch.from_numpy(real))
        st.markdown(f"Of these {len(pairs)} samples of {name}, **{kept.mean():.1%}** keep the hue rule; their colour "
                    f"FD against these {PAIRS} real pairs is {fd:.4f} (at this small n, even real pairs are not at "
                    f"0: compare models at the same n).")
    st.plotly_chart(figures.color_pairs(shown, MIN_HUE_GAP, height=400), width="stretch")
    st.markdown(
        "Each point is one image, filled with its stroke colour and ringed with its background colour. Left: the "
        "stroke's hue against the background's; the shaded band holds the pairs less than a quarter turn apart "
        "(it wraps around at the corners, since hue is an angle), where no real image lies. Right: brightness; "
        "real strokes are bright (value 0.85 to 1), real backgrounds dark (0.15 to 0.45). A model that learned "
        "the colours one at a time fills the band; a model that blurs colours pulls both clouds towards the middle."
    )


introduction()
found = color_checkpoints()
model, name = pick_model(found)
real_images = load_test_set("colored-mnist")[0][:SHOWN]
generated = model_images(model)
left, right = st.columns(2)
show_images(real_images, nrow=8, height=200, title="real coloured test images", where=left)
show_images(generated, nrow=8, height=200, title=f"samples of {name} (seed 0)", where=right)
show_split(real_images, generated, name)
show_scores(found)
show_pairs(model, name)
model_card(model)
show_code(decolorize, hue_gap)
