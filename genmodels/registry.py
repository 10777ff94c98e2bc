"""Every model family, named once: its model class, its training recipe, the pages that explain it.

The loader (:func:`load`), the training CLI (``python -m train``), the app's navigation and model zoo,
``python -m bench`` and the tests all read :data:`FAMILIES`. Adding a family means writing its model
module (``genmodels/<family>.py``), its training recipe (``train/<family>.py``), its pages, and one
:class:`Family` entry below; nothing else lists families.

Model classes, recipes and pages are named by strings (``"module:attribute"``, a module, a file
path), so this module imports none of them: ``genmodels`` never imports ``train`` or the app, and
loading one family does not import the others.
"""

import dataclasses
import hashlib
import importlib
import os
from collections.abc import Callable
from dataclasses import dataclass

from genmodels.checkpoint import CONFIG, VIEWS, WEIGHTS, CheckpointError, HubModel, read_config, resolve


def _always(config: dict) -> bool:
    return True


def _never(config: dict) -> bool:
    return False


@dataclass(frozen=True)
class Page:
    """One page of the app.

    ``accepts(config)`` says which checkpoints the page can show (its checkpoint box lists only
    those); ``explains(config)`` which ones it is the best page for (the model zoo links them there;
    by default the same as ``accepts``). ``default`` is the checkpoint it opens with, if present.
    """

    path: str  # the page file, relative to the repository root: "app_pages/vae_priors.py"
    title: str
    icon: str = ":material/article:"
    accepts: Callable[[dict], bool] = _always
    explains: Callable[[dict], bool] | None = None
    default: str | None = None

    def is_home_of(self, config: dict) -> bool:
        return (self.explains or self.accepts)(config)


@dataclass(frozen=True)
class Family:
    """A model family: what ``config.json``'s ``family`` names, and everything built on it."""

    name: str  # the value of "family" in config.json, and the train CLI's subcommand
    model: str  # "module:Class" of its HubModel subclass
    recipe: str  # its training recipe (see train/loop.py): a module, or "module:object"; `python -m train NAME`
    section: str = ""  # the navigation heading its pages appear under
    pages: tuple[Page, ...] = ()
    generative: bool = True  # False for a family whose models are not sampled in the zoo (the classifier, autoencoders)
    judge: bool = False  # True for the family that scores the others' samples (the classifier)
    bench: str | None = None  # "module:function" printing this family's benchmark tables, if any

    def model_class(self) -> type[HubModel]:
        return _attribute(self.model)


def _attribute(path: str):
    module, _, name = path.partition(":")
    return getattr(importlib.import_module(module), name)


# --- the families -------------------------------------------------------------------------------------
def _unconditional(config: dict) -> bool:
    return not config.get("n_classes")


def _vae_with_2d_latent(config: dict) -> bool:
    return config.get("latent_dim") == 2 and _unconditional(config)


def _in_beta_sweep(config: dict) -> bool:
    """A Gaussian-prior unconditional VAE: a member of a sweep over beta if others differ only in beta."""
    return _unconditional(config) and config.get("prior", "gaussian") == "gaussian"


def _beta_sweep_member(config: dict) -> bool:
    """A checkpoint the beta page explains best: beta other than 1, or a conv VAE on grey images with a Bernoulli
    likelihood (the shipped sweep's kind); other conv VAEs (a coloured one) go to the priors page."""
    grey_bernoulli = config.get("likelihood", "bernoulli") == "bernoulli" and config.get("image_channels", 1) == 1
    return _in_beta_sweep(config) and (config.get("beta", 1.0) != 1.0
                                       or (config.get("architecture") == "conv" and grey_bernoulli))


def _colour(config: dict) -> bool:
    return config.get("image_channels", 1) == 3


def _prior_comparison(config: dict) -> bool:
    """An unconditional grey VAE outside the beta sweep (a colour one is explained on the coloured MNIST page)."""
    return _unconditional(config) and not _beta_sweep_member(config) and not _colour(config)


def _conditional(config: dict) -> bool:
    return bool(config.get("n_classes"))


def _conv(config: dict) -> bool:
    return config.get("architecture", "conv") == "conv"


def _plain_mlp(config: dict) -> bool:
    """An autoencoder with the MLP VAE's networks, trained on clean images: the one to set beside a VAE."""
    return config.get("architecture") == "mlp" and config.get("distortion") == "none"


VAE_SECTION = "Variational autoencoders"
DIFFUSION_SECTION = "Diffusion models"
GAN_SECTION = "Generative adversarial networks"
EBM_SECTION = "Energy-based models"
AE_SECTION = "Autoencoders"
FLOW_SECTION = "Normalizing flows"

FAMILIES: dict[str, Family] = {}


def register(family: Family) -> Family:
    """Add a family (or replace one of the same name); returns it. Families appear in registration order."""
    FAMILIES[family.name] = family
    return family


register(Family(
    name="vae", model="genmodels.vae:VAE", recipe="train.vae", section=VAE_SECTION, bench="bench.families:vae",
    pages=(
        Page("app_pages/vae_priors.py", "Prior vs aggregate posterior", ":material/scatter_plot:",
             accepts=_unconditional, explains=_prior_comparison, default="vae-gaussian-2d"),
        Page("app_pages/vae_latent.py", "Latent space explorer", ":material/explore:",
             accepts=_vae_with_2d_latent, explains=_never, default="vae-gaussian-2d"),
        Page("app_pages/vae_beta.py", "beta-VAE sweep", ":material/tune:",
             accepts=_in_beta_sweep, explains=_beta_sweep_member),
        Page("app_pages/vae_conditional.py", "Conditional VAE", ":material/category:",
             accepts=_conditional, default="cvae-conv-mnist"),
        Page("app_pages/color_mnist.py", "Coloured MNIST: scoring colour samples", ":material/palette:",
             accepts=_colour, default="vae-color-conv-16d"),
    ),
))
register(Family(
    name="ddpm", model="genmodels.ddpm:DDPM", recipe="train.ddpm", section=DIFFUSION_SECTION,
    bench="bench.families:ddpm",
    pages=(
        Page("app_pages/ddpm.py", "DDPM step by step", ":material/blur_on:", accepts=_unconditional,
             default="ddpm-linear"),
        Page("app_pages/ddpm_training.py", "DDPM training and sample quality", ":material/monitoring:",
             accepts=_unconditional, explains=_never),
        Page("app_pages/ddpm_inpainting.py", "Inpainting", ":material/format_paint:", accepts=_unconditional,
             explains=_never, default="ddpm-linear"),
        Page("app_pages/ddpm_conditional.py", "Class-conditional diffusion and guidance", ":material/category:",
             accepts=_conditional, default="ddpm-conditional"),
    ),
))
register(Family(name="flow", model="genmodels.flow:Flow", recipe="train.flow", section=FLOW_SECTION,
                bench="bench.families:flow", pages=(
                    Page("app_pages/flow.py", "Normalizing flow: an exact likelihood", ":material/swap_vert:",
                         default="flow"),)))
register(Family(name="cold", model="genmodels.cold:ColdDiffusion", recipe="train.cold", section=DIFFUSION_SECTION,
                bench="bench.families:cold", pages=(
                    Page("app_pages/cold_diffusion.py", "Cold diffusion: restoring a degradation",
                         ":material/ac_unit:", default="cold-pixelate"),)))
register(Family(
    name="gan", model="genmodels.gan:GAN", recipe="train.gan", section=GAN_SECTION, bench="bench.families:gan",
    pages=(
        Page("app_pages/gan_walk.py", "GAN latent walks", ":material/route:", accepts=_unconditional,
             default="gan-dcgan"),
        Page("app_pages/gan_training.py", "GAN training dynamics", ":material/swords:", explains=_never),
        Page("app_pages/gan_backbones.py", "GAN backbones: MLP and DCGAN", ":material/stacks:",
             accepts=_unconditional, explains=_never),
        Page("app_pages/gan_conditional.py", "Conditional GAN", ":material/category:", accepts=_conditional,
             default="cgan-mlp"),
    ),
))
register(Family(
    name="rbm", model="genmodels.rbm:RBM", recipe="train.rbm", section=EBM_SECTION, bench="bench.families:rbm",
    pages=(
        Page("app_pages/rbm_missing_rows.py", "Reconstruct missing rows", ":material/format_paint:",
             default="rbm-256"),
        Page("app_pages/rbm_gibbs.py", "Gibbs sampling", ":material/cycle:", explains=_never, default="rbm-256"),
        Page("app_pages/rbm_hyperparameters.py", "RBM hyperparameters", ":material/tune:", explains=_never),
    ),
))
register(Family(
    name="dbm", model="genmodels.rbm:DBM", recipe="train.dbm", section=EBM_SECTION,
    pages=(Page("app_pages/rbm_filters.py", "Filters and samples: RBM and DBM", ":material/grid_view:",
                default="dbm"),),
))
register(Family(
    name="autoencoder", model="genmodels.autoencoder:Autoencoder", recipe="train.autoencoder", section=AE_SECTION,
    generative=False,
    pages=(
        Page("app_pages/ae_restore.py", "Restoring autoencoders", ":material/healing:", accepts=_conv,
             default="ae-mix-16"),
        Page("app_pages/ae_vs_vae.py", "Autoencoder against VAE", ":material/compare:", accepts=_plain_mlp,
             default="ae-mlp-2d"),
    ),
))
register(Family(name="classifier", model="genmodels.classifier:Classifier", recipe="train.classifier",
                generative=False, judge=True))


# Pages about every family at once, first in the navigation: the zoo (the app's home) and the comparison.
OVERVIEW_SECTION = "Overview"
OVERVIEW = (Page("app_pages/home.py", "Model zoo", ":material/grid_view:"),
            Page("app_pages/compare.py", "Compare every model", ":material/leaderboard:"))


# --- reading the registry -------------------------------------------------------------------------------
def family(name: str) -> Family:
    """The family called ``name``; KeyError names the known ones."""
    if name not in FAMILIES:
        raise KeyError(f"unknown model family '{name}'; this genmodels knows {', '.join(sorted(FAMILIES))}")
    return FAMILIES[name]


def pages() -> list[tuple[Family, Page]]:
    """Every page of every family, in navigation order."""
    return [(f, p) for f in FAMILIES.values() for p in f.pages]


def page_paths() -> list[str]:
    """Every page's file, in navigation order: the overview pages (the model zoo first), then each family's."""
    return [p.path for p in OVERVIEW] + [p.path for _, p in pages()]


def page(path: str) -> tuple[Family, Page]:
    """The family and page of a page file."""
    for f, p in pages():
        if p.path == path:
            return f, p
    raise KeyError(f"no registered page '{path}'")


def sections() -> dict[str, list[Page]]:
    """Navigation heading -> its pages, in registration order."""
    out: dict[str, list[Page]] = {}
    for f, p in pages():
        out.setdefault(f.section, []).append(p)
    return out


def is_generative(config: dict) -> bool:
    """Whether a checkpoint is a generative model (unknown families count as one: their card says why they fail)."""
    f = FAMILIES.get(config.get("family", ""))
    return f is None or f.generative


def is_judge(config: dict) -> bool:
    """Whether a checkpoint is of the family that scores the others (the classifier)."""
    f = FAMILIES.get(config.get("family", ""))
    return f is not None and f.judge


def page_for(config: dict) -> str | None:
    """The page that explains a checkpoint best (the model zoo links there), or None."""
    f = FAMILIES.get(config.get("family", ""))
    if f is None:
        return None
    return next((p.path for p in f.pages if p.is_home_of(config)), None)


# --- loading ------------------------------------------------------------------------------------------
def load(source: str | os.PathLike, revision: str | None = None, local_files_only: bool = False,
         hub: bool | None = None) -> HubModel:
    """Load any genmodels checkpoint, whatever its family, in eval mode.

    ``source`` is a local folder or a Hub repo id (``owner/name``); ``revision`` a Hub
    branch, tag or commit; ``local_files_only`` reads a Hub repo from the local cache only (fast when the Hub
    cannot be reached); ``hub`` True reads only the Hub, False only a local folder (None: a folder if one of that
    name exists). The family is read from ``config.json``; every file is checked before it is used (see
    ``HubModel._from_pretrained``), and what was wrong with the optional ones is in ``model.problems``.
    """
    config = read_config(source, revision, local_files_only, hub)
    name = config["family"]
    if name not in FAMILIES:
        raise CheckpointError(f"{source}: unknown model family '{name}' in {CONFIG}; this genmodels "
                              f"knows {', '.join(sorted(FAMILIES))}. Upgrade genmodels?")
    cls = FAMILIES[name].model_class()
    known = {f.name for f in dataclasses.fields(cls.config_class)}
    unknown = sorted(set(config) - known)
    if unknown:
        raise CheckpointError(f"{source}: {CONFIG} has keys {unknown} that the {name} config does not "
                              f"know. It was written by another version of genmodels.")
    # Built from the config read above (``_from_pretrained`` checks it before building anything): the mixin's
    # from_pretrained would read config.json again, unchecked, and would take a folder of the repo's name for it.
    model = cls._from_pretrained(model_id=str(source), revision=revision, cache_dir=None, force_download=False,
                                 local_files_only=local_files_only, token=None, hub=hub,
                                 config=cls.config_class(**config))
    model.source = str(source)
    model.revision = revision
    model.fingerprint = fingerprint(resolve(source, WEIGHTS, revision=revision,
                                            local_files_only=local_files_only or None, hub=hub))
    if model.stored_views is not None and model.stored_views.weights != model.fingerprint:
        model.stored_views = None
        model.problems.append(f"{source}: {VIEWS} was computed for other weights than {WEIGHTS} (the model was "
                              f"retrained, or the files come from two checkpoints), so pages compute their first "
                              f"views themselves. Write it again with `python -m train.views {source}`.")
    return model


def fingerprint(path: str | os.PathLike) -> str:
    """The first 16 hex digits of the SHA-256 of a file: names one set of weights, wherever it lies."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]

