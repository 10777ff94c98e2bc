"""genmodels: an interactive zoo of deep generative models for teaching.

Run with ``streamlit run streamlit_app.py``. The sidebar chooses where checkpoints come from;
each page explains one model family with the checkpoints from that source.
"""

import streamlit as st

from pages.common import source_sidebar

st.set_page_config(page_title="genmodels: a zoo of generative models", page_icon=":material/blur_on:",
                   layout="wide")

PAGES = {
    "Overview": [
        st.Page("pages/home.py", title="Model zoo", icon=":material/grid_view:", default=True),
    ],
    "Variational autoencoders": [
        st.Page("pages/vae_priors.py", title="Prior vs aggregate posterior", icon=":material/scatter_plot:"),
        st.Page("pages/vae_latent.py", title="Latent space explorer", icon=":material/explore:"),
        st.Page("pages/vae_beta.py", title="beta-VAE sweep", icon=":material/tune:"),
        st.Page("pages/vae_conditional.py", title="Conditional VAE", icon=":material/category:"),
    ],
}

source_sidebar()
st.navigation(PAGES).run()
