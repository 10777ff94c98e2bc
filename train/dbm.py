"""Train a deep Boltzmann machine: ``python -m train dbm --hidden1 500 --hidden2 500 --pretrain-epochs 10 ...``.

In stages, one epoch at a time (so ``--resume`` continues in the right stage): ``--pretrain-epochs`` epochs
of the first layer as an RBM, as many of the second on the first one's activities (Salakhutdinov and Hinton
2009, with their doubled inputs), then joint training of the whole machine to ``--epochs``: mean-field
inference for the data term and persistent chains for the model term, at ``--joint-lr``.
"""

import torch
from torch.utils.data import DataLoader

from genmodels.data import load_dataset
from genmodels.rbm import DBM, DBMConfig, flat
from train import rbm
from train.loop import STEP_CURVE_EVERY

fill_error = rbm.fill_error
optimizers = rbm.optimizers  # SGD, weight decay on the weight matrices only, as the RBM


def add_arguments(parser) -> None:
    parser.set_defaults(optimizer="sgd", lr=0.05, batch_size=64, epochs=30)
    parser.add_argument("--hidden1", type=int, default=500, help="units of the first hidden layer")
    parser.add_argument("--hidden2", type=int, default=500, help="units of the second hidden layer")
    parser.add_argument("--pretrain-epochs", type=int, default=5, help="epochs of greedy pretraining, per layer")
    parser.add_argument("--joint-lr", type=float, default=0.005, help="learning rate of joint training")
    parser.add_argument("--mean-field-steps", type=int, default=10)
    parser.add_argument("--chains", type=int, default=100, help="persistent chains")
    parser.add_argument("--chain-steps", type=int, default=1, help="Gibbs sweeps of the chains per update")
    parser.add_argument("--momentum", type=float, default=0.0, help="SGD momentum")


def build(args):
    if 2 * args.pretrain_epochs > args.epochs:
        raise SystemExit(f"--epochs {args.epochs} leaves no room for 2 x --pretrain-epochs {args.pretrain_epochs}")
    config = DBMConfig(n_hidden1=args.hidden1, n_hidden2=args.hidden2, mean_field_steps=args.mean_field_steps,
                       n_chains=args.chains, chain_steps=args.chain_steps)
    model = DBM(config)
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    train_set = load_dataset("binarized-mnist", train=True, **kwargs)
    model.init_from_data(train_set.images)
    return model, train_set, load_dataset("binarized-mnist", train=False, **kwargs)


def stage(epoch: int, args) -> str:
    """'layer 1', 'layer 2' or 'joint': what epoch ``epoch`` (0-based) trains."""
    if epoch < args.pretrain_epochs:
        return "layer 1"
    return "layer 2" if epoch < 2 * args.pretrain_epochs else "joint"


def train_step(model: DBM, batch, opts: dict, ctx) -> dict[str, torch.Tensor]:
    v = flat(batch[0])
    now = stage(ctx.epoch, ctx.args)
    optimizer = opts["rbm"]
    for group in optimizer.param_groups:
        group["lr"] = ctx.args.joint_lr if now == "joint" else ctx.config.lr
    optimizer.zero_grad(set_to_none=True)  # a pretraining stage sets only its own layer's gradients
    with torch.no_grad():
        if now == "joint":
            mu1 = model.joint_gradients(v)
        else:
            mu1 = model.pretrain_gradients(1 if now == "layer 1" else 2, v)
        numbers = {}
        if (ctx.step + 1) % STEP_CURVE_EVERY == 0:  # the pixels' reconstruction from the data's mu1, as recorded
            numbers["reconstruction_error"] = (model.visible_probs(mu1) - v).pow(2).mean()
        ctx.reduce_gradients(model)
        optimizer.step()
    return numbers


def snapshot(model: DBM) -> torch.Tensor:
    """16 fixed-seed samples (Gibbs chains from noise) after every epoch."""
    return model.sample(16, generator=torch.Generator(model.weight1.device).manual_seed(0))


@torch.no_grad()
def evaluate(model: DBM, dataset, args, final: bool) -> dict[str, float]:
    """Mean-field reconstruction error; at the end also the fill-in error of the bottom half of test digits."""
    total = 0.0
    for x, _ in DataLoader(dataset, batch_size=1000):
        total += model.reconstruction_error(x.to(model.weight1.device)).sum().item()
    numbers = {"reconstruction_error": total / len(dataset)}
    if final:
        numbers["fill_error_bottom_half"], numbers["fill_error_bottom_half_mean_field"] = fill_error(
            model, dataset.images.to(model.weight1.device))
    return numbers

