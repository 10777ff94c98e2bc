"""The classifier and FID-MNIST: the math against closed forms, the shipped judge against real data."""

import json
import re
from pathlib import Path

import pytest
import torch

import genmodels
from genmodels.data import load_dataset
from genmodels.ddpm import sampler_name
from genmodels.metrics import class_report, frechet_distance

CLASSIFIER = Path(__file__).resolve().parent.parent / "checkpoints" / "mnist-classifier"


def test_frechet_distance_in_one_dimension():
    a = torch.randn(200000, 1) * 2 + 1
    b = torch.randn(200000, 1) * 0.5 - 1
    expected = (1 - -1) ** 2 + 4 + 0.25 - 2 * (4 * 0.25) ** 0.5
    assert frechet_distance(a, b) == pytest.approx(expected, rel=0.02)


def test_frechet_distance_for_commuting_covariances_and_rotations():
    """Diagonal covariances have a closed form, and the distance is invariant to a shared rotation."""
    torch.manual_seed(0)
    sa, sb = torch.tensor([1.0, 4.0, 0.25]), torch.tensor([2.0, 1.0, 1.0])
    a = torch.randn(100000, 3) * sa.sqrt()
    b = torch.randn(100000, 3) * sb.sqrt() + torch.tensor([1.0, 0.0, -1.0])
    ca, cb = torch.cov(a.T.double()).diag(), torch.cov(b.T.double()).diag()
    closed = (a.double().mean(0) - b.double().mean(0)).pow(2).sum() + (ca + cb - 2 * (ca * cb).sqrt()).sum()
    assert frechet_distance(a, b) == pytest.approx(closed.item(), abs=0.02)
    q, _ = torch.linalg.qr(torch.randn(3, 3))
    assert frechet_distance(a @ q.T, b @ q.T) == pytest.approx(frechet_distance(a, b), rel=1e-6)
    assert frechet_distance(a, a) == pytest.approx(0.0, abs=1e-6)


def test_class_report():
    p = torch.tensor([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98]])
    assert class_report(p) == {"histogram": [2, 1], "confident_rate": pytest.approx(2 / 3)}


@pytest.fixture(scope="module")
def judge():
    return genmodels.load(CLASSIFIER)


def test_shipped_classifier_is_accurate(judge):
    test = load_dataset("mnist", train=False)
    p = judge.predict_proba(test.images)
    assert (p.argmax(-1) == test.labels).float().mean() >= 0.99
    report = class_report(p)
    assert report["confident_rate"] > 0.95  # real digits: the reference for generated ones
    assert judge.all_features(test.images[:10]).shape == (10, judge.config.feature_dim)


@pytest.fixture(scope="module")
def real_features(judge):
    train = load_dataset("mnist", train=True).images[:5000]
    test = load_dataset("mnist", train=False).images[:5000]
    return test, judge.all_features(train), judge.all_features(test)


def test_train_and_test_sets_are_close(real_features, judge):
    test, f_train, f_test = real_features
    floor = frechet_distance(f_train, f_test)
    shuffled = frechet_distance(f_train, judge.all_features(test[torch.randperm(len(test))]))
    assert floor == pytest.approx(shuffled, rel=1e-6)  # a distance between sets, not pairs
    noisy = frechet_distance(f_train, judge.all_features((test + 0.3 * torch.randn_like(test)).clamp(0, 1)))
    assert floor < 0.1 * noisy


def blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    radius = 3
    grid = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-grid**2 / (2 * sigma**2))
    k = k / k.sum()
    x = torch.nn.functional.conv2d(x, k.view(1, 1, 1, -1), padding=(0, radius))
    return torch.nn.functional.conv2d(x, k.view(1, 1, -1, 1), padding=(radius, 0))


@pytest.mark.parametrize("corrupt, levels", [
    (lambda x, s: (x + s * torch.randn_like(x)).clamp(0, 1), [0.0, 0.1, 0.2, 0.4, 0.8]),
    (lambda x, s: blur(x, s) if s else x, [0.0, 0.5, 1.0, 1.5, 2.5]),
], ids=["noise", "blur"])
def test_fid_grows_monotonically_with_corruption(real_features, judge, corrupt, levels):
    test, f_train, _ = real_features
    test = test[:2000]  # the steps between levels are far larger than the distance's error at this n
    torch.manual_seed(0)
    distances = [frechet_distance(f_train, judge.all_features(corrupt(test, s))) for s in levels]
    assert all(a < b for a, b in zip(distances, distances[1:], strict=False)), distances


def _steps(sampler: str) -> int:
    """Network passes per sample a sampler's name says ("DDIM, 50 steps, eta 0": 50); 1 for one-pass samplers."""
    found = re.search(r", (\d+) steps?", sampler)
    return int(found[1]) if found else 1


def _scored_checkpoints() -> list[tuple[str, str]]:
    """(folder, sampler) of every shipped checkpoint whose metrics.json records a sample-quality score: of a
    checkpoint scored with several samplers, the cheapest (checking one tells whether the weights are the ones
    scored; test_sample_quality checks that the samplers' scores are what the command computes)."""
    from genmodels.checkpoint import list_checkpoints

    found = []
    for location, _ in list_checkpoints(CLASSIFIER.parent):
        metrics = Path(location) / "metrics.json"
        scored = json.loads(metrics.read_text()).get("sample_quality", {}) if metrics.exists() else {}
        samplers = [sampler for sampler in scored if not sampler.startswith("DDPM")]
        if samplers:
            found.append((location, min(samplers, key=_steps)))
    return found


def sampler_kwargs(sampler: str) -> dict:
    """``DDPM.sample``'s arguments for a recorded DDPM sampler name (with ``guidance`` for a class-conditional
    one); {} for other families."""
    found = re.fullmatch(r"(DDIM|DPM-Solver\+\+\(2M\)), (\d+) steps?, eta ([\d.]+)(?:, guidance ([\d.]+))?", sampler)
    if not found:
        return {}
    kwargs = {"method": "ddim" if found[1] == "DDIM" else "dpm++", "steps": int(found[2]), "eta": float(found[3])}
    assert sampler_name(**kwargs) == sampler.split(", guidance")[0]
    return kwargs if found[4] is None else {**kwargs, "guidance": float(found[4])}


def test_shipped_models_have_recorded_scores():
    names = {Path(location).name for location, _ in _scored_checkpoints()}
    assert {"vae-gaussian-32d", "vae-mog-32d", "vae-vamp-32d", "cvae-conv-mnist"} <= names


@pytest.mark.parametrize("location,sampler", _scored_checkpoints(), ids=lambda v: Path(v).name if "/" in v else v)
def test_shipped_models_sample_as_their_cards_say(judge, location, sampler):
    """Fresh samples (another seed) are recognised as digits as often as metrics.json records, within
    4 binomial standard errors: the checkpoint on disk is the model that was scored."""
    model = genmodels.load(location)
    recorded = model.metrics["sample_quality"][sampler]["confident_rate"]
    kwargs = sampler_kwargs(sampler)
    # network passes per sample: a 50-step sampler checks 64 samples (3,200 passes), a 20-step one 128; guidance
    # doubles a step; cold diffusion runs all its T steps
    steps = model.config.T if "all T steps" in sampler else _steps(sampler)
    passes = steps * (2 if kwargs.get("guidance") else 1)
    n = 400 if passes <= 1 else 128 if passes <= 20 else 64
    if "guidance" in kwargs:  # a class-conditional model is asked for each class in turn, as it was scored
        kwargs["y"] = torch.arange(n) % 10
    images = model.sample(n, generator=torch.Generator().manual_seed(12345), **kwargs)
    rate = class_report(judge.predict_proba(images))["confident_rate"]
    assert abs(rate - recorded) < 4 * (recorded * (1 - recorded) / n) ** 0.5 + 1e-3, (rate, recorded)
