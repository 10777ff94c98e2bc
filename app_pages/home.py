"""Home: every model the chosen source offers, with samples and a link to its page."""

import streamlit as st

from app_pages.common import available_checkpoints, checkpoint_label, current_source, load_model, page_for, samples
from genmodels import figures
from genmodels.checkpoint import CheckpointError

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

source = current_source()
try:
    found = available_checkpoints(source)
except CheckpointError as err:
    st.error(f"Could not list checkpoints: {err}")
    st.stop()

generative = [(loc, cfg) for loc, cfg in found if cfg["family"] != "classifier"]
judges = [(loc, cfg) for loc, cfg in found if cfg["family"] == "classifier"]
st.subheader(f"{len(generative)} generative model{'s' * (len(generative) != 1)} from {source.kind.lower()}")
columns = st.columns(3)
for i, (location, config) in enumerate(generative):
    with columns[i % 3].container(border=True):
        st.markdown(f"**{checkpoint_label(location)}**")
        try:
            model = load_model(location, source.revision)
        except CheckpointError as err:
            st.error(f"Could not load: {err}")
            continue
        evaluation = model.metrics.get("eval", {})
        facts = [config["family"], f"{model.num_parameters():,} parameters", config.get("dataset", "")]
        if "test_elbo" in evaluation:
            facts.append(f"test ELBO {evaluation['test_elbo']:.1f} nats")
        scored = list(model.metrics.get("sample_quality", {}).values())
        if scored:
            best = max(scored, key=lambda q: q["n"])
            facts.append(f"FID-MNIST {best['fid_mnist']:.1f}")
        st.caption(" | ".join(f for f in facts if f))
        st.plotly_chart(figures.image_grid(samples(location, source.revision, 16, 0), nrow=8, height=130),
                        width="stretch", key=f"home_samples_{i}", config={"staticPlot": True})
        page = page_for(config)
        if page:
            st.page_link(page, label="Open its page", icon=":material/arrow_forward:")

if judges:
    st.subheader("The judge")
    st.markdown("A small MNIST classifier scores every generative model: the Frechet distance between its "
                "features of generated and real digits (FID-MNIST), and how many samples it recognises "
                "with confidence.")
    for location, _ in judges:
        try:
            model = load_model(location, source.revision)
        except CheckpointError as err:
            st.error(f"Could not load {checkpoint_label(location)}: {err}")
            continue
        accuracy = model.metrics.get("eval", {}).get("test_accuracy")
        st.caption(f"**{checkpoint_label(location)}**: {model.num_parameters():,} parameters"
                   + (f", test accuracy {accuracy:.2%}" if accuracy is not None else ""))
