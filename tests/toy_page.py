"""The toy family's page: samples from the chosen checkpoint, its code and its card."""

import streamlit as st
import torch

from app_pages.common import model_card, pick_checkpoint, show_code, show_images
from tests.toy_family import Toy

st.title("Toy autoencoder")
model = pick_checkpoint(__file__)
show_images(model.sample(16, generator=torch.Generator().manual_seed(0)), nrow=8, height=130)
show_code(Toy.loss)
model_card(model)
