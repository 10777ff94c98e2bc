"""Train a DDPM: ``python -m train ddpm --channels 32 64 64 --schedule linear ...``."""

import torch

from genmodels.data import image_channels, load_dataset
from genmodels.ddpm import DDPM, DDPMConfig
from genmodels.schedule import SCHEDULES


def add_arguments(parser) -> None:
    parser.add_argument("--channels", type=int, nargs=3, default=[32, 64, 64], help="U-Net widths at 28, 14, 7")
    parser.add_argument("--T", type=int, default=1000, help="diffusion steps")
    parser.add_argument("--schedule", choices=SCHEDULES, default="linear")
    parser.add_argument("--conditional", action="store_true", help="class-conditional, with guidance")
    parser.add_argument("--ema-decay", type=float, default=0.999)
    parser.add_argument("--dataset", choices=["mnist", "fashion-mnist", "colored-mnist", "colored-fashion-mnist"],
                        default="mnist")
    parser.add_argument("--eval-images", type=int, default=1000, help="test images for the per-epoch loss")


def build(args):
    model = DDPM(DDPMConfig(dataset=args.dataset, image_channels=image_channels(args.dataset), channels=args.channels,
                            T=args.T, schedule=args.schedule, n_classes=10 if args.conditional else 0,
                            ema_decay=args.ema_decay))
    model.to(memory_format=torch.channels_last)  # about 25% faster convolutions on CPU (oneDNN)
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    return model, load_dataset(args.dataset, train=True, **kwargs), load_dataset(args.dataset, train=False, **kwargs)


def loss(model: DDPM, batch) -> torch.Tensor:
    x, y = batch
    return model.loss(x.contiguous(memory_format=torch.channels_last), y if model.config.n_classes else None)


def after_step(model: DDPM, step: int) -> None:
    model.update_ema(model.ema_decay_at(step))


def snapshot(model: DDPM) -> torch.Tensor:
    """16 samples from a fixed seed (DDIM, 50 steps), kept after every epoch to show training progress."""
    y = torch.arange(16) % 10 if model.config.n_classes else None
    return model.sample(16, generator=torch.Generator().manual_seed(0), steps=min(50, model.config.T), y=y)


@torch.no_grad()
def evaluate(model: DDPM, dataset, args, final: bool) -> dict[str, float]:
    """The simple loss of the EMA network on fixed images, timesteps and noise (comparable across epochs)."""
    device = next(model.parameters()).device
    g = torch.Generator().manual_seed(1234)
    x0 = 2 * dataset.images[: args.eval_images] - 1
    t = torch.randint(0, model.config.T, (len(x0),), generator=g)
    noise = torch.randn(x0.shape, generator=g)
    xt = model.schedule.q_sample(x0, t, noise).to(device)
    y = dataset.labels[: len(x0)].to(device) if model.config.n_classes else None
    pred = torch.cat([model.ema(xt[i:i + 250], t[i:i + 250].to(device), None if y is None else y[i:i + 250])
                      for i in range(0, len(xt), 250)])
    return {"loss": torch.nn.functional.mse_loss(pred.cpu(), noise).item()}
