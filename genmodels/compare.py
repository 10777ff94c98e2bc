"""Comparing models of different families: which samples to show, one likelihood scoreboard, a network's layers.

Everything here reads what a checkpoint already holds (its config and metrics.json) or runs it; the compare page
(``app_pages/compare.py``) and ``python -m bench --only sampling`` use it.
"""

import inspect
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

PIXELS = 28 * 28
KINDS = {  # the scoreboard's labels: how a number relates to the model's log-likelihood log p(x)
    "exact": "log p(x) itself, by the change of variables",
    "bound": "a lower bound on log p(x)",
    "estimate": "an estimate of log p(x) (a tighter lower bound, or a stochastic estimate)",
    "proxy": "not log p(x): a related quantity that is cheap to compute",
}
DATA = {  # what a likelihood was measured on; numbers on different data do not compare
    "binarized-mnist": "binarized MNIST: 784 pixels, each 0 or 1 (at most 1 bit a pixel)",
    "dynamic-binarized-mnist": "binarized MNIST: 784 pixels, each 0 or 1 (at most 1 bit a pixel)",
    "mnist": "MNIST, 8-bit grey values: 784 pixels, each one of 256 levels (at most 8 bits a pixel)",
}


def bits_per_dim(log_likelihood_nats: float, dims: int = PIXELS) -> float:
    """Bits per dimension of a log-likelihood in nats per image: -log p(x) / (dims ln 2)."""
    return -log_likelihood_nats / (dims * math.log(2))


def nats(bits: float, dims: int = PIXELS) -> float:
    """The log-likelihood in nats per image of a bits-per-dimension figure (the inverse of ``bits_per_dim``)."""
    return -bits * dims * math.log(2)


@dataclass(frozen=True)
class Score:
    """One likelihood figure of one model: log p(x) per image in nats (higher is better), and what it is."""

    model: str
    quantity: str  # what was computed, in words: "IWAE bound, k = 500"
    kind: str  # one of KINDS
    log_likelihood: float  # nats per image, averaged over ``images`` test images
    dataset: str  # the config's dataset: a key of DATA
    images: int | None = None  # test images it was averaged over (None: all of them)
    stderr: float | None = None  # standard error of that mean, nats, where recorded

    @property
    def bits_per_dim(self) -> float:
        return bits_per_dim(self.log_likelihood)


def likelihood_scores(model: str, config: dict, metrics: dict) -> list[Score]:
    """Every likelihood figure a checkpoint's metrics.json records, labelled. Families with no likelihood (a GAN,
    cold diffusion) and figures on data outside :data:`DATA` (Fashion-MNIST, coloured images) give none, and so
    does a VAE or an RBM of grey values (its Bernoulli "likelihood" of a grey image is no probability of it)."""
    dataset, family = config.get("dataset", ""), config.get("family")
    binary = "binarized" in dataset
    if dataset not in DATA or (family in ("vae", "rbm")) != binary:
        # a Bernoulli model's number is a probability of binary images only; a flow's or a DDPM's of 8-bit ones
        return []
    evaluation, out = metrics.get("eval", {}), []
    given = " given the class" if config.get("n_classes") else ""
    if family == "vae":
        if "test_elbo" in evaluation:
            out.append(Score(model, f"ELBO{given}", "bound", evaluation["test_elbo"], dataset))
        for name, value in evaluation.items():
            if name.startswith("test_iwae_k"):
                out.append(Score(model, f"IWAE bound{given}, k = {name.removeprefix('test_iwae_k')}", "estimate",
                                 value, dataset))
    elif family == "flow" and "test_bits_per_dim" in evaluation:
        stderr = evaluation.get("test_bits_per_dim_stderr")
        out.append(Score(model, "change of variables, one dequantization draw per image", "exact",
                         nats(evaluation["test_bits_per_dim"]), dataset,
                         stderr=None if stderr is None else stderr * PIXELS * math.log(2)))
    elif family == "ddpm" and "bits_per_dim" in metrics:
        bound = metrics["bits_per_dim"]
        out.append(Score(model, f"variational bound, all {config.get('T', 1000)} steps{given}", "bound",
                         nats(bound["mean"]), dataset, images=bound.get("n"),
                         stderr=bound["stderr"] * PIXELS * math.log(2) if "stderr" in bound else None))
    elif family == "rbm":
        if "test_ais_log_likelihood" in evaluation:
            out.append(Score(model, "annealed importance sampling of log Z", "estimate",
                             evaluation["test_ais_log_likelihood"], dataset))
        if "test_pseudo_likelihood" in evaluation:
            out.append(Score(model, "pseudo-likelihood", "proxy", evaluation["test_pseudo_likelihood"], dataset))
    return out


# --- drawing samples as the recorded scores did -------------------------------------------------------------------
def has_steps(model) -> bool:
    """Whether the model is a diffusion model, whose sampler a number of steps picks (DDIM steps, or all T)."""
    return "eta" in inspect.signature(model.sample).parameters


def iterative(model) -> bool:
    """Whether the model's sampler runs its network or a Gibbs chain many times (diffusion, cold diffusion, RBM and
    DBM chains): seconds for a batch on a CPU, where a decoder or generator pass takes milliseconds."""
    return "steps" in inspect.signature(model.sample).parameters


def guided(model) -> bool:
    """Whether the model is a class-conditional diffusion model: scored on asked classes, with guidance."""
    return has_steps(model) and bool(getattr(model.config, "n_classes", 0))


def conditional(model) -> bool:
    """Whether the model draws a class it is given (a conditional VAE, GAN or diffusion model)."""
    return bool(getattr(model.config, "n_classes", 0))


def asked_classes(n: int, classes: int = 10) -> torch.Tensor:
    """The classes a conditional model is asked for when scored: 0, 1, ..., 9, 0, ... (a tenth each)."""
    return torch.arange(n) % classes


def sampler_label(model, steps: int | None, method: str = "ddim", eta: float = 0.0,
                  guidance: float | None = None) -> str:
    """The name a sampler's scores are recorded under in metrics.json (and the pages look them up by); ``steps``
    None is the exact sampler over all T steps."""
    from genmodels.ddpm import DEFAULT_GUIDANCE, sampler_name  # here: comparing must not import every family

    if not has_steps(model):
        return model.sampler_name
    name = sampler_name(None if steps is None else min(steps, model.config.T), method, eta, model.config.T)
    return f"{name}, guidance {DEFAULT_GUIDANCE if guidance is None else guidance:g}" if guided(model) else name


FAST = {"steps": 20, "method": "dpm++", "eta": 1.0}  # a diffusion model's sampler when families are compared


@torch.no_grad()
def draw(model, n: int, generator: torch.Generator, steps: int | None = 50, method: str = "ddim", eta: float = 0.0,
         guidance: float | None = None, batch_size: int = 500,
         progress: Callable[[int], None] | None = None) -> tuple[torch.Tensor, str]:
    """n samples in [0, 1] and the name of their sampler, drawn as ``python -m train.sample_quality`` scores them:
    ``model.sample`` in batches; a diffusion model with ``steps`` (None: all T), ``method`` and ``eta``; a
    conditional model asked for ``asked_classes(n)``, a class-conditional diffusion model with guidance weight
    ``guidance`` (``DEFAULT_GUIDANCE`` if None). ``progress(done)`` after each batch."""
    from genmodels.ddpm import DEFAULT_GUIDANCE

    kwargs = {"steps": steps, "method": method, "eta": eta} if has_steps(model) else {}
    if guided(model):
        kwargs["guidance"] = DEFAULT_GUIDANCE if guidance is None else guidance
    asked, out = asked_classes(n, getattr(model.config, "n_classes", 0) or 10), []
    for i in range(0, n, batch_size):
        y = {"y": asked[i:i + batch_size]} if conditional(model) else {}
        out.append(model.sample(min(batch_size, n - i), generator=generator, **kwargs, **y).float())
        if progress:
            progress(i + len(out[-1]))
    return torch.cat(out), sampler_label(model, steps, method, eta, guidance)


# --- what is recorded ------------------------------------------------------------------------------------------
def recorded_quality(metrics: dict, prefer: str | None = None) -> tuple[str | None, dict | None]:
    """(sampler, scores) of a model's sample quality as recorded in its metrics.json: the run of
    ``python -m train.sample_quality`` with the most samples, else the final evaluation of a family that scores
    its own samples (a GAN: ``test_fid_mnist``, ``test_confident_rate``, ``test_share_k``); (None, None) if
    neither; of runs on as many samples, the one of sampler ``prefer``. Scores have ``fid_mnist``,
    ``confident_rate``, ``n`` and, where known, ``histogram``, ``floor_fid_mnist``, ``seconds`` and ``device``."""
    needed = {"fid_mnist", "confident_rate", "n"}
    scored = {s: q for s, q in metrics.get("sample_quality", {}).items() if needed <= set(q)}
    if scored:
        sampler = max(scored, key=lambda s: (scored[s]["n"], s == prefer))  # ``prefer`` wins a tie
        return sampler, scored[sampler]
    evaluation = metrics.get("eval", {})
    if {"test_fid_mnist", "test_confident_rate"} <= set(evaluation):
        return "final evaluation", {"fid_mnist": evaluation["test_fid_mnist"],
                                    "confident_rate": evaluation["test_confident_rate"], "n": 10_000}
    return None, None


def headline_models(checkpoints: list[tuple[str, dict, dict]]) -> list[str]:
    """The models a comparison starts from, one a family, by a rule anyone can check: of each family's
    unconditional models of grey digits (MNIST, binarized or not), the one with the lowest recorded FID-MNIST (a
    family with none scored: its first model). ``checkpoints``: (name, config, metrics), in the order to keep."""
    best: dict[str, tuple[float, str]] = {}
    for name, config, metrics in checkpoints:
        if config.get("dataset") not in DATA or config.get("n_classes"):
            continue
        _, scores = recorded_quality(metrics)
        fid = scores["fid_mnist"] if scores else math.inf
        family = config.get("family", "")
        if family not in best or fid < best[family][0]:
            best[family] = (fid, name)
    chosen = {name for _, name in best.values()}
    return [name for name, _, _ in checkpoints if name in chosen]


# --- which samples to show ------------------------------------------------------------------------------------------
def representative(confidence: torch.Tensor, k: int = 4) -> list[int]:
    """The indices of the ``k`` samples whose judge confidence (the classifier's top probability) lies nearest the
    median confidence of all of them, in the order they were drawn: typical samples, neither the best nor the
    worst. Ties go to the earlier sample."""
    c = confidence.double().flatten()
    median = c.median()  # the lower of the two middle values for an even count: still a value of c
    distance = (c - median).abs()
    order = sorted(range(len(c)), key=lambda i: (float(distance[i]), i))
    return sorted(order[:k])


def timed(draw: Callable[[], torch.Tensor]) -> tuple[torch.Tensor, float]:
    """(what ``draw`` returns, its wall time in seconds)."""
    start = time.perf_counter()
    out = draw()
    return out, time.perf_counter() - start


def _first_tensor(value):
    if isinstance(value, torch.Tensor):
        return value
    if isinstance(value, tuple | list) and value and isinstance(value[0], torch.Tensor):
        return value[0]
    return None


def _blocks(root: nn.Module) -> list[tuple[str, nn.Module]]:
    """The blocks a layer table lists: the root's children, with containers (ModuleList, Sequential of
    containers) opened until a module does its own computation."""
    out = []
    for name, child in root.named_children():
        if isinstance(child, nn.ModuleList):
            out.extend((f"{name}.{n}", m) for n, m in _blocks(child))
        else:
            out.append((name, child))
    return out


def reshape_name(before: str, after: str) -> str:
    """What turns one image shape ("C x H x W") into another between two blocks, in words."""
    (c0, h0, _), (c1, h1, _) = ([int(v) for v in shape.split(" x ")] for shape in (before, after))
    if h1 * 2 == h0 and c1 == 4 * c0:
        return "squeeze: 2 x 2 pixels into channels"
    if h1 == h0 and c1 < c0:
        return "split: channels leave"
    if h1 == h0 and c1 > c0:
        return "concatenate a skip connection"
    if h1 == 2 * h0 and c1 == c0:
        return "upsample (nearest)"
    return "reshape"


def layer_table(root: nn.Module, run: Callable[[], object]) -> list[dict]:
    """The blocks of ``root`` in the order ``run()`` calls them: name, class, input and output shape (one image),
    parameters. A block called twice appears twice; a block never called does not appear. Between two blocks
    where the shape changes without a block, a row with no parameters says what happened (``reshape_name``: a
    squeeze, channels split off, a skip connection's concatenation, an upsampling: the code between the blocks)."""
    rows, handles = [], []

    def shape(t: torch.Tensor | None) -> str:
        return "" if t is None else " x ".join(str(s) for s in t.shape[1:])

    for name, block in _blocks(root):
        def hook(module, args, output, name=name):
            rows.append({"block": name, "layer": type(module).__name__, "in": shape(_first_tensor(args)),
                         "out": shape(_first_tensor(output)),
                         "parameters": sum(p.numel() for p in module.parameters())})
        handles.append(block.register_forward_hook(hook))
    try:
        with torch.no_grad():
            run()
    finally:
        for h in handles:
            h.remove()
    out, last_image = [], None  # the last image-shaped (C x H x W) output
    for row in rows:
        image_in = row["in"].count("x") == 2
        if image_in and last_image is not None and last_image != row["in"]:
            out.append({"block": "(between blocks)", "layer": reshape_name(last_image, row["in"]),
                        "in": last_image, "out": row["in"], "parameters": 0})
        out.append(row)
        if row["out"].count("x") == 2:
            last_image = row["out"]
    return out
