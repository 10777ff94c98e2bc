"""The checkpoint layer: round trips, the Hub offline, and every bad input with its message."""

import json
import pickle
import shutil
from pathlib import Path

import pytest
import torch
from huggingface_hub import HfApi, constants
from safetensors.torch import load_file

import genmodels
from genmodels.checkpoint import CheckpointError, list_checkpoints
from genmodels.vae import VAE


def assert_same_weights(a, b):
    for (name, x), y in zip(a.state_dict().items(), b.state_dict().values(), strict=True):
        assert torch.equal(x.half().float(), y), name  # stored as fp16, read back exactly


def test_round_trip_through_a_folder(saved_vae):
    model, folder = saved_vae
    assert sorted(p.name for p in folder.iterdir()) == ["README.md", "config.json", "metrics.json",
                                                        "model.safetensors"]
    loaded = genmodels.load(folder)
    assert isinstance(loaded, VAE) and not loaded.training
    assert loaded.config == model.config
    assert loaded.metrics == model.metrics
    assert_same_weights(model, loaded)
    assert all(t.dtype == torch.float16 for t in load_file(folder / "model.safetensors").values())


def test_the_mixin_from_pretrained_reads_the_same_folder(saved_vae):
    model, folder = saved_vae
    assert_same_weights(model, VAE.from_pretrained(folder))


def test_model_card_has_hub_metadata(saved_vae):
    _, folder = saved_vae
    card = (folder / "README.md").read_text()
    header = card.split("---")[1]
    assert "library_name: genmodels" in header and "license: mit" in header
    assert "- vae" in header and "ylecun/mnist" in header and "test_elbo" in header
    assert "python -m train vae --test" in card and "Parameters:" in card


def test_loading_never_unpickles(saved_vae, monkeypatch):
    def refuse(*args, **kwargs):
        raise AssertionError("a checkpoint was unpickled")

    monkeypatch.setattr(torch, "load", refuse)
    monkeypatch.setattr(pickle, "load", refuse)
    monkeypatch.setattr(pickle, "loads", refuse)
    genmodels.load(saved_vae[1])


def test_a_pickle_beside_missing_safetensors_is_not_used(saved_vae):
    model, folder = saved_vae
    (folder / "model.safetensors").unlink()
    torch.save(model.state_dict(), folder / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="has no model.safetensors"):
        genmodels.load(folder)


def test_missing_folder(tmp_path):
    with pytest.raises(CheckpointError, match="no checkpoint folder at") as err:
        genmodels.load(tmp_path / "absent")
    assert "absent" in str(err.value)


def test_missing_config(saved_vae):
    (saved_vae[1] / "config.json").unlink()
    with pytest.raises(CheckpointError, match="has no config.json"):
        genmodels.load(saved_vae[1])


@pytest.mark.parametrize("damage", ["truncate", "garbage", "empty"])
def test_corrupt_or_truncated_weights(saved_vae, damage):
    path = saved_vae[1] / "model.safetensors"
    data = path.read_bytes()
    path.write_bytes({"truncate": data[: len(data) // 2], "garbage": b"\x00\x01not safetensors" * 10,
                      "empty": b""}[damage])
    with pytest.raises(CheckpointError, match="not a readable safetensors file") as err:
        genmodels.load(saved_vae[1])
    assert str(path) in str(err.value)


def test_config_that_does_not_match_the_weights(saved_vae):
    config = json.loads((saved_vae[1] / "config.json").read_text())
    config["latent_dim"] = 3
    (saved_vae[1] / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="do not fit the model described by its config.json"):
        genmodels.load(saved_vae[1])


def test_config_with_another_prior_does_not_match(saved_vae):
    config = json.loads((saved_vae[1] / "config.json").read_text())
    config["prior"] = "gaussian"  # the weights hold mixture parameters: strict loading must refuse
    (saved_vae[1] / "config.json").write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match="unexpected \\[.prior.logits"):
        genmodels.load(saved_vae[1])


@pytest.mark.parametrize("edit, message", [
    (lambda c: c.update(family="gan-from-the-future"), "unknown model family"),
    (lambda c: c.pop("family"), "names no model family"),
    (lambda c: c.update(colour="blue"), "keys \\['colour'\\]"),
    (lambda c: c.update(prior="laplace"), "'prior' is 'laplace', but must be one of gaussian, mog, vamp"),
])
def test_bad_configs(saved_vae, edit, message):
    path = saved_vae[1] / "config.json"
    config = json.loads(path.read_text())
    edit(config)
    path.write_text(json.dumps(config))
    with pytest.raises(CheckpointError, match=message):
        genmodels.load(saved_vae[1])


def test_config_that_is_not_json(saved_vae):
    (saved_vae[1] / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="is not valid JSON"):
        genmodels.load(saved_vae[1])


def test_unknown_hub_repo_offline(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(CheckpointError, match="Hub repo 'nobody/no-such-model'") as err:
        genmodels.load("nobody/no-such-model")
    assert "HF_HUB_OFFLINE" in str(err.value)


def populate_hub_cache(cache: Path, repo_id: str, folder: Path, commit: str, ref: str = "main") -> None:
    """Lay out a Hub cache as huggingface_hub writes it: blobs, snapshots/<commit>, refs/<ref>."""
    repo = cache / f"models--{repo_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    for f in folder.iterdir():
        shutil.copy(f, snapshot / f.name)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / ref).write_text(commit)


def test_hub_repo_id_resolves_from_a_prepopulated_cache(saved_vae, tmp_path, monkeypatch):
    model, folder = saved_vae
    cache = tmp_path / "hub"
    populate_hub_cache(cache, "teacher/vae-mog", folder, "a" * 40)
    populate_hub_cache(cache, "teacher/vae-mog", folder, "b" * 40, ref="v1")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))  # read at import; patch the live value
    loaded = genmodels.load("teacher/vae-mog")
    assert_same_weights(model, loaded)
    assert loaded.metrics == model.metrics and loaded.source == "teacher/vae-mog"
    assert_same_weights(model, genmodels.load("teacher/vae-mog", revision="v1"))
    with pytest.raises(CheckpointError, match="teacher/vae-mog"):
        genmodels.load("teacher/vae-mog", revision="v2")


def test_push_to_hub_uploads_exactly_the_checkpoint_folder(saved_vae, monkeypatch):
    model, folder = saved_vae
    uploaded = {}

    class Repo:
        repo_id = "teacher/vae-mog"

    def upload_folder(self, *, repo_id, folder_path, **kwargs):
        uploaded.update({p.name: p.read_bytes() for p in Path(folder_path).iterdir()})
        uploaded["repo_id"] = repo_id
        return "https://huggingface.co/teacher/vae-mog/commit/0"

    monkeypatch.setattr(HfApi, "create_repo", lambda self, **kwargs: Repo())
    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    model.push_to_hub("teacher/vae-mog")
    assert uploaded.pop("repo_id") == "teacher/vae-mog"
    assert sorted(uploaded) == ["README.md", "config.json", "metrics.json", "model.safetensors"]
    for name, data in uploaded.items():
        assert data == (folder / name).read_bytes(), name


def test_list_checkpoints_finds_folders_and_skips_broken_ones(saved_vae, tmp_path):
    _, folder = saved_vae
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "config.json").write_text("{")
    (tmp_path / "not-a-checkpoint").mkdir()
    found = list_checkpoints(tmp_path)
    assert [Path(p).name for p, _ in found] == ["ckpt"] and found[0][1]["family"] == "vae"
    assert list_checkpoints(tmp_path / "absent") == []


def test_shipped_checkpoints_load_and_are_small():
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    found = list_checkpoints(root)
    assert found, "checkpoints/ ships no model"
    total = 0
    for location, _ in found:
        files = {p.name: p.stat().st_size for p in Path(location).iterdir() if not p.name.startswith(".")}
        assert {"README.md", "config.json", "metrics.json", "model.safetensors"} <= set(files) <= {
            "README.md", "config.json", "metrics.json", "model.safetensors", "samples.safetensors",
            "judged.safetensors", "views.safetensors"}, location
        assert files["model.safetensors"] < 10e6
        total += sum(files.values())
        metrics = genmodels.load(location).metrics
        for key in ("command", "seed", "commit", "device", "wall_time_s", "curves", "eval"):
            assert key in metrics, f"{location}/metrics.json lacks {key}"
        assert metrics["command"].startswith("python -m train ")
    assert total < 120e6  # the project's budget for all of checkpoints/


def test_training_samples_travel_with_the_checkpoint(saved_vae, tmp_path):
    model, _ = saved_vae
    model.training_samples = torch.randint(0, 256, (3, 4, 1, 28, 28), dtype=torch.uint8)
    model.save_pretrained(tmp_path / "with")
    assert (tmp_path / "with" / "samples.safetensors").is_file()
    assert torch.equal(genmodels.load(tmp_path / "with").training_samples, model.training_samples)
    (tmp_path / "with" / "samples.safetensors").write_bytes(b"broken")
    loaded = genmodels.load(tmp_path / "with")  # optional: never blocks loading, but the problem is said
    assert loaded.training_samples is None and "samples.safetensors" in loaded.problems[0]


@pytest.mark.parametrize("family", ["ddpm", "cold"])
def test_an_averaged_unet_ships_its_average_alone(family, tmp_path):
    """The DDPM and cold diffusion sample with the weight average: the file holds it (and cold diffusion's start
    mixture), not the trained network; loading puts the average in both."""
    from genmodels.cold import ColdConfig, ColdDiffusion
    from genmodels.ddpm import DDPM, DDPMConfig
    torch.manual_seed(0)
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=20)) if family == "ddpm" else \
        ColdDiffusion(ColdConfig(channels=[8, 16, 16], T=4))
    for p in model.unet.parameters():  # the trained network and its average differ, as after training
        p.data.add_(torch.randn_like(p))
    model.save_pretrained(tmp_path / "m")
    names = set(load_file(tmp_path / "m" / "model.safetensors"))
    assert names and not any(n.startswith("unet.") for n in names)
    assert names == {n for n in model.state_dict() if not n.startswith("unet.")}
    loaded = genmodels.load(tmp_path / "m")
    for name, tensor in model.ema.state_dict().items():
        assert torch.equal(tensor.half().float(), loaded.ema.state_dict()[name]), name
        assert torch.equal(loaded.unet.state_dict()[name], loaded.ema.state_dict()[name]), name


def test_a_file_with_both_networks_still_loads_and_a_mixed_one_does_not(tmp_path):
    from safetensors.torch import save_file

    from genmodels.ddpm import DDPM, DDPMConfig
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=20))
    model.save_pretrained(tmp_path / "m")
    for p in model.unet.parameters():
        p.data.add_(1.0)
    full = {n: t.detach().contiguous().clone() for n, t in model.state_dict().items()}
    save_file(full, str(tmp_path / "m" / "model.safetensors"))  # the layout checkpoints had before
    loaded = genmodels.load(tmp_path / "m")
    assert torch.equal(loaded.unet.stem.weight, model.unet.stem.weight)
    assert not torch.equal(loaded.unet.stem.weight, loaded.ema.stem.weight)
    mixed = {n: t for n, t in full.items() if not n.startswith("unet.") or n == "unet.stem.weight"}
    save_file(mixed, str(tmp_path / "m" / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected .*unet.stem.weight"):
        genmodels.load(tmp_path / "m")
