"""Home: every model the chosen source offers, with samples and a link to its page."""

import functools

import numpy as np
import streamlit as st

from app_pages.common import (
    URL_CHECKPOINT,
    available_checkpoints,
    checkpoint_label,
    checkpoint_metrics,
    course_order,
    current_source,
    lazy_tabs,
    load_model,
    md,
    public,
    recorded_quality,
    samples,
    show_images,
    show_problems,
    weights_stamp,
)
from genmodels import compare, figures, registry
from genmodels.checkpoint import CARD_SAMPLES, CheckpointError
from genmodels.data import DatasetNotFoundError, load_dataset


def introduction() -> None:
    st.title("genmodels: a zoo of deep generative models")
    st.markdown(
        "Small generative models trained on MNIST-like data, each with a page that shows **how it works**: "
        "what the prior looks like against what the encoder actually uses, how samples emerge step by step, "
        "what a hyperparameter does. Every number and picture comes from the checkpoints listed below, made "
        "by this project's own `python -m train` command (the model card on each page says exactly how)."
    )
    st.markdown(
        "Start with a model below, or pick a page in the menu. The sidebar chooses where models come from: "
        "the ones shipped with the app, a folder of your own, or a Hugging Face Hub repo."
    )


def facts(model, config: dict) -> str:
    """One line about a model: family, size, data and its headline numbers."""
    evaluation = model.metrics.get("eval", {})
    found = [model.headline(), f"{model.num_parameters():,} parameters", config.get("dataset", "")]
    if "test_elbo" in evaluation:
        found.append(f"test ELBO {evaluation['test_elbo']:.1f} nats")
    if "test_ais_log_likelihood" in evaluation:  # an RBM: an estimate of log p(x), and the proxy it trains on
        found.append(f"test log p(x) about {evaluation['test_ais_log_likelihood']:.1f} nats (AIS estimate), "
                     f"pseudo-likelihood {evaluation['test_pseudo_likelihood']:.1f} (proxy)")
    _, quality = recorded_quality(model)
    if quality:
        found.append(f"FID-MNIST {quality['fid_mnist']:.1f}")
    return " | ".join(f for f in found if f)


@st.cache_data(show_spinner=False, max_entries=256)
def card(location: str, revision: str | None, stamp: tuple, config: dict) -> tuple[list[str], str]:
    """What a model's card in the zoo says (its problems and ``facts``), kept for the server under
    its weights' ``stamp``: the model cache keeps only the last few models, so without this every visit to the zoo
    loaded every model again (about 2 s of the server's CPU for each visitor here)."""
    model = load_model(location, revision)
    return list(model.problems), facts(model, config)


def quality_points(models: list[tuple[str, dict]], revision: str | None) -> list[dict]:
    """The recorded sample quality of every generative model of grey digits that has one (read from its
    metrics.json, no model loaded), for ``figures.quality_map``."""
    points = []
    for location, config in models:
        sampler, scores = compare.recorded_quality(checkpoint_metrics(location, revision))
        if scores and config.get("dataset") in compare.DATA:
            points.append({"name": checkpoint_label(location), "family": config.get("family", ""),
                           "sampler": sampler, **{k: scores[k] for k in ("fid_mnist", "confident_rate", "n")}})
    return points


def show_quality_map(models: list[tuple[str, dict]], judges: list[tuple[str, dict]], source) -> None:
    """Where each model stands, before its card: one chart of every recorded score. (Drawn first, while the cards'
    models load, it also has the browser load its charting library then rather than on the first page a student
    opens: 2.5 s of a first view on this machine.)"""
    points = quality_points(models, source.revision)
    if not points:
        return
    floor = checkpoint_metrics(judges[0][0], source.revision).get("fid_floor") if judges else None
    st.subheader("Sample quality at a glance")
    st.plotly_chart(figures.quality_map(points, floor), key="quality_map")
    st.caption(f"Each point is a model of grey digits as its metrics.json records it ({len(points)} scored): the "
               "Frechet distance between the judge's features of its samples and of real digits (FID-MNIST), and "
               "how many samples the judge recognises with confidence. Towards the star (real test images) is "
               "better; hover over a point for its name and sampler. Conditional models were asked for each "
               "class in turn; FID-MNIST of fewer samples reads higher, so compare points of the same n.")


OTHER_SECTION = "Other checkpoints"  # the tab of a family the app does not know (its cards say why they fail)


def by_section(models: list[tuple[str, dict]]) -> dict[str, list[tuple[str, dict]]]:
    """The zoo's cards under their families' menu headings (a family without one: its name), headings in the order
    their first card comes."""
    sections: dict[str, list[tuple[str, dict]]] = {}
    for location, config in models:
        family = registry.FAMILIES.get(config.get("family", ""))
        heading = (family.section or family.name) if family else OTHER_SECTION
        sections.setdefault(heading, []).append((location, config))
    return sections


def show_cards(models: list[tuple[str, dict]], source) -> None:
    """A card per model: name, facts, 16 samples, a link to the page that explains it; three columns."""
    columns = st.columns(3)
    for i, (location, config) in enumerate(models):
        with columns[i % 3].container(border=True):
            st.markdown(f"**{md(checkpoint_label(location))}**")
            try:
                problems, line = card(location, source.revision, weights_stamp(location, source.revision), config)
            except CheckpointError as err:
                st.error(f"Could not load: {md(err)}")
                continue
            show_problems(problems)
            st.caption(md(line))
            show_images(samples(location, source.revision, CARD_SAMPLES, 0), nrow=8, height=130)
            page = registry.page_for(config)
            if page:
                st.page_link(page, label="Open its page", icon=":material/arrow_forward:",
                             query_params={URL_CHECKPOINT: checkpoint_label(location)})


def show_generative(models: list[tuple[str, dict]], source) -> None:
    """The cards in a tab per family heading (a course's order), of which only the open one loads its models:
    a first view of the zoo loads the variational autoencoders' alone."""
    st.subheader(f"{len(models)} generative model{'s' * (len(models) != 1)} from {source.kind.lower()}")
    st.caption("A tab for each family, in the order a course meets them; each card's link opens the page that "
               "explains its model, with that model chosen.")
    sections = by_section(models)
    lazy_tabs({f"{heading} ({len(cards)})": functools.partial(show_cards, cards, source)
               for heading, cards in sections.items()}, key="zoo_tab")


def show_others(models: list[tuple[str, dict]]) -> None:
    """Models that are not sampled here (autoencoders): one line per page, naming its checkpoints."""
    st.subheader("Autoencoders: they reconstruct and restore; they have no sampler")
    by_page: dict[str, list[str]] = {}
    for location, config in models:
        by_page.setdefault(registry.page_for(config) or "", []).append(checkpoint_label(location))
    for page, names in by_page.items():
        if page:
            st.page_link(page, label=f"{registry.page(page)[1].title}: {len(names)} checkpoints",
                         icon=registry.page(page)[1].icon)
        st.caption(md(", ".join(names)))


@st.cache_data(show_spinner=False)
def dataset_examples(name: str, n: int) -> np.ndarray:
    """The first n test images of a dataset, as a numpy array in [0, 1]."""
    return load_dataset(name, train=False, subset=n).images.numpy()


def show_datasets() -> None:
    st.subheader("The datasets")
    st.markdown(
        "MNIST (handwritten digits) and Fashion-MNIST (clothes), 28x28 grey images, 60,000 for training and "
        "10,000 for testing; binarized MNIST sets every pixel over 0.5 to 1. **Coloured MNIST** (and coloured "
        "Fashion-MNIST) paints each image by a seeded rule: the stroke in a bright colour of any hue, the "
        "background a dark colour of a hue at least a quarter turn away, each pixel mixing the two by its grey "
        "value. Image $i$ of a split always gets the same colours, so the coloured test set is the same everywhere."
    )
    names = ("mnist", "fashion-mnist", "colored-mnist", "colored-fashion-mnist")
    for column, name in zip(st.columns(len(names)), names, strict=True):
        try:
            show_images(dataset_examples(name, 16), nrow=4, height=200, title=name, where=column)
        except DatasetNotFoundError as err:
            column.caption(f"{name}: {md(public(err))}")


def show_judges(judges: list[tuple[str, dict]], source) -> None:
    st.subheader("The judge")
    st.markdown("A small MNIST classifier scores every generative model: the Frechet distance between its "
                "features of generated and real digits (FID-MNIST), and how many samples it recognises "
                "with confidence.")
    for location, _ in judges:
        try:
            model = load_model(location, source.revision)
        except CheckpointError as err:
            st.error(f"Could not load {md(checkpoint_label(location))}: {md(err)}")
            continue
        accuracy = model.metrics.get("eval", {}).get("test_accuracy")
        st.caption(f"**{md(checkpoint_label(location))}**: {model.num_parameters():,} parameters"
                   + (f", test accuracy {accuracy:.2%}" if accuracy is not None else ""))


introduction()
source = current_source()
try:
    found = available_checkpoints(source)
except CheckpointError as err:
    st.error(f"Could not list checkpoints: {md(err)}")
    st.stop()
generative = course_order([(loc, cfg) for loc, cfg in found if registry.is_generative(cfg)])
judges = [(loc, cfg) for loc, cfg in found if registry.is_judge(cfg)]
show_quality_map(generative, judges, source)
show_generative(generative, source)
others = [(loc, cfg) for loc, cfg in found if not registry.is_generative(cfg) and not registry.is_judge(cfg)]
if others:
    show_others(course_order(others))
if judges:
    show_judges(judges, source)
show_datasets()
