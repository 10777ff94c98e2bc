"""Train cold diffusion: ``python -m train cold --degradation pixelate --channels 32 64 64 --T 20 ...``."""

import torch

from genmodels.cold import DEGRADATIONS, ColdConfig, ColdDiffusion
from genmodels.data import image_channels, load_dataset


def add_arguments(parser) -> None:
    parser.add_argument("--degradation", choices=list(DEGRADATIONS), default="pixelate",
                        help="what D(x, t) does: " + "; ".join(f"{n}: {d.describe()}" for n, d in DEGRADATIONS.items()))
    parser.add_argument("--channels", type=int, nargs=3, default=[32, 64, 64], help="U-Net widths at 28, 14, 7")
    parser.add_argument("--T", type=int, default=20, help="degradation steps")
    parser.add_argument("--start-dims", type=int, default=8,
                        help="principal components of fully degraded images the start mixture lives in")
    parser.add_argument("--start-components", type=int, default=10, help="components of the start mixture")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist", "colored-mnist", "colored-fashion-mnist"],
                        default="mnist")
    parser.add_argument("--eval-images", type=int, default=1000, help="images for the per-epoch loss")


def build(args):
    model = ColdDiffusion(ColdConfig(dataset=args.dataset, image_channels=image_channels(args.dataset),
                                     degradation=args.degradation, channels=args.channels, T=args.T,
                                     start_dims=args.start_dims, start_components=args.start_components,
                                     ema_decay=args.ema_decay))
    model.to(memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN), as for the DDPM
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    train_set = load_dataset(args.dataset, train=True, **kwargs)
    # where generation starts: fitted once, to every training image fully degraded (no learning involved)
    model.fit_start(train_set.images, torch.Generator().manual_seed(args.seed))
    return model, train_set, load_dataset(args.dataset, train=False, **kwargs)


def loss(model: ColdDiffusion, batch) -> torch.Tensor:
    x, _ = batch
    return model.loss(x.contiguous(memory_format=torch.channels_last))


def after_step(model: ColdDiffusion, step: int) -> None:
    model.update_ema(model.ema_decay_at(step))


def snapshot(model: ColdDiffusion) -> torch.Tensor:
    """16 samples from a fixed seed (the improved sampler, all T steps), kept after every epoch."""
    return model.sample(16, generator=torch.Generator().manual_seed(0))


@torch.no_grad()
def evaluate(model: ColdDiffusion, dataset, args, final: bool) -> dict[str, float]:
    """The mean absolute error per pixel of the EMA network's restorations, on fixed images and steps (comparable
    across epochs)."""
    g = torch.Generator().manual_seed(1234)
    x0 = dataset.images[: args.eval_images]
    t = torch.randint(1, model.config.T + 1, (len(x0),), generator=g)
    xt = model.degrade(x0, t)
    restored = torch.cat([model.restore(xt[i:i + 250], t[i:i + 250]) for i in range(0, len(x0), 250)])
    return {"l1": (restored - x0).abs().mean().item()}
