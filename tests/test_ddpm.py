"""The DDPM model class: public attributes, EMA, sampling, inpainting, the bound, the checkpoint."""

import math

import pytest
import torch

import genmodels
from genmodels.ddpm import DDPM, DDPMConfig
from genmodels.diffusion import make_mask


@pytest.fixture
def tiny_ddpm():
    torch.manual_seed(0)
    return DDPM(DDPMConfig(channels=[8, 16, 16], T=20)).eval()


def test_public_schedule(tiny_ddpm):
    assert tiny_ddpm.schedule.betas.shape == tiny_ddpm.schedule.alpha_bars.shape == (20,)
    assert torch.allclose(tiny_ddpm.schedule.alpha_bars, torch.cumprod(1 - tiny_ddpm.schedule.betas, 0))


def test_ema_update_is_the_moving_average(tiny_ddpm):
    before = [p.clone() for p in tiny_ddpm.ema.parameters()]
    with torch.no_grad():
        for p in tiny_ddpm.unet.parameters():
            p.add_(1.0)
    tiny_ddpm.update_ema()
    for e, b, p in zip(tiny_ddpm.ema.parameters(), before, tiny_ddpm.unet.parameters(), strict=True):
        assert torch.allclose(e, 0.999 * b + 0.001 * p, atol=1e-6)
    assert not any(p.requires_grad for p in tiny_ddpm.ema.parameters())


def test_loss_is_a_scalar_with_gradients_for_the_unet_only(tiny_ddpm):
    loss = tiny_ddpm.loss(torch.rand(4, 1, 28, 28))
    loss.backward()
    assert loss.dim() == 0 and all(p.grad is not None for p in tiny_ddpm.unet.parameters())
    assert all(p.grad is None for p in tiny_ddpm.ema.parameters())


def test_sampling_is_reproducible_and_in_range(tiny_ddpm):
    a = tiny_ddpm.sample(3, generator=torch.Generator().manual_seed(5), steps=5)
    b = tiny_ddpm.sample(3, generator=torch.Generator().manual_seed(5), steps=5)
    assert torch.equal(a, b) and a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    traj = tiny_ddpm.sample(2, generator=torch.Generator().manual_seed(5), steps=None, return_trajectory=True)
    assert traj.xs.shape == (21, 2, 1, 28, 28) and traj.timesteps[0] == 19
    calls = []
    tiny_ddpm.sample(1, steps=4, callback=lambda i, n: calls.append((i, n)))
    assert calls == [(1, 4), (2, 4), (3, 4), (4, 4)]


@pytest.mark.parametrize("eta", [0.0, 1.0])
def test_dpm_solver_sampling_is_reproducible_and_in_range(tiny_ddpm, eta):
    a = tiny_ddpm.sample(3, generator=torch.Generator().manual_seed(5), steps=5, method="dpm++", eta=eta)
    b = tiny_ddpm.sample(3, generator=torch.Generator().manual_seed(5), steps=5, method="dpm++", eta=eta)
    assert torch.equal(a, b) and a.shape == (3, 1, 28, 28) and 0 <= a.min() and a.max() <= 1
    assert not torch.equal(a, tiny_ddpm.sample(3, generator=torch.Generator().manual_seed(5), steps=5))  # not DDIM
    traj = tiny_ddpm.sample(2, generator=torch.Generator().manual_seed(5), steps=5, method="dpm++", eta=eta,
                            return_trajectory=True)
    assert traj.timesteps[0] == 19 and traj.timesteps[-1] == 0 and traj.xs.shape[0] == len(traj.timesteps) + 1
    two = tiny_ddpm.sample(2, generator=torch.Generator().manual_seed(5), steps=5, method="dpm++", eta=eta)
    assert torch.allclose(traj.xs[-1].clamp(0, 1), two)
    with pytest.raises(ValueError, match="method"):
        tiny_ddpm.sample(1, steps=5, method="euler")


def test_inpainting_returns_the_observed_pixels(tiny_ddpm):
    x = torch.randint(0, 256, (2, 1, 28, 28)) / 255
    mask = make_mask("top rows", 2, rows=10)
    for steps in (None, 5):
        out = tiny_ddpm.inpaint(x, mask, generator=torch.Generator().manual_seed(0), steps=steps, resample=2)
        assert torch.allclose(out[mask], x[mask], atol=1e-6)


def test_conditional_model_with_guidance():
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=10, n_classes=10)).eval()
    y = torch.tensor([3, 7])
    assert model.loss(torch.rand(2, 1, 28, 28), y).dim() == 0
    guided = model.sample(2, generator=torch.Generator().manual_seed(0), steps=3, y=y, guidance=2.0)
    plain = model.sample(2, generator=torch.Generator().manual_seed(0), steps=3, y=y)
    assert guided.shape == (2, 1, 28, 28) and not torch.equal(guided, plain)


def test_guidance_label_dropout_and_conditions_between_classes_follow_their_formulas():
    torch.manual_seed(0)
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=10, n_classes=10, p_uncond=0.25)).eval()
    for p in model.ema.parameters():  # a network whose class embedding matters (a fresh one starts near zero)
        p.data.normal_(0, 0.3)
    x, t = torch.randn(4, 1, 28, 28), torch.tensor([9, 5, 2, 0])
    y, null = torch.tensor([3, 7, 0, 9]), torch.full((4,), 10)
    with torch.no_grad():
        cond, uncond = model.ema(x, t, y), model.ema(x, t, null)
        # classifier-free guidance (Ho & Salimans 2022): (1 + w) eps(x, t, y) - w eps(x, t, null)
        assert torch.allclose(model.eps_fn(y, 2.5)(x, t), 3.5 * cond - 2.5 * uncond, atol=1e-5)
        assert torch.allclose(model.eps_fn(y, 0.0)(x, t), cond)
        # one-hot weights are the class itself; a mixture embeds as the mixture of the two embeddings
        one_hot = torch.nn.functional.one_hot(y, 10).float()
        assert torch.allclose(model.ema(x, t, one_hot), cond, atol=1e-5)
        mix = 0.3 * one_hot[0] + 0.7 * torch.nn.functional.one_hot(torch.tensor(5), 10).float()
        table = model.ema.class_emb.weight
        expected = (0.3 * table[3] + 0.7 * table[5]).expand(4, -1)
        assert torch.allclose(model.ema.class_embedding(mix.expand(4, 10)), expected, atol=1e-6)
        guided = model.eps_fn(mix.expand(4, 10), 1.0)(x, t)
        assert torch.allclose(guided, 2 * model.ema(x, t, mix.expand(4, 10)) - uncond, atol=1e-5)
    # label dropout: about p_uncond of the training labels become the null class
    seen = []
    model.unet.forward = lambda xt, tt, yy: (seen.append(yy), torch.zeros_like(xt))[1]
    model.loss(torch.rand(4000, 1, 28, 28), torch.randint(0, 10, (4000,)))
    dropped = (seen[0] == 10).float().mean().item()
    assert abs(dropped - 0.25) < 0.03 and seen[0].max() == 10


def test_bits_per_dim_on_a_tiny_model(tiny_ddpm):
    bound = tiny_ddpm.bits_per_dim(torch.rand(2, 1, 28, 28), generator=torch.Generator().manual_seed(0))
    assert bound["terms"].shape == (20, 2) and (bound["bits_per_dim"] > 0).all()


def test_checkpoint_round_trip_keeps_both_networks(tiny_ddpm, tmp_path):
    tiny_ddpm.save_pretrained(tmp_path / "d")
    loaded = genmodels.load(tmp_path / "d")
    assert isinstance(loaded, DDPM) and loaded.config.channels == [8, 16, 16]
    for a, b in zip(tiny_ddpm.state_dict().values(), loaded.state_dict().values(), strict=True):
        assert torch.equal(a.half().float(), b)
    assert any(k.startswith("ema.") for k in loaded.state_dict())


def test_bad_config():
    with pytest.raises(ValueError, match="schedule"):
        DDPM(DDPMConfig(schedule="sigmoid"))
    with pytest.raises(ValueError, match="three resolutions"):
        DDPM(DDPMConfig(channels=[8, 16]))


def test_ema_warm_up_forgets_the_initial_weights():
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=10, ema_decay=0.999))
    assert model.ema_decay_at(1) == pytest.approx(2 / 11) and model.ema_decay_at(10**6) == 0.999
    # after 469 steps (one MNIST epoch at batch 128) the initial weights' share in the average is
    # prod of the decays: tiny with the warm-up, 0.999^469 = 63 % without it
    share = math.prod(model.ema_decay_at(s) for s in range(1, 470))
    assert share < 1e-3 and 0.999 ** 469 > 0.6


def test_a_ddpm_trains_on_coloured_mnist_and_loads_with_its_colour_samples(tmp_path):
    from genmodels import registry
    from train.__main__ import main

    out = tmp_path / "color"
    assert main(["ddpm", "--dataset", "colored-mnist", "--T", "10", "--channels", "8", "16", "16", "--epochs", "1",
                 "--subset", "64", "--val-size", "16", "--eval-images", "16", "--quiet", "--device", "cpu",
                 "--out", str(out)]) == 0
    model = registry.load(out)
    assert model.config.image_channels == 3 and not model.problems
    assert model.training_samples.shape == (1, 16, 3, 28, 28)  # the epoch's colour snapshot, read back checked
    assert model.sample(2, generator=torch.Generator().manual_seed(0), steps=5).shape == (2, 3, 28, 28)


def test_first_views_written_by_train_views_are_what_the_model_draws(tiny_ddpm, tmp_path):
    """train.views stores an unconditional model's trajectory and inpainting (float16) and a conditional one's rows
    of every class; the loaded model finds them under the page's settings only, and they equal a fresh
    computation."""
    from genmodels.data import load_dataset
    from genmodels.ddpm import APP_SAMPLER, DEFAULT_GUIDANCE, INPAINTING_DEFAULT, VIEW_SAMPLES
    from train.views import main

    method, steps, eta = APP_SAMPLER
    tiny_ddpm.save_pretrained(tmp_path / "plain")
    torch.manual_seed(1)
    conditional = DDPM(DDPMConfig(channels=[8, 16, 16], T=20, n_classes=3)).eval()
    conditional.save_pretrained(tmp_path / "cond")
    assert main([str(tmp_path / "plain"), str(tmp_path / "cond")]) == 0
    plain, cond = genmodels.load(tmp_path / "plain"), genmodels.load(tmp_path / "cond")
    assert not plain.problems and not cond.problems
    assert plain.stored_views.command == f"python -m train.views {tmp_path / 'plain'}"
    stored = plain.stored_trajectory(0, steps, method, eta)
    fresh = plain.trajectory_view(0, steps, method, eta)  # the loaded (float16-stored) weights, as a page's
    assert stored.timesteps == fresh.timesteps and stored.timesteps[0] == 19 and stored.timesteps[-1] == 0
    for name in ("xs", "x0_preds", "eps_preds"):  # float16 in the file: about three decimal digits
        assert getattr(stored, name).dtype == torch.float32
        assert torch.allclose(getattr(stored, name), getattr(fresh, name), atol=5e-3, rtol=1e-3)
    assert plain.stored_trajectory(1, steps, method, eta) is None  # another seed, sampler or eta: not stored
    assert plain.stored_trajectory(0, steps, "ddim", eta) is None and plain.stored_trajectory(0, 10, method, 0) is None
    # the inpainting page's first task: its completions of test digit 7
    task = {**INPAINTING_DEFAULT, "steps": 20}  # DDIM on min(50, T) steps
    stored = plain.stored_inpainting(**task)
    fresh = plain.inpainting_view(load_dataset("mnist", train=False).images, **task)
    assert stored.timesteps == fresh.timesteps and stored.xs.shape == (21, 6, 1, 28, 28)
    for name in ("xs", "x0_preds", "eps_preds"):
        assert torch.allclose(getattr(stored, name), getattr(fresh, name), atol=5e-3, rtol=1e-3)
    for other in ({"index": 8}, {"n": 5}, {"rows": 13}, {"kind": "bottom rows"}, {"seed": 1}, {"resample": 2}):
        assert plain.stored_inpainting(**{**task, **other}) is None, other
    rows = cond.stored_class_rows(DEFAULT_GUIDANCE, steps, 0)
    assert rows.shape == (3 * VIEW_SAMPLES, 1, 28, 28)
    for k in range(3):  # row k: what the page draws when class k is asked for
        asked = cond.sample(VIEW_SAMPLES, generator=torch.Generator().manual_seed(0), steps=steps,
                                   method=method, eta=eta, y=torch.full((VIEW_SAMPLES,), k), guidance=DEFAULT_GUIDANCE)
        assert torch.allclose(rows[k * VIEW_SAMPLES:(k + 1) * VIEW_SAMPLES], asked, atol=2e-3)
    assert cond.stored_class_rows(1.0, steps, 0) is None and cond.stored_trajectory(0, steps, method, eta) is None


def test_stored_views_of_other_weights_are_left_out_and_said(tiny_ddpm, tmp_path):
    from genmodels.ddpm import APP_SAMPLER
    from train.views import main

    tiny_ddpm.save_pretrained(tmp_path / "m")
    assert main([str(tmp_path / "m")]) == 0
    with torch.no_grad():
        next(tiny_ddpm.ema.parameters()).add_(0.1)
    tiny_ddpm.save_pretrained(tmp_path / "retrained")
    (tmp_path / "retrained" / "views.safetensors").write_bytes((tmp_path / "m" / "views.safetensors").read_bytes())
    loaded = genmodels.load(tmp_path / "retrained")
    assert loaded.stored_views is None and loaded.stored_trajectory(0, 20, *APP_SAMPLER[::2]) is None
    assert len(loaded.problems) == 1 and "computed for other weights" in loaded.problems[0]
    assert "python -m train.views" in loaded.problems[0]


def test_a_stored_trajectory_of_another_shape_is_not_used(tiny_ddpm):
    """A trajectory in views.safetensors is checked against the model before a page shows it."""
    from genmodels.checkpoint import StoredViews
    from genmodels.ddpm import trajectory_key
    from genmodels.diffusion import Trajectory

    good = tiny_ddpm.trajectory_view(0, 3, "ddim", 0.0).tensors()
    assert Trajectory.from_tensors(good, 20, (1, 28, 28)).timesteps == good["timesteps"].tolist()
    bad = [{**good, "timesteps": good["timesteps"].flip(0)},  # rising
           {**good, "timesteps": good["timesteps"] + 20},  # beyond T
           {**good, "xs": good["xs"][:-1]},  # as many states as steps
           {**good, "x0_preds": good["x0_preds"][:, :2]},  # another batch than the states
           {**good, "xs": good["xs"][:, :, :, :14]},  # not 28 x 28
           {k: v for k, v in good.items() if k != "eps_preds"}]
    for tensors in bad:
        with pytest.raises(ValueError):
            Trajectory.from_tensors(tensors, 20, (1, 28, 28))
        tiny_ddpm.stored_views = StoredViews("0" * 16, {trajectory_key(0, 3, "ddim", 0.0): tensors})
        assert tiny_ddpm.stored_trajectory(0, 3, "ddim", 0.0) is None
    tiny_ddpm.stored_views = StoredViews("0" * 16, {trajectory_key(0, 3, "ddim", 0.0): good})
    assert tiny_ddpm.stored_trajectory(0, 3, "ddim", 0.0) is not None


def test_the_shipped_diffusion_pages_first_views_are_stored():
    """DDPM step by step's, the inpainting page's and the conditional page's first views are stored with their
    checkpoints, for these weights (train.views): without them a first view samples for one to two seconds."""
    from pathlib import Path

    from genmodels.ddpm import APP_SAMPLER, DEFAULT_GUIDANCE, INPAINTING_DEFAULT

    method, steps, eta = APP_SAMPLER
    root = Path(__file__).resolve().parent.parent / "checkpoints"
    for name in ("ddpm-linear", "ddpm-cosine"):
        model = genmodels.load(root / name)
        assert not model.problems and model.stored_trajectory(0, steps, method, eta) is not None, name
        assert model.stored_inpainting(**INPAINTING_DEFAULT) is not None, name
    model = genmodels.load(root / "ddpm-conditional")
    assert not model.problems and model.stored_class_rows(DEFAULT_GUIDANCE, steps, 0) is not None
