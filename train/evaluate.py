"""``python -m train.evaluate RUN [RUN ...]``: test log-likelihood over several training runs.

Groups checkpoints that differ only in their seed, and reports the test-set ELBO and the IWAE
estimate of log p(x) as mean and standard deviation over the runs of each group (the DTU brief
asks for both). The numbers are computed on the whole test set with ``--k`` importance samples, or
taken from each run's ``metrics.json`` when it already holds them for that k. ``--write`` adds the
summary to every run's ``metrics.json`` under ``eval_over_runs``.
"""

import argparse
import json
import statistics
import sys
from pathlib import Path

import torch

import genmodels
from genmodels.data import load_dataset
from train.loop import atomic_write

GROUP_BY = ("family", "dataset", "prior", "latent_dim", "hidden_dim", "n_components", "beta", "architecture",
            "n_classes")


@torch.no_grad()
def test_numbers(model, k: int, batch_size: int = 500) -> dict[str, float]:
    """Mean test ELBO and IWAE (k samples) in nats over the whole test set."""
    name = "binarized-mnist" if model.config.dataset == "dynamic-binarized-mnist" else model.config.dataset
    data = load_dataset(name, train=False)
    images = data.images
    torch.manual_seed(0)
    elbo = iwae = 0.0
    for i in range(0, len(images), batch_size):
        x = images[i: i + batch_size]
        y = data.labels[i: i + batch_size] if model.config.n_classes else None
        elbo += model.elbo(x, y).sum().item()
        iwae += model.iwae(x, k=k, y=y).sum().item()
    return {"test_elbo": elbo / len(images), f"test_iwae_k{k}": iwae / len(images)}


def summarise(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else float("nan"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m train.evaluate", description=__doc__)
    p.add_argument("runs", nargs="+", help="checkpoint folders (or Hub repo ids)")
    p.add_argument("--k", type=int, default=1000, help="importance samples for the IWAE estimate")
    p.add_argument("--recompute", action="store_true", help="ignore numbers already in metrics.json")
    p.add_argument("--write", action="store_true", help="add the summary to each run's metrics.json")
    args = p.parse_args(argv)

    groups: dict[tuple, list] = {}
    for run in args.runs:
        try:
            model = genmodels.load(run)
        except genmodels.CheckpointError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
        saved = model.metrics.get("eval", {})
        key = f"test_iwae_k{args.k}"
        if args.recompute or key not in saved:
            print(f"evaluating {run} (k = {args.k})...", file=sys.stderr)
            numbers = test_numbers(model, args.k)
        else:
            numbers = {"test_elbo": saved["test_elbo"], key: saved[key]}
        config = vars(model.config)
        groups.setdefault(tuple(config.get(f) for f in GROUP_BY), []).append((run, model, numbers))

    key = f"test_iwae_k{args.k}"
    print(f"| model | runs (seeds) | test ELBO (nats, bound) | test IWAE k={args.k} (nats, estimate of log p(x)) |")
    print("|---|---|---|---|")
    for group, members in groups.items():
        config = dict(zip(GROUP_BY, group, strict=True))
        elbo = summarise([n["test_elbo"] for _, _, n in members])
        iwae = summarise([n[key] for _, _, n in members])
        seeds = ", ".join(str(m.metrics.get("seed", "?")) for _, m, _ in members)
        name = f"{config['family']} {config['prior']} prior, latent {config['latent_dim']}, {config['dataset']}"
        print(f"| {name} | {len(members)} ({seeds}) | {elbo[0]:.2f} ± {elbo[1]:.2f} | {iwae[0]:.2f} ± {iwae[1]:.2f} |")
        if args.write:
            summary = {"runs": [str(r) for r, _, _ in members], "seeds": seeds, "k": args.k,
                       "test_elbo_mean": elbo[0], "test_elbo_std": elbo[1],
                       f"{key}_mean": iwae[0], f"{key}_std": iwae[1],
                       "command": "python -m train.evaluate " + " ".join(argv or sys.argv[1:])}
            for run, _, _ in members:
                path = Path(run) / "metrics.json"
                if path.is_file():
                    metrics = json.loads(path.read_text())
                    metrics["eval_over_runs"] = summary
                    atomic_write(path, lambda tmp, m=metrics: Path(tmp).write_text(json.dumps(m, indent=1)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
