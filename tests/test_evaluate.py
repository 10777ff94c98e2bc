"""The evaluation command: mean and standard deviation over runs that differ only in their seed."""

import json
import statistics

import pytest

from genmodels.vae import VAE, VAEConfig
from train.evaluate import main


@pytest.fixture
def runs(tmp_path):
    folders = []
    for seed, elbo, iwae in ((0, -100.0, -98.0), (1, -102.0, -99.0), (2, -104.0, -101.0)):
        model = VAE(VAEConfig(prior="mog", hidden_dim=16, n_components=2))
        model.metrics = {"seed": seed, "eval": {"test_elbo": elbo, "test_iwae_k50": iwae}}
        model.save_pretrained(tmp_path / f"seed{seed}")
        folders.append(str(tmp_path / f"seed{seed}"))
    other = VAE(VAEConfig(prior="gaussian", hidden_dim=16))
    other.metrics = {"seed": 0, "eval": {"test_elbo": -90.0, "test_iwae_k50": -89.0}}
    other.save_pretrained(tmp_path / "gauss")
    return folders, str(tmp_path / "gauss")


def test_groups_by_config_and_reports_mean_and_std(runs, capsys):
    folders, gauss = runs
    assert main([*folders, gauss, "--k", "50", "--write"]) == 0
    out = capsys.readouterr().out
    std = statistics.stdev([-100.0, -102.0, -104.0])
    assert f"| vae mog prior, latent 2, binarized-mnist | 3 (0, 1, 2) | -102.00 ± {std:.2f} |" in out
    assert "| vae gaussian prior, latent 2, binarized-mnist | 1 (0) | -90.00 ± nan |" in out
    summary = json.loads((__import__("pathlib").Path(folders[1]) / "metrics.json").read_text())["eval_over_runs"]
    assert summary["test_elbo_mean"] == pytest.approx(-102.0) and summary["test_elbo_std"] == pytest.approx(std)
    assert summary["test_iwae_k50_mean"] == pytest.approx(-99.3333, abs=1e-3) and summary["k"] == 50


def test_recomputes_when_metrics_lack_that_k(runs, capsys):
    folders, _ = runs
    assert main([folders[0], "--k", "3"]) == 0
    captured = capsys.readouterr()
    assert "evaluating" in captured.err
    row = [line for line in captured.out.splitlines() if line.startswith("| vae")][0]
    elbo, iwae = (float(cell.split("±")[0]) for cell in row.split("|")[3:5])
    assert -800 < elbo < iwae < 0  # an untrained model: poor, but IWAE above the ELBO


def test_bad_run_is_reported(tmp_path, capsys):
    assert main([str(tmp_path / "absent")]) == 2
    assert "no checkpoint folder" in capsys.readouterr().err
