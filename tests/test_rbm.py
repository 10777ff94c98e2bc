"""RBM and DBM: energies and conditionals against brute-force enumeration, AIS against the exact partition
function, clamped Gibbs sampling, the pseudo-likelihood against scikit-learn, and training."""

import itertools

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import genmodels
from genmodels.rbm import DBM, RBM, DBMConfig, RBMConfig, ais_schedule, row_mask
from train import rbm as recipe
from train.__main__ import main
from train.loop import STATE_FILE, StepContext, TrainConfig


def tiny_rbm(n_visible: int = 6, n_hidden: int = 4, seed: int = 0, scale: float = 1.0) -> RBM:
    torch.manual_seed(seed)
    model = RBM(RBMConfig(n_visible=n_visible, n_hidden=n_hidden, n_chains=8)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, scale)
    return model


def states(n: int) -> torch.Tensor:
    return torch.tensor(list(itertools.product([0.0, 1.0], repeat=n)), dtype=torch.float64)


def joint_log_weights(model: RBM) -> torch.Tensor:
    """-E(v, h) for every (v, h), shaped (2^D, 2^H), by the energy's definition."""
    v, h = states(model.config.n_visible), states(model.config.n_hidden)
    vv, hh = v.repeat_interleave(len(h), 0), h.repeat(len(v), 1)
    return -model.energy(vv, hh).reshape(len(v), len(h))


def test_free_energy_and_conditionals_against_enumeration():
    model = tiny_rbm()
    v, h = states(6), states(4)
    logw = joint_log_weights(model)
    torch.testing.assert_close(model.free_energy(v), -torch.logsumexp(logw, 1))
    p_h_given_v = torch.softmax(logw, 1)  # rows: v, columns: h
    torch.testing.assert_close(model.hidden_probs(v), p_h_given_v @ h)
    p_v_given_h = torch.softmax(logw, 0)  # columns: h
    torch.testing.assert_close(model.visible_probs(h), p_v_given_h.T @ v)


@pytest.mark.parametrize("shape", [(6, 4), (4, 7)])
def test_exact_log_partition_and_likelihood(shape):
    model = tiny_rbm(*shape)
    log_z = model.log_partition_exact()  # enumerates the smaller layer
    assert log_z == pytest.approx(torch.logsumexp(joint_log_weights(model).flatten(), 0).item(), abs=1e-9)
    log_p = -model.free_energy(states(shape[0])) - log_z
    assert torch.logsumexp(log_p, 0).item() == pytest.approx(0.0, abs=1e-9)  # a distribution over all v


def test_ais_converges_to_the_exact_log_partition_function():
    model = tiny_rbm(10, 6, scale=1.5)
    exact = model.log_partition_exact()
    errors = []
    for n_betas in (10, 1000):
        estimate, spread = model.ais_log_partition(n_chains=500, n_betas=n_betas,
                                                   generator=torch.Generator().manual_seed(0))
        errors.append(abs(estimate - exact))
    assert errors[1] < 0.03 and errors[1] < errors[0]
    assert 0 < spread < 0.05
    betas = ais_schedule(100)
    assert betas[0] == 0 and betas[-1] == 1 and torch.all(betas[1:] > betas[:-1]) and len(betas) == 101


def test_gradients_equal_autograd_of_the_free_energy_difference():
    model = tiny_rbm(8, 5)
    v_data = torch.bernoulli(torch.full((7, 8), 0.4, dtype=torch.float64))
    v_model = torch.bernoulli(torch.full((5, 8), 0.6, dtype=torch.float64))
    (model.free_energy(v_data).mean() - model.free_energy(v_model).mean()).backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters()}
    model.zero_grad()
    model.set_gradients(v_data, v_model)
    for name, p in model.named_parameters():
        torch.testing.assert_close(p.grad, expected[name])


def test_pseudo_likelihood_equals_scikit_learns_on_the_same_pixels():
    from sklearn.neural_network import BernoulliRBM

    model = tiny_rbm(784, 32, scale=0.1).float()
    reference = BernoulliRBM(n_components=32, random_state=3)
    reference.components_ = model.weight.detach().numpy().astype(np.float64)
    reference.intercept_hidden_ = model.hidden_bias.detach().numpy().astype(np.float64)
    reference.intercept_visible_ = model.visible_bias.detach().numpy().astype(np.float64)
    reference.n_features_in_ = 784
    v = torch.bernoulli(torch.full((50, 784), 0.3), generator=torch.Generator().manual_seed(1))
    index = np.random.RandomState(3).randint(0, 784, 50)  # scikit-learn's draw with random_state=3
    ours = model.pseudo_likelihood(v, index=torch.from_numpy(index)).numpy()
    np.testing.assert_allclose(ours, reference.score_samples(v.numpy()), rtol=1e-4)
    # and it estimates the full sum of log p(v_i | v_-i) over pixels without bias
    full = torch.stack([model.pseudo_likelihood(v, index=torch.full((50,), i)) for i in range(784)]).mean(0)
    draws = torch.stack([model.pseudo_likelihood(v, generator=torch.Generator().manual_seed(s)) for s in range(400)])
    assert (draws.mean(0) - full).abs().mean() < 0.1 * full.abs().mean()


def test_clamped_pixels_never_change_and_gibbs_is_repeatable():
    model = tiny_rbm(784, 16, scale=0.05).float()
    v = torch.bernoulli(torch.full((3, 784), 0.5))
    mask = row_mask(10, "middle").reshape(1, 784)
    chain = list(model.gibbs_chain(v, 20, torch.Generator().manual_seed(0), mask.expand(3, -1)))
    for sample, probs in chain:
        assert torch.equal(sample[:, mask[0]], v[:, mask[0]]) and torch.equal(probs[:, mask[0]], v[:, mask[0]])
    assert not torch.equal(chain[-1][0], v)  # the missing rows did move
    again = model.gibbs(v, 20, torch.Generator().manual_seed(0), mask)
    assert torch.equal(again, chain[-1][0])
    dbm = DBM(DBMConfig(n_hidden1=16, n_hidden2=8, n_chains=4))
    for sample, _ in dbm.gibbs_chain(v, 5, torch.Generator().manual_seed(0), mask):
        assert torch.equal(sample[:, mask[0]], v[:, mask[0]])


def test_row_masks():
    assert (~row_mask(5, "top"))[:5].all() and row_mask(5, "top")[5:].all()
    assert (~row_mask(4, "bottom"))[24:].all() and row_mask(4, "bottom")[:24].all()
    assert (~row_mask(6, "middle")).any(1).nonzero().flatten().tolist() == [11, 12, 13, 14, 15, 16]
    assert (~row_mask(3, "every other")).any(1).nonzero().flatten().tolist() == [0, 2, 4]
    assert (~row_mask(2, "band", start=20)).any(1).nonzero().flatten().tolist() == [20, 21]
    with pytest.raises(ValueError, match="at most 14"):
        row_mask(15, "every other")
    with pytest.raises(ValueError, match="must start"):
        row_mask(5, "band", start=25)


def test_dbm_conditionals_against_enumeration_and_mean_field_fixed_point():
    torch.manual_seed(0)
    model = DBM(DBMConfig(n_visible=4, n_hidden1=3, n_hidden2=2, n_chains=2)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(0, 1)
    v, h1, h2 = states(4), states(3), states(2)
    grid = torch.cartesian_prod(torch.arange(16), torch.arange(8), torch.arange(4))
    logw = -model.energy(v[grid[:, 0]], h1[grid[:, 1]], h2[grid[:, 2]]).reshape(16, 8, 4)
    # p(h1 | v, h2): normalise over h1 for each (v, h2)
    p_h1 = torch.einsum("vab,ai->vbi", torch.softmax(logw, 1), h1)  # (v, h2, unit)
    for b in range(4):
        torch.testing.assert_close(model.hidden1_probs(v, h2[b].expand(16, -1)), p_h1[:, b])
    p_h2 = torch.einsum("vab,bk->vak", torch.softmax(logw, 2), h2)  # depends on h1 only
    torch.testing.assert_close(model.hidden2_probs(h1), p_h2[0])
    mu1, mu2 = model.mean_field(v, steps=200)
    torch.testing.assert_close(mu1, model.hidden1_probs(v, mu2))
    torch.testing.assert_close(mu2, model.hidden2_probs(mu1))


def test_contrastive_divergence_lowers_the_free_energy_of_data_against_noise():
    from genmodels.data import load_dataset

    data = load_dataset("binarized-mnist", train=True, subset=2000).images.reshape(-1, 784)
    noise = torch.bernoulli(torch.full((500, 784), data.mean().item()), generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = RBM(RBMConfig(n_hidden=64, n_chains=64))
    config = TrainConfig(optimizer="sgd", lr=0.05, batch_size=64)
    opts = recipe.optimizers(model, config, None)
    gaps = []
    for epoch in range(3):
        gaps.append((model.free_energy(data[:500]).mean() - model.free_energy(noise).mean()).item())
        for step, start in enumerate(range(0, 2000, 64)):
            recipe.train_step(model, [data[start:start + 64]], opts, StepContext(config, torch.device("cpu"), None,
                                                                                  epoch, step))
    gaps.append((model.free_energy(data[:500]).mean() - model.free_energy(noise).mean()).item())
    assert gaps[-1] < gaps[0] - 50 and gaps[-1] < 0


SMALL = ["--subset", "1200", "--batch-size", "50", "--quiet", "--device", "cpu"]


def test_rbm_trains_reports_its_numbers_and_resumes_bit_for_bit(tmp_path):
    args = ["rbm", *SMALL, "--hidden", "32", "--momentum", "0.5", "--weight-decay", "1e-4", "--ais-betas", "200",
            "--ais-chains", "20"]
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "a")]) == 0
    assert main([*args, "--epochs", "1", "--out", str(tmp_path / "b")]) == 0
    assert main([*args, "--epochs", "2", "--out", str(tmp_path / "b"), "--resume"]) == 0
    a, b = load_file(tmp_path / "a" / STATE_FILE), load_file(tmp_path / "b" / STATE_FILE)
    assert a.keys() == b.keys() and "model.chains" in a and any(k.startswith("optim.rbm.") for k in a)
    for key in a:
        assert torch.equal(a[key], b[key]), key
    model = genmodels.load(tmp_path / "a")
    assert isinstance(model, RBM) and model.config.n_hidden == 32 and model.config.persistent
    m = model.metrics
    assert m["training"]["optimizer"] == "sgd" and m["training"]["optimizers"]["rbm"]["momentum"] == 0.5
    assert len(m["curves"]["val_pseudo_likelihood"]) == 2 and m["curves"]["step_reconstruction_error"]
    assert len(m["curves"]["step"]) == len(m["curves"]["step_reconstruction_error"])
    e = m["eval"]
    assert e["test_ais_log_likelihood"] == pytest.approx(-e["test_free_energy"] - e["test_ais_log_z"])
    assert -784 * np.log(2) < e["test_ais_log_likelihood"] < 0 and e["test_pseudo_likelihood"] < 0
    assert 0 < e["test_fill_error_bottom_half"] < 0.5
    assert model.training_samples.shape == (2, 16, 1, 28, 28)
    from app_pages.common import saved_samples  # the model zoo shows the saved samples instead of sampling seed 0

    drawn = model.sample(16, generator=torch.Generator().manual_seed(0))
    assert (drawn - saved_samples(model, 16, seed=0)).abs().max() <= 0.5 / 255 + 1e-6
    images = model.sample(4, generator=torch.Generator().manual_seed(0), steps=10)
    assert images.shape == (4, 1, 28, 28) and 0 <= images.min() and images.max() <= 1


def test_dbm_trains_in_stages(tmp_path):
    assert main(["dbm", *SMALL, "--hidden1", "32", "--hidden2", "16", "--chains", "20", "--epochs", "3",
                 "--pretrain-epochs", "1", "--out", str(tmp_path / "dbm")]) == 0
    model = genmodels.load(tmp_path / "dbm")
    assert isinstance(model, DBM) and model.weight1.shape == (32, 784) and model.weight2.shape == (16, 32)
    assert len(model.metrics["curves"]["val_reconstruction_error"]) == 3
    assert 0 < model.metrics["eval"]["test_fill_error_bottom_half"] < 0.5
    a = model.sample(3, generator=torch.Generator().manual_seed(0), steps=5)
    b = model.sample(3, generator=torch.Generator().manual_seed(0), steps=5)
    assert torch.equal(a, b) and a.shape == (3, 1, 28, 28)
    with pytest.raises(SystemExit, match="no room"):
        main(["dbm", *SMALL, "--epochs", "3", "--pretrain-epochs", "2", "--out", str(tmp_path / "x")])


def test_three_families_fill_only_the_missing_pixels(tiny_vae):
    from genmodels import missing
    from genmodels.ddpm import DDPM, DDPMConfig

    x = torch.bernoulli(torch.full((4, 1, 28, 28), 0.3), generator=torch.Generator().manual_seed(0))
    observed = row_mask(10, "bottom").reshape(1, 1, 28, 28)
    rbm = tiny_rbm(784, 16, scale=0.05).float()
    filled, frames = missing.gibbs_fill(rbm, x, observed, 20, torch.Generator().manual_seed(0), record=(1, 5, 20))
    assert frames.shape == (3, 4, 1, 28, 28) and torch.equal(frames[-1], filled)
    torch.manual_seed(0)
    ddpm = DDPM(DDPMConfig(T=10, channels=(8, 16, 16))).eval()
    outputs = [filled, missing.vae_fill(tiny_vae(), x, observed, 5, torch.Generator().manual_seed(0)),
               missing.ddpm_fill(ddpm, x, observed, steps=5, generator=torch.Generator().manual_seed(0))]
    mask = observed.expand_as(x)
    for out in outputs:
        assert out.shape == x.shape and torch.equal(out[mask], x[mask])
        assert 0 <= out.min() and out.max() <= 1 and not torch.equal(out, x)
    # the error counts the missing pixels only: 0 for the truth, the ink share for an all-black guess
    assert missing.fill_error(x, x, observed) == 0
    assert missing.fill_error(torch.zeros_like(x), x, observed) == pytest.approx(x[~mask].mean().item())


def test_trace_records_frames_and_free_energies_and_layer2_filters():
    from genmodels.rbm import layer2_filters

    model = tiny_rbm(784, 8, scale=0.05).float()
    v = torch.bernoulli(torch.full((3, 784), 0.5))
    frames, energies = model.trace(v, 12, torch.Generator().manual_seed(0), record=(1, 10))
    assert frames.shape == (2, 3, 1, 28, 28) and energies.shape == (12, 3)
    chain = list(model.gibbs_chain(v, 12, torch.Generator().manual_seed(0)))
    torch.testing.assert_close(energies[-1], model.free_energy(chain[-1][0]))
    torch.testing.assert_close(frames[1].reshape(3, -1), chain[9][1])
    assert model.trace(v, 3, record=(1,), energies=False)[1] is None
    dbm = DBM(DBMConfig(n_hidden1=6, n_hidden2=4, n_chains=2))
    filters = layer2_filters(dbm)
    assert filters.shape == (4, 784)
    torch.testing.assert_close(filters[2], (dbm.weight2[2][:, None] * dbm.weight1).sum(0))
