"""The training CLI for real, on a few hundred images: loss goes down, files appear, resume is exact."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import genmodels
from train.__main__ import main
from train.loop import STATE_FILE, atomic_write

ROOT = Path(__file__).resolve().parent.parent
SMALL = ["--subset", "384", "--batch-size", "64", "--hidden-dim", "64", "--iwae-k", "5", "--quiet",
         "--device", "cpu"]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "train", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=300)


def test_cli_trains_and_writes_a_complete_checkpoint(tmp_path):
    out = tmp_path / "vae"
    result = cli("vae", "--epochs", "3", "--out", str(out), *SMALL)
    assert result.returncode == 0, result.stderr
    assert "epoch 3/3" in result.stderr
    for name in ("model.safetensors", "config.json", "metrics.json", "README.md", STATE_FILE):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["command"] == "python -m train vae --epochs 3 --out " + str(out) + " " + " ".join(SMALL)
    assert metrics["seed"] == 0 and metrics["epochs"] == 3 and metrics["steps"] == 18
    assert metrics["device"].startswith("cpu") and metrics["wall_time_s"] > 0
    assert len(metrics["commit"]) >= 40 or metrics["commit"] == "unknown"
    curves = metrics["curves"]
    assert curves["train_loss"][-1] < curves["train_loss"][0]  # it learns
    assert curves["val_elbo"][-1] > curves["val_elbo"][0]  # per-epoch numbers on held-out training images
    assert "test_elbo" not in curves  # the test set is touched once, at the end
    training = metrics["training"]
    assert training["val_size"] == 38 and training["monitored_on"] == "validation"  # a tenth of --subset
    assert (training["lr"], training["betas"], training["batch_size"]) == (1e-3, [0.9, 0.999], 64)
    assert set(metrics["eval"]) == {"test_elbo", "test_log_px_given_z", "test_kl", "test_iwae_k5"}
    assert metrics["eval"]["test_iwae_k5"] >= metrics["eval"]["test_elbo"] - 1.0
    model = genmodels.load(out)
    assert model.config.hidden_dim == 64 and model.metrics == metrics


@pytest.mark.parametrize("prior", ["mog", "vamp"])
def test_each_prior_trains(tmp_path, prior):
    out = tmp_path / prior
    assert main(["vae", "--prior", prior, "--epochs", "2", "--out", str(out), "--n-components", "5", *SMALL]) == 0
    model = genmodels.load(out)
    assert model.config.prior == prior
    curves = model.metrics["curves"]
    assert curves["train_loss"][1] < curves["train_loss"][0]


def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    """Two epochs straight, against one epoch, a stop, and --resume to two: identical state."""
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    args = ["vae", "--prior", "mog", "--dataset", "dynamic-binarized-mnist", *SMALL]
    assert main([*args, "--epochs", "2", "--out", str(straight)]) == 0
    assert main([*args, "--epochs", "1", "--out", str(resumed)]) == 0
    after_one = load_file(resumed / STATE_FILE)
    assert main([*args, "--epochs", "2", "--out", str(resumed), "--resume"]) == 0
    a, b = load_file(straight / STATE_FILE), load_file(resumed / STATE_FILE)
    assert a.keys() == b.keys() and any(k.startswith("optim.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(after_one["model.decoder.head.0.weight"], b["model.decoder.head.0.weight"])
    assert load_file(straight / "model.safetensors").keys() == load_file(resumed / "model.safetensors").keys()
    curves_a = json.loads((straight / "metrics.json").read_text())["curves"]
    curves_b = json.loads((resumed / "metrics.json").read_text())["curves"]
    assert curves_a == curves_b


def test_resume_without_state_starts_fresh(tmp_path, capsys):
    assert main(["vae", "--epochs", "1", "--out", str(tmp_path / "new"), "--resume", *SMALL]) == 0
    assert "starting from scratch" in capsys.readouterr().err


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path):
    target = tmp_path / "state.bin"
    target.write_bytes(b"old")

    def crash(tmp):
        Path(tmp).write_bytes(b"half-writ")
        raise KeyboardInterrupt  # the run is killed mid-write

    with pytest.raises(KeyboardInterrupt):
        atomic_write(target, crash)
    assert target.read_bytes() == b"old"
    assert [p.name for p in tmp_path.iterdir()] == ["state.bin"]  # no temporary left behind


def test_atomic_write_gives_the_file_the_usual_permissions(tmp_path):
    """As open() would (mkstemp alone makes it readable by its owner only: 0600)."""
    target = tmp_path / "metrics.json"
    atomic_write(target, lambda tmp: Path(tmp).write_text("{}"))
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


def test_missing_dataset_fails_with_a_clear_message(tmp_path):
    result = cli("vae", "--epochs", "1", "--out", str(tmp_path / "x"), "--data-root", str(tmp_path / "nodata"))
    assert result.returncode == 2
    assert "GENMODELS_DATA" in result.stderr and "nodata" in result.stderr
    assert "Traceback" not in result.stderr


def test_unknown_family_is_an_argparse_error():
    result = cli("gpt", "--out", "x")
    assert result.returncode == 2 and "invalid choice" in result.stderr


def test_conv_and_conditional_train(tmp_path):
    out = tmp_path / "not" / "yet" / "there" / "cvae"
    args = ["vae", "--architecture", "conv", "--conditional", "--latent-dim", "4", "--beta", "2", "--epochs", "2",
            "--out", str(out), *SMALL]
    assert main(args) == 0
    model = genmodels.load(out)
    assert model.config.n_classes == 10 and model.config.architecture == "conv" and model.config.beta == 2
    curves = model.metrics["curves"]
    assert curves["train_loss"][1] < curves["train_loss"][0]


def test_ddpm_trains_with_ema(tmp_path):
    out = tmp_path / "ddpm"
    assert main(["ddpm", "--epochs", "2", "--subset", "256", "--batch-size", "32", "--T", "50", "--channels", "8",
                 "16", "16", "--eval-images", "64", "--ema-decay", "0.9", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    model = genmodels.load(out)
    curves = model.metrics["curves"]
    assert curves["train_loss"][1] < curves["train_loss"][0] and curves["val_loss"][1] < curves["val_loss"][0]
    state = load_file(out / ".train_state.safetensors")  # training keeps both networks: the average lags the weights
    assert not torch.equal(state["model.unet.stem.weight"], state["model.ema.stem.weight"])
    assert torch.equal(model.unet.stem.weight, model.ema.stem.weight)  # the checkpoint ships the average alone
    samples = model.training_samples  # one fixed-seed grid per epoch, stored with the checkpoint
    assert samples.shape == (2, 16, 1, 28, 28) and samples.dtype == torch.uint8
    assert not torch.equal(samples[0], samples[1])


def test_ddpm_resume_keeps_the_training_samples(tmp_path):
    """With --bf16 (autocast, channels_last), as the shipped DDPMs were trained."""
    args = ["ddpm", "--subset", "128", "--batch-size", "32", "--T", "20", "--channels", "8", "16", "16",
            "--eval-images", "32", "--quiet", "--device", "cpu", "--bf16"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = genmodels.load(tmp_path / "a"), genmodels.load(tmp_path / "b")
    assert torch.equal(a.training_samples, b.training_samples)
    for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True):
        assert torch.equal(x, y)
    assert all(v.dtype == torch.float32 for v in a.state_dict().values() if v.is_floating_point())
    assert a.metrics["curves"]["train_loss"][1] < a.metrics["curves"]["train_loss"][0]


def test_classifier_trains(tmp_path):
    out = tmp_path / "clf"
    assert main(["classifier", "--epochs", "2", "--subset", "1000", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    model = genmodels.load(out)
    accuracy = model.metrics["curves"]["val_accuracy"]
    assert accuracy[1] > accuracy[0] and accuracy[1] > 0.5


def test_recorded_commit_is_head_or_the_one_given_for_a_copy(monkeypatch):
    from train.loop import git_commit

    monkeypatch.delenv("GENMODELS_COMMIT", raising=False)
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    assert git_commit().split("-dirty")[0] == (head or "unknown")
    monkeypatch.setenv("GENMODELS_COMMIT", "0123456789abcdef0123456789abcdef01234567")
    assert git_commit() == "0123456789abcdef0123456789abcdef01234567"


def test_validation_split_is_seeded_disjoint_and_fixed_for_dynamic_binarization():
    from genmodels.data import load_dataset

    data = load_dataset("dynamic-binarized-mnist", train=True, subset=1000)
    train, val = data.split(100, seed=0)
    again_train, again_val = data.split(100, seed=0)
    assert len(train) == 900 and len(val) == 100
    assert torch.equal(val.images, again_val.images) and torch.equal(train.labels, again_train.labels)
    # disjoint, and together the whole set: match images by their grey values
    keys = {tuple(x.flatten().tolist()) for x in data.images}
    held = {tuple(x.flatten().tolist()) for x in load_dataset("mnist", train=True, subset=1000).images}
    assert keys == held
    train_keys = {tuple(x.flatten().tolist()) for x in train.images}
    assert len(train_keys) == 900 and not train_keys & {tuple(x.flatten().tolist()) for x in val.images}
    assert train.pixels == "bernoulli" and val.pixels == "threshold"  # validation numbers do not jitter
    assert torch.equal(val[0][0], val[0][0]) and set(val.images.unique().tolist()) <= {0.0, 1.0}
    assert not torch.equal(data.split(100, seed=1)[1].images, val.images)


def test_validation_size_zero_monitors_on_the_test_set(tmp_path):
    out = tmp_path / "v0"
    assert main(["vae", "--epochs", "1", "--val-size", "0", "--out", str(out), *SMALL]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert "test_elbo" in metrics["curves"] and metrics["training"]["monitored_on"] == "test"


def run_fails(argv: list[str]) -> str:
    """The message a run stops with (SystemExit), before it trains."""
    with pytest.raises(SystemExit) as stop:
        main(argv)
    return str(stop.value)


def test_out_that_is_not_a_checkpoint_of_the_family_is_refused(tmp_path):
    notes = tmp_path / "notes"
    notes.mkdir()
    (notes / "README.md").write_text("my notes")
    (notes / "config.json").write_text('{"mine": 1}')
    message = run_fails(["vae", "--epochs", "1", "--out", str(notes), *SMALL])
    assert "holds files that are not a genmodels checkpoint" in message and "--overwrite" in message
    assert (notes / "README.md").read_text() == "my notes" and (notes / "config.json").read_text() == '{"mine": 1}'
    ddpm = tmp_path / "ddpm"
    ddpm.mkdir()
    (ddpm / "config.json").write_text('{"family": "ddpm"}')
    assert "holds a ddpm checkpoint" in run_fails(["vae", "--epochs", "1", "--out", str(ddpm), *SMALL])
    assert main(["vae", "--epochs", "1", "--out", str(notes), "--overwrite", *SMALL]) == 0
    assert genmodels.load(notes).config.family == "vae"


def test_an_impossible_out_fails_before_training(tmp_path, monkeypatch):
    from train import vae

    monkeypatch.setattr(vae, "build", lambda args: pytest.fail("the data was loaded before --out was checked"))
    (tmp_path / "file").write_text("x")
    assert "is a file" in run_fails(["vae", "--out", str(tmp_path / "file"), *SMALL])
    assert "cannot be written" in run_fails(["vae", "--out", str(tmp_path / "file" / "sub"), *SMALL])
    assert "cannot be written" in run_fails(["vae", "--out", str(tmp_path / ("x" * 300)), *SMALL])


def test_resume_refuses_changed_settings(tmp_path):
    out = tmp_path / "run"
    assert main(["vae", "--epochs", "1", "--out", str(out), *SMALL]) == 0
    message = run_fails(["vae", "--epochs", "2", "--out", str(out), "--resume", "--lr", "0.01", *SMALL])
    assert "--lr 0.001 then, 0.01 now" in message
    message = run_fails(["vae", "--epochs", "2", "--out", str(out), "--resume", *SMALL, "--hidden-dim", "32"])
    assert "--hidden-dim 64 then, 32 now" in message
    assert main(["vae", "--epochs", "2", "--out", str(out), "--resume", *SMALL]) == 0  # only --epochs changed


def test_a_checkpoint_is_swapped_in_whole_and_a_crash_is_recovered(tmp_path, monkeypatch):
    """Every epoch writes a complete new folder beside OUT and swaps it in: a crash at any point leaves OUT, or a
    complete folder that the next run swaps in; the hidden folders are never listed as checkpoints."""
    from genmodels.checkpoint import list_checkpoints
    from train import loop

    out = tmp_path / "runs" / "vae"
    assert main(["vae", "--epochs", "1", "--out", str(out), *SMALL]) == 0
    (out / "NOTE.txt").write_text("kept")
    first = load_file(out / "model.safetensors")

    real_rename = os.rename

    def crash_between_the_renames(src, dst):
        real_rename(src, dst)
        if str(dst).endswith(".previous"):
            raise KeyboardInterrupt  # killed with OUT moved aside and the new folder not yet in place

    monkeypatch.setattr(loop.os, "rename", crash_between_the_renames)
    with pytest.raises(KeyboardInterrupt):
        main(["vae", "--epochs", "2", "--out", str(out), "--resume", *SMALL])
    monkeypatch.setattr(loop.os, "rename", real_rename)
    assert not out.exists() and (tmp_path / "runs" / ".vae.ready").is_dir()
    assert list_checkpoints(tmp_path / "runs") == []  # hidden folders are not checkpoints
    loop.recover(out)
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["vae"]
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["epochs"] == 2 and load_file(out / STATE_FILE)  # weights, metrics and state of one epoch
    assert not torch.equal(load_file(out / "model.safetensors")["decoder.head.0.weight"],
                           first["decoder.head.0.weight"])
    assert (out / "NOTE.txt").read_text() == "kept"  # a file of the user's is carried over
    (tmp_path / "runs" / ".vae.writing").mkdir()  # killed while writing: the next run removes it
    assert main(["vae", "--epochs", "2", "--out", str(out), "--resume", *SMALL]) == 0
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["vae"]
