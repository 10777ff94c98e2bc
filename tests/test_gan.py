"""The GAN: its losses against their formulas, each step updating only its own network, --d-steps, the
latent walks, deterministic sampling, conditioning, and training for real on a few hundred images."""

import copy
import json

import pytest
import torch
from safetensors.torch import load_file

import genmodels
from genmodels.gan import GAN, GANConfig, discriminator_loss, generator_loss, lerp, slerp
from train import gan as recipe
from train.__main__ import main
from train.loop import STATE_FILE, StepContext, TrainConfig


def test_discriminator_loss_is_minus_the_value_function():
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(64, generator=g), torch.randn(64, generator=g)
    value = torch.log(torch.sigmoid(r)).mean() + torch.log(1 - torch.sigmoid(f)).mean()  # V(D, G), eq. 1
    assert torch.allclose(discriminator_loss(r, f), -value, atol=1e-6)
    s = 0.1  # one-sided smoothing: real target 0.9, fakes still 0
    smoothed = -((1 - s) * torch.log(torch.sigmoid(r)) + s * torch.log(1 - torch.sigmoid(r))).mean() \
        - torch.log(1 - torch.sigmoid(f)).mean()
    assert torch.allclose(discriminator_loss(r, f, label_smoothing=s), smoothed, atol=1e-6)


def test_generator_losses_against_their_formulas():
    f = torch.linspace(-6, 6, 25)
    d = torch.sigmoid(f)
    assert torch.allclose(generator_loss(f), -torch.log(d).mean(), atol=1e-5)
    assert torch.allclose(generator_loss(f, "saturating"), torch.log(1 - d).mean(), atol=1e-5)
    # where D rejects a fake confidently, the saturating loss has (almost) no gradient, the other a strong one
    low = torch.tensor([-8.0], requires_grad=True)
    (g_sat,) = torch.autograd.grad(generator_loss(low, "saturating"), low)
    (g_ns,) = torch.autograd.grad(generator_loss(low), low)
    assert g_sat.abs() < 1e-3 and g_ns.abs() > 0.99
    with pytest.raises(ValueError):
        generator_loss(f, "hinge")


def test_slerp_keeps_the_norm_and_both_ends():
    g = torch.Generator().manual_seed(0)
    z0, z1 = torch.randn(2, 64, generator=g)
    z1 = z1 * z0.norm() / z1.norm()
    t = torch.linspace(0, 1, 9)
    path = slerp(z0, z1, t)
    assert torch.allclose(path.norm(dim=1), z0.norm().expand(9), rtol=1e-5)
    assert torch.allclose(path[0], z0, atol=1e-5) and torch.allclose(path[-1], z1, atol=1e-5)
    straight = lerp(z0, z1, t)
    assert straight.norm(dim=1)[4] < 0.8 * z0.norm()  # the straight line cuts through the middle of the shell
    assert torch.allclose(slerp(z0, 2 * z0, t)[4], 1.5 * z0, atol=1e-4)  # parallel codes: the line itself


@pytest.mark.parametrize("backbone", ["mlp", "dcgan"])
def test_sampling_is_deterministic_and_in_range(backbone):
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone=backbone, g_width=32, d_width=16))
    a = model.sample(6, generator=torch.Generator().manual_seed(3))
    b = model.sample(6, generator=torch.Generator().manual_seed(3))
    assert a.shape == (6, 1, 28, 28) and torch.equal(a, b) and 0 <= a.min() and a.max() <= 1
    assert model.discriminate(a).shape == (6,) and model.latent_dim == 64
    uniform = GAN(GANConfig(backbone=backbone, noise="uniform", latent_dim=200, g_width=32, d_width=16))
    z = uniform.sample_noise(1000, torch.Generator().manual_seed(0))
    assert z.shape == (1000, 200) and z.min() >= -1 and z.max() <= 1 and abs(z.mean()) < 0.01


def test_conditional_gan_takes_classes_or_any_vector_between_them():
    model = GAN(GANConfig(backbone="mlp", n_classes=10, g_width=32, d_width=16))
    z = model.sample_noise(3, torch.Generator().manual_seed(0))
    half = torch.zeros(3, 10)
    half[:, 1] = half[:, 7] = 0.5
    assert model.generate(z, half).shape == (3, 1, 28, 28)
    assert torch.equal(model.generate(z, torch.tensor([1, 1, 1])),
                       model.generate(z, torch.nn.functional.one_hot(torch.tensor([1, 1, 1]), 10).float()))
    with pytest.raises(ValueError, match="conditional"):
        model.generate(z)
    with pytest.raises(ValueError, match="not conditional"):
        GAN(GANConfig(backbone="mlp")).generate(z[:, :64], torch.tensor([1, 2, 3]))


def one_step(model: GAN, lr_d: float, lr_g: float, d_steps: int = 1):
    config = TrainConfig(lr=lr_g, betas=(0.5, 0.999), epochs=1)
    args = type("Args", (), {"lr_d": lr_d})()
    opts = recipe.optimizers(model, config, args)
    x = torch.rand(32, 1, 28, 28)
    numbers = recipe.train_step(model, [x, torch.arange(32) % 10], opts, StepContext(config, torch.device("cpu")))
    return opts, numbers


def params(module):
    return [p.detach().clone() for p in module.parameters()]


@pytest.mark.parametrize("backbone", ["mlp", "dcgan"])
def test_each_step_updates_only_its_own_network(backbone):
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone=backbone, g_width=32, d_width=16))
    d0, g0 = params(model.discriminator), params(model.generator)
    one_step(model, lr_d=1e-3, lr_g=0.0)  # the generator's optimiser does nothing: only D may move
    assert all(torch.equal(a, b) for a, b in zip(g0, params(model.generator), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(d0, params(model.discriminator), strict=True))
    d1 = params(model.discriminator)
    opts, numbers = one_step(model, lr_d=0.0, lr_g=1e-3)
    assert all(torch.equal(a, b) for a, b in zip(d1, params(model.discriminator), strict=True))
    assert not all(torch.equal(a, b) for a, b in zip(g0, params(model.generator), strict=True))
    assert all(p.grad is None or not p.grad.abs().sum() == 0 for p in model.discriminator.parameters())
    assert set(numbers) == {"d_loss", "g_loss", "d_accuracy_real", "d_accuracy_fake", "d_real", "d_fake"}
    assert 0 <= numbers["d_real"] <= 1 and 0 <= numbers["d_accuracy_fake"] <= 1


def test_d_steps_take_k_discriminator_steps_per_generator_step():
    model = GAN(GANConfig(backbone="mlp", g_width=32, d_width=16, d_steps=4))
    opts, _ = one_step(model, lr_d=1e-3, lr_g=1e-3)
    d_state = opts["discriminator"].state[next(iter(model.discriminator.parameters()))]
    g_state = opts["generator"].state[next(iter(model.generator.parameters()))]
    assert int(d_state["step"]) == 4 and int(g_state["step"]) == 1


SMALL = ["--backbone", "mlp", "--g-width", "64", "--d-width", "32", "--subset", "512", "--batch-size", "64",
         "--quiet", "--device", "cpu"]


def test_gan_trains_records_its_dynamics_and_resumes_bit_for_bit(tmp_path):
    args = ["gan", *SMALL, "--d-steps", "2", "--lr-d", "4e-4", "--label-smoothing", "0.1", "--instance-noise", "0.1"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = load_file(tmp_path / "a" / STATE_FILE), load_file(tmp_path / "b" / STATE_FILE)
    assert a.keys() == b.keys() and any(k.startswith("optim.discriminator.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    model = genmodels.load(tmp_path / "a")
    m = model.metrics
    assert m["training"]["optimizers"]["discriminator"]["lr"] == 4e-4
    assert m["training"]["optimizers"]["generator"]["lr"] == 2e-4 and m["training"]["betas"] == [0.5, 0.999]
    assert model.config.d_steps == 2 and model.config.label_smoothing == 0.1
    curves = m["curves"]
    for name in ("d_loss", "g_loss", "d_accuracy_real", "d_accuracy_fake", "d_real", "d_fake"):
        assert len(curves[f"step_{name}"]) == len(curves["step"]) > 0 and len(curves[f"train_{name}"]) == 2
    assert len(curves["val_fid_mnist"]) == 2 and len(curves["val_share_9"]) == 2
    assert model.training_samples.shape == (2, 16, 1, 28, 28)
    assert {"test_fid_mnist", "test_confident_rate", "test_share_0"} <= set(m["eval"])
    state = load_file(tmp_path / "a" / STATE_FILE)  # training keeps both generators; the checkpoint the average
    assert not torch.equal(state["model.generator.net.0.weight"], state["model.generator_ema.net.0.weight"])
    assert torch.equal(model.generator_ema.net[0].weight, state["model.generator_ema.net.0.weight"].half().float())
    assert json.loads((tmp_path / "a" / "metrics.json").read_text())["curves"] == \
        json.loads((tmp_path / "b" / "metrics.json").read_text())["curves"]


def test_dcgan_and_conditional_gan_train(tmp_path):
    assert main(["gan", "--backbone", "dcgan", "--g-width", "32", "--d-width", "16", "--spectral-norm", "--bf16",
                 "--g-refine", "--d-batch-norm", "--subset", "256", "--batch-size", "64", "--epochs", "1", "--quiet",
                 "--device", "cpu",
                 "--out", str(tmp_path / "dcgan")]) == 0
    model = genmodels.load(tmp_path / "dcgan")
    assert model.config.spectral_norm and model.sample(2).shape == (2, 1, 28, 28)
    assert model.config.g_refine and model.generator.body[-2].kernel_size == (3, 3)  # the 28x28 refinement
    assert "8x28x28, a 3x3 convolution" in model.describe()
    assert model.config.d_batch_norm and "batch norm in D" in model.describe()
    norms = [m for m in model.discriminator.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 1 and norms[0].num_batches_tracked > 0  # trained, and its statistics saved and loaded
    assert main(["gan", *SMALL, "--conditional", "--epochs", "1", "--out", str(tmp_path / "cgan")]) == 0
    model = genmodels.load(tmp_path / "cgan")
    assert model.config.n_classes == 10 and "val_class_match" in model.metrics["curves"]


def test_discriminator_batch_norm_normalises_each_batch_by_its_own_statistics():
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone="dcgan", g_width=16, d_width=8, d_batch_norm=True))
    net = model.discriminator.net
    bn = net[3]
    assert isinstance(bn, torch.nn.BatchNorm2d) and net[2].bias is None  # the norm's shift replaces the bias
    x = torch.rand(6, 1, 28, 28) * 2 - 1
    # in training mode a batch's logits do not depend on another batch: D sees real and fake separately
    model.discriminator.train()
    alone = model.discriminator(x[:3])
    with_others = model.discriminator(x)[:3]
    assert not torch.allclose(alone, with_others)  # batch statistics: the company changes the answer
    hidden = net[:3](x[:3])  # what batch norm receives; normalised by its own mean and (biased) variance
    mean, var = hidden.mean((0, 2, 3), keepdim=True), hidden.var((0, 2, 3), unbiased=False, keepdim=True)
    normalised = (hidden - mean) / torch.sqrt(var + bn.eps) * bn.weight[:, None, None] + bn.bias[:, None, None]
    expected = net[4:](normalised)  # LeakyReLU, flatten, the linear logit
    assert torch.allclose(alone, expected.squeeze(1), atol=1e-5)
    with pytest.raises(ValueError, match="DCGAN"):
        GAN(GANConfig(backbone="mlp", d_batch_norm=True))
    assert model.unused_fields() == set()  # a DCGAN's card shows both of its options
    assert GAN(GANConfig(backbone="mlp", g_width=8, d_width=8)).unused_fields() == {"g_refine", "d_batch_norm"}


def test_attribute_direction_raises_the_judges_log_probability():
    from genmodels.gan import attribute_direction

    judge = genmodels.load("checkpoints/mnist-classifier")
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone="mlp", g_width=32, d_width=16))
    z = model.sample_noise(1, torch.Generator().manual_seed(1))[0]
    d = attribute_direction(model, judge, z, target=3)
    assert torch.isclose(d.norm(), torch.tensor(1.0))

    def log_p(code):
        return torch.log(judge.predict_proba(model.generate(code[None]))[0, 3])

    assert log_p(z + 0.05 * d) > log_p(z) > log_p(z - 0.05 * d)  # uphill along d, downhill against it
    u = torch.randn(64, generator=torch.Generator().manual_seed(2))
    assert log_p(z + 0.05 * d) - log_p(z) > log_p(z + 0.05 * u / u.norm()) - log_p(z)  # steeper than a random one


def test_attribute_walk_follows_the_gradient_uphill():
    from genmodels.gan import attribute_walk

    judge = genmodels.load("checkpoints/mnist-classifier")
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone="mlp", g_width=32, d_width=16))
    z = model.sample_noise(1, torch.Generator().manual_seed(1))[0]
    codes = attribute_walk(model, judge, z, target=3, distance=2.0, frames=5, substeps=4)
    assert codes.shape == (5, 64) and torch.equal(codes[0], z)
    steps = (codes[1:] - codes[:-1]).norm(dim=1)
    assert torch.all(steps <= 0.5 + 1e-5)  # each frame is at most distance / (frames - 1) away
    p = judge.predict_proba(model.generate(codes))[:, 3]
    assert p[-1] > p[0]


@pytest.mark.parametrize("ema_decay", [0.999, 0.0])
def test_the_weights_file_holds_the_generator_that_draws_and_older_files_still_load(ema_decay, tmp_path):
    """With a moving average the file leaves out the trained generator (the average draws every sample); without
    one, the unused average. Loading fills the missing copy from the kept one; a file with both still loads."""
    from safetensors.torch import save_file
    torch.manual_seed(0)
    model = GAN(GANConfig(backbone="dcgan", g_width=16, d_width=8, g_refine=True, ema_decay=ema_decay))
    for p in model.generator.parameters():  # the trained generator and its average differ, as after training
        p.data.add_(torch.randn_like(p))
    drawn, spare = ("generator_ema", "generator.") if ema_decay else ("generator", "generator_ema.")
    model.save_pretrained(tmp_path / "m")
    names = set(load_file(tmp_path / "m" / "model.safetensors"))
    assert names == {n for n in model.state_dict() if not n.startswith(spare)}
    assert any(n.startswith(drawn + ".") for n in names) and any(n.startswith("discriminator.") for n in names)
    loaded = genmodels.load(tmp_path / "m")
    kept = getattr(model, drawn).state_dict()
    for name, tensor in loaded.generator.state_dict().items():
        assert torch.equal(tensor, loaded.generator_ema.state_dict()[name]), name  # the copy is the kept one
        assert torch.equal(tensor, kept[name].half().float() if tensor.is_floating_point() else kept[name]), name
    z = torch.randn(4, 64, generator=torch.Generator().manual_seed(1))
    rounded = copy.deepcopy(model)  # the weights as the file stores them (fp16), in float32
    rounded.load_state_dict({n: t.half().float() if t.is_floating_point() else t
                             for n, t in model.state_dict().items()})
    assert torch.equal(loaded.generate(z), rounded.generate(z))  # the same samples

    full = {n: t.detach().contiguous().clone() for n, t in model.state_dict().items()}
    save_file(full, str(tmp_path / "m" / "model.safetensors"))  # the layout GAN checkpoints had before
    old = genmodels.load(tmp_path / "m")
    assert torch.equal(old.generator.body[0].weight, model.generator.body[0].weight)
    assert not torch.equal(old.generator.body[0].weight, old.generator_ema.body[0].weight)
