"""Home: every model the chosen source offers, with samples and a link to its page."""

import streamlit as st

from app_pages.common import (
    URL_CHECKPOINT,
    available_checkpoints,
    checkpoint_label,
    course_order,
    current_source,
    load_model,
    md,
    recorded_quality,
    samples,
    show_images,
    show_problems,
)
from genmodels import registry
from genmodels.checkpoint import CheckpointError


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


def show_generative(models: list[tuple[str, dict]], source) -> None:
    """A card per generative model: name, facts, 16 samples, a link to the page that explains it."""
    st.subheader(f"{len(models)} generative model{'s' * (len(models) != 1)} from {source.kind.lower()}")
    columns = st.columns(3)
    for i, (location, config) in enumerate(models):
        with columns[i % 3].container(border=True):
            st.markdown(f"**{md(checkpoint_label(location))}**")
            try:
                model = load_model(location, source.revision)
            except CheckpointError as err:
                st.error(f"Could not load: {md(err)}")
                continue
            show_problems(model)
            st.caption(md(facts(model, config)))
            show_images(samples(location, source.revision, 16, 0), nrow=8, height=130, key=f"home_samples_{i}")
            page = registry.page_for(config)
            if page:
                st.page_link(page, label="Open its page", icon=":material/arrow_forward:",
                             query_params={URL_CHECKPOINT: checkpoint_label(location)})


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
show_generative(course_order([(loc, cfg) for loc, cfg in found if registry.is_generative(cfg)]), source)
judges = [(loc, cfg) for loc, cfg in found if not registry.is_generative(cfg)]
if judges:
    show_judges(judges, source)
