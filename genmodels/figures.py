"""Figure builders: pure functions, data in, ``plotly.graph_objects.Figure`` out.

Pages call these and only lay the figures out; tests call them without a browser.
"""

import base64
import io
import math

import numpy as np
import plotly.graph_objects as go
import torch
from PIL import Image
from plotly.subplots import make_subplots

from genmodels.data import rgb_to_hsv

# Ten distinguishable colours, one per digit class (plotly's D3 palette).
# D3's palette with its grey swapped for a plum, so no class looks like the black prior samples.
CLASS_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
                 "#8c564b", "#e377c2", "#7b4173", "#bcbd22", "#17becf"]


def _hide_axes(fig: go.Figure) -> go.Figure:
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False, autorange="reversed", scaleanchor="x")
    return fig


def tile(images: torch.Tensor | np.ndarray, nrow: int, pad: int = 2) -> np.ndarray:
    """Tile (N, 1, H, W) or (N, H, W) images in [0, 1] into one 2-D array, ``nrow`` per row; colour images
    (N, 3, H, W) into one (rows, cols, 3) array.

    Padding is drawn at 0.5 grey so white and black digits both stand out from it.
    """
    x = np.asarray(images.detach().cpu() if torch.is_tensor(images) else images, dtype=np.float32)
    if x.ndim == 4 and x.shape[1] == 3:
        return np.stack([tile(x[:, c], nrow, pad) for c in range(3)], axis=-1)
    if x.ndim == 4:
        x = x[:, 0]
    n, h, w = x.shape
    cols = max(1, min(nrow, n))
    rows = math.ceil(n / cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), 0.5, dtype=np.float32)
    for i in range(n):
        r, c = divmod(i, cols)
        out[pad + r * (h + pad): pad + r * (h + pad) + h, pad + c * (w + pad): pad + c * (w + pad) + w] = x[i]
    return out


def image_grid(images: torch.Tensor | np.ndarray, nrow: int = 8, height: int | None = None,
               value_range: tuple[float, float] = (0.0, 1.0)) -> np.ndarray:
    """A grid of greyscale images (white ink on black, as MNIST is stored), or of colour images (N, 3, H, W), as
    one picture of uint8 pixels (H', W') or (H', W', 3), each image pixel a square of s x s picture pixels, s the
    largest whole number that keeps the picture within ``height`` pixels (at least 1), so a browser shows sharp
    pixels as a PNG (a picture draws in a fraction of the time a chart of the same pixels takes).

    ``value_range`` maps to black and white; values outside it saturate (noise, for example, is
    best shown over (-3, 3)).
    """
    low, high = value_range
    x = images.detach().cpu() if torch.is_tensor(images) else images
    grid = tile((np.asarray(x, dtype=np.float32) - low) / (high - low), nrow)
    return sharp_pixels(grid, height or 8 * grid.shape[0])


def sharp_pixels(picture: np.ndarray, height: int) -> np.ndarray:
    """A (H, W) or (H, W, 3) picture in [0, 1] (values outside saturate) as uint8 pixels, each a square of s x s
    screen pixels, s the largest whole number that keeps it within ``height`` pixels (at least 1)."""
    scale = max(1, height // picture.shape[0])
    pixels = np.round(np.clip(picture, 0, 1) * 255).astype(np.uint8)
    return np.repeat(np.repeat(pixels, scale, axis=0), scale, axis=1)


def training_curves(metrics: dict) -> go.Figure:
    """A checkpoint's ``metrics.json`` curves: the losses per step, then each per-epoch number in its own panel
    with its own axis (a loss of 100 nats and a KL of 20 on one unlabelled axis would hide both); numbers that
    differ only by a trailing index (a GAN's ``val_share_0`` ... ``val_share_9``) share a panel."""
    curves = metrics.get("curves", {})
    steps = curves.get("step", [])
    per_step = [k for k in curves if k.startswith("step_") and curves[k] and len(curves[k]) == len(steps)]
    epochs = curves.get("epoch", [])
    groups: dict[str, list[str]] = {}
    for name, values in curves.items():
        if name == "step" or name in per_step or name == "epoch" or len(values) != len(epochs):
            continue
        stem, _, last = name.rpartition("_")
        groups.setdefault(stem if last.isdigit() else name, []).append(name)
    titles = ["training, per step", *(f"{name.replace('_', ' ')}, per epoch" for name in groups)]
    cols = min(3, len(titles))
    rows = math.ceil(len(titles) / cols)
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=titles, vertical_spacing=0.45 / rows)
    traces, places = [], []  # added at once: plotly checks a figure once per call, not once per trace
    for name in per_step:  # "step_loss"; a GAN records "step_d_loss", "step_g_loss", ...
        traces.append(go.Scatter(x=np.asarray(curves["step"]), y=np.asarray(curves[name], dtype=float),
                                 mode="lines", line=dict(width=1),
                                 name="step loss" if name == "step_loss" else name.removeprefix("step_")))
        places.append((1, 1))
    for i, members in enumerate(groups.values(), start=1):
        row, col = divmod(i, cols)
        for name in members:
            traces.append(go.Scatter(x=epochs, y=curves[name], mode="lines+markers", name=name,
                                     showlegend=len(members) > 1))
            places.append((row + 1, col + 1))
    if traces:
        fig.add_traces(traces, rows=[r for r, _ in places], cols=[c for _, c in places])
    fig.update_layout(height=260 * rows + 60, margin=dict(l=10, r=10, t=40, b=10),
                      legend=dict(orientation="h", y=-0.1))
    return fig


def ellipse(mean: np.ndarray, cov: np.ndarray, n_std: float = 2.0, points: int = 60) -> np.ndarray:
    """(points, 2) outline of the ``n_std`` standard-deviation ellipse of a 2-D Gaussian."""
    values, vectors = np.linalg.eigh(np.asarray(cov, dtype=np.float64))
    angle = np.linspace(0, 2 * np.pi, points)
    circle = np.stack([np.cos(angle), np.sin(angle)], axis=1)
    return np.asarray(mean) + n_std * circle * np.sqrt(np.clip(values, 0, None)) @ vectors.T


def latent_scatter(prior_z: np.ndarray, posterior_z: np.ndarray, labels: np.ndarray,
                   density: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
                   centres: np.ndarray | None = None, centres_name: str = "component means",
                   picked: tuple[np.ndarray, np.ndarray] | None = None,
                   axis_titles: tuple[str, str] = ("z1", "z2"), height: int = 560,
                   class_names: list[str] | None = None, posterior_name: str = "q(z|x)",
                   prior_name: str = "prior") -> go.Figure:
    """Prior samples against the aggregate posterior in a 2-D (latent or projected) plane.

    ``density`` is (xs, ys, log p(z) on the ys x xs grid), drawn as contours; ``centres`` marks
    mixture means or VampPrior pseudo-input posterior means; ``picked`` is (mean, covariance)
    of one test digit's posterior, drawn as its 1- and 2-sigma ellipses. ``class_names`` labels
    the legend (default: digits); ``posterior_name`` and ``prior_name`` name the points and the density (an
    autoencoder has codes f(x) and a Gaussian fitted to them instead).
    """
    fig = go.Figure()
    if density is not None:
        xs, ys, log_p = density
        # Contours of log p(z), one per nat below the peak: they reach into the tails, where prior
        # mass that no data uses shows up (linear-density contours all crowd around the mode).
        top = float(np.max(log_p))
        fig.add_trace(go.Contour(x=xs, y=ys, z=log_p, colorscale=[[0, "#bbbbbb"], [1, "#000000"]],
                                 contours=dict(coloring="lines", start=top - 9, end=top - 0.5, size=1.0),
                                 showscale=False, name=f"{prior_name} log p(z), 1 nat apart", showlegend=True,
                                 hoverinfo="skip", line=dict(width=1.2), opacity=0.8))
    shown = prior_z[: max(1, len(prior_z) // 4)]  # a quarter, light: the contours carry the density, and the
    # crosses must not cover the places where the prior has mass and the posterior none (the "holes")
    # SVG draws a few thousand points faster than WebGL starts (in a browser without a GPU, seconds faster);
    # WebGL only for more.
    scatter = go.Scattergl if len(prior_z) // 4 + len(posterior_z) > 5000 else go.Scatter
    fig.add_trace(scatter(x=shown[:, 0], y=shown[:, 1], mode="markers", name=f"{prior_name} samples (a quarter)",
                               marker=dict(size=4, color="#555555", symbol="x-thin",
                                           line=dict(width=1, color="#555555"), opacity=0.35)))
    for digit in np.unique(labels):
        sel = labels == digit
        name = class_names[int(digit)] if class_names else f"digit {digit}"
        fig.add_trace(scatter(x=posterior_z[sel, 0], y=posterior_z[sel, 1], mode="markers",
                                   name=f"{posterior_name}, {name}",
                                   legendgroup="posterior",
                                   marker=dict(size=4, color=CLASS_COLOURS[int(digit) % 10], opacity=0.6)))
    if centres is not None:
        fig.add_trace(go.Scatter(x=centres[:, 0], y=centres[:, 1], mode="markers+text", name=centres_name,
                                 text=[str(i) for i in range(len(centres))], textposition="top center",
                                 marker=dict(size=11, color="gold", symbol="star",
                                             line=dict(width=1, color="black"))))
    if picked is not None:
        mean, cov = picked
        fig.add_trace(go.Scatter(x=[mean[0]], y=[mean[1]], mode="markers", name="picked digit: mean of q(z|x)",
                                 marker=dict(size=12, color="red", symbol="circle-open", line=dict(width=3))))
        for n_std, dash in ((1.0, "solid"), (2.0, "dash")):
            outline = ellipse(mean, cov, n_std)
            fig.add_trace(go.Scatter(x=outline[:, 0], y=outline[:, 1], mode="lines",
                                     name=f"picked digit: {n_std:g} sd of q(z|x)",
                                     line=dict(color="red", width=2, dash=dash)))
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10),
                      xaxis_title=axis_titles[0], yaxis_title=axis_titles[1],
                      legend=dict(itemsizing="constant"))
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def kl_bars(kl: np.ndarray, active: np.ndarray) -> go.Figure:
    """KL per latent dimension, active dimensions in colour and collapsed ones in grey."""
    colours = ["#1f77b4" if a else "#bbbbbb" for a in active]
    fig = go.Figure(go.Bar(x=[f"z{j}" for j in range(len(kl))], y=kl, marker_color=colours,
                           text=[f"{k:.2f}" for k in kl], textposition="outside",  # a collapsed bar shows "0.00"
                           hovertemplate="%{x}: %{y:.2f} nats<extra></extra>"))
    fig.update_layout(height=280, margin=dict(l=10, r=10, t=30, b=10), yaxis_title="KL (nats)",
                      title=f"KL per dimension: {int(active.sum())} of {len(kl)} active")
    return fig


def rate_distortion(betas: list[float], rates: list[float], distortions: list[float], current: float) -> go.Figure:
    """The sweep's rate (KL) against distortion (-E log p(x|z)), one point per beta, the current one ringed."""
    fig = go.Figure(go.Scatter(x=rates, y=distortions, mode="lines+markers+text",
                               text=[f"beta={b:g}" for b in betas], textposition="top right",
                               marker=dict(size=9), name="trained betas"))
    i = betas.index(current)
    fig.add_trace(go.Scatter(x=[rates[i]], y=[distortions[i]], mode="markers", name=f"beta = {current:g}",
                             marker=dict(size=20, color="rgba(0,0,0,0)", line=dict(color="red", width=3))))
    span = max(rates) - min(rates) if len(rates) > 1 else 1.0
    fig.update_xaxes(range=[min(rates) - 0.1 * span, max(rates) + 0.25 * span])  # room for the last label
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=30, b=10), showlegend=False,
                      xaxis_title="rate: KL(q(z|x) || p(z)) (nats)",
                      yaxis_title="distortion: -E[log p(x|z)] (nats)", title="rate against distortion, test set")
    return fig


def correlation_heatmap(corr: np.ndarray) -> go.Figure:
    """|correlation| between latent dimensions, 0 (white) to 1 (dark)."""
    labels = [f"z{j}" for j in range(len(corr))]
    fig = go.Figure(go.Heatmap(z=np.abs(corr), x=labels, y=labels, zmin=0, zmax=1, colorscale="Blues",
                               hovertemplate="|corr(%{x}, %{y})| = %{z:.2f}<extra></extra>"))
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=30, b=10), title="|correlation| of posterior means")
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return fig


def error_table(values: np.ndarray, rows: list[str], columns: list[str], title: str | None = None) -> go.Figure:
    """A table of errors as a heatmap with each value written in its cell, low (good) dark green; missing values
    (NaN) are left blank. The colour scale is logarithmic (errors of different distortions differ tenfold) and
    spans the positive values (an error of 0 is drawn darkest without stretching the scale)."""
    values = np.asarray(values, dtype=np.float64)
    positive = values[np.isfinite(values) & (values > 0)]
    low, high = (np.log10(positive.min()), np.log10(positive.max())) if positive.size else (-6.0, 0.0)
    shown = np.log10(np.clip(values, 10 ** low, None))
    text = [["" if not np.isfinite(v) else f"{v:.4f}" for v in row] for row in values]
    fig = go.Figure(go.Heatmap(z=shown, x=columns, y=rows, text=text, texttemplate="%{text}", zmin=low,
                               zmax=high, colorscale="Greens", reversescale=True, showscale=False,
                               hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_layout(title=title, height=80 + 34 * len(rows), margin=dict(l=10, r=10, t=40 if title else 10, b=10))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top")
    return fig


def schedule_colour(name: str, i: int) -> str:
    """One colour per noise schedule on every page (linear blue, cosine orange), whatever else is plotted."""
    for k, schedule in enumerate(("linear", "cosine")):
        if schedule in name:
            return CLASS_COLOURS[k]
    return CLASS_COLOURS[(i + 2) % len(CLASS_COLOURS)]


def schedule_curves(alpha_bars: dict[str, torch.Tensor], marker: int | None = None) -> go.Figure:
    """alpha_bar_t (left) and the signal-to-noise ratio alpha_bar_t / (1 - alpha_bar_t) on a log scale
    (right) for one or more noise schedules, with an optional vertical line at timestep ``marker``."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=("alpha_bar_t: share of signal variance left",
                                                        "signal-to-noise ratio (log scale)"))
    for i, (name, ab) in enumerate(alpha_bars.items()):
        ab = ab.double()
        t = np.arange(len(ab))
        colour = schedule_colour(name, i)
        fig.add_trace(go.Scatter(x=t, y=ab.numpy(), mode="lines", name=name, line=dict(color=colour),
                                 legendgroup=name), row=1, col=1)
        fig.add_trace(go.Scatter(x=t, y=(ab / (1 - ab)).numpy(), mode="lines", name=name, showlegend=False,
                                 line=dict(color=colour), legendgroup=name), row=1, col=2)
    if marker is not None:
        for col in (1, 2):
            fig.add_vline(x=marker, line=dict(color="grey", dash="dot"), row=1, col=col)
    fig.update_xaxes(title_text="timestep t")
    fig.update_yaxes(type="log", exponentformat="power", row=1, col=2)
    fig.update_layout(height=300, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def moving_average(values: list[float], window: int) -> np.ndarray:
    """Trailing mean over ``window`` points (fewer at the start), to read a noisy loss curve."""
    v = np.asarray(values, dtype=np.float64)
    if len(v) == 0:
        return v
    c = np.cumsum(np.insert(v, 0, 0.0))
    i = np.arange(1, len(v) + 1)
    lo = np.maximum(0, i - window)
    return (c[i] - c[lo]) / (i - lo)


CURVE_POINTS = 400  # points drawn of a smoothed per-step curve: about one per pixel of a panel


def smoothed(steps: list[int], values: list[float], window: int) -> tuple[list[int], np.ndarray]:
    """A per-step curve as drawn: its trailing mean over ``window`` points (``moving_average``), then at most
    ``CURVE_POINTS`` of those points, evenly spaced and with the last one kept. After smoothing, the points
    left out add nothing a reader could see, and every one of them costs the browser (the GAN runs record
    thousands of steps)."""
    mean = moving_average(values, window)
    every = max(1, math.ceil(len(mean) / CURVE_POINTS))
    kept = list(range(0, len(mean), every))
    if kept and kept[-1] != len(mean) - 1:
        kept.append(len(mean) - 1)
    return [steps[i] for i in kept], mean[kept]


def loss_comparison(runs: dict[str, dict], per_epoch: tuple[str, ...] = ("val_loss", "test_loss"),
                    window: int = 20) -> go.Figure:
    """Training curves of several runs on shared axes: the per-step loss as a moving average of
    ``window`` recorded points (left) and a per-epoch number (right: the first curve of ``per_epoch`` a run
    has; runs trained before the validation split monitored the test set), one colour per run."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"training loss per step (moving average of {window})",
                                                        "loss on held-out images per epoch"))
    for i, (name, metrics) in enumerate(runs.items()):
        curves = metrics.get("curves", {})
        colour = schedule_colour(name, i)  # the DDPM runs: the same colour per schedule as on the step-by-step page
        if curves.get("step"):
            x, y = smoothed(curves["step"], curves["step_loss"], window)
            fig.add_trace(go.Scatter(x=x, y=y, mode="lines", name=name, line=dict(color=colour), legendgroup=name),
                          row=1, col=1)
        held_out = next((curves[k] for k in per_epoch if curves.get(k)), None)
        if held_out:
            fig.add_trace(go.Scatter(x=curves["epoch"], y=held_out, mode="lines+markers", name=name,
                                     showlegend=False, line=dict(color=colour), legendgroup=name), row=1, col=2)
    fig.update_xaxes(title_text="step", row=1, col=1)
    fig.update_xaxes(title_text="epoch", row=1, col=2)
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.25))
    return fig


def class_histogram(histogram: list[int], names: list[str], title: str | None = None) -> go.Figure:
    """How many samples the classifier puts in each class; a flat histogram means no class is missing."""
    total = max(1, sum(histogram))
    fig = go.Figure(go.Bar(x=names, y=histogram, marker_color=CLASS_COLOURS[: len(names)],
                           text=[f"{h / total:.0%}" for h in histogram], textposition="outside"))
    fig.add_hline(y=total / len(names), line=dict(color="grey", dash="dot"),
                  annotation_text="uniform", annotation_position="top left")
    fig.update_layout(title=title, height=280, margin=dict(l=10, r=10, t=40 if title else 10, b=10),
                      yaxis_title="samples")
    return fig


def bound_terms(runs: dict[str, dict]) -> go.Figure:
    """Where a DDPM's variational bound comes from: each term L_t in bits per dimension against t (log
    scale), one line per run; ``runs`` maps a name to ``{"terms": [L_0, ..., L_{T-1}], "prior_term": L_T}``."""
    fig = go.Figure()
    for i, (name, bound) in enumerate(runs.items()):
        terms = np.asarray(bound["terms"], dtype=np.float64)
        total = terms.sum() + bound["prior_term"]
        fig.add_trace(go.Scatter(x=np.arange(len(terms)), y=np.maximum(terms, 1e-12), mode="lines",
                                 line=dict(color=schedule_colour(name, i)),
                                 name=f"{name}: {total:.3f} bits/dim in all, L_0 = {terms[0]:.3f}",
                                 hovertemplate="t = %{x}: %{y:.3g} bits/dim<extra></extra>"))
    fig.update_yaxes(exponentformat="power")  # 10^-4, not "100μ"
    fig.update_layout(height=320, margin=dict(l=10, r=10, t=10, b=10), yaxis_type="log",
                      xaxis_title="timestep t (t = 0 is L_0, the decoder term)", yaxis_title="bits per dimension",
                      legend=dict(orientation="h", y=-0.3))
    return fig


def png_uri(image: np.ndarray) -> str:
    """A (H, W) grey or (H, W, 3) colour uint8 picture as a PNG data URI."""
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def image_animation(frames: torch.Tensor | np.ndarray, labels: list[str], height: int = 320,
                    title: str | None = None) -> go.Figure:
    """Images (N, 1 or 3, H, W) in [0, 1] as an animation with a play button and a slider, one frame per image.

    Each frame is a PNG picture (each pixel a square of whole screen pixels), not a heatmap of numbers: a tenth
    of the bytes, and a browser draws a picture at once."""
    x = np.asarray(frames.detach().cpu() if torch.is_tensor(frames) else frames, dtype=np.float32)
    pictures = [sharp_pixels(im[0] if im.shape[0] == 1 else im.transpose(1, 2, 0), height) for im in x]

    def picture(image):
        return go.Image(source=png_uri(image), hoverinfo="skip")

    fig = go.Figure(picture(pictures[0]),
                    frames=[go.Frame(data=[picture(im)], name=str(i)) for i, im in enumerate(pictures)])
    step = dict(frame=dict(duration=120, redraw=True), transition=dict(duration=0), mode="immediate")
    fig.update_layout(
        title=title, height=height, margin=dict(l=0, r=0, t=30 if title else 0, b=0),
        updatemenus=[dict(type="buttons", x=0, y=0, xanchor="left", yanchor="top", direction="left",
                          buttons=[dict(label="Play", method="animate", args=[None, {**step, "fromcurrent": True}]),
                                   dict(label="Pause", method="animate",
                                        args=[[None], dict(frame=dict(duration=0), mode="immediate")])])],
        sliders=[dict(x=0.25, len=0.75, y=0, yanchor="top", currentvalue=dict(prefix=""),
                      steps=[dict(label=label, method="animate", args=[[str(i)], step])
                             for i, label in enumerate(labels)])],
    )
    return _hide_axes(fig)


def lines(x, series: dict[str, list[float]], title: str, x_title: str, y_title: str,
          height: int = 280, log_x: bool = False) -> go.Figure:
    """A few named curves over a shared x axis (logarithmic with ``log_x``); markers only where they are few."""
    mode = "lines+markers" if len(x) <= 60 else "lines"
    fig = go.Figure([go.Scatter(x=list(x), y=list(y), mode=mode, name=name) for name, y in series.items()])
    fig.update_layout(title=title, height=height, margin=dict(l=10, r=10, t=40, b=10), xaxis_title=x_title,
                      yaxis_title=y_title, legend=dict(orientation="h", y=-0.3))
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def fid_curve(curve: dict, confident_floor: float | None = None) -> go.Figure:
    """Sample quality against sampling cost: FID-MNIST (left, with the real-data floor at the same n) and the
    confident rate (right, with real test images' rate if given) of each fast sampler at each number of steps
    (network evaluations, log scale). Stochastic samplers (eta > 0) solid, deterministic ones dashed."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=(f"FID-MNIST of {curve['n']:,} samples (lower is better)",
                                                        "confident over 0.9 (higher is better)"))
    samplers: dict[str, list[dict]] = {}
    for point in curve["points"]:
        samplers.setdefault(point["sampler"].split(",")[0] + f", eta {point['eta']:g}", []).append(point)
    for i, (name, points) in enumerate(samplers.items()):
        points = sorted(points, key=lambda p: p["steps"])
        steps = [p["steps"] for p in points]
        style = dict(color=CLASS_COLOURS[i % len(CLASS_COLOURS)], dash="solid" if points[0]["eta"] else "dash")
        fig.add_trace(go.Scatter(x=steps, y=[p["fid_mnist"] for p in points], mode="lines+markers", name=name,
                                 line=style, legendgroup=name), row=1, col=1)
        fig.add_trace(go.Scatter(x=steps, y=[100 * p["confident_rate"] for p in points], mode="lines+markers",
                                 name=name, line=style, legendgroup=name, showlegend=False), row=1, col=2)
    # the floors as lines, not shapes: a shape on a log axis takes log10 coordinates
    span = [min(p["steps"] for p in curve["points"]), max(p["steps"] for p in curve["points"])]
    floors = [(1, curve["floor_fid_mnist"])] + ([(2, 100 * confident_floor)] if confident_floor is not None else [])
    for col, y in floors:
        fig.add_trace(go.Scatter(x=span, y=[y, y], mode="lines", name="real test images",
                                 line=dict(color="grey", dash="dot"), showlegend=col == 1,
                                 legendgroup="floor"), row=1, col=col)
    fig.update_xaxes(type="log", title_text="steps (network evaluations)")
    fig.update_yaxes(type="log", row=1, col=1)
    fig.update_yaxes(ticksuffix=" %", row=1, col=2)
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def gan_dynamics(runs: dict[str, dict], window: int = 20) -> go.Figure:
    """A GAN's training, per step (moving averages), one colour per run: the two losses, D's accuracy on real
    and on generated images, and D's mean output on each (D(x), D(G(z)))."""
    fig = make_subplots(rows=1, cols=3, subplot_titles=("losses: D solid, G dotted", "D's accuracy: real solid, "
                                                        "fake dotted", "D(x) solid, D(G(z)) dotted"))
    panels = [(1, "d_loss", "g_loss"), (2, "d_accuracy_real", "d_accuracy_fake"), (3, "d_real", "d_fake")]
    for i, (name, metrics) in enumerate(runs.items()):
        curves = metrics.get("curves", {})
        colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
        for col, solid, dotted in panels:
            for key, dash in ((solid, "solid"), (dotted, "dot")):
                values = curves.get(f"step_{key}")
                if values:
                    x, y = smoothed(curves["step"], values, window)
                    fig.add_trace(go.Scatter(x=x, y=y, mode="lines",
                                             name=name, legendgroup=name, showlegend=(col == 1 and dash == "solid"),
                                             line=dict(color=colour, dash=dash, width=1.5)), row=1, col=col)
    fig.add_hline(y=0.5, line=dict(color="grey", dash="dot", width=1), row=1, col=3)
    fig.update_xaxes(title_text="step")
    fig.update_layout(height=340, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def class_shares(epochs: list[int], shares: list[list[float]], names: list[str], title: str) -> go.Figure:
    """The share of samples in each class after every epoch, as a heatmap (rows: classes). Mode collapse shows
    as rows going dark while others glow; a healthy run is an even band near 1 / classes."""
    z = np.asarray(shares, dtype=np.float32)  # (classes, epochs)
    fig = go.Figure(go.Heatmap(z=z, x=epochs, y=names, colorscale="Viridis", zmin=0, zmax=max(0.3, float(z.max())),
                               colorbar=dict(title="share"),
                               hovertemplate="epoch %{x}, %{y}: %{z:.1%}<extra></extra>"))
    fig.update_layout(title=title, height=300, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="epoch")
    return fig


def fill_error_chart(curves: dict[str, dict[str, list[float]]], rows: dict[str, list[int]]) -> go.Figure:
    """Error of filled-in pixels against rows removed: ``curves[model][place]`` over ``rows[place]``, one colour
    per place and one line style per model."""
    dashes = ["solid", "dash", "dot", "dashdot"]
    fig = go.Figure()
    for m, (model, by_place) in enumerate(curves.items()):
        for p, (place, errors) in enumerate(by_place.items()):
            fig.add_trace(go.Scatter(x=rows[place], y=errors, mode="lines+markers", name=f"{model}, {place}",
                                     legendgroup=model,
                                     line=dict(color=CLASS_COLOURS[p % len(CLASS_COLOURS)], dash=dashes[m % 4])))
    fig.update_layout(height=380, margin=dict(l=10, r=10, t=40, b=10), xaxis_title="rows removed",
                      yaxis_title="mean absolute error per removed pixel", legend=dict(orientation="v"),
                      title="colour: where the rows were removed; line style: the model")
    return fig


def epoch_curves(runs: dict[str, dict], panels: dict[str, str], height: int = 340) -> go.Figure:
    """Per-epoch curves of several runs side by side: one panel per ``panels`` entry (title -> curve name in
    metrics.json, such as ``val_pseudo_likelihood``), one colour per run, each over its own epochs."""
    fig = make_subplots(rows=1, cols=len(panels), subplot_titles=list(panels))
    for i, (name, metrics) in enumerate(runs.items()):
        curves = metrics.get("curves", {})
        colour = CLASS_COLOURS[i % len(CLASS_COLOURS)]
        for col, key in enumerate(panels.values(), start=1):
            if curves.get(key):
                fig.add_trace(go.Scatter(x=curves["epoch"], y=curves[key], mode="lines+markers", name=name,
                                         legendgroup=name, showlegend=col == 1, line=dict(color=colour)),
                              row=1, col=col)
        fig.update_xaxes(title_text="epoch")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=40, b=10), legend=dict(orientation="h", y=-0.3))
    return fig


def _css(rgb: np.ndarray) -> list[str]:
    return [f"rgb({r:.0f},{g:.0f},{b:.0f})" for r, g, b in np.clip(rgb, 0, 1) * 255]


def color_pairs(pairs: dict[str, np.ndarray], min_gap: float, height: int = 420) -> go.Figure:
    """Where images' two colours lie: each point one image, filled with its stroke colour and ringed in its
    background colour. Left, the stroke's hue against the background's (in turns), with the band of pairs closer
    than ``min_gap`` around the colour wheel shaded; right, their values (brightness). ``pairs`` maps a name
    (real images, a model) to (N, 6) arrays of (foreground RGB, background RGB), one panel row each."""
    names = list(pairs)
    fig = make_subplots(rows=len(names), cols=2, horizontal_spacing=0.1, vertical_spacing=0.12,
                        subplot_titles=[t for n in names for t in (f"{n}: hues", f"{n}: brightness")])
    diagonal = np.array([0.0, 1.0])
    for row, name in enumerate(names, start=1):
        p = np.ascontiguousarray(pairs[name], dtype=np.float32).reshape(-1, 6)
        fg, bg = torch.from_numpy(p[:, :3]), torch.from_numpy(p[:, 3:])
        (hf, _, vf), (hb, _, vb) = rgb_to_hsv(fg), rgb_to_hsv(bg)
        g = min_gap  # the band |hue_f - hue_b| < min_gap around the colour wheel: the diagonal and two corners
        for xs, ys in (([0, g, 1, 1, 1 - g, 0], [0, 0, 1 - g, 1, 1, g]), ([0, 0, g], [1 - g, 1, 1]),
                       ([1 - g, 1, 1], [0, 0, g])):
            fig.add_trace(go.Scatter(x=xs, y=ys, fill="toself", mode="none", fillcolor="rgba(200,60,60,0.15)",
                                     hoverinfo="skip", showlegend=False), row=row, col=1)
        marker = dict(size=7, color=_css(p[:, :3]), line=dict(color=_css(p[:, 3:]), width=2))
        fig.add_trace(go.Scatter(x=hf.numpy(), y=hb.numpy(), mode="markers", marker=marker, showlegend=False,
                                 hovertemplate="stroke hue %{x:.2f}, background hue %{y:.2f}<extra></extra>"),
                      row=row, col=1)
        fig.add_trace(go.Scatter(x=vf.numpy(), y=vb.numpy(), mode="markers", marker=marker, showlegend=False,
                                 hovertemplate="stroke value %{x:.2f}, background value %{y:.2f}<extra></extra>"),
                      row=row, col=2)
        fig.add_trace(go.Scatter(x=diagonal, y=diagonal, mode="lines", line=dict(color="grey", dash="dot"),
                                 hoverinfo="skip", showlegend=False), row=row, col=2)
        fig.update_xaxes(title_text="stroke hue (turns)", range=[-0.03, 1.03], row=row, col=1)
        fig.update_yaxes(title_text="background hue", range=[-0.03, 1.03], row=row, col=1)
        fig.update_xaxes(title_text="stroke brightness (value)", range=[-0.03, 1.03], row=row, col=2)
        fig.update_yaxes(title_text="background brightness", range=[-0.03, 1.03], row=row, col=2)
    fig.update_layout(height=height * len(names), margin=dict(l=10, r=10, t=40, b=10))
    return fig


def class_share_heatmap(histograms: dict[str, list[int]], names: list[str]) -> go.Figure:
    """Each row a model (or the real test set), each column a class: the share of its samples the classifier puts
    there, written in the cell. White is the fair share (1 / classes); red, too many; blue, too few. A missing
    class (mode collapse) is a deep blue cell."""
    rows = list(histograms)
    shares = np.array([np.asarray(h, dtype=np.float64) / max(1, sum(h)) for h in histograms.values()])
    fair = 1.0 / len(names)
    fig = go.Figure(go.Heatmap(z=shares - fair, x=names, y=rows, text=[[f"{v:.1%}" for v in r] for r in shares],
                               texttemplate="%{text}", zmid=0, zmin=-fair, zmax=fair, colorscale="RdBu",
                               reversescale=True, showscale=False,
                               hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_layout(height=80 + 30 * len(rows), margin=dict(l=10, r=10, t=30, b=10))
    fig.update_yaxes(autorange="reversed")
    fig.update_xaxes(side="top", type="category")  # every class named, even when the names are digits
    return fig


def quality_map(points: list[dict], floor: dict | None = None, height: int = 360) -> go.Figure:
    """Every scored model's recorded sample quality in one picture: FID-MNIST (log scale, lower is better) across,
    the share of samples the judge calls a digit with confidence over 0.9 up (higher is better), one colour per
    family; ``points``: dicts with ``name``, ``family``, ``fid_mnist``, ``confident_rate``, ``n`` and ``sampler``.
    Real test images (``floor``: the judge's ``fid_floor``, with ``fid_mnist``, ``confident_rate`` and ``n``) are
    the star in the best corner."""
    fig = go.Figure()
    families = list(dict.fromkeys(p["family"] for p in points))
    for i, family in enumerate(families):
        mine = [p for p in points if p["family"] == family]
        best = min(mine, key=lambda p: p["fid_mnist"])  # named on the chart; the others on hovering
        fig.add_trace(go.Scatter(
            x=[p["fid_mnist"] for p in mine], y=[100 * p["confident_rate"] for p in mine], mode="markers+text",
            text=[p["name"] if p is best else "" for p in mine], textposition="bottom center",
            textfont=dict(size=11, color=CLASS_COLOURS[i % len(CLASS_COLOURS)]),
            name=family, marker=dict(size=10, color=CLASS_COLOURS[i % len(CLASS_COLOURS)], line=dict(width=0)),
            customdata=[[p["name"], p["sampler"], p["n"]] for p in mine],
            hovertemplate="<b>%{customdata[0]}</b><br>FID-MNIST %{x:.1f}, %{y:.1f} % confident<br>"
                          "%{customdata[1]}, %{customdata[2]:,} samples<extra></extra>"))
    if floor and {"fid_mnist", "confident_rate", "n"} <= set(floor):
        fig.add_trace(go.Scatter(
            x=[floor["fid_mnist"]], y=[100 * floor["confident_rate"]], mode="markers", name="real test images",
            marker=dict(size=14, symbol="star", color="black"),
            hovertemplate=f"<b>real test images</b> ({floor['n']:,}): the floor<br>FID-MNIST %{{x:.1f}}, "
                          f"%{{y:.1f}} % confident<extra></extra>"))
    ticks = [2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000]
    fig.update_xaxes(type="log", title_text="FID-MNIST (log scale; lower is better)", tickvals=ticks,
                     ticktext=[f"{v:,}" for v in ticks])
    fig.update_yaxes(title_text="confident over 0.9", ticksuffix=" %")
    fig.update_layout(height=height, margin=dict(l=10, r=10, t=10, b=10), legend=dict(orientation="h", y=-0.25))
    return fig
