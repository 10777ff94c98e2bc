"""Cold diffusion: the degradations against independent references, both samplers, the start mixture, training."""

import json

import pytest
import torch
import torch.nn.functional as F

import genmodels
from genmodels.cold import DEGRADATIONS, Blur, ColdConfig, ColdDiffusion, Pixelate, StartDistribution, blur
from genmodels.data import load_dataset


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", train=False, subset=32).images


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_each_degradation_is_the_identity_at_zero_deterministic_and_monotone(digits, name):
    d = DEGRADATIONS[name]
    strengths = torch.linspace(0, 1, 11)
    assert torch.equal(d(digits, torch.zeros(len(digits))), digits)
    assert torch.equal(d(digits, torch.full((32,), 0.4)), d(digits, torch.full((32,), 0.4)))
    # further from the image at every step (on average; pixelation's frame lets a rare image step back a hair),
    # and a batch of mixed strengths is each image at its own strength
    distance = [(d(digits, torch.full((32,), float(s))) - digits).pow(2).mean().item() for s in strengths]
    assert all(b > a for a, b in zip(distance, distance[1:], strict=False)) and distance[0] == 0
    mixed = strengths[torch.arange(32) % 11]
    expected = torch.stack([d(digits[i:i + 1], mixed[i:i + 1])[0] for i in range(32)])
    assert torch.allclose(d(digits, mixed), expected)


@pytest.mark.parametrize("name", list(DEGRADATIONS))
def test_degrading_ignores_bf16_autocast(digits, name):
    """Training with --bf16 runs the loss under autocast; the degraded images stay exact float32."""
    model = ColdDiffusion(ColdConfig(degradation=name, channels=[8, 16, 16], T=5))
    t = torch.arange(len(digits)) % 6
    with torch.autocast("cpu", dtype=torch.bfloat16):
        degraded = model.degrade(digits, t)
    assert degraded.dtype == torch.float32 and torch.equal(degraded, model.degrade(digits, t))


def test_blur_is_torchvisions_gaussian_blur_and_pixelate_is_block_averaging(digits):
    from torchvision.transforms.functional import gaussian_blur

    for sigma in (0.5, 2.0, 6.0):
        radius = min(27, int(torch.tensor(3 * sigma).ceil()))
        reference = gaussian_blur(digits, kernel_size=2 * radius + 1, sigma=sigma)  # reflected borders too
        assert torch.allclose(blur(digits, sigma), reference, atol=1e-5)
    assert torch.allclose(Blur(6.0)(digits, torch.ones(32)), blur(digits, 6.0))
    # a quarter of the way: 2 x 2 blocks, each its mean (the frame is aligned with them)
    p = Pixelate()
    expected = F.avg_pool2d(digits, 2).repeat_interleave(2, 2).repeat_interleave(2, 3)
    assert torch.allclose(p(digits, torch.full((32,), 0.25)), expected, atol=1e-6)
    # fully pixelated: constant on each quarter of the image (16 x 16 blocks of the framed 32 x 32 image): the
    # quarter's 14 x 14 pixels and 60 repeated border pixels, which are black in a digit; between grids, a blend
    full = p(digits, torch.ones(32))
    quarters = full[..., ::14, ::14]
    assert torch.allclose(full, quarters.repeat_interleave(14, 2).repeat_interleave(14, 3))
    black = (digits[..., [0, -1], :].sum((1, 2, 3)) + digits[..., [0, -1]].sum((1, 2, 3))) == 0
    assert black.sum() >= 30  # (one of these digits touches the border)
    assert torch.allclose(quarters[black], (F.avg_pool2d(digits, 14) * 196 / 256)[black], atol=1e-6)
    assert torch.allclose(p(digits, torch.full((32,), 0.125)), (digits + expected) / 2, atol=1e-6)


def tiny(degradation: str = "pixelate", T: int = 5) -> ColdDiffusion:
    torch.manual_seed(0)
    return ColdDiffusion(ColdConfig(degradation=degradation, channels=[8, 16, 16], T=T, start_dims=3,
                                    start_components=2)).eval()


def test_improved_sampler_is_the_identity_when_the_degradation_does_nothing(digits, monkeypatch):
    model = tiny()
    monkeypatch.setattr(model, "degrade", lambda x, t: x)
    start = digits[:4]
    # x_{t-1} = x_t - D(x0_hat, t) + D(x0_hat, t - 1) = x_t: the network's guess cancels out
    assert torch.allclose(model.sample(4, start=start, method="improved"), start)
    assert not torch.allclose(model.sample(4, start=start, method="naive"), start)  # the naive one restores


@pytest.mark.parametrize("method", ["improved", "naive"])
def test_a_perfect_restorer_walks_back_the_degradation_exactly(digits, monkeypatch, method):
    model = tiny("blur", T=6)
    x0 = digits[:3]
    monkeypatch.setattr(model, "restore", lambda xt, t: x0)  # R always returns the true image
    traj = model.sample(3, start=model.degrade(x0, 6), method=method, return_trajectory=True)
    assert traj.timesteps == [6, 5, 4, 3, 2, 1, 0]
    for state, t in zip(traj.xs, traj.timesteps, strict=True):  # every state is the image degraded to its step
        assert torch.allclose(state, model.degrade(x0, t), atol=1e-5)
    assert model.timesteps(3) == [6, 4, 2, 0] and model.timesteps(None) == list(range(6, -1, -1))
    with pytest.raises(ValueError, match="method"):
        model.sample(1, method="euler")


def test_start_mixture_fits_as_scikit_learn_does_and_samples_from_it():
    from sklearn.mixture import GaussianMixture

    g = torch.Generator().manual_seed(0)
    # 3-d data in a 3-d subspace of 10-d "images": two clusters
    centres = torch.tensor([[4.0, 0, 0], [-3.0, 2.0, 1.0]])
    codes = torch.cat([centres[0] + 0.5 * torch.randn(600, 3, generator=g),
                       centres[1] + torch.randn(400, 3, generator=g) * torch.tensor([1.0, 0.3, 0.2])])
    basis = torch.linalg.qr(torch.randn(10, 3, generator=g))[0].T  # orthonormal rows
    x = (codes @ basis + 0.25).view(1000, 1, 1, 10)
    start = StartDistribution(10, dims=3, components=2)
    start.fit(x, generator=torch.Generator().manual_seed(1))
    assert torch.allclose(start.basis @ start.basis.T, torch.eye(3), atol=1e-5)
    assert torch.allclose(start.reconstruct(start.project(x), (1, 1, 10)), x, atol=1e-4)  # the data's own span
    ours = start.mixture().log_prob(start.project(x)).mean().item()
    reference = GaussianMixture(2, covariance_type="full", random_state=0).fit(start.project(x).numpy())
    assert ours == pytest.approx(reference.score(start.project(x).numpy()), abs=1e-3)
    drawn = start.sample(4000, (1, 1, 10), torch.Generator().manual_seed(2))
    assert torch.equal(drawn, start.sample(4000, (1, 1, 10), torch.Generator().manual_seed(2)))
    assert torch.allclose(drawn.mean(0), x.mean(0), atol=0.1)
    side = (start.project(drawn)[:, 0] > 0).float().mean().item()  # the first component splits the two clusters
    assert abs(max(side, 1 - side) - 0.6) < 0.03  # in proportion 600 : 400 (the component's sign is arbitrary)


def test_cold_diffusion_trains_saves_and_samples(tmp_path):
    from train.__main__ import main

    out = tmp_path / "cold"
    assert main(["cold", "--degradation", "blur", "--T", "8", "--channels", "8", "16", "16", "--epochs", "1",
                 "--subset", "300", "--start-dims", "4", "--start-components", "3", "--quiet", "--device", "cpu",
                 "--bf16", "--out", str(out)]) == 0
    model = genmodels.load(out)
    assert isinstance(model, ColdDiffusion) and model.config.degradation == "blur"
    metrics = json.loads((out / "metrics.json").read_text())
    assert 0 < metrics["eval"]["test_l1"] < 1 and len(metrics["curves"]["val_l1"]) == 1
    assert model.training_samples.shape == (1, 16, 1, 28, 28)
    # the start mixture was fitted to the fully blurred training images and saved with the weights
    train = load_dataset("mnist", train=True, subset=300).images
    assert torch.allclose(model.start.mean.view(1, 1, 28, 28), model.degrade(train, 8).mean(0, keepdim=True),
                          atol=2e-3)  # fp16 storage
    a = model.sample(3, generator=torch.Generator().manual_seed(0))
    assert a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, model.sample(3, generator=torch.Generator().manual_seed(0)))
    assert not torch.equal(a[0], a[1])  # different starts, different samples


def test_restoring_a_partly_degraded_image_starts_at_its_step(digits, monkeypatch):
    model = tiny("pixelate", T=6)
    x0 = digits[:2]
    monkeypatch.setattr(model, "restore", lambda xt, t: x0)
    traj = model.sample(2, start=model.degrade(x0, 3), from_t=3, return_trajectory=True)
    assert traj.timesteps == [3, 2, 1, 0] and torch.allclose(traj.xs[-1], x0, atol=1e-5)
    assert model.timesteps(2, top=4) == [4, 2, 0] and model.timesteps(None, top=99) == [6, 5, 4, 3, 2, 1, 0]
