"""Comparing families: the likelihood scoreboard's units and labels, the representative-sample rule, the headline
models, the layer tables, and drawing as the recorded scores did."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from genmodels import compare
from genmodels.checkpoint import list_checkpoints
from genmodels.ddpm import DDPM, DDPMConfig
from genmodels.flow import Flow, FlowConfig
from genmodels.unet import UNet

ROOT = Path(__file__).resolve().parent.parent


def test_bits_per_dimension_and_nats_are_inverse_and_a_uniform_model_has_eight_bits():
    uniform = -784 * math.log(256)  # log P(x) of the model that gives each 8-bit image the same probability
    assert compare.bits_per_dim(uniform) == pytest.approx(8.0)
    assert compare.nats(8.0) == pytest.approx(uniform)
    assert compare.bits_per_dim(-784 * math.log(2)) == pytest.approx(1.0)  # a fair coin per binary pixel
    for value in (-80.0, -650.5, 12.0):
        assert compare.nats(compare.bits_per_dim(value)) == pytest.approx(value)


def test_the_representative_samples_are_those_nearest_the_median_confidence():
    c = torch.tensor([0.125, 0.5, 0.875, 0.5625, 0.4375, 0.99])  # exact in binary: the ties are real ties
    # median (lower middle) 0.5: distances 0.375, 0, 0.375, 0.0625, 0.0625, 0.49; ties go to the earlier sample
    assert compare.representative(c, 3) == [1, 3, 4]
    assert compare.representative(c, 4) == [0, 1, 3, 4]
    rng = np.random.default_rng(0)
    for n, k in ((64, 4), (65, 4), (10, 10), (7, 1)):  # brute force: no other k-subset lies nearer the median
        c = torch.as_tensor(rng.random(n))
        picked = compare.representative(c, k)
        median = float(torch.median(c))
        distance = np.abs(c.numpy() - median)
        assert len(picked) == k and picked == sorted(picked)
        assert distance[picked].max() <= np.sort(distance)[k - 1] + 1e-12
        assert distance[picked].sum() == pytest.approx(np.sort(distance)[:k].sum())


def scores_of(config: dict, metrics: dict) -> list[compare.Score]:
    return compare.likelihood_scores("m", config, metrics)


def test_each_family_s_likelihood_gets_its_kind_unit_and_data():
    vae = scores_of({"family": "vae", "dataset": "binarized-mnist"},
                    {"eval": {"test_elbo": -85.0, "test_iwae_k500": -80.0, "test_kl": 20.0}})
    assert [(s.kind, s.log_likelihood) for s in vae] == [("bound", -85.0), ("estimate", -80.0)]
    assert vae[1].quantity == "IWAE bound, k = 500" and vae[1].bits_per_dim == pytest.approx(80 / (784 * math.log(2)))
    cvae = scores_of({"family": "vae", "dataset": "binarized-mnist", "n_classes": 10}, {"eval": {"test_elbo": -83.0}})
    assert cvae[0].quantity == "ELBO given the class"

    (flow,) = scores_of({"family": "flow", "dataset": "mnist"},
                        {"eval": {"test_bits_per_dim": 1.2, "test_bits_per_dim_stderr": 0.003}})
    assert flow.kind == "exact" and flow.bits_per_dim == pytest.approx(1.2)
    assert flow.log_likelihood == pytest.approx(-1.2 * 784 * math.log(2))
    assert flow.stderr == pytest.approx(0.003 * 784 * math.log(2))

    (ddpm,) = scores_of({"family": "ddpm", "dataset": "mnist", "T": 1000},
                        {"bits_per_dim": {"mean": 1.6, "stderr": 0.02, "n": 200}})
    assert ddpm.kind == "bound" and ddpm.images == 200 and ddpm.bits_per_dim == pytest.approx(1.6)

    rbm = scores_of({"family": "rbm", "dataset": "binarized-mnist"},
                    {"eval": {"test_ais_log_likelihood": -121.0, "test_pseudo_likelihood": -58.0}})
    assert [s.kind for s in rbm] == ["estimate", "proxy"]

    assert scores_of({"family": "gan", "dataset": "mnist"}, {"eval": {"test_fid_mnist": 90.0}}) == []
    # a density of grey Fashion-MNIST values, or of coloured images, is another problem: not on this scoreboard
    assert scores_of({"family": "vae", "dataset": "fashion-mnist"}, {"eval": {"test_elbo": 640.0}}) == []
    assert scores_of({"family": "vae", "dataset": "colored-mnist"}, {"eval": {"test_elbo": 2869.0}}) == []
    assert scores_of({"family": "vae", "dataset": "mnist"}, {"eval": {"test_elbo": -60.0}}) == []  # grey values
    assert scores_of({"family": "flow", "dataset": "binarized-mnist"}, {"eval": {"test_bits_per_dim": 0.2}}) == []


def shipped() -> list[tuple[str, dict, dict]]:
    out = []
    for location, config in sorted(list_checkpoints(ROOT / "checkpoints")):
        metrics = json.loads((Path(location) / "metrics.json").read_text())
        out.append((Path(location).name, config, metrics))
    return out


def test_the_shipped_scoreboard_has_every_kind_and_the_headline_rule_picks_the_best_of_each_family():
    models = shipped()
    scores = [s for name, cfg, m in models for s in compare.likelihood_scores(name, cfg, m)]
    assert {s.kind for s in scores} == set(compare.KINDS)
    flow = next(s for s in scores if s.model == "flow")
    assert flow.kind == "exact" and flow.bits_per_dim == pytest.approx(
        json.loads((ROOT / "checkpoints/flow/metrics.json").read_text())["eval"]["test_bits_per_dim"])

    chosen = compare.headline_models(models)
    families = [cfg["family"] for name, cfg, _ in models if name in chosen]
    assert len(families) == len(set(families))  # one a family
    assert {"vae", "flow", "ddpm", "gan", "rbm", "cold"} <= set(families)
    for name in chosen:  # the lowest FID of its family's eligible models, found independently
        family = next(cfg["family"] for n, cfg, _ in models if n == name)
        eligible = {n: m for n, cfg, m in models if cfg["family"] == family and not cfg.get("n_classes")
                    and cfg.get("dataset") in ("mnist", "binarized-mnist")}
        fids = {n: compare.recorded_quality(m)[1]["fid_mnist"] for n, m in eligible.items()
                if compare.recorded_quality(m)[1]}
        if fids:
            assert fids[name] == min(fids.values()), (family, name, fids)


def test_a_layer_table_lists_the_flow_s_steps_and_the_reshapes_between_them():
    torch.manual_seed(0)
    flow = Flow(FlowConfig(levels=2, steps=2, hidden=8, blocks=1)).eval()
    x = torch.rand(1, 1, 28, 28)
    table = compare.layer_table(flow, lambda: flow.flow_forward(flow.preprocess(x)[0]))
    steps = [r for r in table if r["layer"] == "FlowStep"]
    assert len(steps) == 2 * 5  # two steps in each of the 5 stages
    assert sum(r["parameters"] for r in table) == flow.num_parameters()
    between = [(r["in"], r["out"], r["layer"]) for r in table if r["block"] == "(between blocks)"]
    squeeze, split = "squeeze: 2 x 2 pixels into channels", "split: channels leave"
    assert between == [("1 x 28 x 28", "4 x 14 x 14", squeeze), ("4 x 14 x 14", "2 x 14 x 14", split),
                       ("2 x 14 x 14", "8 x 7 x 7", squeeze), ("8 x 7 x 7", "4 x 7 x 7", split)]
    assert all(r["in"] == r["out"] for r in steps)  # a flow step keeps its input's shape


def test_a_layer_table_of_the_u_net_calls_each_block_once_and_counts_every_parameter():
    unet = UNet(channels=(8, 16, 16)).eval()
    table = compare.layer_table(unet, lambda: unet(torch.zeros(1, 1, 28, 28), torch.tensor([3])))
    blocks = [r["block"] for r in table if r["parameters"]]
    assert blocks[0] == "time_mlp" and "mid_attn" in blocks and blocks[-1] == "out"
    assert len(blocks) == len(set(blocks))
    assert sum(r["parameters"] for r in table) == sum(p.numel() for p in unet.parameters())
    assert next(r for r in table if r["block"] == "out")["out"] == "1 x 28 x 28"
    # the skip connections arrive between blocks: up2 takes the middle's 16 channels and down2's 16
    assert {"in": "16 x 7 x 7", "out": "32 x 7 x 7", "layer": "concatenate a skip connection"}.items() <= next(
        r for r in table if r["block"] == "(between blocks)" and r["out"] == "32 x 7 x 7").items()
    assert any(r["layer"] == "upsample (nearest)" and r["out"] == "16 x 14 x 14" for r in table)
    assert not any(h for h in unet._forward_hooks.values())  # the hooks are gone afterwards


def test_drawing_as_the_scores_did_names_the_sampler_and_asks_a_conditional_model_for_each_class():
    torch.manual_seed(0)
    ddpm = DDPM(DDPMConfig(channels=[8, 16, 16], n_classes=10)).eval()
    images, name = compare.draw(ddpm, 12, torch.Generator().manual_seed(0), **compare.FAST)
    assert images.shape == (12, 1, 28, 28) and name == "DPM-Solver++(2M), 20 steps, eta 1, guidance 0.1"
    asked = []
    original = ddpm.sample

    def spy(n, eta=0.0, **kw):  # (``eta`` in its signature: still a diffusion model's sampler)
        asked.append(kw["y"])
        return original(n, eta=eta, **kw)

    ddpm.sample = spy
    compare.draw(ddpm, 12, torch.Generator().manual_seed(0), steps=2, batch_size=5)
    assert torch.cat(asked).tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    again, _ = compare.draw(ddpm, 12, torch.Generator().manual_seed(0), **compare.FAST)
    assert torch.equal(images, again)  # one seed, one set of samples
    short = DDPM(DDPMConfig(channels=[8, 16, 16], T=10)).eval()  # a model of 10 steps draws with 10, says so
    assert compare.draw(short, 2, torch.Generator().manual_seed(0), **compare.FAST)[1] == \
        "DPM-Solver++(2M), 10 steps, eta 1"

    flow = Flow(FlowConfig(levels=0, steps=1, hidden=4, blocks=0)).eval()
    images, name = compare.draw(flow, 3, torch.Generator().manual_seed(0), **compare.FAST)
    assert name == flow.sampler_name and images.shape == (3, 1, 28, 28)  # not a diffusion model: its own sampler
