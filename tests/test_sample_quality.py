"""The sample-quality command: FID-MNIST, classes and confidence per checkpoint, the floor, bits per dimension."""

import json

import pytest
import torch

import genmodels
from genmodels.classifier import Classifier, ClassifierConfig
from genmodels.data import load_dataset
from genmodels.ddpm import DDPM, DDPMConfig
from genmodels.metrics import frechet_distance
from train.sample_quality import main

N = 200


@pytest.fixture
def folders(tmp_path, tiny_vae):
    torch.manual_seed(0)
    judge = Classifier(ClassifierConfig(channels=4, feature_dim=8)).eval()
    judge.metrics = {"eval": {"test_accuracy": 0.1}}
    judge.save_pretrained(tmp_path / "judge")
    vae = tiny_vae("gaussian")
    vae.metrics = {"seed": 0}
    vae.save_pretrained(tmp_path / "vae")
    ddpm = DDPM(DDPMConfig(channels=[8, 16, 16], T=10)).eval()
    ddpm.metrics = {"seed": 0}
    ddpm.save_pretrained(tmp_path / "ddpm")
    return tmp_path


def test_scores_models_and_the_floor_and_writes_them(folders, capsys):
    judge, vae, ddpm = (str(folders / name) for name in ("judge", "vae", "ddpm"))
    assert main([vae, ddpm, "--judge", judge, "--n", str(N), "--steps", "5", "--bpd", "20", "--floor",
                 "--write"]) == 0
    out = capsys.readouterr().out
    assert "| real MNIST test images (the floor) |" in out and "DDIM, 5 steps, eta 0" in out

    # the floor, recomputed independently from the saved judge
    model = genmodels.load(judge)
    floor = json.loads((folders / "judge" / "metrics.json").read_text())["fid_floor"]
    test = load_dataset("mnist", train=False).images  # a seeded random subset: the first digits are unlike the rest
    chosen = test[torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:N]]
    expected = frechet_distance(model.all_features(chosen),
                                model.all_features(load_dataset("mnist", train=True, subset=N).images))
    assert floor["fid_mnist"] == pytest.approx(expected, rel=1e-6) and floor["n"] == N
    assert sum(floor["histogram"]) == N and 0 <= floor["confident_rate"] <= 1
    assert "--floor" in floor["command"]

    vae_metrics = json.loads((folders / "vae" / "metrics.json").read_text())
    (entry,) = vae_metrics["sample_quality"].values()
    assert entry["n"] == N and sum(entry["histogram"]) == N and entry["fid_mnist"] > floor["fid_mnist"]
    assert entry["floor_fid_mnist"] == floor["fid_mnist"] and entry["device"].startswith("cpu")
    assert "bits_per_dim" not in vae_metrics  # the bound is a DDPM number

    ddpm_metrics = json.loads((folders / "ddpm" / "metrics.json").read_text())
    assert list(ddpm_metrics["sample_quality"]) == ["DDIM, 5 steps, eta 0"]
    bpd = ddpm_metrics["bits_per_dim"]
    assert bpd["n"] == 20 and bpd["mean"] > 0 and bpd["stderr"] > 0
    assert len(bpd["terms"]) == 10 and min(bpd["terms"]) > 0  # each L_t is a KL or a negative log-likelihood
    assert sum(bpd["terms"]) + bpd["prior_term"] == pytest.approx(bpd["mean"], rel=1e-3)

    # a second sampler is added beside the first, not over it; a floor on fewer images keeps the judge's
    assert main([ddpm, "--judge", judge, "--n", "50", "--steps", "ddpm", "--floor", "--write"]) == 0
    ddpm_metrics = json.loads((folders / "ddpm" / "metrics.json").read_text())
    assert set(ddpm_metrics["sample_quality"]) == {"DDIM, 5 steps, eta 0", "DDPM, 10 steps"}
    small_floor = ddpm_metrics["sample_quality"]["DDPM, 10 steps"]["floor_fid_mnist"]
    assert small_floor != floor["fid_mnist"]
    assert json.loads((folders / "judge" / "metrics.json").read_text())["fid_floor"] == floor


def test_bad_arguments(folders, capsys):
    assert main([str(folders / "nowhere"), "--judge", str(folders / "judge"), "--n", "10"]) == 2
    assert "error:" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["--steps", "many"])


def test_gallery_keeps_the_judges_extremes_of_many_samples(folders, capsys):
    judge, ddpm = str(folders / "judge"), str(folders / "ddpm")
    assert main([ddpm, "--judge", judge, "--gallery", "40", "--steps", "5"]) == 0
    assert "the 16 most confident of 40" in capsys.readouterr().out
    model = genmodels.load(ddpm)
    judged = model.judged_samples
    assert judged["n"] == 40 and judged["sampler"] == "DDIM, 5 steps, eta 0, seed 0" and not model.problems
    assert judged["command"].startswith("python -m train.sample_quality") and "--gallery 40" in judged["command"]
    assert judged["most"].shape == judged["least"].shape == (16, 1, 28, 28)
    # independently: the same 40 samples, judged again, sorted
    images = model.sample(40, generator=torch.Generator().manual_seed(0), steps=5)
    confidence = genmodels.load(judge).predict_proba(images).max(-1).values.sort(descending=True).values
    kept = genmodels.load(judge).predict_proba(judged["most"].float() / 255).max(-1).values
    assert kept.min() >= confidence[20] - 1e-3  # the top 16 of 40 are all above the median
    worst = genmodels.load(judge).predict_proba(judged["least"].float() / 255).max(-1).values
    assert worst.max() <= confidence[19] + 1e-3 and worst.min() == pytest.approx(confidence[-1].item(), abs=1e-2)
    assert "sample_quality" not in json.loads((folders / "ddpm" / "metrics.json").read_text())  # no scores

    model.save_pretrained(folders / "copy")  # a saved model carries its gallery along
    assert torch.equal(genmodels.load(folders / "copy").judged_samples["least"], judged["least"])


def test_a_gallery_needs_sixteen_samples(folders):
    with pytest.raises(SystemExit):
        main([str(folders / "ddpm"), "--judge", str(folders / "judge"), "--gallery", "8"])


def test_fid_curve_scores_each_fast_sampler_at_each_step_count(folders, capsys):
    judge, vae, ddpm = (str(folders / name) for name in ("judge", "vae", "ddpm"))
    assert main([vae, ddpm, "--judge", judge, "--n", "40", "--curve", "1,4", "--write"]) == 0
    assert "not a diffusion model" in capsys.readouterr().err  # the VAE has no sampler steps
    model = genmodels.load(ddpm)  # the curve passes the loader's schema
    curve = model.metrics["fid_curve"]
    assert curve["n"] == 40 and "--curve 1,4" in curve["command"] and curve["device"].startswith("cpu")
    points = {(p["method"], p["eta"], p["steps"]): p for p in curve["points"]}
    assert set(points) == {(m, e, k) for m, e in (("ddim", 0.0), ("dpm++", 0.0), ("dpm++", 1.0)) for k in (1, 4)}
    # one step of every sampler is the same jump from pure noise to the estimate of x_0: the same samples
    assert len({points[(m, e, 1)]["fid_mnist"] for m, e in (("ddim", 0.0), ("dpm++", 0.0), ("dpm++", 1.0))}) == 1
    assert points[("dpm++", 0.0, 4)]["fid_mnist"] != points[("ddim", 0.0, 4)]["fid_mnist"]
    assert all(sum(p["histogram"]) == 40 and p["seconds_per_image"] > 0 for p in points.values())
    # each point is the same score as one run of the plain command with that sampler
    assert main([ddpm, "--judge", judge, "--n", "40", "--steps", "4", "--method", "dpm++", "--eta", "1",
                 "--write"]) == 0
    single = genmodels.load(ddpm).metrics["sample_quality"]["DPM-Solver++(2M), 4 steps, eta 1"]
    assert single["fid_mnist"] == pytest.approx(points[("dpm++", 1.0, 4)]["fid_mnist"], rel=1e-6)
    assert "fid_curve" not in json.loads((folders / "vae" / "metrics.json").read_text())
    with pytest.raises(SystemExit):
        main([ddpm, "--judge", judge, "--curve", "5,ten"])


def test_mixing_curve_is_recorded_as_the_gibbs_page_computes_it(folders, capsys):
    from genmodels.rbm import MIXING_CHAINS, MIXING_STEPS, RBM, RBMConfig, mixing_curve

    rbm = RBM(RBMConfig(n_hidden=8)).eval()
    rbm.metrics = {"seed": 0}
    rbm.save_pretrained(folders / "rbm")
    judge = str(folders / "judge")
    assert main([str(folders / "rbm"), str(folders / "vae"), "--judge", judge, "--mixing", "--write"]) == 0
    assert "not an RBM" in capsys.readouterr().err
    recorded = genmodels.load(str(folders / "rbm")).metrics["mixing"]  # passes the loader's schema
    assert recorded["steps"] == list(MIXING_STEPS) and recorded["chains"] == MIXING_CHAINS and recorded["seed"] == 0
    test = load_dataset("mnist", train=False, subset=MIXING_CHAINS)
    assert recorded["share"] == mixing_curve(rbm, genmodels.load(judge), test.images, test.labels)
    assert all(0 <= s <= 1 for s in recorded["share"])


def test_mixing_curve_counts_the_chains_the_judge_still_calls_their_first_digit():
    from genmodels.rbm import RBM, RBMConfig, mixing_curve

    class Always:  # a judge that sees a 3 in everything
        def predict_proba(self, images):
            return torch.nn.functional.one_hot(torch.full((len(images),), 3), 10).float()

    rbm = RBM(RBMConfig(n_hidden=8)).eval()
    images = torch.rand(6, 1, 28, 28)
    assert mixing_curve(rbm, Always(), images, [3, 3, 3, 3, 3, 3], steps=(1, 5)) == [1.0, 1.0]
    assert mixing_curve(rbm, Always(), images, [3, 3, 3, 1, 1, 1], steps=(1, 5)) == [0.5, 0.5]


def test_gallery_of_another_sampler_says_which(folders):
    ddpm = str(folders / "ddpm")
    assert main([ddpm, "--judge", str(folders / "judge"), "--gallery", "16", "--steps", "3", "--method", "dpm++",
                 "--eta", "1"]) == 0
    assert genmodels.load(ddpm).judged_samples["sampler"] == "DPM-Solver++(2M), 3 steps, eta 1, seed 0"


def test_colour_images_are_scored_by_their_shape_and_their_colours(folders):
    from genmodels.data import colorize, digit_colors
    from train.sample_quality import quality, reference_colors

    judge = genmodels.load(folders / "judge")
    grey = load_dataset("mnist", train=False, subset=N).images
    reference = judge.all_features(load_dataset("mnist", train=True, subset=N).images)
    real = quality(judge, grey, reference)
    painted = load_dataset("colored-mnist", train=False, subset=N).images
    colors = reference_colors(1000)
    scored = quality(judge, painted, reference, colors)
    assert scored["histogram"] == real["histogram"]
    assert scored["fid_mnist"] == pytest.approx(real["fid_mnist"], rel=0.05, abs=0.05)
    # Real colour pairs are near the reference; every digit in one colour pair is far from it.
    red, dark_blue = torch.tensor([[1.0, 0.0, 0.0]]).expand(N, 3), torch.tensor([[0.0, 0.0, 0.3]]).expand(N, 3)
    one_pair = colorize(grey, red, dark_blue)
    far = quality(judge, one_pair, reference, colors)
    assert scored["fd_colors"] < 0.05 < far["fd_colors"]
    # The hue rule: real pairs and red on dark blue (a third of a turn apart) keep it; red on dark orange does not.
    assert scored["hue_rule"] == 1.0 and far["hue_rule"] == 1.0
    orange = torch.tensor([[0.35, 0.18, 0.0]]).expand(N, 3)
    assert quality(judge, colorize(grey, red, orange), reference, colors)["hue_rule"] == 0.0
    kept = torch.tensor(scored["color_pairs"])
    assert kept.shape == (min(N, 400), 6) and torch.allclose(kept[:, 3:], digit_colors(10_000, 2)[1][:len(kept)],
                                                             atol=6e-4)  # the real pairs, to 3 decimals
    # The judge reads a colour image by its shape: the same classes as the grey digit scaled to full ink.
    ink = grey / grey.flatten(1).max(1).values.view(-1, 1, 1, 1)
    assert torch.allclose(judge.predict_proba(painted), judge.predict_proba(ink), atol=1e-4)


def test_a_class_conditional_ddpm_is_asked_for_each_class_and_scored_against_guidance(folders, capsys):
    from genmodels.checkpoint import read_metrics
    from train.sample_quality import asked_classes

    torch.manual_seed(0)
    model = DDPM(DDPMConfig(channels=[8, 16, 16], T=10, n_classes=10)).eval()
    model.save_pretrained(folders / "cddpm")
    where, judge = str(folders / "cddpm"), str(folders / "judge")
    assert main([where, "--judge", judge, "--n", "40", "--steps", "3", "--guidance", "1.5", "--write"]) == 0
    (name, entry), = json.loads((folders / "cddpm" / "metrics.json").read_text())["sample_quality"].items()
    assert name == "DDIM, 3 steps, eta 0, guidance 1.5" and entry["guidance"] == 1.5
    # class_match is the share the judge reads as the asked class: recomputed from the same samples
    images = model.sample(40, generator=torch.Generator().manual_seed(0), steps=3, y=asked_classes(40), guidance=1.5)
    predicted = genmodels.load(judge).predict_proba(images).argmax(-1)
    assert entry["class_match"] == pytest.approx((predicted == asked_classes(40)).float().mean().item())
    assert asked_classes(40).bincount().tolist() == [4] * 10
    assert main([where, "--judge", judge, "--n", "20", "--steps", "2", "--guidance-curve", "0,2", "--write"]) == 0
    curve = read_metrics(folders / "cddpm" / "metrics.json")["guidance_curve"]  # through the schema check
    assert [p["guidance"] for p in curve["points"]] == [0.0, 2.0] and curve["sampler"] == "DDIM, 2 steps, eta 0"
    assert curve["n"] == 20 and all(0 <= p["class_match"] <= 1 for p in curve["points"])
    with pytest.raises(SystemExit):
        main([where, "--guidance-curve", "0,lots"])
    # an unconditional model is skipped, with a note
    assert main([str(folders / "ddpm"), "--judge", judge, "--n", "10", "--guidance-curve", "1"]) == 0
    assert "no guidance curve" in capsys.readouterr().err


def test_a_conditional_vae_is_scored_on_the_class_it_was_asked_for(folders, tiny_vae, capsys):
    from genmodels.compare import asked_classes

    model = tiny_vae("gaussian", n_classes=10)
    model.save_pretrained(folders / "cvae")
    where, judge = str(folders / "cvae"), str(folders / "judge")
    assert main([where, "--judge", judge, "--n", "40", "--write"]) == 0
    (entry,) = json.loads((folders / "cvae" / "metrics.json").read_text())["sample_quality"].values()
    images = model.sample(40, generator=torch.Generator().manual_seed(0), y=asked_classes(40))  # recomputed
    predicted = genmodels.load(judge).predict_proba(images).argmax(-1)
    assert entry["class_match"] == pytest.approx((predicted == asked_classes(40)).float().mean().item())
    assert f"(the asked class {entry['class_match']:.1%})" in capsys.readouterr().out
