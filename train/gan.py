"""Train a GAN: ``python -m train gan --backbone dcgan --d-steps 1 --spectral-norm ...``.

Two optimisers, Adam with learning rate 2e-4 and betas 0.5, 0.999 by default (the CMI report's); the
discriminator's learning rate can differ (``--lr-d``). Each training step takes ``--d-steps`` discriminator
steps, each on a fresh real batch slice and fresh noise, then one generator step.
"""

import functools
from pathlib import Path

import torch

from genmodels import registry
from genmodels.data import load_dataset
from genmodels.gan import BACKBONES, GAN, LOSSES, NOISES, GANConfig, discriminator_loss, generator_loss
from genmodels.metrics import class_report, frechet_distance
from train.loop import make_optimizer

JUDGE = Path(__file__).resolve().parent.parent / "checkpoints" / "mnist-classifier"
EVAL_SAMPLES = 1000  # fixed-seed samples scored after every epoch


def add_arguments(parser) -> None:
    parser.set_defaults(lr=2e-4, betas=[0.5, 0.999], epochs=30)
    parser.add_argument("--backbone", choices=BACKBONES, default="dcgan")
    parser.add_argument("--latent-dim", type=int, default=64)
    parser.add_argument("--noise", choices=NOISES, default="gaussian", help="p(z); the CMI report: uniform, 200-d")
    parser.add_argument("--g-width", type=int, default=128)
    parser.add_argument("--d-width", type=int, default=64)
    parser.add_argument("--g-refine", action="store_true",
                        help="DCGAN: w/4 feature maps at 28x28 and a 3x3 convolution to the image")
    parser.add_argument("--conditional", action="store_true", help="a conditional GAN: the label enters G and D")
    parser.add_argument("--loss", choices=LOSSES, default="non-saturating", help="the generator's loss")
    parser.add_argument("--d-steps", type=int, default=1, help="discriminator steps per generator step")
    parser.add_argument("--lr-d", type=float, help="the discriminator's learning rate (default: --lr)")
    parser.add_argument("--spectral-norm", action="store_true", help="spectral normalisation in D")
    parser.add_argument("--d-batch-norm", action="store_true",
                        help="DCGAN: batch norm after D's second convolution (Radford et al.)")
    parser.add_argument("--label-smoothing", type=float, default=0.0, help="one-sided: real target 1 - this")
    parser.add_argument("--instance-noise", type=float, default=0.0,
                        help="std of noise on D's inputs at the start (images in [-1, 1]), annealed to 0")
    parser.add_argument("--ema-decay", type=float, default=0.999, help="the generator's moving average; 0: none")


def build(args):
    config = GANConfig(backbone=args.backbone, latent_dim=args.latent_dim, noise=args.noise, g_width=args.g_width,
                       d_width=args.d_width, g_refine=args.g_refine, n_classes=10 if args.conditional else 0,
                       spectral_norm=args.spectral_norm, d_batch_norm=args.d_batch_norm, loss=args.loss,
                       d_steps=args.d_steps,
                       label_smoothing=args.label_smoothing, instance_noise=args.instance_noise,
                       ema_decay=args.ema_decay)
    model = GAN(config)
    if args.backbone == "dcgan":
        model.to(memory_format=torch.channels_last)  # faster convolutions on CPU (oneDNN), as the DDPM
    kwargs = dict(root=args.data_root, download=args.download, subset=args.subset)
    return model, load_dataset("mnist", train=True, **kwargs), load_dataset("mnist", train=False, **kwargs)


def optimizers(model: GAN, config, args) -> dict:
    """Adam for each network; the discriminator's learning rate may differ (``--lr-d``)."""
    lr_d = config.lr if args is None or args.lr_d is None else args.lr_d
    return {"discriminator": make_optimizer(model.discriminator.parameters(), config, lr=lr_d),
            "generator": make_optimizer(model.generator.parameters(), config)}


def train_step(model: GAN, batch, opts: dict, ctx) -> dict[str, torch.Tensor]:
    """``d_steps`` discriminator steps (each on its share of the real batch), then one generator step.

    D minimises -V = -log D(x) - log(1 - D(G(z))); G minimises its loss on D(G(z)) for fresh noise. Instance
    noise, if on, is added to every image D sees, real or fake.
    """
    c = model.config
    x, labels = batch
    real = 2 * x - 1
    y = labels if c.n_classes else None
    sigma = model.instance_noise_at(ctx.epoch, ctx.config.epochs)
    blur = (lambda images: images + sigma * torch.randn_like(images)) if sigma else (lambda images: images)
    for real_part, y_part in zip(real.chunk(c.d_steps), (y.chunk(c.d_steps) if y is not None
                                                         else [None] * c.d_steps), strict=False):
        z = model.sample_noise(len(real_part)).to(real.device)
        with ctx.autocast():
            fake = model.fake(z, y_part).detach()
            real_logits, fake_logits = model.critic(blur(real_part), y_part), model.critic(blur(fake), y_part)
            d_loss = discriminator_loss(real_logits, fake_logits, c.label_smoothing)
        opts["discriminator"].zero_grad(set_to_none=True)
        d_loss.backward()
        ctx.reduce_gradients(model.discriminator)
        opts["discriminator"].step()

    z = model.sample_noise(len(real)).to(real.device)
    model.discriminator.requires_grad_(False)  # G's step changes only G (and costs no gradients of D's weights)
    with ctx.autocast():
        g_logits = model.critic(blur(model.fake(z, y)), y)
        g_loss = generator_loss(g_logits, c.loss)
    opts["generator"].zero_grad(set_to_none=True)
    g_loss.backward()
    model.discriminator.requires_grad_(True)
    ctx.reduce_gradients(model.generator)
    opts["generator"].step()

    real_p, fake_p = torch.sigmoid(real_logits.detach().float()), torch.sigmoid(fake_logits.detach().float())
    return {"d_loss": d_loss.detach(), "g_loss": g_loss.detach(),
            "d_accuracy_real": (real_p > 0.5).float().mean(), "d_accuracy_fake": (fake_p < 0.5).float().mean(),
            "d_real": real_p.mean(), "d_fake": fake_p.mean()}


def after_step(model: GAN, step: int) -> None:
    model.update_ema(step)


def snapshot(model: GAN) -> torch.Tensor:
    """The 16 fixed noise vectors of the CMI report, drawn after every epoch (classes 0..9, 0..5 if conditional)."""
    y = torch.arange(16) % 10 if model.config.n_classes else None
    return model.sample(16, generator=torch.Generator().manual_seed(0), y=y)


@functools.cache
def judge():
    """The shipped MNIST classifier that scores samples (loaded once, without touching the training's random
    stream: building a model draws initial weights, and a resumed run must draw what an unbroken one draws)."""
    with torch.random.fork_rng(devices=[]):
        return registry.load(JUDGE)


@torch.no_grad()
def evaluate(model: GAN, dataset, args, final: bool) -> dict[str, float]:
    """FID-MNIST of fixed-seed samples against ``dataset`` (1,000 after each epoch, 10,000 at the end; the number
    comparable across families is `python -m train.sample_quality`'s, against training images), the share
    the judge calls a digit with confidence over 0.9, each class's share (mode collapse shows here first), and
    for a conditional GAN the share drawn as the asked-for class."""
    n = min(10_000 if final else EVAL_SAMPLES, len(dataset))
    y = torch.arange(n) % 10 if model.config.n_classes else None
    images = torch.cat([model.sample(min(500, n - i), generator=torch.Generator().manual_seed(1000 + i),
                                     y=None if y is None else y[i:i + 500]) for i in range(0, n, 500)])
    clf = judge()
    probabilities = clf.predict_proba(images)
    report = class_report(probabilities)
    numbers = {"fid_mnist": frechet_distance(clf.all_features(images), clf.all_features(dataset.images[:n])),
               "confident_rate": report["confident_rate"]}
    numbers.update({f"share_{d}": h / n for d, h in enumerate(report["histogram"])})
    if y is not None:
        numbers["class_match"] = (probabilities.argmax(-1) == y).float().mean().item()
    return numbers
