"""The normalizing flow: exact inverses, log-determinants against autograd Jacobians, the likelihood's bookkeeping
against torch.distributions, and training."""

import json
import math

import pytest
import torch

import genmodels
from genmodels.flow import (
    ActNorm,
    AffineCoupling,
    Flow,
    FlowConfig,
    InvConv1x1,
    channel_mask,
    checkerboard,
    squeeze,
    unsqueeze,
)


def jacobian_logdet(f, x: torch.Tensor) -> torch.Tensor:
    """log |det J| of f at one input x (1, C, H, W), from the full Jacobian (forward-mode autodiff, float64)."""
    jac = torch.func.jacfwd(lambda v: f(v.view_as(x)).flatten())(x.flatten())  # forward mode, all columns at once
    return torch.linalg.slogdet(jac)[1]


def initialised(layer, x):
    layer.train()
    layer(x)  # actnorm's data-dependent initialisation
    return layer.eval()


@pytest.mark.parametrize("make", [
    lambda: ActNorm(4),
    lambda: InvConv1x1(4),
    lambda: AffineCoupling(checkerboard(4, 4, 4, 0), hidden=8, blocks=1),
    lambda: AffineCoupling(channel_mask(4, 4, 4, 1), hidden=8, blocks=1),
])
def test_each_layer_inverts_exactly_and_its_log_determinant_is_autograds(make):
    torch.manual_seed(0)
    layer = initialised(make().double(), torch.randn(16, 4, 4, 4, dtype=torch.float64))
    if isinstance(layer, AffineCoupling):  # leave the identity it starts as
        for p in layer.net.out.parameters():
            p.data.normal_(0, 0.3)
    x = torch.randn(1, 4, 4, 4, dtype=torch.float64)
    y, logdet = layer(x)
    assert torch.allclose(layer.inverse(y), x, atol=1e-10)
    assert logdet.item() == pytest.approx(jacobian_logdet(lambda v: layer(v)[0], x).item(), abs=1e-8)


def test_squeeze_moves_each_two_by_two_patch_into_channels():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).view(2, 1, 4, 4)
    s = squeeze(x)
    assert s.shape == (2, 4, 2, 2) and torch.equal(unsqueeze(s), x)
    assert s[0, :, 0, 0].tolist() == [0.0, 1.0, 4.0, 5.0]  # the top-left patch


def tiny_flow(levels: int = 2, alpha: float = 0.05) -> Flow:
    torch.manual_seed(0)
    model = Flow(FlowConfig(levels=levels, steps=1, hidden=8, blocks=1, alpha=alpha)).double()
    model.train()
    model.flow_forward(torch.rand(8, 1, 28, 28, dtype=torch.float64).mul(0.9).add(0.05).logit())  # actnorm's init
    model.eval()
    for p in model.parameters():  # away from the identity the couplings start as
        if p.dim() == 4 and p.shape[-1] == 3 and not p.any():
            p.data.normal_(0, 0.05)
    return model


def test_the_whole_flow_inverts_and_its_log_determinant_is_autograds():
    model = tiny_flow()
    y = torch.rand(3, 1, 28, 28, dtype=torch.float64) * 0.9 + 0.05
    z = model.encode(y)
    assert z.shape == (3, 784) and torch.allclose(model.decode(z), y, atol=1e-9)
    z0 = model.preprocess(y)[0][:1]
    _, logdet = model.flow_forward(z0)
    assert logdet.item() == pytest.approx(jacobian_logdet(lambda v: model.flow_forward(v)[0], z0).item(),
                                          abs=1e-6)
    steps = model.trace(y)
    assert steps[0][0] == "logit transform" and steps[-1][1].flatten(1).shape[1] == 4 * 7 * 7
    logdets = torch.stack([d for _, _, d in steps]).sum(0)
    assert torch.allclose(logdets, model.flow_forward(model.preprocess(y)[0])[1] + model.preprocess(y)[1])
    assert torch.allclose(steps[-1][1].flatten(1), z[:, -4 * 7 * 7:])  # what flows to the end is z's last part
    one_scale = tiny_flow(levels=0)  # the layers' own log-determinants are checked above, one by one
    assert torch.allclose(one_scale.decode(one_scale.encode(y)), y, atol=1e-9)


def test_log_prob_is_the_change_of_variables_with_dequantization_and_logit():
    """Without layers the flow's density is that of a Gaussian pushed through the inverse logit transform:
    torch.distributions computes it independently. log P(x) = log p(y) - 784 log 256, y = (x + u) / 256."""
    alpha = 0.05
    model = Flow(FlowConfig(levels=0, steps=1, hidden=8, blocks=1, invconv=False, alpha=alpha)).double().eval()
    x = torch.randint(0, 256, (4, 1, 28, 28)).double()
    ours = model.log_prob(x, generator=torch.Generator().manual_seed(3))  # a fresh coupling is the identity
    u = torch.rand(x.shape, generator=torch.Generator().manual_seed(3))
    y = (x + u) / 256
    D = torch.distributions
    reference = D.TransformedDistribution(D.Normal(torch.tensor(0.0, dtype=torch.float64), 1.0), [
        D.SigmoidTransform(), D.AffineTransform(-alpha / (1 - 2 * alpha), 1 / (1 - 2 * alpha))])
    expected = reference.log_prob(y).flatten(1).sum(1) - 784 * math.log(256)
    assert torch.allclose(ours, expected, atol=1e-8)
    # bits per dimension, the training loss
    images = x / 255
    torch.manual_seed(5)
    loss = model.loss(images)
    torch.manual_seed(5)
    assert loss.item() == pytest.approx((-model.log_prob(x).mean() / (784 * math.log(2))).item())


def test_a_uniform_model_gives_every_image_probability_one_over_256_to_the_784(monkeypatch):
    """With no margin (alpha 0) and a standard logistic base, the inverse logit maps the base to the uniform
    density on the unit cube: every 8-bit image has probability 256^-784, whatever the dequantization draw."""
    model = Flow(FlowConfig(levels=0, steps=1, hidden=8, blocks=1, invconv=False, alpha=0.0)).double().eval()
    monkeypatch.setattr(model, "base_log_prob", lambda z: (torch.nn.functional.logsigmoid(z)
                                                           + torch.nn.functional.logsigmoid(-z)).sum(1))
    x = torch.randint(0, 256, (5, 1, 28, 28)).double()
    assert torch.allclose(model.log_prob(x), torch.full((5,), -784 * math.log(256), dtype=torch.float64))


def test_sampling_and_temperature():
    model = tiny_flow().float()
    a = model.sample(4, generator=torch.Generator().manual_seed(0))
    assert a.shape == (4, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert torch.equal(a, model.sample(4, generator=torch.Generator().manual_seed(0)))
    cold = model.sample(3, temperature=0.0)
    assert torch.allclose(cold, cold[:1].expand(3, -1, -1, -1))  # temperature 0: every sample is decode(0)


def test_the_model_zoos_samples_are_stored_with_the_checkpoint(tmp_path):
    """train.views stores the flow's 16 samples from seed 0 (the zoo's card: a second of decoding on a CPU); the
    loaded model finds them for n = 16 and seed 0 only, and they are what it draws. A VAE, quick to sample, gets
    none."""
    from genmodels.checkpoint import CARD_SAMPLES
    from genmodels.vae import VAE, VAEConfig
    from train.views import main

    tiny_flow().float().save_pretrained(tmp_path / "flow")
    VAE(VAEConfig(hidden_dim=16, latent_dim=2)).save_pretrained(tmp_path / "vae")
    assert main([str(tmp_path / "flow"), str(tmp_path / "vae")]) == 0
    flow = genmodels.load(tmp_path / "flow")
    stored = flow.stored_samples(CARD_SAMPLES, 0)
    assert stored.shape == (16, 1, 28, 28) and not flow.problems
    assert torch.allclose(stored, flow.sample(16, generator=torch.Generator().manual_seed(0)), atol=2e-3)
    assert flow.stored_samples(16, 1) is None and flow.stored_samples(8, 0) is None
    assert not (tmp_path / "vae" / "views.safetensors").exists()
    assert genmodels.load(tmp_path / "vae").stored_samples(16, 0) is None


def test_flow_trains_saves_and_reports_bits_per_dimension(tmp_path):
    from train.__main__ import main

    out = tmp_path / "flow"
    assert main(["flow", "--levels", "1", "--steps", "1", "--hidden", "8", "--blocks", "1", "--epochs", "1",
                 "--subset", "300", "--eval-images", "100", "--quiet", "--device", "cpu", "--out", str(out)]) == 0
    model = genmodels.load(out)
    assert isinstance(model, Flow) and model.config.levels == 1
    metrics = json.loads((out / "metrics.json").read_text())
    assert 1 < metrics["eval"]["test_bits_per_dim"] < 8  # 8 bits/dim: a uniform model
    x = torch.rand(2, 1, 28, 28) * 0.9 + 0.05
    assert torch.allclose(model.decode(model.encode(x)), x, atol=1e-4)  # saved in float32: still exact
