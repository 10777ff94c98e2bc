"""Normalizing flow: a test digit through every layer to its Gaussian code and exactly back, the log-determinants
and corrections that make up its bits per dimension, sampling with a temperature, and interpolation between
two encoded digits."""

import math
from itertools import accumulate

import streamlit as st
import torch

from app_pages.common import (
    find_judge,
    lazy_tabs,
    load_test_set,
    model_card,
    pick_checkpoint,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.flow import AffineCoupling, Flow

PUBLISHED = {"RealNVP (Dinh et al., 2017)": 1.06, "Glow (Kingma and Dhariwal, 2018)": 1.05}
BAR = 1.28  # the baseline on this CPU: 8 checkerboard couplings, 15 minutes
N_SAMPLES = 16
BETWEEN = 9
D = 784
LN2 = math.log(2)


def introduction() -> None:
    st.title("Normalizing flow: an exact likelihood")
    st.markdown(
        "A normalizing flow is an **invertible** network $f$ from images to codes $z = f(x)$ that are standard "
        "Gaussian. Because nothing is lost, the density of an image follows exactly from the change of "
        "variables formula, the Gaussian's density at the code times how much $f$ stretches space there:"
    )
    st.latex(r"\log p(x) = \log \mathcal N\big(f(x);\,0,\,I\big) + \log\left|\det \frac{\partial f}{\partial x}"
             r"\right|")
    st.markdown(
        "Each layer is built so that its inverse and its log-determinant are cheap: **actnorm** (a per-channel "
        "scale and shift), an **invertible 1x1 convolution** (a learned mix of the channels, Glow) and **affine "
        "coupling** (RealNVP): a mask $m$ keeps half the values, $x_a = m \\odot x$, and the other half is scaled "
        "and shifted by functions of the kept half, whose Jacobian is triangular:"
    )
    st.latex(r"y = x_a + (1 - m)\odot\big(x \odot e^{s(x_a)} + t(x_a)\big),\qquad "
             r"\log|\det J| = \sum_{(1-m)} s(x_a)")
    st.latex(r"\text{and back: } x = y_a + (1-m)\odot \big(y - t(y_a)\big)\odot e^{-s(y_a)},\quad y_a = x_a")
    st.markdown(
        "**Questions** (DTU Part B and C): what does each layer do to a digit, and what does it add to the "
        "likelihood? How is a likelihood of 8-bit pixels (a discrete distribution) computed with a density, and "
        "what do the dequantization and logit corrections contribute? What do samples look like, and what does "
        "lowering the temperature change?"
    )


def show_layers(model: Flow, digit: torch.Tensor) -> None:
    st.subheader("A digit through the flow, and back")
    y = ((digit * 255).round() + 0.5) / 256  # the middle of each pixel's dequantization interval
    trace = model.trace(y)
    labels = [label for label, _, _ in trace]
    i = st.select_slider("Layer", list(range(len(trace))), value=len(trace) - 1,
                         format_func=lambda j: labels[j], key="flow_layer")
    label, x, _ = trace[i]
    channels = x[0]
    lo, hi = channels.min().item(), channels.max().item()
    show_images(((channels - lo) / max(hi - lo, 1e-6))[:, None], nrow=min(len(channels), 8),
                height=150 if len(channels) <= 8 else 260,
                title=f"after {label}: {x.shape[1]} channel{'s' * (x.shape[1] != 1)} of {x.shape[2]} x {x.shape[3]} "
                      f"(values {lo:.2f} to {hi:.2f}, shown from black to white)")
    logdets = [ld[0].item() for _, _, ld in trace]
    st.plotly_chart(figures.lines(list(range(len(trace))), {"log-determinant added": logdets,
                                                            "running total": list(accumulate(logdets))},
                                  "log |det| of each layer for this digit (nats; index as on the slider)", "layer",
                                  "nats"), width="stretch")
    z = model.encode(y)
    back = model.decode(z)
    st.caption(f"The code z has {z.shape[1]} numbers (mean {z.mean():.3f}, standard deviation {z.std():.3f}; a "
               f"standard Gaussian code has 0 and 1). Decoded again, it gives back the digit to within "
               f"{(back - y).abs().max().item():.1e} (float32 rounding): the flow loses nothing. Squeezes and "
               f"factored-out halves only move values around, so they add 0.")


def show_bits(model: Flow, digit: torch.Tensor) -> None:
    st.subheader("Bits per dimension, term by term")
    parts = model.log_prob_terms((digit * 255).round(), generator=torch.Generator().manual_seed(0))
    terms = {"log N(z; 0, I): the Gaussian's density at the code": parts["base"].item(),
             "log-determinants of the layers": parts["layers"].item(),
             "logit transform's log-derivative": parts["logit"].item(),
             "dequantization, -784 log 256 (pixels 0..255 to [0, 1))": parts["dequantization"].item()}
    total = sum(terms.values())
    st.table({"term": list(terms) + ["log P(x), the total"],
              "nats": [f"{v:,.1f}" for v in terms.values()] + [f"{total:,.1f}"],
              "bits per dimension (- nats / (784 ln 2))": [f"{-v / (D * LN2):+.3f}" for v in terms.values()]
              + [f"{-total / (D * LN2):.3f}"]})
    st.markdown(
        "Pixels are integers, so a model of them is a probability mass function; the flow is a density. "
        "**Uniform dequantization** adds noise $u \\sim U[0,1)$ to each pixel, $y = (x + u)/256$, and by Jensen's "
        "inequality $\\log P(x) \\ge \\mathbb E_u[\\log p(y)] - 784 \\log 256$: the last row turns a density on "
        "$[0, 1)^{784}$ into a probability of the 8-bit image (a lower bound, estimated here with one draw of $u$). "
        "The **logit transform** $z_0 = \\operatorname{logit}(\\alpha + (1 - 2\\alpha) y)$ maps $[0, 1)$ to the "
        "whole real line, and its log-derivative is a term of its own. The Gaussian term is negative (784 "
        "dimensions), the layers' log-determinants pay most of it back. Bits per dimension is "
        "$-\\log P(x) / (784 \\ln 2)$: 8 for a model that knows nothing (every value equally likely)."
    )
    evaluation = model.metrics.get("eval", {})
    if "test_bits_per_dim" in evaluation:
        rows = {"model": ["this checkpoint, all 10,000 test digits", "the issue's baseline on this CPU (8 couplings, "
                          "15 min)", *PUBLISHED],
                "bits per dimension": [f"{evaluation['test_bits_per_dim']:.3f} ± "
                                       f"{evaluation.get('test_bits_per_dim_stderr', float('nan')):.3f}",
                                       f"{BAR:.2f}", *(f"{v:.2f}" for v in PUBLISHED.values())]}
        st.table(rows)
        st.caption(f"Trained for {model.metrics.get('epochs', '?')} epochs in {model.metrics.get('wall_time_s', 0):.0f}"
                   f" s on {model.metrics.get('device', '?')}; lower is better. The published models are far "
                   f"larger and trained for days; this one was still improving when it stopped (the curve in the "
                   f"model card).")


def show_samples(model: Flow) -> None:
    st.subheader("Sampling with a temperature")
    c1, c2 = st.columns([3, 1])
    temperature = c1.slider("Temperature T (the codes are drawn from N(0, T² I))", 0.0, 1.2, 0.8, step=0.05,
                            key="flow_temperature")
    seed = int(c2.number_input("Seed", 0, 100_000, 0, key="flow_seed"))
    images = model.sample(N_SAMPLES, generator=torch.Generator().manual_seed(seed), temperature=temperature)
    show_images(images, nrow=8, height=260, title=f"{N_SAMPLES} samples at T = {temperature:g}")
    judge = find_judge()
    if judge is not None:
        confident = (judge.predict_proba(images).max(-1).values > 0.9).float().mean().item()
        st.caption(f"The judge is confident (over 0.9) about {confident:.0%} of these.")
    st.markdown(
        "At $T = 1$ the samples come from the model itself; lowering $T$ draws codes nearer the Gaussian's centre, "
        "where the density is highest, and gives smoother, more typical digits (Glow's trick) at the cost of "
        "variety; $T = 0$ decodes the single code $z = 0$. Raising $T$ above 1 leaves the typical set and the "
        "strokes break up."
    )


def show_interpolation(model: Flow, images) -> None:
    st.subheader("Between two encoded test digits")
    c1, c2 = st.columns(2)
    a = int(c1.number_input("First test digit", 0, len(images) - 1, 0, key="flow_a"))
    b = int(c2.number_input("Second test digit", 0, len(images) - 1, 1, key="flow_b"))
    pair = ((torch.as_tensor(images[[a, b]]) * 255).round() + 0.5) / 256
    z = model.encode(pair)
    t = torch.linspace(0, 1, BETWEEN)[:, None]
    path = model.decode((1 - t) * z[:1] + t * z[1:])
    show_images(path, nrow=BETWEEN, height=130, title="z = (1 - t) f(a) + t f(b), t from 0 to 1, decoded")
    st.caption("The ends are the two test digits exactly (the flow inverts), not reconstructions as a VAE's would "
               "be. Straight lines in code space pass nearer the Gaussian's centre than the two codes (their "
               "norms are smaller), so the middle images are smoother and more typical than either end (the CMI "
               "report's figure 2 does this with its models).")


introduction()
model: Flow = pick_checkpoint(__file__, key="checkpoint_flow")
test_images, _ = load_test_set(model.config.dataset)
index = int(st.number_input("Test digit", 0, len(test_images) - 1, 0, key="flow_digit"))
digit = torch.as_tensor(test_images[index:index + 1]).float()


def show_digit() -> None:
    show_layers(model, digit)
    show_bits(model, digit)


lazy_tabs({"A digit through the flow": show_digit, "Samples": lambda: show_samples(model),
           "Between two digits": lambda: show_interpolation(model, test_images)}, key="flow_tab")
show_code(Flow.log_prob_terms, Flow.preprocess, AffineCoupling.forward, AffineCoupling.inverse)
model_card(model)
