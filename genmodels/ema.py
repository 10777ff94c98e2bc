"""An exponential moving average of a network's weights: the copy that samples, for the DDPM and the GAN.

Averaging the weights over the last steps of training smooths out the step-to-step noise of SGD and gives
cleaner samples at no training cost (Polyak averaging; Karras et al. 2018 for GAN generators).
"""

import torch
from torch import nn


def ema_decay_at(decay: float, step: int) -> float:
    """The decay for the update after optimiser step ``step`` (1, 2, ...): min(decay, (1 + step) / (10 + step)).

    The warm-up (as in TensorFlow's ExponentialMovingAverage) keeps the average from remembering the random
    initial weights: with a fixed 0.999, 63 % of them would still be in it after 469 steps."""
    return min(decay, (1 + step) / (10 + step))


@torch.no_grad()
def update_ema(ema: nn.Module, model: nn.Module, decay: float) -> None:
    """ema <- decay * ema + (1 - decay) * model for every parameter; buffers (batch-norm statistics) are copied."""
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p, 1 - decay)
    for e, b in zip(ema.buffers(), model.buffers(), strict=True):
        e.copy_(b)


def without_copy(state: dict[str, torch.Tensor], spare: str) -> dict[str, torch.Tensor]:
    """``state`` less the tensors under ``spare`` (a prefix such as ``"unet."``): the copy a weights file leaves out."""
    return {name: tensor for name, tensor in state.items() if not name.startswith(spare)}


def with_copy(state: dict[str, torch.Tensor], spare: str, kept: str) -> dict[str, torch.Tensor]:
    """``state`` with the network under ``spare`` filled in from the one under ``kept``, if the file left it out
    (a file that holds both is returned as it is)."""
    if any(name.startswith(spare) for name in state):
        return state
    return {**state, **{spare + name[len(kept):]: tensor for name, tensor in state.items() if name.startswith(kept)}}


def copy_layouts(model: nn.Module, spare: str) -> list[dict[str, torch.Size]]:
    """The layouts a weights file of ``model`` may hold: without the copy under ``spare`` (today's), then with it."""
    both = {name: tensor.shape for name, tensor in model.state_dict().items()}
    return [without_copy(both, spare), both]


class AveragedUNet:
    """Mixin for a model that trains ``unet`` and samples with ``ema``, its weight average with the config's
    ``ema_decay`` (the DDPM, cold diffusion). The size a page reports is one network's.

    Its weights file holds the average alone (what samples), and loading copies it into ``unet`` too; a
    training run keeps both networks in its training state. Files saved before this (both networks) still load.
    """

    def shipped_state(self) -> dict[str, torch.Tensor]:
        return without_copy(self.state_dict(), "unet.")

    def shipped_layouts(self) -> list[dict[str, torch.Size]]:
        return copy_layouts(self, "unet.")

    def load_shipped_state(self, state: dict[str, torch.Tensor]) -> None:
        self.load_state_dict(with_copy(state, "unet.", "ema."), strict=True)  # the average is the trained one too

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.unet.parameters())

    def ema_decay_at(self, step: int) -> float:
        """The decay for the update after optimiser step ``step``, with the warm-up of :func:`ema_decay_at`."""
        return ema_decay_at(self.config.ema_decay, step)

    def update_ema(self, decay: float | None = None) -> None:
        """ema <- decay * ema + (1 - decay) * unet, after every optimiser step (decay defaults to the config's)."""
        update_ema(self.ema, self.unet, self.config.ema_decay if decay is None else decay)
