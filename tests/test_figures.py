"""Figure builders are pure: data in, plotly figure out."""

import numpy as np
import pytest
import torch

from genmodels import figures


def test_tile_places_images_in_rows():
    images = torch.stack([torch.full((1, 3, 3), float(i) / 10) for i in range(5)])
    grid = figures.tile(images, nrow=3, pad=1)
    assert grid.shape == (2 * 4 + 1, 3 * 4 + 1)
    assert grid[1, 1] == 0.0 and grid[1, 5] == np.float32(0.1) and grid[5, 5] == np.float32(0.4)
    assert grid[0, 0] == 0.5 and grid[5, 9] == 0.5  # padding and the empty sixth cell


def test_image_grid_is_a_picture_of_square_pixels():
    images = torch.rand(10, 1, 28, 28)
    picture = figures.image_grid(images, nrow=5, height=130)
    assert picture.dtype == np.uint8 and picture.shape == (2 * 62, 2 * 152)  # 2 rows of 5, padding 2; s = 2
    tiled = figures.tile(images, nrow=5)
    expected = np.round(tiled * 255).astype(np.uint8)
    assert np.array_equal(picture[::2, ::2], expected) and np.array_equal(picture[1::2, 1::2], expected)
    assert picture[0, 0] == 128  # the padding: mid grey
    assert figures.image_grid(images, nrow=5, height=40).shape == (62, 152)  # never below one pixel a pixel
    noise = figures.image_grid(torch.tensor([[[[-5.0, 0.0], [1.5, 5.0]]]]), nrow=1, height=6, value_range=(-3, 3))
    assert noise[2:4, 2:4].tolist() == [[0, 128], [191, 255]]  # mapped from (-3, 3) to black..white, saturated


def test_colour_images_tile_channel_by_channel_into_an_rgb_image():
    images = torch.zeros(3, 3, 4, 4)
    images[1, 0] = 1.0  # the second image pure red
    grid = figures.tile(images, nrow=3, pad=1)
    assert grid.shape == (6, 16, 3)
    assert (grid[1:5, 6:10] == [1, 0, 0]).all() and (grid[1:5, 1:5] == 0).all() and (grid[0, 0] == 0.5).all()
    picture = figures.image_grid(images, nrow=3, height=8)  # 8 rows of pixels in 8: one picture pixel each
    assert picture.shape == (8, 20, 3) and picture[2, 8].tolist() == [255, 0, 0]  # padding 2


def test_error_table_writes_each_value_and_leaves_missing_ones_blank():
    values = np.array([[0.1, np.nan, 0.0], [0.01, 0.02, 0.5]])
    fig = figures.error_table(values, ["a", "b"], ["x", "y", "z"])
    assert [list(row) for row in fig.data[0].text] == [["0.1000", "", "0.0000"], ["0.0100", "0.0200", "0.5000"]]
    assert fig.data[0].zmin == -2 and np.isclose(fig.data[0].zmax, np.log10(0.5))  # the positive values' span


def test_training_curves_plot_every_epoch_series():
    metrics = {"curves": {"step": [10, 20], "step_loss": [2.0, 1.0], "epoch": [1, 2], "train_loss": [2, 1],
                          "test_elbo": [-3, -2], "broken": [1]}}
    fig = figures.training_curves(metrics)
    assert [t.name for t in fig.data] == ["step loss", "train_loss", "test_elbo"]


def test_ellipse_has_the_right_radii():
    cov = np.array([[4.0, 0.0], [0.0, 1.0]])
    outline = figures.ellipse(np.array([1.0, -1.0]), cov, n_std=2.0, points=400)
    centred = outline - np.array([1.0, -1.0])
    assert np.isclose(np.abs(centred[:, 0]).max(), 4.0, atol=1e-3)
    assert np.isclose(np.abs(centred[:, 1]).max(), 2.0, atol=1e-3)


def test_latent_scatter_has_one_trace_per_class_and_the_extras():
    rng = np.random.default_rng(0)
    labels = np.array([0, 1, 2] * 10)
    fig = figures.latent_scatter(rng.normal(size=(30, 2)), rng.normal(size=(30, 2)), labels,
                                 density=(np.arange(3.0), np.arange(3.0), np.zeros((3, 3))),
                                 centres=np.zeros((4, 2)), picked=(np.zeros(2), np.eye(2)))
    names = [t.name for t in fig.data]
    assert names[0].startswith("prior log p(z)") and names[1] == "prior samples (a quarter)"
    assert len(fig.data[1].x) == 30 // 4  # light and few: the contours carry the density
    assert sum(n.startswith("q(z|x), digit") for n in names) == 3
    assert "component means" in names and sum("picked digit" in n for n in names) == 3


def test_gan_figures():
    import numpy as np
    import torch

    from genmodels import figures

    curves = {"step": [10, 20, 30], "epoch": [1, 2], "val_fid_mnist": [300.0, 200.0],
              **{f"step_{k}": [0.1, 0.2, 0.3] for k in ("d_loss", "g_loss", "d_accuracy_real", "d_accuracy_fake",
                                                        "d_real", "d_fake")}}
    fig = figures.training_curves({"curves": curves})  # a GAN records no "step_loss"
    assert {t.name for t in fig.data} >= {"d_loss", "g_loss", "val_fid_mnist"}
    fig = figures.gan_dynamics({"a": {"curves": curves}, "b": {"curves": curves}}, window=2)
    assert len(fig.data) == 12 and sum(t.showlegend for t in fig.data) == 2
    frames = torch.rand(5, 1, 28, 28)
    fig = figures.image_animation(frames, [f"t{i}" for i in range(5)], height=56)
    assert len(fig.frames) == 5 and len(fig.layout.sliders[0].steps) == 5
    shown = decode_png(fig.frames[3].data[0].source)  # each frame a PNG: every pixel a 2 x 2 square at height 56
    assert shown.shape == (56, 56) and np.array_equal(shown[1::2, ::2], shown[::2, ::2])
    assert np.array_equal(shown[::2, ::2], (frames[3, 0] * 255).round().to(torch.uint8).numpy())
    assert decode_png(figures.image_animation(torch.rand(2, 3, 28, 28), ["a", "b"], height=28).frames[1].data[0]
                      .source).shape == (28, 28, 3)  # colour frames stay colour
    fig = figures.class_shares([1, 2, 3], np.full((10, 3), 0.1).tolist(), [str(d) for d in range(10)], "x")
    assert np.asarray(fig.data[0].z).shape == (10, 3)


def test_smoothed_curves_keep_their_shape_in_at_most_curve_points():
    from genmodels import figures

    steps = list(range(10, 100_001, 10))  # 10,000 recorded steps
    values = np.random.default_rng(0).normal(size=len(steps)).tolist()
    x, y = figures.smoothed(steps, values, window=20)
    assert len(x) <= figures.CURVE_POINTS + 1 and x[0] == 10 and x[-1] == 100_000
    mean = figures.moving_average(values, 20)
    assert np.allclose(y, mean[[steps.index(s) for s in x]])  # the moving average at the kept steps, unchanged
    short_x, short_y = figures.smoothed(steps[:50], values[:50], window=20)  # a short curve: every point
    assert short_x == steps[:50] and np.allclose(short_y, mean[:50])
    fig = figures.gan_dynamics({"a": {"curves": {"step": steps, **{f"step_{k}": values for k in (
        "d_loss", "g_loss", "d_accuracy_real", "d_accuracy_fake", "d_real", "d_fake")}}}})
    assert all(len(trace.x) <= figures.CURVE_POINTS + 1 for trace in fig.data)


def decode_png(uri: str) -> np.ndarray:
    import base64
    import io

    from PIL import Image

    assert uri.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(uri.split(",", 1)[1]))))


def test_fill_error_chart_one_trace_per_model_and_place():
    curves = {"RBM": {"top": [0.1, 0.2], "every other": [0.05]}, "VAE": {"top": [0.15, 0.25], "every other": [0.1]}}
    fig = figures.fill_error_chart(curves, {"top": [4, 8], "every other": [4]})
    assert [t.name for t in fig.data] == ["RBM, top", "RBM, every other", "VAE, top", "VAE, every other"]
    assert list(fig.data[0].x) == [4, 8] and list(fig.data[2].y) == [0.15, 0.25]
    assert fig.data[0].line.color == fig.data[2].line.color and fig.data[0].line.dash != fig.data[2].line.dash


def test_epoch_curves_one_panel_per_curve_each_run_on_its_own_epochs():
    runs = {"a": {"curves": {"epoch": [1, 2, 3], "val_x": [1, 2, 3], "val_y": [3, 2, 1]}},
            "b": {"curves": {"epoch": [1, 2], "val_x": [5, 6]}}}
    fig = figures.epoch_curves(runs, {"x": "val_x", "y": "val_y"})
    assert [(t.name, t.xaxis) for t in fig.data] == [("a", "x"), ("a", "x2"), ("b", "x")]
    assert list(fig.data[2].x) == [1, 2] and [t.showlegend for t in fig.data] == [True, False, True]


def test_kl_bars_label_every_bar_and_rate_distortion_leaves_room_for_its_labels():
    fig = figures.kl_bars(np.array([2.5, 0.0, 0.02]), np.array([True, False, True]))
    assert list(fig.data[0].text) == ["2.50", "0.00", "0.02"]
    fig = figures.rate_distortion([0.5, 1.0, 8.0], [25.0, 20.0, 5.0], [60.0, 65.0, 120.0], 1.0)
    low, high = fig.layout.xaxis.range
    assert low < 5.0 and high > 25.0 + 0.2 * 20


def test_fid_curve_one_line_per_sampler_in_each_panel_on_log_axes():
    points = [{"sampler": f"{name}, {k} steps, eta {eta:g}", "method": m, "eta": eta, "steps": k,
               "fid_mnist": 100 / k, "confident_rate": 0.9, "histogram": [1] * 10, "seconds_per_image": 0.01 * k}
              for name, m, eta in (("DDIM", "ddim", 0.0), ("DPM-Solver++(2M)", "dpm++", 1.0)) for k in (20, 5, 10)]
    fig = figures.fid_curve({"n": 1000, "floor_fid_mnist": 3.0, "points": points}, confident_floor=0.98)
    names = ["DDIM, eta 0"] * 2 + ["DPM-Solver++(2M), eta 1"] * 2 + ["real test images"] * 2
    assert [t.name for t in fig.data] == names
    assert list(fig.data[0].x) == [5, 10, 20] and list(fig.data[0].y) == [20, 10, 5]  # sorted by steps
    assert list(fig.data[1].y) == [90, 90, 90] and fig.data[0].line.dash == "dash" and fig.data[2].line.dash == "solid"
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis2.type == "log"
    assert list(fig.data[4].y) == [3.0, 3.0] and list(fig.data[5].y) == [98.0, 98.0]  # the real-data floors
    assert list(fig.data[4].x) == [5, 20] and fig.data[5].xaxis == "x2"


def _inside(x: float, y: float, xs: list[float], ys: list[float]) -> bool:
    """Ray casting: whether (x, y) lies inside the polygon with these corners."""
    inside = False
    for i in range(len(xs)):
        x1, y1, x2, y2 = xs[i - 1], ys[i - 1], xs[i], ys[i]
        if (y1 > y) != (y2 > y) and x < x1 + (y - y1) * (x2 - x1) / (y2 - y1):
            inside = not inside
    return inside


def test_colour_pairs_shade_the_band_the_hue_rule_forbids_and_paint_each_point():
    from genmodels.data import hsv_to_rgb

    pairs = np.array([[1.0, 0.0, 0.0, 0.0, 0.0, 0.4], [0.0, 0.6, 0.0, 0.4, 0.2, 0.2]], dtype=np.float32)
    fig = figures.color_pairs({"real": pairs, "model": pairs[::-1]}, min_gap=0.25)
    titles = [a.text for a in fig.layout.annotations]
    assert titles == ["real: hues", "real: brightness", "model: hues", "model: brightness"]
    bands = [t for t in fig.data if t.fill == "toself"]
    assert len(bands) == 6  # the diagonal band and its two wrapped corners, in each hue panel
    grid = np.linspace(0.01, 0.99, 25)
    for hf in grid:
        for hb in grid:
            gap = min(abs(hf - hb), 1 - abs(hf - hb))
            if abs(gap - 0.25) > 0.02:  # away from the band's edge
                shaded = any(_inside(hf, hb, list(t.x), list(t.y)) for t in bands[:3])
                assert shaded == (gap < 0.25), (hf, hb)
    points = [t for t in fig.data if t.mode == "markers"]
    assert list(points[0].marker.color) == ["rgb(255,0,0)", "rgb(0,153,0)"]  # filled with the stroke colour
    assert list(points[0].marker.line.color) == ["rgb(0,0,102)", "rgb(102,51,51)"]  # ringed with the background
    hue = torch.tensor([0.3])
    rgb = hsv_to_rgb(hue, torch.tensor([1.0]), torch.tensor([1.0]))
    one = figures.color_pairs({"one": np.concatenate([rgb.numpy(), rgb.numpy() / 4], 1)}, min_gap=0.25)
    hues = next(t for t in one.data if t.mode == "markers")
    assert hues.x[0] == pytest.approx(0.3, abs=1e-6) and hues.y[0] == pytest.approx(0.3, abs=1e-6)


def test_quality_map_one_trace_per_family_names_each_familys_best_and_stars_the_floor():
    points = [{"name": "a", "family": "vae", "fid_mnist": 80.0, "confident_rate": 0.7, "n": 10_000, "sampler": "s"},
              {"name": "b", "family": "vae", "fid_mnist": 30.0, "confident_rate": 0.9, "n": 10_000, "sampler": "s"},
              {"name": "c", "family": "gan", "fid_mnist": 60.0, "confident_rate": 0.75, "n": 5_000, "sampler": "t"}]
    fig = figures.quality_map(points, {"fid_mnist": 5.1, "confident_rate": 0.979, "n": 10_000})
    vae, gan, floor = fig.data
    assert (vae.name, gan.name, floor.name) == ("vae", "gan", "real test images")
    assert list(vae.x) == [80.0, 30.0] and list(vae.y) == [70.0, 90.0] and list(vae.text) == ["", "b"]
    assert list(gan.text) == ["c"] and gan.customdata[0][2] == 5_000
    assert (floor.x[0], floor.y[0], floor.marker.symbol) == (5.1, pytest.approx(97.9), "star")
    assert fig.layout.xaxis.type == "log"
    assert len(figures.quality_map(points[:1]).data) == 1  # no floor recorded: no star
