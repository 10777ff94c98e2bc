"""Train a VAE: ``python -m train vae --prior {gaussian,mog,vamp} --latent-dim 2 ...``."""

import torch
from torch.utils.data import DataLoader

from genmodels.data import image_channels, load_dataset
from genmodels.vae import ARCHITECTURES, LIKELIHOODS, PRIORS, VAE, VAEConfig


def add_arguments(parser) -> None:
    parser.add_argument("--prior", choices=PRIORS, default="gaussian")
    parser.add_argument("--latent-dim", type=int, default=2)
    parser.add_argument("--hidden-dim", type=int, default=512)
    parser.add_argument("--n-components", type=int, default=16,
                        help="mixture components (mog) or pseudo-inputs (vamp)")
    parser.add_argument("--beta", type=float, default=1.0, help="weight of the KL term (beta-VAE)")
    parser.add_argument("--dataset", default="binarized-mnist",
                        choices=["binarized-mnist", "dynamic-binarized-mnist", "mnist", "fashion-mnist",
                                 "colored-mnist", "colored-fashion-mnist"])
    parser.add_argument("--likelihood", choices=LIKELIHOODS, default="bernoulli",
                        help="p(x|z); 'gaussian' with --sigma 0.7071 is the loss 'squared error + KL'")
    parser.add_argument("--sigma", type=float, default=0.1,
                        help="the Gaussian likelihood's standard deviation (fixed, or where the learned one starts)")
    parser.add_argument("--architecture", choices=ARCHITECTURES, default="mlp")
    parser.add_argument("--conditional", action="store_true",
                        help="a conditional VAE: encoder and decoder also see the one-hot label")
    parser.add_argument("--iwae-k", type=int, default=100,
                        help="importance samples for the final test log-likelihood estimate")


def build(args):
    config = VAEConfig(dataset=args.dataset, latent_dim=args.latent_dim, hidden_dim=args.hidden_dim,
                       prior=args.prior, n_components=args.n_components, beta=args.beta,
                       architecture=args.architecture, n_classes=10 if args.conditional else 0,
                       likelihood=args.likelihood, sigma=args.sigma, image_channels=image_channels(args.dataset))
    model = VAE(config)
    # Fashion-MNIST is grey-valued; the Bernoulli likelihood reads its pixels as probabilities, the others as values.
    train_set = load_dataset(args.dataset, train=True, root=args.data_root, download=args.download,
                             subset=args.subset)
    test_name = "binarized-mnist" if args.dataset == "dynamic-binarized-mnist" else args.dataset
    test_set = load_dataset(test_name, train=False, root=args.data_root, download=args.download,
                            subset=args.subset)
    if args.prior == "vamp":
        # Warm start: pseudo-inputs at random training images.
        idx = torch.randperm(len(train_set.images))[: args.n_components]
        model.prior.init_from(train_set.images[idx])
    return model, train_set, test_set


def labels(model: VAE, batch):
    """The labels a conditional VAE needs; None for an unconditional one."""
    return batch[1] if model.config.n_classes else None


def loss(model: VAE, batch) -> torch.Tensor:
    return model.loss(batch[0], labels(model, batch))


@torch.no_grad()
def evaluate(model: VAE, dataset, args, final: bool) -> dict[str, float]:
    """Mean ELBO, its two terms, and at the end the IWAE estimate of log p(x), in nats."""
    device = next(model.parameters()).device
    sums = {"elbo": 0.0, "log_px_given_z": 0.0, "kl": 0.0}
    if final:
        sums[f"iwae_k{args.iwae_k}"] = 0.0
    for x, y in DataLoader(dataset, batch_size=500):
        x, y = x.to(device), labels(model, [x, y.to(device)])
        log_px_given_z, kl = model.elbo_terms(x, y)
        sums["elbo"] += (log_px_given_z - kl).sum().item()
        sums["log_px_given_z"] += log_px_given_z.sum().item()
        sums["kl"] += kl.sum().item()
        if final:
            sums[f"iwae_k{args.iwae_k}"] += model.iwae(x, k=args.iwae_k, y=y).sum().item()
    return {k: v / len(dataset) for k, v in sums.items()}
