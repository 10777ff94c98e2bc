"""Restoring autoencoders: distorted digits in, clean digits out; which training generalises, and the bottleneck."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    checkpoint_label,
    checkpoint_metrics,
    checkpoints_of,
    current_source,
    load_or_stop,
    load_test_set,
    model_card,
    show_code,
    show_images,
    this_page,
)
from genmodels import figures
from genmodels.autoencoder import EVAL_STRENGTHS, Autoencoder, error_key, restoration_error
from genmodels.data import DATASET_TITLES
from genmodels.distortions import DISTORTIONS, distortion

ROW = 8  # test digits shown in the restoration grid


def introduction() -> None:
    st.title("Restoring autoencoders: distorted in, clean out")
    st.markdown(
        "An autoencoder squeezes an image through a small code $z = f(x)$ and rebuilds it, $\\hat x = g(z)$. A "
        "**restoring** (denoising) autoencoder (Vincent et al., 2008) is shown a distorted image $\\tilde x = "
        "D_s(x)$ and asked for the clean one: the code has room only for what digits have in common, so the "
        "distortion, which no clean digit has, is left out."
    )
    st.latex(r"\min_{f,\,g}\; \mathbb{E}_{x,\;s \sim U[0,1]}\Big[\,\ell\big(g(f(D_s(x))),\; x\big)\Big],"
             r"\qquad \ell = \text{binary cross-entropy summed over pixels}")
    st.markdown(
        "**Questions** (Graz, topic AutoEnc): can an autoencoder correct noise, an occluding patch, a change of "
        "brightness, a rotation, a flip? Does one trained on a **mix** of distortions generalise as well as "
        "one trained on each? How does the size of the bottleneck change how well it restores?"
    )


def dataset_controls(found: list[tuple[str, dict]]) -> str:
    order = list(DATASET_TITLES)
    datasets = sorted({cfg["dataset"] for _, cfg in found}, key=lambda d: (order.index(d) if d in order else 99, d))
    def title(d: str) -> str:
        name = DATASET_TITLES.get(d, d)
        return name[0].upper() + name[1:]

    return st.radio("Images", datasets, format_func=title, horizontal=True, key="ae_dataset")


def by_name(found: list[tuple[str, dict]], dataset: str) -> dict[str, tuple[str, dict]]:
    """checkpoint name -> (location, config), for the autoencoders of one dataset."""
    return {checkpoint_label(loc): (loc, cfg) for loc, cfg in found if cfg["dataset"] == dataset}


def trained_on(config: dict) -> str:
    name = config["distortion"]
    return "clean images (plain)" if name == "none" else distortion(name).title.lower()


def input_controls(n_test: int) -> tuple[int, str, float, int]:
    """(first test image, distortion, strength, seed of the distortion's random draws)."""
    c1, c2, c3, c4 = st.columns([1, 1.4, 1.4, 1])
    first = int(c1.number_input(f"First test image (0 to {n_test - ROW})", 0, n_test - ROW, 0, key="ae_first"))
    name = c2.selectbox("Distortion", list(DISTORTIONS), index=0, format_func=lambda n: DISTORTIONS[n].title,
                        key="ae_distortion")
    strength = c3.slider("Strength s", 0.0, 1.0, 0.6, step=0.05, key="ae_strength")
    seed = int(c4.number_input("Seed of the distortion", 0, 10_000, 0, key="ae_seed"))
    return first, name, strength, seed


def restorers(models: dict[str, tuple[str, dict]], name: str) -> list[str]:
    """The checkpoints to restore with: the one trained on this distortion, the one trained on the mix and the
    plain one, each at the bottleneck nearest the most common one (16 if there); at least one checkpoint."""
    sizes = [cfg["bottleneck"] for _, cfg in models.values()]
    usual = 16 if 16 in sizes else max(sorted(set(sizes)), key=sizes.count)

    def nearest(labels: list[str]) -> str:
        return min(labels, key=lambda label: (abs(models[label][1]["bottleneck"] - usual), label))

    chosen = []
    for wanted in (name, "mix", "none"):
        kind = [label for label, (_, cfg) in models.items() if cfg["distortion"] == wanted and label not in chosen]
        if kind:
            chosen.append(nearest(kind))
    return chosen or [nearest(list(models))]


def show_restoration(models: dict[str, tuple[str, dict]], x: torch.Tensor, name: str, strength: float,
                     seed: int) -> None:
    st.subheader("Restore")
    d = distortion(name)
    st.markdown(f"**{d.title}** at strength $s = {strength:g}$: {d.describe()}. Top row the clean test digits, "
                f"then what the autoencoder is given, then what each model gives back. The number in each row's "
                f"title is its mean squared error per pixel against the clean digits.")
    x_tilde = d(x, strength, torch.Generator().manual_seed(seed))
    rows = [("clean", x), ("distorted input", x_tilde)]
    for label in restorers(models, name):
        model = load_or_stop(models[label][0])
        rows.append((f"{label} (trained on {trained_on(models[label][1])})", model.reconstruct(x_tilde)))
    for title, images in rows:
        error = (images - x).pow(2).mean().item()
        show_images(images, nrow=ROW, height=140, title=f"{title}: MSE {error:.4f}" if title != "clean" else title)


def row_order(item: tuple[str, tuple[str, dict]]) -> tuple:
    """The error table's rows in the columns' order (each specialist on the diagonal), then the mix, then plain
    models, each by bottleneck."""
    config = item[1][1]
    order = [*DISTORTIONS, "none"]
    return (order.index(config["distortion"]) if config["distortion"] in order else len(order),
            config["bottleneck"], item[0])


def error_table(models: dict[str, tuple[str, dict]], strength: float) -> tuple[np.ndarray, list[str], list[str]]:
    """(errors, rows, columns): rows are the checkpoints (and first the distorted input itself), columns the test
    distortions and clean inputs; cells the mean squared error per pixel on the test set, as each training run
    recorded it (NaN where a run did not)."""
    source = current_source()
    columns = [*DISTORTIONS, "none"]
    rows, values, baseline = [], [], {}
    for label, (location, config) in sorted(models.items(), key=row_order):
        evaluation = checkpoint_metrics(location, source.revision).get("eval", {})
        rows.append(f"{label}: {trained_on(config)}, bottleneck {config['bottleneck']}")
        values.append([evaluation.get("test_mse_clean") if n == "none" else cell(evaluation, n, strength)
                       for n in columns])
        for n in DISTORTIONS:  # the distorted input's error: the same in every run (one seed), from the first with it
            if baseline.get(n) is None:
                baseline[n] = cell(evaluation, n, strength, "input_mse")
    first = [baseline.get(n) if n != "none" else 0.0 for n in columns]
    titles = [DISTORTIONS[n].title if n != "none" else "clean input" for n in columns]
    table = [[np.nan if v is None else v for v in row] for row in (first, *values)]
    return np.array(table, dtype=np.float64), ["distorted input, no model", *rows], titles


def show_error_table(models: dict[str, tuple[str, dict]]) -> None:
    st.subheader("Which training generalises?")
    strength = st.radio("Strength of the test distortions", EVAL_STRENGTHS, index=len(EVAL_STRENGTHS) - 1,
                        horizontal=True, key="ae_table_strength")
    st.markdown(
        "Mean squared error per pixel on the 10,000 test digits, every model (rows) against every distortion "
        "(columns), as each training run measured it (the distortions drawn from one seed, so every model saw the "
        "same inputs). The first row is the error of the distorted input itself: a model is worth having where "
        "it is below that. Darker is better."
    )
    values, rows, columns = error_table(models, strength)
    st.plotly_chart(figures.error_table(values, rows, columns), width="stretch",
                    config={"displayModeBar": False})  # the bar would cover the column names
    st.markdown(generalisation_text(models, strength))


def cell(evaluation: dict, name: str, strength: float, what: str = "mse") -> float | None:
    """One recorded number of the error table (None if the run did not record it)."""
    return evaluation.get("test_" + error_key(name, strength, what))


def generalisation_text(models: dict[str, tuple[str, dict]], strength: float) -> str:
    """What the table says, from its numbers: specialists against the mix model on their own distortion, what
    a specialist does to the others, where the mix model helps, and what it finds hardest."""
    source = current_source()
    mix = next((label for label in restorers(models, "mix") if models[label][1]["distortion"] == "mix"), None)
    if mix is None:
        return "Read down a column: which model restores that distortion best?"
    size = models[mix][1]["bottleneck"]
    mixed = checkpoint_metrics(models[mix][0], source.revision).get("eval", {})
    singles = [n for n in DISTORTIONS if n != "mix"]
    wins, total, left = 0, 0, []
    for location, config in models.values():
        name = config["distortion"]
        if name not in singles or config["bottleneck"] != size:
            continue
        own = checkpoint_metrics(location, source.revision).get("eval", {})
        if cell(own, name, strength) is not None and cell(mixed, name, strength) is not None:
            total += 1
            wins += cell(own, name, strength) < cell(mixed, name, strength)
        left += [cell(own, n, strength) / cell(own, n, strength, "input_mse") for n in singles
                 if n != name and cell(own, n, strength) and cell(own, n, strength, "input_mse")]
    text = "Read down a column. "
    if total:
        text += (f"The model trained on a distortion beats the one trained on the **mix** at it in {wins} of "
                 f"{total} columns. ")
    if left:
        share = sum(left) / len(left)
        text += (f"On a distortion it never saw, a specialist's output has on average {share:.0%} of the distorted "
                 f"input's error" + (" (it makes the image worse)" if share > 1 else "")
                 + ": it learned to undo one thing. ")
    cells = {n: cell(mixed, n, strength) for n in singles if cell(mixed, n, strength) is not None}
    helped = [n for n in cells if cell(mixed, n, strength, "input_mse") and cells[n] < cell(mixed, n, strength,
                                                                                                "input_mse")]
    if cells:
        text += f"The mix model lowers the error of {len(helped)} of the {len(cells)} distortions at once"
        missed = [DISTORTIONS[n].title.lower() for n in cells if n not in helped]
        text += (f" (not {', '.join(missed)}: at this strength the input is closer to the digit than the model's "
                 f"blurry reconstruction of it). " if missed else ". ")
        hardest, easiest = max(cells, key=cells.get), min(cells, key=cells.get)
        why = {"rotation": "to undo a turn the model must recognise the digit and know which way is up (a **6** "
                           "upside down is a **9**), where noise and brightness leave the stroke where it was",
               "occlusion": "under a large patch part of the stroke is gone, and the model must guess it from "
                            "what digits usually look like",
               "brightness": "on coloured digits a shift of brightness moves both colours, clipped, and the model "
                             "must guess what they were"}.get(hardest)
        text += (f"Its hardest is **{DISTORTIONS[hardest].title.lower()}** and its easiest "
                 f"**{DISTORTIONS[easiest].title.lower()}**" + (f": {why}." if why else "."))
    return text


def show_bottleneck(models: dict[str, tuple[str, dict]]) -> None:
    st.subheader("The bottleneck")
    source = current_source()
    points: dict[str, list[tuple[int, float]]] = {}
    for location, config in models.values():
        evaluation = checkpoint_metrics(location, source.revision).get("eval", {})
        for what, key in (("clean input", "test_mse_clean"), ("mix at s = 1", "test_" + error_key("mix", 1.0))):
            if key in evaluation:
                points.setdefault(f"trained on {trained_on(config)}: {what}", []).append(
                    (config["bottleneck"], evaluation[key]))
    points = {k: dict(v) for k, v in points.items() if len(v) > 1}
    if not points:
        st.info("The chosen source has each kind of autoencoder at one bottleneck size only: train another with "
                "`python -m train autoencoder --bottleneck 4 ...` to see the error against the size.")
        return
    sizes = sorted({b for v in points.values() for b in v})
    series = {k: [v.get(b) for b in sizes] for k, v in points.items()}
    fig = figures.lines(sizes, series, "Test error against the bottleneck", "bottleneck (code dimension)",
                        "mean squared error per pixel", height=360, log_x=True)
    fig.update_xaxes(tickvals=sizes)
    st.plotly_chart(fig, width="stretch")
    st.markdown(
        "A larger code keeps more of the image, so clean reconstructions get sharper as the bottleneck grows. "
        "Restoration gains less: a code large enough to keep everything also has room for the distortion, and "
        "the network then has less reason to throw it away. A very small code restores to a blurry average "
        "digit: it removes the distortion and the details with it."
    )


introduction()
found = checkpoints_of("autoencoder", this_page(__file__).accepts, what="convolutional autoencoder checkpoint")
dataset = dataset_controls(found)
models = by_name(found, dataset)
images, _ = load_test_set(dataset)
first, name, strength, seed = input_controls(len(images))
show_restoration(models, images[first: first + ROW], name, strength, seed)
show_error_table(models)
show_bottleneck(models)
model_card(load_or_stop(models[restorers(models, name)[0]][0]))
show_code(Autoencoder.loss, type(distortion(name)).apply, restoration_error)
