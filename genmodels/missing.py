"""Filling in missing pixels with three families, the same way round: the observed pixels stay fixed and the
model samples the rest given them.

- an RBM or DBM: clamped block Gibbs sampling, whose stationary distribution is exactly p(missing | observed);
- a VAE: pseudo-Gibbs sampling (Rezende, Mohamed and Wierstra 2014, appendix F): z ~ q(z | x), missing pixels
  ~ p(x | z), observed ones put back, repeated; it converges to p(missing | observed) only as far as the
  encoder inverts the decoder;
- a DDPM: the reverse process with the observed pixels replaced by their noised values at every step.

Every function takes ``x`` (B, 1, 28, 28) in [0, 1] and ``observed`` (broadcastable to x, True where a pixel is
known), and returns the expected image: the model's probability (or intensity) of each missing pixel at the end,
the observed pixels unchanged.
"""

import torch

from genmodels.rbm import as_images, flat


def start_noise(x: torch.Tensor, observed: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The observed pixels of x, and coin flips in the missing ones: where every chain starts."""
    coins = (torch.rand(x.shape, generator=generator, device=x.device) < 0.5).to(x.dtype)
    return torch.where(observed.expand_as(x), x, coins)


@torch.no_grad()
def gibbs_fill(model, x: torch.Tensor, observed: torch.Tensor, steps: int,
               generator: torch.Generator | None = None, record: tuple[int, ...] = ()):
    """Clamped Gibbs sampling in an RBM or a DBM (anything with ``gibbs_chain``): p(v | h) after ``steps``
    steps from coin flips, and the same at the steps listed in ``record`` (stacked, (len(record), B, 1, 28, 28))."""
    mask = flat(observed.expand_as(x))
    probs = start = flat(start_noise(x, observed, generator))
    frames = []
    for step, (_, p) in enumerate(model.gibbs_chain(start, steps, generator, mask), start=1):
        probs = p
        if step in record:
            frames.append(as_images(p))
    return as_images(probs), (torch.stack(frames) if frames else None)


@torch.no_grad()
def vae_fill(vae, x: torch.Tensor, observed: torch.Tensor, steps: int,
             generator: torch.Generator | None = None) -> torch.Tensor:
    """Pseudo-Gibbs sampling in a VAE: ``steps`` rounds of z ~ q(z | x_t), x_missing ~ p(x | z)."""
    mask = observed.expand_as(x)
    current, means = start_noise(x, observed, generator), x
    for _ in range(steps):
        mu, logvar = vae.encode(current)
        z = mu + (0.5 * logvar).exp() * torch.randn(mu.shape, generator=generator, device=mu.device)
        means = vae.decode_mean(z)
        draw = (torch.rand(means.shape, generator=generator, device=means.device) < means).to(x.dtype)
        current = torch.where(mask, x, draw)
    return torch.where(mask, x, means)


@torch.no_grad()
def ddpm_fill(ddpm, x: torch.Tensor, observed: torch.Tensor, steps: int = 50,
              generator: torch.Generator | None = None, callback=None) -> torch.Tensor:
    """A DDPM's inpainting (DDIM on ``steps`` steps with fresh noise, observed pixels replaced at every step)."""
    return ddpm.inpaint(x, observed.expand_as(x), generator=generator, steps=steps, callback=callback).clamp(0, 1)


def fill_error(filled: torch.Tensor, truth: torch.Tensor, observed: torch.Tensor) -> float:
    """Mean absolute error per missing pixel: |filled - truth| over the pixels that were removed."""
    missing = ~observed.expand_as(truth)
    return (filled - truth).abs()[missing].mean().item()
