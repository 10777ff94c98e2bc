"""Restricted Boltzmann machines (Smolensky 1986; Hinton 2002) on binary images.

A Bernoulli RBM has visible units v in {0, 1}^D (the pixels), hidden units h in {0, 1}^H and the energy

    E(v, h) = -v^T b - h^T c - h^T W v,        p(v, h) = exp(-E(v, h)) / Z,

with W shaped (H, D). Summing out h gives the free energy, p(v) = exp(-F(v)) / Z:

    F(v) = -v^T b - sum_j softplus(c_j + W_j v).

Both conditionals factorise, which is what makes the machine "restricted":

    p(h_j = 1 | v) = sigmoid(c_j + W_j v),      p(v_i = 1 | h) = sigmoid(b_i + W_:i^T h),

so block Gibbs sampling alternates h ~ p(h | v) and v ~ p(v | h). The partition function Z sums over
2^D (or 2^H) states and cannot be computed for MNIST; so training follows an estimate of the gradient,

    -d log p(v) / d theta = dF(v)/d theta - E_model[dF/d theta],

with the model expectation taken over the end of short Gibbs chains: started at the data (CD-k) or carried
over from step to step (persistent CD, Tieleman 2008). What training can report is a proxy that needs no
Z, the pseudo-likelihood sum_i log p(v_i | v_-i); the likelihood itself is estimated afterwards by annealed
importance sampling (:func:`ais_log_partition`, Salakhutdinov and Murray 2008).
"""

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from genmodels.checkpoint import HubModel
from genmodels.data import DATASET_NAMES


@dataclass
class RBMConfig:
    """The machine and how its negative phase was drawn (the rest of training is in metrics.json)."""

    family: str = "rbm"
    dataset: str = "binarized-mnist"
    n_visible: int = 784
    n_hidden: int = 256
    cd_k: int = 1  # Gibbs steps of the negative phase
    persistent: bool = True  # PCD: the chains carry over between steps; False: CD-k chains start at the data
    n_chains: int = 64  # persistent chains (PCD); CD-k has one per training image
    sample_steps: int = 1000  # Gibbs steps `sample` runs from noise


def bernoulli(p: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Binary draws with success probabilities ``p`` (a generator makes them repeatable): u < p for uniform u,
    three to four times faster on a CPU than ``torch.bernoulli``, which Gibbs sampling calls twice a step."""
    return torch.rand(p.shape, generator=generator, device=p.device, dtype=p.dtype).lt_(p)  # 0/1 in p's dtype


class RBM(HubModel):
    """A Bernoulli RBM. Images go in as (B, 784) or (B, 1, 28, 28) in [0, 1] (binary for the theory).

    Public API: ``weight`` (H, 784), ``visible_bias`` (784), ``hidden_bias`` (H), ``free_energy(v)``,
    ``gibbs(v, steps, generator=..., mask=None)``, ``pseudo_likelihood(v)``, ``sample(n, generator=...)``.
    """

    config_class = RBMConfig
    config_limits = {"n_visible": (784, 784), "n_hidden": (1, 10_000), "cd_k": (1, 1000), "n_chains": (1, 100_000),
                     "sample_steps": (1, 100_000), "family": ("rbm",),
                     "dataset": DATASET_NAMES}
    store_fp16 = False  # free energies of 784 pixels are sums that fp16 weights would blur

    def __init__(self, config: RBMConfig):
        super().__init__(config)
        if config.n_hidden < 1 or config.n_visible < 1:
            raise ValueError("an RBM needs at least one visible and one hidden unit")
        if config.cd_k < 1:
            raise ValueError(f"cd_k must be at least 1, not {config.cd_k}")
        self.weight = nn.Parameter(torch.randn(config.n_hidden, config.n_visible).mul_(0.01))
        self.visible_bias = nn.Parameter(torch.zeros(config.n_visible))
        self.hidden_bias = nn.Parameter(torch.zeros(config.n_hidden))
        # The persistent chains' visible states, part of the training state (and a picture of what PCD saw).
        self.register_buffer("chains", torch.zeros(config.n_chains, config.n_visible))

    @property
    def sampler_name(self) -> str:
        return f"Gibbs sampling, {self.config.sample_steps} steps from noise"

    def headline(self) -> str:
        c = self.config
        return f"RBM, {c.n_hidden} hidden units, {'PCD' if c.persistent else 'CD'}-{c.cd_k}"

    def unused_fields(self) -> set[str]:
        return set() if self.config.persistent else {"n_chains"}

    def describe(self) -> str:
        c = self.config
        how = f"persistent contrastive divergence (PCD-{c.cd_k}, {c.n_chains} chains)" if c.persistent \
            else f"contrastive divergence (CD-{c.cd_k})"
        return (f"Bernoulli RBM: {c.n_visible} visible and {c.n_hidden} hidden binary units, one weight matrix "
                f"({c.n_hidden}x{c.n_visible}) and two bias vectors; trained by {how}.")

    def init_from_data(self, images: torch.Tensor) -> None:
        start_from_data(self, images)

    # --- energies -------------------------------------------------------------------------------------
    def energy(self, v: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """E(v, h) = -v.b - h.c - h.W v, one number per row."""
        v = flat(v)
        return -(v @ self.visible_bias) - (h @ self.hidden_bias) - ((h @ self.weight) * v).sum(-1)

    def free_energy(self, v: torch.Tensor) -> torch.Tensor:
        """F(v) = -log sum_h exp(-E(v, h)) = -v.b - sum_j softplus(c_j + W_j v), one number per row."""
        v = flat(v)
        return -(v @ self.visible_bias) - F.softplus(v @ self.weight.T + self.hidden_bias).sum(-1)

    # --- conditionals and Gibbs sampling --------------------------------------------------------------
    def hidden_probs(self, v: torch.Tensor) -> torch.Tensor:
        """p(h_j = 1 | v) for every hidden unit."""
        return torch.addmm(self.hidden_bias, flat(v), self.weight.T).sigmoid_()

    def visible_probs(self, h: torch.Tensor) -> torch.Tensor:
        """p(v_i = 1 | h) for every pixel."""
        return torch.addmm(self.visible_bias, h, self.weight).sigmoid_()

    def gibbs_chain(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None,
                    mask: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Block Gibbs sampling from ``v``: yields (v sample, p(v | h)) after each of ``steps`` steps.

        ``mask`` (same shape as v, True where a pixel is observed) clamps those pixels to their values in v:
        the chain then samples p(missing | observed), and the clamped pixels never change."""
        v0 = flat(v).to(self.weight.dtype)
        observed = None if mask is None else flat(mask).to(torch.bool).expand_as(v0)
        v = v0
        for _ in range(steps):
            h = bernoulli(self.hidden_probs(v), generator)
            p = self.visible_probs(h)
            v = bernoulli(p, generator)
            if observed is not None:
                v = torch.where(observed, v0, v)
                p = torch.where(observed, v0, p)
            yield v, p

    @torch.no_grad()
    def gibbs(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None,
              mask: torch.Tensor | None = None) -> torch.Tensor:
        """The binary visible state after ``steps`` block Gibbs steps from ``v`` (observed pixels clamped)."""
        out = flat(v)
        for state, _ in self.gibbs_chain(v, steps, generator, mask):
            out = state
        return out

    @torch.no_grad()
    def trace(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None,
              record: tuple[int, ...] = (), energies: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """A free-running chain from ``v``, watched: (p(v | h) at the steps in ``record``, as (R, B, 1, 28, 28);
        with ``energies``, the free energy F(v_t) of the chain's state after every step, (steps, B))."""
        frames, free = [], []
        for step, (state, probs) in enumerate(self.gibbs_chain(v, steps, generator), start=1):
            if energies:
                free.append(self.free_energy(state))
            if step in record:
                frames.append(as_images(probs))
        empty = torch.empty(0, len(v), 1, 28, 28)
        return (torch.stack(frames) if frames else empty), (torch.stack(free) if energies else None)

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """``n`` images (n, 1, 28, 28): p(v | h) at the end of Gibbs chains started at uniform noise."""
        v = bernoulli(torch.full((n, self.config.n_visible), 0.5, device=self.weight.device), generator)
        p = v
        for _, probs in self.gibbs_chain(v, self.config.sample_steps if steps is None else steps, generator):
            p = probs
        return as_images(p)

    # --- learning -------------------------------------------------------------------------------------
    def negative_phase(self, v_data: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The model's samples for the gradient's second term: ``cd_k`` Gibbs steps from the persistent chains
        (PCD, which then move on) or from the data (CD-k)."""
        start = self.chains if self.config.persistent else flat(v_data)
        v_model = self.gibbs(start, self.config.cd_k, generator)
        if self.config.persistent:
            self.chains.copy_(v_model)
        return v_model

    @torch.no_grad()
    def set_gradients(self, v_data: torch.Tensor, v_model: torch.Tensor) -> torch.Tensor:
        """Write -d log-likelihood / d theta into ``.grad``, estimated as dF/d theta averaged over the data
        (positive phase) minus the same average over model samples (negative phase); with p(h | v) in place of
        h, as usual (it has the same expectation and less noise):

            grad W = E_model[p(h|v) v^T] - E_data[p(h|v) v^T],  grad b = E_model[v] - E_data[v],
            grad c = E_model[p(h|v)] - E_data[p(h|v)].

        This is the gradient autograd gives for F(v_data).mean() - F(v_model).mean() (tests check it).
        Returns p(h | v_data), which the caller may reuse."""
        v_data, v_model = flat(v_data), flat(v_model)
        n, m = len(v_data), len(v_model)
        v = torch.cat([v_data, v_model])  # one matrix product for both phases is faster than two
        h = self.hidden_probs(v)
        h_data, h_model = h[:n], h[n:]
        self.weight.grad = torch.cat([h_data / -n, h_model / m]).T @ v
        self.visible_bias.grad = v_model.mean(0) - v_data.mean(0)
        self.hidden_bias.grad = h_model.mean(0) - h_data.mean(0)
        return h_data

    # --- what training can measure --------------------------------------------------------------------
    @torch.no_grad()
    def pseudo_likelihood(self, v: torch.Tensor, generator: torch.Generator | None = None,
                          index: torch.Tensor | None = None) -> torch.Tensor:
        """The stochastic pseudo-likelihood of each row, scikit-learn's ``score_samples``: D log p(v_i | v_-i)
        for one pixel i per row (random, or ``index``), an unbiased estimate of sum_i log p(v_i | v_-i).

        p(v_i | v_-i) = sigmoid(F(v with pixel i flipped) - F(v)) needs no partition function: that is why
        training reports it. It is a proxy: a model can score well on it and still sample badly."""
        v = flat(v)
        if index is None:
            index = torch.randint(0, v.shape[1], (len(v),), generator=generator, device=v.device)
        flipped = v.clone()
        rows = torch.arange(len(v), device=v.device)
        flipped[rows, index] = 1 - flipped[rows, index]
        return v.shape[1] * F.logsigmoid(self.free_energy(flipped) - self.free_energy(v))

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error per pixel of the one-step mean-field reconstruction p(v | p(h | v)), per row."""
        v = flat(v)
        return (self.visible_probs(self.hidden_probs(v)) - v).pow(2).mean(-1)

    @torch.no_grad()
    def log_partition_exact(self) -> float:
        """log Z by brute force over the smaller layer's 2^min(D, H) states (tiny machines only, for tests)."""
        if min(self.config.n_visible, self.config.n_hidden) > 20:
            raise ValueError("exact log Z needs a layer of at most 20 units")
        states = all_states(min(self.config.n_hidden, self.config.n_visible), self.weight)
        parts = []
        for chunk in states.split(4096):  # 4,096 states at a time: 2^16 at once would take 400 MB for a moment
            if self.config.n_hidden <= self.config.n_visible:
                # log sum_v exp(-E(v, h)) = h.c + sum_i softplus(b_i + W_:i . h)
                terms = chunk @ self.hidden_bias + F.softplus(chunk @ self.weight + self.visible_bias).sum(-1)
            else:
                terms = -self.free_energy(chunk)
            parts.append(torch.logsumexp(terms.double(), 0))
        return torch.logsumexp(torch.stack(parts), 0).item()

    @torch.no_grad()
    def ais_log_partition(self, n_chains: int = 100, n_betas: int = 10_000, base_bias: torch.Tensor | None = None,
                          generator: torch.Generator | None = None) -> tuple[float, float]:
        """An estimate of log Z by annealed importance sampling (Neal 2001; Salakhutdinov and Murray 2008), and
        the standard deviation of the estimate over chains (log-space, from the importance weights).

        The chains start exactly at a base model whose hidden units have no weights, p_0(v) proportional to
        exp(v.b_A) (``base_bias``; the pixel log-odds of the data are a good choice), whose log Z_A =
        H log 2 + sum_i softplus(b_A,i), and cross the geometric path
        p_k(v) proportional to exp((1 - beta_k) v.b_A) f(v)^beta_k, f = exp(-F), with one Gibbs step at each
        beta_k. The mean of the importance weights estimates Z / Z_A; the estimate of Z is unbiased,
        so log Z is underestimated on average (by Jensen), and the log-likelihood over-estimated.
        """
        b_a = torch.zeros_like(self.visible_bias) if base_bias is None else base_bias.to(self.visible_bias)
        betas = ais_schedule(n_betas).to(self.weight)
        v = bernoulli(torch.sigmoid(b_a).expand(n_chains, -1).contiguous(), generator)
        log_w = torch.zeros(n_chains, dtype=torch.float64, device=self.weight.device)

        def log_f(v: torch.Tensor, beta: torch.Tensor) -> torch.Tensor:
            hidden = F.softplus(beta * (v @ self.weight.T + self.hidden_bias)).sum(-1)
            return (1 - beta) * (v @ b_a) + beta * (v @ self.visible_bias) + hidden

        for previous, beta in zip(betas[:-1], betas[1:], strict=True):
            log_w += (log_f(v, beta) - log_f(v, previous)).double()
            h = bernoulli(torch.sigmoid(beta * (v @ self.weight.T + self.hidden_bias)), generator)
            v = bernoulli(torch.sigmoid((1 - beta) * b_a + beta * (h @ self.weight + self.visible_bias)), generator)
        # p_0 keeps the hidden units, unconnected: f_0(v) = 2^H exp(v.b_A)
        log_z_a = F.softplus(b_a).sum().double() + self.config.n_hidden * math.log(2)
        log_mean_w = torch.logsumexp(log_w, 0) - math.log(n_chains)
        # the delta method: sd(log mean w) ~ sd(w) / (sqrt(n) mean(w))
        w = torch.exp(log_w - log_w.max())
        spread = (w.std() / (w.mean() * math.sqrt(n_chains))).item() if n_chains > 1 else float("nan")
        return (log_z_a + log_mean_w).item(), spread


MIXING_STEPS = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
MIXING_CHAINS = 40


@torch.no_grad()
def mixing_curve(model: RBM, judge, images: torch.Tensor, labels, steps: tuple[int, ...] = MIXING_STEPS,
                 seed: int = 0) -> list[float]:
    """How fast Gibbs chains forget where they started: chains start at the binarized ``images`` (their digits
    are ``labels``), and at each of ``steps`` the share of chains whose p(v | h) the ``judge`` (a classifier
    with ``predict_proba``) still calls the digit they started at."""
    v = (images > 0.5).float()
    frames, _ = model.trace(v, steps[-1], torch.Generator().manual_seed(seed), record=steps, energies=False)
    start = torch.as_tensor(labels)
    return [float((judge.predict_proba(f).argmax(-1) == start).float().mean()) for f in frames]


def pixel_means(images: torch.Tensor) -> torch.Tensor:
    """Each pixel's mean over the images, clamped to [0.001, 0.999] (so that its log-odds are finite)."""
    return flat(images).mean(0).clamp(1e-3, 1 - 1e-3)


def pixel_log_odds(images: torch.Tensor) -> torch.Tensor:
    """log(p / (1 - p)) of each pixel's mean: the visible biases of the independent-pixel model of the data."""
    p = pixel_means(images)
    return torch.log(p / (1 - p))


@torch.no_grad()
def start_from_data(model, images: torch.Tensor) -> None:
    """Visible biases at the pixels' log-odds (Hinton's practical guide, section 8): an RBM or DBM starts as the
    right independent-pixel model, and its persistent chains start at draws from it."""
    p = pixel_means(images)
    model.visible_bias.copy_(torch.log(p / (1 - p)))
    model.chains.copy_(torch.bernoulli(p.expand_as(model.chains)))


def ais_schedule(n: int) -> torch.Tensor:
    """Inverse temperatures 0 = beta_0 < ... < beta_n = 1, denser near 1 where p_k changes fastest, in the
    proportions of Salakhutdinov and Murray's 14,500-step schedule (0 to 0.5 in steps of 1e-3, 0.5 to 0.9 in
    1e-4, 0.9 to 1 in 1e-4): about 3 %, 28 % and 69 % of the steps."""
    if n < 3:
        raise ValueError("AIS needs at least 3 inverse temperatures")
    a, b = max(1, round(n * 500 / 14_500)), max(1, round(n * 4000 / 14_500))
    c = max(1, n - a - b)
    return torch.cat([torch.linspace(0, 0.5, a + 1)[:-1], torch.linspace(0.5, 0.9, b + 1)[:-1],
                      torch.linspace(0.9, 1.0, c + 1)]).double()


def all_states(n: int, like: torch.Tensor) -> torch.Tensor:
    """Every binary vector of length n, (2^n, n)."""
    codes = torch.arange(2 ** n, device=like.device)
    return ((codes[:, None] >> torch.arange(n, device=like.device)) & 1).to(like.dtype)


def flat(x: torch.Tensor) -> torch.Tensor:
    """(B, 1, 28, 28) or (B, 784) -> (B, 784)."""
    return x.reshape(len(x), -1) if x.dim() > 2 else x


def as_images(v: torch.Tensor, side: int = 28) -> torch.Tensor:
    """(B, 784) -> (B, 1, 28, 28)."""
    return v.reshape(len(v), 1, side, side)


def row_mask(n_rows: int, place: str, side: int = 28, start: int | None = None) -> torch.Tensor:
    """Observed-pixel mask (side, side), False on ``n_rows`` removed rows: at the ``top``, ``middle`` or
    ``bottom``, ``every other`` row (every second row from the top, n_rows of them), or a ``band`` from
    row ``start``."""
    if not 0 <= n_rows <= side:
        raise ValueError(f"rows to remove must be between 0 and {side}, not {n_rows}")
    removed = torch.zeros(side, dtype=torch.bool)
    if place == "top":
        removed[:n_rows] = True
    elif place == "bottom":
        removed[side - n_rows:] = True
    elif place == "middle":
        first = (side - n_rows) // 2
        removed[first:first + n_rows] = True
    elif place == "every other":
        if n_rows > side // 2:
            raise ValueError(f"every other row: at most {side // 2} rows, not {n_rows}")
        removed[0:2 * n_rows:2] = True
    elif place == "band":
        if start is None or not 0 <= start <= side - n_rows:
            raise ValueError(f"a band of {n_rows} rows must start between row 0 and {side - n_rows}")
        removed[start:start + n_rows] = True
    else:
        raise ValueError(f"unknown place {place!r}: top, middle, bottom, every other or band")
    return (~removed)[:, None].expand(side, side).clone()


# --- the deep Boltzmann machine -----------------------------------------------------------------------------
@dataclass
class DBMConfig:
    """Two hidden layers; pretraining and joint-training settings are recorded here and in metrics.json."""

    family: str = "dbm"
    dataset: str = "binarized-mnist"
    n_visible: int = 784
    n_hidden1: int = 500
    n_hidden2: int = 500
    mean_field_steps: int = 10  # fixed-point iterations of the data term's variational posterior
    n_chains: int = 100  # persistent chains of the model term
    chain_steps: int = 1  # Gibbs steps of the persistent chains per update
    sample_steps: int = 1000  # Gibbs steps `sample` runs from noise


class DBM(HubModel):
    """A deep Boltzmann machine (Salakhutdinov and Hinton 2009) with two hidden layers,

        E(v, h1, h2) = -v.b - h1.c1 - h2.c2 - h1.W1 v - h2.W2 h1,     W1: (H1, D), W2: (H2, H1).

    Unlike a deep belief net every layer is undirected: h1 hears both v and h2,

        p(h1 | v, h2) = sigmoid(W1 v + W2^T h2 + c1),
        p(v | h1) = sigmoid(W1^T h1 + b),     p(h2 | h1) = sigmoid(W2 h1 + c2),

    so Gibbs sampling alternates h1 with (v, h2), and the posterior p(h1, h2 | v) no longer factorises: training
    replaces it by a mean-field approximation (the data term) and keeps persistent chains (the model term).

    Public API: ``weight1``, ``weight2``, ``sample(n, generator=...)``, ``mean_field(v)``, ``gibbs_step``.
    """

    config_class = DBMConfig
    config_limits = {"n_visible": (784, 784), "n_hidden1": (1, 10_000), "n_hidden2": (1, 10_000),
                     "mean_field_steps": (1, 1000), "n_chains": (1, 100_000), "chain_steps": (1, 1000),
                     "sample_steps": (1, 100_000), "family": ("dbm",),
                     "dataset": DATASET_NAMES}
    store_fp16 = False

    def __init__(self, config: DBMConfig):
        super().__init__(config)
        d, h1, h2 = config.n_visible, config.n_hidden1, config.n_hidden2
        if min(d, h1, h2) < 1:
            raise ValueError("a DBM needs at least one unit in every layer")
        self.weight1 = nn.Parameter(torch.randn(h1, d).mul_(0.01))
        self.weight2 = nn.Parameter(torch.randn(h2, h1).mul_(0.01))
        self.visible_bias = nn.Parameter(torch.zeros(d))
        self.hidden_bias1 = nn.Parameter(torch.zeros(h1))
        self.hidden_bias2 = nn.Parameter(torch.zeros(h2))
        # persistent chains: the visible and top states (h1 is drawn from them first)
        self.register_buffer("chains", torch.zeros(config.n_chains, d))
        self.register_buffer("chains_top", torch.zeros(config.n_chains, h2))

    @property
    def sampler_name(self) -> str:
        return f"Gibbs sampling, {self.config.sample_steps} steps from noise"

    def headline(self) -> str:
        c = self.config
        return f"deep Boltzmann machine {c.n_visible}-{c.n_hidden1}-{c.n_hidden2}"

    def describe(self) -> str:
        c = self.config
        return (f"Deep Boltzmann machine {c.n_visible}-{c.n_hidden1}-{c.n_hidden2}: two binary hidden layers, "
                f"undirected; greedy layer-wise pretraining, then joint training with {c.mean_field_steps} "
                f"mean-field steps for the data and {c.n_chains} persistent chains for the model.")

    def init_from_data(self, images: torch.Tensor) -> None:
        start_from_data(self, images)

    # --- conditionals -----------------------------------------------------------------------------------
    def hidden1_probs(self, v: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(flat(v) @ self.weight1.T + h2 @ self.weight2 + self.hidden_bias1)

    def hidden2_probs(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h1 @ self.weight2.T + self.hidden_bias2)

    def visible_probs(self, h1: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(h1 @ self.weight1 + self.visible_bias)

    def energy(self, v: torch.Tensor, h1: torch.Tensor, h2: torch.Tensor) -> torch.Tensor:
        v = flat(v)
        return -(v @ self.visible_bias) - h1 @ self.hidden_bias1 - h2 @ self.hidden_bias2 \
            - ((h1 @ self.weight1) * v).sum(-1) - ((h2 @ self.weight2) * h1).sum(-1)

    @torch.no_grad()
    def gibbs_step(self, v: torch.Tensor, h2: torch.Tensor, generator: torch.Generator | None = None):
        """One sweep: h1 ~ p(h1 | v, h2), then v ~ p(v | h1) and h2 ~ p(h2 | h1) together. Returns
        (v, h1, h2, p(v | h1))."""
        h1 = bernoulli(self.hidden1_probs(v, h2), generator)
        p = self.visible_probs(h1)
        return bernoulli(p, generator), h1, bernoulli(self.hidden2_probs(h1), generator), p

    def gibbs_chain(self, v: torch.Tensor, steps: int, generator: torch.Generator | None = None,
                    mask: torch.Tensor | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Gibbs sampling of the pixels, as :meth:`RBM.gibbs_chain`: yields (v sample, p(v | h1)) after each
        sweep, pixels where ``mask`` is True clamped; h2 starts at a draw given v's mean-field posterior."""
        v0 = flat(v).to(self.weight1.dtype)
        observed = None if mask is None else flat(mask).to(torch.bool).expand_as(v0)
        v = v0
        h2 = bernoulli(self.mean_field(v0)[1], generator)
        for _ in range(steps):
            v, _, h2, p = self.gibbs_step(v, h2, generator)
            if observed is not None:
                v, p = torch.where(observed, v0, v), torch.where(observed, v0, p)
            yield v, p

    @torch.no_grad()
    def mean_field(self, v: torch.Tensor, steps: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """q(h1, h2 | v) = prod q(h1_j) prod q(h2_k), its means found by the fixed-point iteration
        mu1 = sigmoid(W1 v + W2^T mu2 + c1), mu2 = sigmoid(W2 mu1 + c2), started from a bottom-up pass with
        doubled first-layer input (h2's share of h1's input, as pretraining saw it)."""
        v = flat(v)
        mu1 = torch.sigmoid(2 * (v @ self.weight1.T) + self.hidden_bias1)
        mu2 = self.hidden2_probs(mu1)
        for _ in range(self.config.mean_field_steps if steps is None else steps):
            mu1 = self.hidden1_probs(v, mu2)
            mu2 = self.hidden2_probs(mu1)
        return mu1, mu2

    @torch.no_grad()
    def sample(self, n: int, generator: torch.Generator | None = None, steps: int | None = None) -> torch.Tensor:
        """``n`` images (n, 1, 28, 28): p(v | h1) at the end of Gibbs chains started at uniform noise."""
        device = self.weight1.device
        v = bernoulli(torch.full((n, self.config.n_visible), 0.5, device=device), generator)
        h2 = bernoulli(torch.full((n, self.config.n_hidden2), 0.5, device=device), generator)
        p = v
        for _ in range(self.config.sample_steps if steps is None else steps):
            v, _, h2, p = self.gibbs_step(v, h2, generator)
        return as_images(p)

    # --- learning ---------------------------------------------------------------------------------------
    @torch.no_grad()
    def pretrain_gradients(self, layer: int, v_data: torch.Tensor,
                           generator: torch.Generator | None = None) -> torch.Tensor:
        """Greedy layer-wise pretraining (Salakhutdinov and Hinton 2009): layer 1 is an RBM on the pixels whose
        upward input is doubled (in the DBM, h1 will also hear h2); layer 2 an RBM on layer 1's mean activities
        whose downward input is doubled (h1 will also hear v). PCD with the model's chains, one Gibbs step.
        Returns the first hidden layer's mean activities on the data."""
        v_data = flat(v_data)
        if layer == 1:
            up = lambda v: torch.sigmoid(2 * (v @ self.weight1.T) + self.hidden_bias1)  # noqa: E731
            p_data = up(v_data)
            v_model = bernoulli(self.visible_probs(bernoulli(up(self.chains), generator)), generator)
            self.chains.copy_(v_model)
            p_model = up(v_model)
            n, m = len(v_data), len(v_model)
            self.weight1.grad = p_model.T @ v_model / m - p_data.T @ v_data / n
            self.visible_bias.grad = v_model.mean(0) - v_data.mean(0)
            self.hidden_bias1.grad = p_model.mean(0) - p_data.mean(0)
            return p_data
        else:
            x_data = torch.sigmoid(2 * (v_data @ self.weight1.T) + self.hidden_bias1)
            down = lambda h2: torch.sigmoid(2 * (h2 @ self.weight2) + self.hidden_bias1)  # noqa: E731
            p_data = self.hidden2_probs(x_data)
            x_model = bernoulli(down(self.chains_top), generator)
            p_model = self.hidden2_probs(x_model)
            self.chains_top.copy_(bernoulli(p_model, generator))
            n, m = len(x_data), len(x_model)
            self.weight2.grad = p_model.T @ x_model / m - p_data.T @ x_data / n
            self.hidden_bias2.grad = p_model.mean(0) - p_data.mean(0)
            return x_data

    @torch.no_grad()
    def joint_gradients(self, v_data: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """-d log p / d theta of the whole machine: data statistics under the mean-field posterior minus model
        statistics over the persistent chains after ``chain_steps`` Gibbs sweeps. Returns mu1 of the data."""
        v_data = flat(v_data)
        mu1, mu2 = self.mean_field(v_data)
        v, h2 = self.chains, self.chains_top
        for _ in range(self.config.chain_steps):
            v, h1, h2, _ = self.gibbs_step(v, h2, generator)
        self.chains.copy_(v)
        self.chains_top.copy_(h2)
        q1, q2 = self.hidden1_probs(v, h2), self.hidden2_probs(h1)  # Rao-Blackwellised model statistics
        n, m = len(v_data), len(v)
        self.weight1.grad = q1.T @ v / m - mu1.T @ v_data / n
        self.weight2.grad = q2.T @ h1 / m - mu2.T @ mu1 / n
        self.visible_bias.grad = v.mean(0) - v_data.mean(0)
        self.hidden_bias1.grad = q1.mean(0) - mu1.mean(0)
        self.hidden_bias2.grad = q2.mean(0) - mu2.mean(0)
        return mu1

    @torch.no_grad()
    def reconstruction_error(self, v: torch.Tensor) -> torch.Tensor:
        """Mean squared error per pixel of p(v | mu1) after mean-field inference, per row."""
        v = flat(v)
        mu1, _ = self.mean_field(v)
        return (self.visible_probs(mu1) - v).pow(2).mean(-1)


def layer2_filters(model: DBM) -> torch.Tensor:
    """The second hidden layer's units drawn in pixel space, (H2, D): W2 W1, each unit's weights over the first
    layer's filters, summed (a linear picture of a nonlinear unit, the usual one)."""
    return model.weight2 @ model.weight1


def preferred_inputs(activations: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """What excites each unit, in pixel space, (units, D): the average of the images weighted by the unit's mean
    activity on them, minus the plain average image. Unlike a weight picture, this works for units that see the
    pixels only through other layers (a DBM's second layer)."""
    v = flat(images)
    weights = activations / activations.sum(0, keepdim=True).clamp(min=1e-8)
    return weights.T @ v - v.mean(0)
