"""Distortions and autoencoders: strengths, determinism, the loss, code-space sampling, training."""

import json
import math

import pytest
import torch

from genmodels import registry
from genmodels.autoencoder import Autoencoder, AutoencoderConfig, reconstruction_loss, restoration_error
from genmodels.data import load_dataset
from genmodels.distortions import DISTORTIONS, Flip, GaussianNoise, Occlusion, Rotation, distortion
from train.__main__ import main as train_main


@pytest.fixture(scope="module")
def digits():
    return load_dataset("mnist", train=False, subset=64).images


@pytest.mark.parametrize("name", list(DISTORTIONS))
def test_zero_strength_is_the_identity_and_draws_repeat_under_a_generator(name, digits):
    d = distortion(name)
    assert torch.allclose(d(digits, 0.0, torch.Generator().manual_seed(1)), digits, atol=1e-5)
    a = d(digits, 0.8, torch.Generator().manual_seed(3))
    b = d(digits, 0.8, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and a.shape == digits.shape
    assert 0 <= a.min() and a.max() <= 1
    assert not torch.allclose(a, digits)  # strength 0.8 does something to 64 digits
    # One strength per image: the images at strength 0 are untouched.
    s = torch.tensor([0.0, 1.0]).repeat(32)
    c = d(digits, s, torch.Generator().manual_seed(3))
    assert torch.allclose(c[s == 0], digits[s == 0], atol=1e-5)


def test_each_distortion_does_what_its_name_says(digits):
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Flip("horizontal")(digits, 1.0, g), digits.flip(-1))
    assert torch.equal(Flip("vertical")(digits, 1.0, g), digits.flip(-2))
    patched = Occlusion(max_side=10)(torch.ones(8, 1, 28, 28), 1.0, g)
    assert ((patched == 0).flatten(1).sum(-1) == 100).all()  # one 10x10 black square, whole
    noisy = GaussianNoise(sigma=0.5)(torch.full((4, 1, 28, 28), 0.5), 0.2, g)
    assert (noisy - 0.5).std().item() == pytest.approx(0.1, rel=0.05)
    # A turn moves a blob's centre of mass by the angle drawn from the generator (counter-clockwise on screen).
    square = torch.zeros(1, 1, 28, 28)
    square[..., 4:8, 12:16] = 1  # centred at (x, y) = (0, -8) from the image centre, y pointing down
    angle = math.radians((torch.rand(1, generator=torch.Generator().manual_seed(5)).item() * 2 - 1) * 90)
    turned = Rotation(max_degrees=90)(square, 1.0, torch.Generator().manual_seed(5))[0, 0]
    ys, xs = torch.meshgrid(torch.arange(28.0) - 13.5, torch.arange(28.0) - 13.5, indexing="ij")
    centre = ((turned * xs).sum() / turned.sum()).item(), ((turned * ys).sum() / turned.sum()).item()
    assert centre == pytest.approx((-8 * math.sin(angle), -8 * math.cos(angle)), abs=0.1)
    assert abs(angle) > 0.3  # a real turn
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        GaussianNoise()(digits, 1.5)


def test_mix_gives_each_image_one_of_the_single_distortions(digits):
    out = distortion("mix")(digits, 1.0, torch.Generator().manual_seed(0))
    flips = [torch.equal(out[i], digits[i].flip(-1)) or torch.equal(out[i], digits[i].flip(-2))
             for i in range(len(digits))]
    assert 0 < sum(flips) < len(digits)  # some images flipped, some distorted otherwise


def test_reconstruction_losses_against_their_formulas():
    logits, x = torch.randn(3, 1, 28, 28), torch.rand(3, 1, 28, 28)
    p = torch.sigmoid(logits)
    bce = -(x * p.log() + (1 - x) * (1 - p).log()).flatten(1).sum(-1)
    assert torch.allclose(reconstruction_loss(logits, x, "bce"), bce, atol=1e-3)
    assert torch.allclose(reconstruction_loss(logits, x, "mse"), (p - x).pow(2).flatten(1).sum(-1))


def test_code_distribution_is_the_codes_mean_and_covariance(digits):
    torch.manual_seed(0)
    model = Autoencoder(AutoencoderConfig(bottleneck=4, distortion="noise")).eval()
    model.fit_code_distribution(digits)
    z = model.encode(digits).double()
    assert torch.allclose(model.code_mean.double(), z.mean(0), atol=1e-5)
    cov = model.code_scale_tril.double() @ model.code_scale_tril.double().T
    assert torch.allclose(cov, torch.cov(z.T), atol=1e-4)
    a = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, model.sample(5, generator=torch.Generator().manual_seed(0))) and a.shape == (5, 1, 28, 28)
    restored, distorted = restoration_error(model, digits, "none", 0.0)
    assert torch.equal(distorted, torch.zeros(len(digits)))
    assert torch.allclose(restored, (model.reconstruct(digits) - digits).pow(2).flatten(1).mean(-1))


def test_colour_autoencoder_needs_the_datasets_channels():
    model = Autoencoder(AutoencoderConfig(dataset="colored-mnist", image_channels=3))
    assert model.reconstruct(torch.rand(2, 3, 28, 28)).shape == (2, 3, 28, 28)
    with pytest.raises(ValueError, match="3 channels"):
        Autoencoder(AutoencoderConfig(dataset="colored-mnist", image_channels=1))


def test_restoring_autoencoder_trains_and_records_the_error_table(tmp_path):
    out = tmp_path / "ae"
    args = ["autoencoder", "--subset", "600", "--val-size", "100", "--epochs", "3", "--batch-size", "50",
            "--distortion", "noise", "--bottleneck", "8", "--out", str(out), "--quiet"]
    assert train_main(args) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    losses = metrics["curves"]["train_loss"]
    assert losses[-1] < 0.8 * losses[0]
    evaluation = metrics["eval"]
    for name in DISTORTIONS:
        assert 0 < evaluation[f"test_mse_{name}_s1"] < 1 and f"test_input_mse_{name}_s0.5" in evaluation
    model = registry.load(out)
    assert model.config.distortion == "noise" and not torch.equal(model.code_scale_tril, torch.eye(8).half())


def test_mlp_autoencoder_is_the_mlp_vaes_networks_with_the_code_alone():
    from genmodels.vae import VAE, VAEConfig

    ae = Autoencoder(AutoencoderConfig(dataset="binarized-mnist", architecture="mlp", bottleneck=2, hidden_dim=32))
    v = VAE(VAEConfig(latent_dim=2, hidden_dim=32))
    ae_shapes = {k: t.shape for k, t in ae.state_dict().items() if k.startswith(("encoder", "decoder"))}
    vae_shapes = {k: t.shape for k, t in v.state_dict().items() if k.startswith(("encoder", "decoder"))}
    last = "encoder.head.4.weight"  # the VAE's last encoder layer gives a mean and a log-variance, twice the code
    assert ae_shapes.pop(last) == (2, 32) and vae_shapes.pop(last) == (4, 32)
    assert ae_shapes.pop("encoder.head.4.bias") == (2,) and vae_shapes.pop("encoder.head.4.bias") == (4,)
    assert ae_shapes == vae_shapes
    # Given the VAE's weights (the mean half of its last layer), the autoencoder's code is the VAE's posterior mean.
    state = {k: t for k, t in v.state_dict().items() if k.startswith(("encoder", "decoder"))}
    state[last], state["encoder.head.4.bias"] = state[last][:2], state["encoder.head.4.bias"][:2]
    ae.load_state_dict({**ae.state_dict(), **state})
    x = torch.rand(3, 1, 28, 28)
    assert torch.allclose(ae.encode(x), v.encode(x)[0])
    assert torch.allclose(ae.reconstruct(x), v.reconstruct(x))
