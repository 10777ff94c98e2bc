"""Train a restricted Boltzmann machine: ``python -m train rbm --hidden 256 --cd-k 1 --lr 0.05 ...``.

Stochastic gradient ascent on the log-likelihood with the gradient of contrastive divergence: persistent
chains by default (PCD, Tieleman 2008; scikit-learn's BernoulliRBM does the same), ``--cd`` for chains that
restart at the data (CD-k, Hinton 2002). No autograd: the positive and negative phase statistics are
written into ``.grad`` (``RBM.set_gradients``) and SGD takes the step, with momentum and weight decay (on
the weights, not the biases) if asked.
"""

import torch
from torch.utils.data import DataLoader

from genmodels.data import load_dataset
from genmodels.missing import fill_error as missing_error
from genmodels.missing import start_noise
from genmodels.rbm import RBM, RBMConfig, as_images, flat, pixel_log_odds, row_mask
from train.loop import STEP_CURVE_EVERY

FILL_STEPS = 50  # clamped Gibbs steps when the final evaluation fills in the bottom half of test digits


def add_arguments(parser) -> None:
    parser.set_defaults(optimizer="sgd", lr=0.05, batch_size=64, epochs=20)
    parser.add_argument("--hidden", type=int, default=256, help="hidden units")
    parser.add_argument("--cd-k", type=int, default=1, help="Gibbs steps of the negative phase")
    parser.add_argument("--cd", action="store_true", help="CD-k: chains start at the data (default: persistent)")
    parser.add_argument("--chains", type=int, help="persistent chains (default: the batch size)")
    parser.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")
    parser.add_argument("--ais-chains", type=int, default=100, help="AIS runs for the final log-likelihood")
    parser.add_argument("--ais-betas", type=int, default=10_000, help="AIS inverse temperatures")


def build(args):
    config = RBMConfig(n_hidden=args.hidden, cd_k=args.cd_k, persistent=not args.cd,
                       n_chains=args.chains or args.batch_size)
    model = RBM(config)
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    train_set = load_dataset("binarized-mnist", train=True, **kwargs)
    model.init_from_data(train_set.images)
    return model, train_set, load_dataset("binarized-mnist", train=False, **kwargs)


def optimizers(model, config, args) -> dict:
    """SGD; weight decay on the weight matrices only (the biases are not pulled to zero)."""
    decay = config.weight_decay
    momentum = 0.0 if args is None else args.momentum
    groups = [{"params": [p for n, p in model.named_parameters() if n.startswith("weight")], "weight_decay": decay},
              {"params": [p for n, p in model.named_parameters() if not n.startswith("weight")], "weight_decay": 0.0}]
    return {"rbm": torch.optim.SGD(groups, lr=config.lr, momentum=momentum)}


def train_step(model: RBM, batch, opts: dict, ctx) -> dict[str, torch.Tensor]:
    """One CD step: the negative phase from the chains, the two phases' statistics into ``.grad``, SGD."""
    v = flat(batch[0])
    with torch.no_grad():
        v_model = model.negative_phase(v)
        h_data = model.set_gradients(v, v_model)
        # on the steps the loop records (a tenth of the cost of every step), the one-step reconstruction error
        # before the step, from p(h | v) at hand
        numbers = {}
        if (ctx.step + 1) % STEP_CURVE_EVERY == 0:
            numbers["reconstruction_error"] = (model.visible_probs(h_data) - v).pow(2).mean()
        ctx.reduce_gradients(model)
        opts["rbm"].step()
    return numbers


def snapshot(model: RBM) -> torch.Tensor:
    """16 fixed-seed samples (Gibbs chains from noise) after every epoch."""
    return model.sample(16, generator=torch.Generator(model.weight.device).manual_seed(0))


def fill_error(model, images: torch.Tensor, rows: int = 14, place: str = "bottom", steps: int = FILL_STEPS,
               seed: int = 0) -> tuple[float, float]:
    """Remove ``rows`` rows, run ``steps`` clamped Gibbs steps from coin flips in them, and return the per-pixel
    error on the removed pixels of (the final binary sample, the final p(v | h))."""
    observed = row_mask(rows, place).reshape(1, 1, 28, 28).to(images.device)
    generator = torch.Generator(images.device).manual_seed(seed)
    start = flat(start_noise(images, observed, generator))
    sample = probs = start
    for sample, probs in model.gibbs_chain(start, steps, generator, flat(observed)):  # noqa: B007
        pass
    return (missing_error(as_images(sample), images, observed), missing_error(as_images(probs), images, observed))


@torch.no_grad()
def evaluate(model: RBM, dataset, args, final: bool) -> dict[str, float]:
    """Pseudo-likelihood (scikit-learn's estimate, fixed seed), one-step reconstruction error and mean free
    energy; at the end also the fill-in error of the bottom half and an AIS estimate of log p(v) in nats."""
    device = model.weight.device
    generator = torch.Generator(device).manual_seed(0)
    sums = {"pseudo_likelihood": 0.0, "reconstruction_error": 0.0, "free_energy": 0.0}
    for x, _ in DataLoader(dataset, batch_size=1000):
        v = flat(x.to(device))
        sums["pseudo_likelihood"] += model.pseudo_likelihood(v, generator).sum().item()
        sums["reconstruction_error"] += model.reconstruction_error(v).sum().item()
        sums["free_energy"] += model.free_energy(v).sum().item()
    numbers = {k: s / len(dataset) for k, s in sums.items()}
    if final:
        images = dataset.images.to(device)
        numbers["fill_error_bottom_half"], numbers["fill_error_bottom_half_mean_field"] = fill_error(model, images)
        log_z, spread = model.ais_log_partition(args.ais_chains, args.ais_betas, base_bias=pixel_log_odds(images),
                                                generator=generator)
        numbers["ais_log_z"], numbers["ais_log_z_spread"] = log_z, spread
        numbers["ais_log_likelihood"] = -numbers["free_energy"] - log_z
    return numbers
