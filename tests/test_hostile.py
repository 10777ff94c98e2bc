"""Checkpoints made to hurt: every file of a checkpoint is checked before anything is built from it (issue 13).

A config that asks for a huge network, a weights file whose tensors do not fit, NaN weights, metrics.json as a
list or deeply nested, a non-UTF-8 file: each gives a CheckpointError naming the file (or, for the optional
metrics and samples, a model loaded without them and the problem in ``model.problems``), never a traceback from
deeper down and never a large allocation.
"""

import json
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

import genmodels
from genmodels import registry
from genmodels.checkpoint import MAX_METRICS_BYTES, MAX_PARAMETERS, CheckpointError, ShapesOnly, check_config

ROOT = Path(__file__).resolve().parent.parent


def edit_config(folder, **changes):
    path = folder / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config))


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@pytest.mark.parametrize("changes, message", [
    ({"hidden_dim": 10**6}, "'hidden_dim' is 1000000, but must be an integer between 1 and 4096"),
    ({"latent_dim": 10**9}, "'latent_dim' is 1000000000"),
    ({"latent_dim": True}, "'latent_dim' is True"),  # a bool is not a number
    ({"latent_dim": "2"}, "'latent_dim' is '2'"),
    ({"beta": float("nan")}, "'beta' is nan"),
    ({"beta": float("inf")}, "'beta' is inf"),
    ({"dataset": "imagenet"}, "'dataset' is 'imagenet', but must be one of mnist"),
    ({"prior": "x" * 10_000}, "'prior' is 'xxxx"),
    ({"n_classes": -1}, "'n_classes' is -1"),
])
def test_a_config_out_of_bounds_is_refused_before_anything_is_built(saved_vae, changes, message):
    _, folder = saved_vae
    edit_config(folder, **changes)
    before = peak_rss_mb()
    with pytest.raises(CheckpointError, match=message) as err:
        genmodels.load(folder)
    assert "config.json" in str(err.value)
    assert peak_rss_mb() - before < 200  # hidden_dim 10^6 used to allocate 3 GB before failing


def test_the_size_of_the_whole_model_is_counted_on_the_meta_device():
    """Every field within its limits, the model too large: a DBM whose persistent chains alone hold 78 million
    numbers. Counting it allocates nothing."""
    cls = registry.family("dbm").model_class()
    config = {"family": "dbm", "n_hidden1": 10_000, "n_hidden2": 10_000, "n_chains": 100_000}
    before = peak_rss_mb()
    with pytest.raises(CheckpointError, match=f"genmodels loads at most {MAX_PARAMETERS:,}"):
        check_config(cls, config, "dbm/config.json")
    assert peak_rss_mb() - before < 100
    check_config(cls, {"family": "dbm"}, "dbm/config.json")  # the default DBM is fine


def test_checking_every_family_on_the_meta_device_stays_cheap():
    """Building each family's default model, and every shipped checkpoint's, on the meta device keeps PyTorch's
    Python references out: their first use imports torch._dynamo (nn.Embedding's initialisation, in the
    conditional DDPM) or sympy (torch.randn, in the RBMs and the flow), which made the model zoo's first view 2.5 s
    slower (and the server tens of MB larger). Run in a fresh interpreter, where nothing has imported them yet."""
    code = ("import json, sys, torch\n"
            "from pathlib import Path\n"
            "from genmodels import registry\n"
            "from genmodels.checkpoint import check_config\n"
            "configs = [{'family': name} for name in registry.FAMILIES]\n"
            "configs += [json.loads(p.read_text()) for p in sorted(Path('checkpoints').glob('*/config.json'))]\n"
            "assert len(configs) > 40, len(configs)\n"
            "for config in configs:\n"
            "    check_config(registry.family(config['family']).model_class(), config, str(config))\n"
            "    assert 'torch._dynamo' not in sys.modules and 'sympy' not in sys.modules, config\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-600:]


@pytest.mark.parametrize("name", sorted(registry.FAMILIES))
def test_a_model_built_to_be_counted_has_the_real_ones_shapes(name):
    """ShapesOnly skips random initialisation on the meta device; the tensors it leaves have the real model's
    names, shapes and dtypes, so the count is the real one."""
    cls = registry.family(name).model_class()
    config = cls.config_class(**{"family": name, **({"n_classes": 10} if name == "ddpm" else {})})
    with torch.device("meta"), ShapesOnly():
        model = cls(config)
    counted, real = model.state_dict(), cls(config).state_dict()
    assert {k: (v.shape, v.dtype) for k, v in counted.items()} == {k: (v.shape, v.dtype) for k, v in real.items()}
    assert all(p.is_meta for p in model.parameters())  # (small buffers computed on the CPU, the flow's masks, stay)


def test_shapes_only_draws_nothing_and_leaves_other_operations_alone():
    with torch.device("meta"), ShapesOnly():
        a, b = torch.randn(3, 4), torch.rand((2, 5), dtype=torch.float64)
        c = torch.nn.init.normal_(torch.empty(6), std=3.0).mul_(2)
    assert (a.shape, b.shape, b.dtype, c.shape) == ((3, 4), (2, 5), torch.float64, (6,))
    assert {a.device.type, b.device.type, c.device.type} == {"meta"}
    state = torch.get_rng_state()
    with torch.device("meta"), ShapesOnly():
        torch.nn.Embedding(11, 8)
    assert torch.equal(state, torch.get_rng_state())  # nothing drawn from the CPU generator either
    torch.manual_seed(0)
    outside = torch.randn(3)
    torch.manual_seed(0)
    assert torch.equal(outside, torch.randn(3))  # and nothing changed outside the block


@pytest.mark.parametrize("family, changes, message", [
    ("ddpm", {"T": 10**7}, "'T' is 10000000"),  # used to load and keep 306 MB
    ("ddpm", {"channels": [32, 64, 10**6]}, "'channels' is 1000000"),
    ("ddpm", {"channels": []}, "'channels' must be a list of 1 to 16 numbers"),
    ("ddpm", {"image_channels": 10**6}, "'image_channels' is 1000000"),
    ("rbm", {"sample_steps": 10**9}, "'sample_steps' is 1000000000"),
    ("gan", {"backbone": "transformer"}, "'backbone' is 'transformer'"),
    ("cold", {"degradation": "smudge"}, "'degradation' is 'smudge'"),
    ("flow", {"steps": 10**6}, "'steps' is 1000000"),
    ("flow", {"alpha": 0.5}, "'alpha' is 0.5"),
    ("cold", {"start_dims": 10**6}, "'start_dims' is 1000000"),
    ("classifier", {"feature_dim": 0}, "'feature_dim' is 0"),
])
def test_every_family_has_limits(family, changes, message):
    cls = registry.family(family).model_class()
    with pytest.raises(CheckpointError, match=message):
        check_config(cls, {"family": family, **changes}, f"{family}/config.json")


def test_a_huge_or_deeply_nested_config_file(saved_vae):
    _, folder = saved_vae
    (folder / "config.json").write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(CheckpointError, match="is 200,000 bytes"):
        genmodels.load(folder)
    (folder / "config.json").write_text("[" * 30_000 + "]" * 30_000)
    with pytest.raises(CheckpointError, match="nests its JSON too deeply"):
        genmodels.load(folder)
    (folder / "config.json").write_bytes(b'{"family": "vae", "dataset": "\xff"}')
    with pytest.raises(CheckpointError, match="config.json' is not UTF-8"):
        genmodels.load(folder)


def test_weights_whose_shapes_do_not_fit_are_refused_from_the_header(saved_vae):
    """The header is read first: a tensor of the wrong shape is named without reading any tensor."""
    model, folder = saved_vae
    state = load_file(folder / "model.safetensors")
    state["decoder.head.0.weight"] = torch.zeros(3, 3, dtype=torch.float16)
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=r"decoder.head.0.weight is \[3, 3\], not"):
        genmodels.load(folder)


@pytest.mark.parametrize("value", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused(saved_vae, value):
    _, folder = saved_vae
    state = load_file(folder / "model.safetensors")
    name = next(iter(state))
    state[name] = state[name].clone()
    state[name].view(-1)[0] = value
    save_file(state, folder / "model.safetensors")
    with pytest.raises(CheckpointError, match=f"NaN or infinite weights \\(in '{name}'\\)"):
        genmodels.load(folder)


@pytest.mark.parametrize("content, problem", [
    (b"[1, 2, 3]", "the file is a list, not an object"),
    (json.dumps({"eval": {"test_elbo": "high"}}).encode(), "eval.test_elbo is 'high', not a number"),
    (json.dumps({"curves": {"val_loss": [1.0, None]}}).encode(), r"curves.val_loss\[1\] is None, not a number"),
    (json.dumps({"curves": {"epoch": [1, 2, 3, False]}}).encode(), r"curves.epoch\[3\] is False, not a number"),
    (json.dumps({"epochs": True}).encode(), "epochs is True, not a whole number"),
    (json.dumps({"training": {"optimizers": {"g": {"lr": [1]}}}}).encode(), "training.optimizers.g.lr is"),
    (b'{"command": "\xff\xfe"}', "metrics.json' is not UTF-8"),  # was blamed on config.json
    (b"[" * 50_000 + b"]" * 50_000, "nests its JSON too deeply"),
    (b" " * (MAX_METRICS_BYTES + 1), f"is {MAX_METRICS_BYTES + 1:,} bytes"),
])
def test_a_malformed_metrics_file_is_left_out_and_said(saved_vae, content, problem):
    """The weights are sound, so the model loads; the problem is kept for the page to show."""
    model, folder = saved_vae
    (folder / "metrics.json").write_bytes(content)
    loaded = genmodels.load(folder)
    assert loaded.metrics == {}
    assert len(loaded.problems) == 1 and "metrics.json" in loaded.problems[0]
    assert re.search(problem, loaded.problems[0]), loaded.problems[0]


@pytest.mark.parametrize("samples, problem", [
    (torch.zeros(2, 4, 28, 28, dtype=torch.uint8), r"shape \[2, 4, 28, 28\]"),
    (torch.zeros(2, 4, 3, 28, 28, dtype=torch.uint8), r"not \(epochs, n, 1, 28, 28\)"),
    (torch.zeros(2, 4, 1, 28, 28), "dtype torch.float32, not uint8"),
])
def test_saved_samples_of_the_wrong_shape_are_left_out_and_said(saved_vae, samples, problem):
    _, folder = saved_vae
    save_file({"samples": samples}, folder / "samples.safetensors")
    loaded = genmodels.load(folder)
    assert loaded.training_samples is None
    assert re.search(problem, loaded.problems[0]), loaded.problems[0]


IMAGES = torch.zeros(16, 1, 28, 28, dtype=torch.uint8)


@pytest.mark.parametrize("tensors, metadata, problem", [
    ({"most": IMAGES}, {"n": "100", "sampler": "DDIM"}, r"tensors \['most'\], not 'most' and 'least'"),
    ({"most": IMAGES, "least": IMAGES[:, :, :14].contiguous()}, {"n": "100", "sampler": "DDIM"},
     r"'least' of shape"),
    ({"most": IMAGES, "least": IMAGES.float()}, {"n": "100", "sampler": "DDIM"}, "images not uint8"),
    ({"most": IMAGES, "least": IMAGES.clone()}, {"n": "8", "sampler": "DDIM"}, "metadata n '8'"),  # fewer
    ({"most": IMAGES, "least": IMAGES.clone()}, {"n": "100"}, "metadata n '100' and sampler ''"),
    ({"most": torch.zeros(600, 1, 28, 28, dtype=torch.uint8), "least": IMAGES}, {"n": "1000", "sampler": "D"},
     "larger than two sets"),
])
def test_judged_samples_not_as_saved_are_left_out_and_said(saved_vae, tensors, metadata, problem):
    _, folder = saved_vae
    save_file(tensors, folder / "judged.safetensors", metadata=metadata)
    loaded = genmodels.load(folder)
    assert loaded.judged_samples is None
    assert len(loaded.problems) == 1 and "judged.safetensors" in loaded.problems[0]
    assert re.search(problem, loaded.problems[0]), loaded.problems[0]


VIEW = {"0/images": torch.zeros(8, 1, 28, 28, dtype=torch.float16)}
VIEW_META = {"keys": '["a view"]', "weights": "0123456789abcdef"}


@pytest.mark.parametrize("tensors, metadata, problem", [
    (VIEW, {**VIEW_META, "keys": "[]"}, "'keys' is not a list of view names"),
    (VIEW, {**VIEW_META, "keys": "not json"}, "'keys' is not a list of view names"),
    (VIEW, {**VIEW_META, "keys": '["a", "a"]'}, "'keys' is not a list of view names"),
    (VIEW, {"keys": '["a view"]'}, "'weights' is not the fingerprint"),
    ({"1/images": VIEW["0/images"]}, VIEW_META, "a tensor named '1/images'"),  # no second view
    ({"images": VIEW["0/images"]}, VIEW_META, "a tensor named 'images'"),
    ({"0/images": VIEW["0/images"].double()}, VIEW_META, "dtype torch.float64"),
    ({"0/images": torch.full((2,), float("nan"))}, VIEW_META, "NaN or infinity"),
    ({"0/images": torch.zeros(3000, 1, 28, 28)}, VIEW_META, "more than 8,388,608"),
])
def test_stored_views_not_as_saved_are_left_out_and_said(saved_vae, tensors, metadata, problem):
    _, folder = saved_vae
    save_file(tensors, folder / "views.safetensors", metadata=metadata)
    loaded = genmodels.load(folder)
    assert loaded.stored_views is None and loaded.stored_view("a view") is None
    assert len(loaded.problems) == 1 and "views.safetensors" in loaded.problems[0]
    assert re.search(problem, loaded.problems[0]), loaded.problems[0]
    assert "python -m train.views" in loaded.problems[0]


def test_a_sound_checkpoint_has_no_problems(saved_vae):
    model, folder = saved_vae
    model.training_samples = torch.zeros(1, 2, 1, 28, 28, dtype=torch.uint8)
    model.save_pretrained(folder)
    loaded = genmodels.load(folder)
    assert loaded.problems == [] and loaded.metrics == model.metrics and loaded.training_samples is not None
