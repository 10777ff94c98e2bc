"""``python -m train.sample_quality CHECKPOINT [...]``: how digit-like a model's samples are.

For each checkpoint: draw ``--n`` samples from a fixed seed, and compare them with ``--n`` MNIST
training images through the shipped classifier (``--judge``): FID-MNIST (the Frechet distance
between the classifier's penultimate features, as the DTU course's ``fid.py`` does with its own
classifier), the histogram of predicted classes, and the share classified with confidence over 0.9.
``--floor`` first scores ``--n`` real test images (a seeded random subset) the same way: the best a model
can hope for at that number of samples (FID is biased upwards at small n, so always compare at the same n).
For a DDPM, ``--steps`` picks the sampler (DDIM with that many steps, or ``ddpm`` for all T) and
``--bpd N`` adds the variational bound in bits per dimension on the first N test images.

``--write`` stores the numbers in each checkpoint's ``metrics.json`` under ``sample_quality``
(keyed by sampler, so several samplers can be recorded) and ``bits_per_dim``, and the floor in the
judge's ``metrics.json`` under ``fid_floor``, each with the command that made it.

``--gallery N`` does something else instead of scoring: it draws N samples from each checkpoint (``--seed``,
``--steps``) and stores the judge's 16 most and 16 least confident of them in the checkpoint's
``judged.safetensors``: the good and bad samples a training page shows at once, picked from many samples
rather than from the 16 a first view can afford to draw.
"""

import argparse
import json
import math
import sys
import time
from pathlib import Path

import torch

import genmodels
from genmodels.checkpoint import JUDGED, as_uint8, save_judged
from genmodels.compare import asked_classes, conditional, draw, guided, has_steps, iterative, sampler_label
from genmodels.data import COLOR_SEEDS, MIN_HUE_GAP, decolorize, digit_colors, hue_gap, load_dataset
from genmodels.ddpm import DEFAULT_GUIDANCE
from genmodels.metrics import class_report, frechet_distance
from train.loop import atomic_write, describe_device, pick_device

COLOR_PAIRS_KEPT = 400  # colour pairs of a colour model's samples kept in metrics.json for the page's scatter


def steps_of(steps: str) -> int | None:
    """``--steps`` as ``genmodels.compare.draw`` takes it: a number, or None for ``ddpm`` (all T steps)."""
    return None if steps == "ddpm" else int(steps)


def sample_images(model, n: int, seed: int, steps: str, batch_size: int = 500, method: str = "ddim",
                  eta: float = 0.0, guidance: float | None = None) -> tuple[torch.Tensor, str]:
    """n samples in [0, 1] from a fixed seed, and the name of the sampler used (``genmodels.compare.draw``), with
    progress on stderr."""
    return draw(model, n, torch.Generator().manual_seed(seed), steps_of(steps), method, eta,
                guidance, batch_size, progress=lambda done: print(f"  sampled {done} / {n}", file=sys.stderr))


def floor_images(n: int, seed: int, dataset: str = "mnist") -> torch.Tensor:
    """n MNIST (or coloured MNIST) test images drawn at random (seeded), not the first n: the first 5,000 test
    digits were written by other people than the last 5,000 (NIST's SD-3 and SD-1), and their FID-MNIST against
    the training images is 29.9 where a random 5,000 score 7.2. The training reference is mixed throughout."""
    test = load_dataset(dataset, train=False).images
    return test[torch.randperm(len(test), generator=torch.Generator().manual_seed(seed))[:n]]


def quality(judge, images: torch.Tensor, reference_features: torch.Tensor,
            reference_colors: torch.Tensor | None = None, asked: torch.Tensor | None = None) -> dict:
    """FID-MNIST against the reference features, the class histogram and the confident rate; with ``asked`` (the
    classes a conditional model was asked for), ``class_match``: the share the judge reads as the asked class.

    Colour images (coloured MNIST) are split by ``decolorize`` into the shape they drew, which the MNIST judge
    scores as above, and their two colours: ``fd_colors`` is the Frechet distance between the (foreground,
    background) RGB pairs and ``reference_colors``, those of real coloured training images (6 numbers each);
    ``hue_rule`` the share of images whose two hues are at least ``MIN_HUE_GAP`` apart, as coloured MNIST's always
    are; ``color_pairs`` the first ``COLOR_PAIRS_KEPT`` colour pairs, for the page's picture of them.
    """
    colors = None
    if images.shape[1] == 3:
        images, fg, bg = decolorize(images)
        colors = torch.cat([fg, bg], 1)
    probabilities = judge.predict_proba(images)
    report = class_report(probabilities)
    out = {"fid_mnist": frechet_distance(judge.all_features(images), reference_features), **report}
    if asked is not None:
        out["class_match"] = (probabilities.argmax(-1) == asked).float().mean().item()
    if colors is not None and reference_colors is not None:
        out["fd_colors"] = frechet_distance(colors, reference_colors)
    if colors is not None:
        out["hue_rule"] = (hue_gap(fg, bg) >= MIN_HUE_GAP).float().mean().item()
        out["color_pairs"] = [[round(v, 3) for v in row] for row in colors[:COLOR_PAIRS_KEPT].tolist()]
    return out


def reference_colors(n: int) -> torch.Tensor:
    """The (foreground, background) colours of the first n coloured training images, (n, 6)."""
    fg, bg = digit_colors(60_000, COLOR_SEEDS[True])
    return torch.cat([fg, bg], 1)[:n]


@torch.no_grad()
def bits_per_dim(model, n: int, seed: int, batch_size: int = 100) -> dict:
    """The DDPM's variational bound on the first n test images: mean and standard error in bits per
    dimension, and where it comes from: the mean of each term (L_T, then L_0 ... L_{T-1}) in bits per dimension."""
    images = load_dataset(model.config.dataset, train=False, subset=n).images
    generator = torch.Generator().manual_seed(seed)
    values, terms, prior = [], torch.zeros(model.config.T, dtype=torch.float64), 0.0
    for i in range(0, n, batch_size):
        bound = model.bits_per_dim(images[i:i + batch_size], generator)
        values.append(bound["bits_per_dim"])
        terms += bound["terms"].double().sum(1)
        prior += bound["prior"].double().sum().item()
    values = torch.cat(values)
    to_bits = 1 / (n * images[0].numel() * math.log(2))
    return {"mean": values.mean().item(), "stderr": (values.std() / math.sqrt(n)).item() if n > 1 else float("nan"),
            "n": n, "prior_term": prior * to_bits, "terms": [float(f"{v:.5g}") for v in (terms * to_bits).tolist()]}


def write_gallery(location: str, model, judge, n: int, seed: int, steps: str, command: str, k: int = 16,
                  method: str = "ddim", eta: float = 0.0) -> str:
    """Draw n samples, keep the judge's k most and k least confident in the checkpoint's judged.safetensors."""
    if not Path(location).is_dir():
        return f"not written: {location} is not a local folder"
    images, sampler = sample_images(model, n, seed, steps, method=method, eta=eta)
    confidence = judge.predict_proba(images).max(-1).values
    order = confidence.argsort(descending=True)
    as_bytes = as_uint8(images)
    path = Path(location) / JUDGED
    atomic_write(path, lambda tmp: save_judged(tmp, most=as_bytes[order[:k]], least=as_bytes[order.flip(0)[:k]],
                                               n=n, sampler=f"{sampler}, seed {seed}", command=command))
    return (f"{path}: the {k} most confident of {n} ({confidence[order[0]]:.2f} to {confidence[order[k - 1]]:.2f}) "
            f"and the {k} least ({confidence[order[-1]]:.2f} to {confidence[order[-k]]:.2f})")


def record_mixing(models, judge, args, command: str) -> int:
    """The Gibbs sampling page's mixing curve of each RBM, measured as the page does (seed 0)."""
    from genmodels.rbm import MIXING_CHAINS, MIXING_STEPS, mixing_curve

    test = load_dataset("mnist", train=False, subset=MIXING_CHAINS)
    for location, model in models:
        if not hasattr(model, "trace"):
            print(f"{location}: not an RBM, no mixing curve", file=sys.stderr)
            continue
        share = mixing_curve(model, judge, test.images, test.labels, MIXING_STEPS, seed=0)
        print(f"{location} | " + " ".join(f"{k}: {v:.2f}" for k, v in zip(MIXING_STEPS, share, strict=True)))
        if args.write:
            update_metrics(location, "mixing", {"steps": list(MIXING_STEPS), "share": share, "chains": MIXING_CHAINS,
                                                "seed": 0, "command": command})
    return 0


CURVE_SAMPLERS = (("ddim", 0.0), ("dpm++", 0.0), ("dpm++", 1.0))  # (method, eta) of each curve


def fid_curve(models, judge, reference: torch.Tensor, steps: list[int], args, command: str, device) -> int:
    """FID-MNIST and the confident rate of each fast sampler at each number of steps (network evaluations),
    with the real-data floor at the same n: the trade-off between sampling time and quality."""
    floor = quality(judge, floor_images(args.n, args.seed), reference)
    for location, model in models:
        if not has_steps(model):
            print(f"{location}: not a diffusion model, no curve", file=sys.stderr)
            continue
        model.to(device)
        points = []
        for method, eta in CURVE_SAMPLERS:
            for k in steps:
                started = time.perf_counter()
                images, sampler = sample_images(model, args.n, args.seed, str(k), method=method, eta=eta)
                seconds = time.perf_counter() - started
                r = quality(judge, images, reference, asked=asked_classes(args.n) if guided(model) else None)
                points.append({"sampler": sampler, "method": method, "eta": eta, "steps": k,
                               "fid_mnist": r["fid_mnist"], "confident_rate": r["confident_rate"],
                               "histogram": r["histogram"], "seconds_per_image": seconds / args.n,
                               **({"class_match": r["class_match"]} if "class_match" in r else {})})
                print(f"{location} | {sampler} | FID-MNIST {r['fid_mnist']:.1f} (floor {floor['fid_mnist']:.1f}) | "
                      f"confident {r['confident_rate']:.1%} | {seconds / args.n * 1000:.1f} ms an image", flush=True)
        if args.write:
            update_metrics(location, "fid_curve", {
                "n": args.n, "seed": args.seed, "floor_fid_mnist": floor["fid_mnist"], "points": points,
                "device": describe_device(next(model.parameters()).device), "command": command})
    return 0


def guidance_curve(models, judge, reference: torch.Tensor, weights: list[float], args, command: str, device) -> int:
    """A class-conditional diffusion model's FID-MNIST, confident rate and class match at each guidance weight
    (one sampler, ``--steps``/``--method``/``--eta``), with the real-data floor at the same n: quality against
    adherence to the asked class."""
    floor = quality(judge, floor_images(args.n, args.seed), reference)
    asked = asked_classes(args.n)
    for location, model in models:
        if not guided(model):
            print(f"{location}: not a class-conditional diffusion model, no guidance curve", file=sys.stderr)
            continue
        model.to(device)
        points = []
        for w in weights:
            started = time.perf_counter()
            images, sampler = sample_images(model, args.n, args.seed, args.steps, method=args.method, eta=args.eta,
                                            guidance=w)
            seconds = time.perf_counter() - started
            r = quality(judge, images, reference, asked=asked)
            points.append({"guidance": w, "fid_mnist": r["fid_mnist"], "confident_rate": r["confident_rate"],
                           "class_match": r["class_match"], "histogram": r["histogram"],
                           "seconds_per_image": seconds / args.n})
            print(f"{location} | {sampler} | FID-MNIST {r['fid_mnist']:.1f} (floor {floor['fid_mnist']:.1f}) | "
                  f"confident {r['confident_rate']:.1%} | asked class {r['class_match']:.1%}", flush=True)
        if args.write:
            update_metrics(location, "guidance_curve", {
                "n": args.n, "seed": args.seed, "floor_fid_mnist": floor["fid_mnist"],
                "floor_confident_rate": floor["confident_rate"], "points": points,
                "sampler": sampler_label(model, steps_of(args.steps), args.method,
                                         args.eta).rpartition(", guidance")[0],
                "device": describe_device(next(model.parameters()).device), "command": command})
    return 0


def update_metrics(folder: str, key: str, value) -> None:
    path = Path(folder) / "metrics.json"
    if not path.is_file():
        print(f"  not written: {path} is not a local file", file=sys.stderr)
        return
    metrics = json.loads(path.read_text())
    if isinstance(value, dict) and isinstance(metrics.get(key), dict) and key == "sample_quality":
        metrics[key].update(value)
    else:
        metrics[key] = value
    atomic_write(path, lambda tmp: Path(tmp).write_text(json.dumps(metrics, indent=1)))


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(prog="python -m train.sample_quality", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("checkpoints", nargs="*", help="checkpoint folders (or Hub repo ids) to score")
    p.add_argument("--judge", default="checkpoints/mnist-classifier", help="the classifier checkpoint")
    p.add_argument("--n", type=int, default=10_000, help="samples per model, and reference images")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--steps", default="50", help="DDPM sampler: its number of steps, or 'ddpm' for all T steps")
    p.add_argument("--method", choices=["ddim", "dpm++"], default="ddim",
                   help="DDPM fast sampler: DDIM or DPM-Solver++(2M)")
    p.add_argument("--eta", type=float, default=0.0, help="DDPM fast sampler: 0 deterministic, 1 stochastic")
    p.add_argument("--curve", default="", metavar="STEPS",
                   help="instead of one sampler: FID-MNIST at each of these numbers of steps (comma-separated, "
                        "for example 5,10,20,50,100) for each of the fast samplers in CURVE_SAMPLERS, at --n "
                        "samples, with the floor at the same n; --write stores it under fid_curve")
    p.add_argument("--guidance", type=float, default=None,
                   help=f"class-conditional DDPM: the guidance weight w (default {DEFAULT_GUIDANCE:g}); it is asked "
                        "for each class in turn, and class_match records how often the judge reads the asked class")
    p.add_argument("--guidance-curve", default="", metavar="WEIGHTS",
                   help="instead of one weight: a class-conditional DDPM's scores at each of these guidance weights "
                        "(comma-separated, for example 0,0.5,1,2,4), with the sampler of --steps/--method/--eta; "
                        "--write stores it under guidance_curve")
    p.add_argument("--bpd", type=int, default=0, metavar="N", help="DDPM: bits per dimension on N test images")
    p.add_argument("--floor", action="store_true", help="score n real test images too")
    p.add_argument("--write", action="store_true", help="store the numbers in each metrics.json")
    p.add_argument("--gallery", type=int, default=0, metavar="N",
                   help="instead of scoring: store the judge's 16 most and least confident of N samples in each "
                        "checkpoint's judged.safetensors")
    p.add_argument("--mixing", action="store_true",
                   help="instead of scoring: for each RBM, the share of 40 Gibbs chains started at test digits that "
                        "the judge still calls their first digit, after 1 to 1,000 steps (the Gibbs sampling page's "
                        "chart); --write stores it under mixing")
    p.add_argument("--device", choices=["auto", "cpu", "cuda", "mps"], default="auto",
                   help="where the models sample (the noise is drawn on the CPU, so a seed gives the same samples)")
    args = p.parse_args(argv)
    if args.steps != "ddpm" and not args.steps.isdigit():
        p.error("--steps must be a number of steps or 'ddpm'")
    if args.curve and not all(v.isdigit() and int(v) > 0 for v in args.curve.split(",")):
        p.error("--curve must be numbers of steps separated by commas, for example 5,10,20,50")
    try:
        weights = [float(v) for v in args.guidance_curve.split(",")] if args.guidance_curve else []
    except ValueError:
        weights = [-1.0]
    if not all(0 <= w <= 100 for w in weights) or not 0 <= (args.guidance or 0) <= 100:
        p.error("guidance weights must be numbers from 0 to 100 (--guidance-curve: separated by commas, 0,1,2,4)")
    command = "python -m train.sample_quality " + " ".join(argv)
    torch.manual_seed(args.seed)
    device = pick_device(args.device)

    try:
        judge = genmodels.load(args.judge).eval()
        models = [(c, genmodels.load(c).eval()) for c in args.checkpoints]
    except genmodels.CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.mixing:
        return record_mixing(models, judge, args, command)
    if args.gallery:
        if args.gallery < 16:
            p.error("--gallery needs at least 16 samples")
        for location, model in models:
            if has_steps(model):
                model.to(device)
            print(write_gallery(location, model, judge, args.gallery, args.seed, args.steps, command,
                                method=args.method, eta=args.eta))
        return 0
    reference = judge.all_features(load_dataset("mnist", train=True, subset=args.n).images)
    if args.curve:
        return fid_curve(models, judge, reference, [int(v) for v in args.curve.split(",")], args, command, device)
    if weights:
        return guidance_curve(models, judge, reference, weights, args, command, device)
    rows = []
    colored = any(getattr(model.config, "image_channels", 1) == 3 for _, model in models)
    colors = reference_colors(args.n) if colored else None
    if args.floor:
        result = quality(judge, floor_images(args.n, args.seed), reference)
        rows.append(("real MNIST test images (the floor)", "", result, None))
        floor = result["fid_mnist"]
        if colored:
            color_floor = quality(judge, floor_images(args.n, args.seed, "colored-mnist"), reference, colors)
            rows.append(("real coloured MNIST test images (the floor)", "", color_floor, None))
        if args.write and judge.metrics.get("fid_floor", {}).get("n", 0) <= args.n:  # keep the floor on most images
            update_metrics(args.judge, "fid_floor", {**result, "n": args.n, "command": command})
    for location, model in models:
        if iterative(model):
            # an iterative sampler (diffusion, Gibbs chains) runs where the network is; the others are fast on the CPU
            model.to(device)
        started = time.perf_counter()
        images, sampler = sample_images(model, args.n, args.seed, args.steps, method=args.method, eta=args.eta,
                                        guidance=args.guidance)
        asked = asked_classes(args.n, model.config.n_classes) if conditional(model) else None  # as ``draw`` asked
        result = quality(judge, images, reference, colors, asked)
        if guided(model):
            result["guidance"] = DEFAULT_GUIDANCE if args.guidance is None else args.guidance
        result.update(n=args.n, seed=args.seed, sampler=sampler, seconds=round(time.perf_counter() - started, 1),
                      device=describe_device(next(model.parameters()).device), command=command)
        if args.floor:
            result["floor_fid_mnist"] = floor  # real test images at the same n: FID is biased upwards at small n
            if "fd_colors" in result:
                result["floor_fd_colors"] = color_floor["fd_colors"]
        bpd = bits_per_dim(model, args.bpd, args.seed) if args.bpd and hasattr(model, "bits_per_dim") else None
        rows.append((location, sampler, result, bpd))
        if args.write:
            update_metrics(location, "sample_quality", {sampler: result})
            if bpd:
                update_metrics(location, "bits_per_dim", {**bpd, "command": command})

    print(f"| model | sampler | FID-MNIST (n = {args.n}) | confident > 0.9 | classes (0 to 9) | bits/dim |"
          + (" colour FD | hue rule kept |" if colored else ""))
    print("|---|---|---|---|---|---|" + ("---|---|" if colored else ""))
    for name, sampler, r, bpd in rows:
        bits = f"{bpd['mean']:.3f} ± {bpd['stderr']:.3f} (n = {bpd['n']})" if bpd else ""
        color = (f" {r['fd_colors']:.4f} | {r['hue_rule']:.1%} |" if "fd_colors" in r else " | |") if colored else ""
        asked = f" (the asked class {r['class_match']:.1%})" if "class_match" in r else ""
        print(f"| {name} | {sampler}{asked} | {r['fid_mnist']:.1f} | {r['confident_rate']:.1%} | "
              f"{' '.join(str(h) for h in r['histogram'])} | {bits} |{color}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
