"""A toy model family written the way a new family is added: a model, its training recipes and a registry
entry, all in this one file, plus a page (``tests/toy_page.py``). ``register_toy_families()`` adds it.

The model is a linear autoencoder 784 -> hidden -> 784 with a deterministic loss (so that runs on one and
on two processes can be compared exactly). Two families share it:

- ``toy``: the loop's defaults (one optimiser, the loss's backward and step);
- ``toy-pair``: two optimisers (encoder and decoder, each with its own learning rate and betas) and its own
  training step, ``--k`` encoder steps for every decoder step, as a GAN trains its discriminator.
"""

from dataclasses import dataclass
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from torch import nn

from genmodels import registry
from genmodels.checkpoint import HubModel
from genmodels.data import load_dataset
from train.loop import make_optimizer


@dataclass
class ToyConfig:
    family: str = "toy"
    dataset: str = "mnist"
    hidden: int = 8


class Toy(HubModel):
    """A linear autoencoder: x -> encoder -> z -> decoder -> x."""

    config_class = ToyConfig
    store_fp16 = False

    def __init__(self, config: ToyConfig):
        super().__init__(config)
        self.encoder = nn.Linear(784, config.hidden)
        self.decoder = nn.Linear(config.hidden, 784)

    def loss(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared reconstruction error."""
        x = x.flatten(1)
        return F.mse_loss(self.decoder(self.encoder(x)), x)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        z = torch.randn(n, self.config.hidden, generator=generator)
        return torch.sigmoid(self.decoder(z)).view(n, 1, 28, 28)


def add_arguments(parser) -> None:
    parser.add_argument("--hidden", type=int, default=8)
    parser.add_argument("--k", type=int, default=2, help="encoder steps per decoder step (toy-pair)")


def build(args):
    model = Toy(ToyConfig(family=args.family, hidden=args.hidden))
    kwargs = dict(root=args.data_root, subset=args.subset)
    return model, load_dataset("mnist", train=True, **kwargs), load_dataset("mnist", train=False, **kwargs)


def loss(model: Toy, batch) -> torch.Tensor:
    return model.loss(batch[0])


@torch.no_grad()
def evaluate(model: Toy, dataset, args, final: bool) -> dict[str, float]:
    return {"mse": model.loss(dataset.images).item()}


def optimizers(model: Toy, config, args) -> dict:
    """Two optimisers with their own settings: the decoder's learning rate is half the encoder's."""
    return {"encoder": make_optimizer(model.encoder.parameters(), config),
            "decoder": make_optimizer(model.decoder.parameters(), config, lr=config.lr / 2, betas=(0.5, 0.999))}


def train_step(model: Toy, batch, opts: dict, ctx) -> dict[str, float]:
    """k encoder steps on the same batch, then one decoder step."""
    for _ in range(ctx.args.k):
        encoder_loss = model.loss(batch[0])
        opts["encoder"].zero_grad(set_to_none=True)
        encoder_loss.backward()
        ctx.reduce_gradients(model.encoder)
        opts["encoder"].step()
    loss = model.loss(batch[0])
    opts["decoder"].zero_grad(set_to_none=True)
    loss.backward()
    ctx.reduce_gradients(model.decoder)
    opts["decoder"].step()
    return {"loss": loss, "encoder_loss": encoder_loss}


one_optimiser = SimpleNamespace(__doc__="A toy linear autoencoder, trained with the loop's defaults.",
                                add_arguments=add_arguments, build=build, loss=loss, evaluate=evaluate)
two_optimisers = SimpleNamespace(__doc__="The toy autoencoder with two optimisers and its own training step.",
                                 add_arguments=add_arguments, build=build, evaluate=evaluate,
                                 optimizers=optimizers, train_step=train_step)

TOY_PAGE = registry.Page("tests/toy_page.py", "Toy autoencoder", accepts=lambda c: True)


def register_toy_families() -> None:
    """The one registry entry each family needs."""
    registry.register(registry.Family(name="toy", model="tests.toy_family:Toy", recipe="tests.toy_family:one_optimiser",
                                      section="Toys", pages=(TOY_PAGE,)))
    registry.register(registry.Family(name="toy-pair", model="tests.toy_family:Toy",
                                      recipe="tests.toy_family:two_optimisers"))
