"""GAN latent walks: straight and spherical paths between two codes, along a random direction and along
the direction that changes one attribute most, and the same walk through a VAE's latent space and a flow's."""

import numpy as np
import streamlit as st
import torch

from app_pages.common import (
    find_judge,
    lazy_tabs,
    model_card,
    pick_checkpoint,
    pick_other,
    show_code,
    show_images,
)
from genmodels import figures
from genmodels.flow import Flow
from genmodels.gan import GAN, attribute_direction, attribute_walk, expected_norm, lerp, slerp

PATHS = {"spherical (slerp)": slerp, "linear (lerp)": lerp}


def introduction() -> None:
    st.title("GAN latent walks")
    st.markdown(
        "A GAN's generator $G$ turns a code $z \\sim p(z)$ into an image in one pass: there is no encoder and "
        "no likelihood, only a discriminator $D$ that was trained to tell $G$'s images from real ones while $G$ "
        "was trained to fool it. Walking through the code space shows what $G$ learned: whether nearby codes "
        "give nearby images, whether every point on the way is a digit, and which directions mean something."
    )
    st.latex(r"\min_G \max_D \; \mathbb{E}_{x\sim p_{\text{data}}}\big[\log D(x)\big] + "
             r"\mathbb{E}_{z\sim p(z)}\big[\log\big(1 - D(G(z))\big)\big]")
    st.markdown(
        "**Questions** (Leuven 4.2.4 and 4.3.3): explore the latent space and discuss. Do the images change "
        "smoothly? What lies between two digits? How does the generation of a GAN compare with a VAE's decoder "
        "fed the same walk?"
    )


def walk_controls() -> tuple[int, int, str, int]:
    """(seed of the first code, seed of the second, path, frames)."""
    c1, c2, c3, c4 = st.columns(4)
    seed_a = int(c1.number_input("Seed of the first code", 0, 100_000, 1, key="walk_seed_a"))
    seed_b = int(c2.number_input("Seed of the second code", 0, 100_000, 2, key="walk_seed_b"))
    path = c3.radio("Path", list(PATHS), key="walk_path", help="Both paths are drawn; this one is animated.")
    frames = int(c4.slider("Frames", 5, 24, 12, key="walk_frames"))
    return seed_a, seed_b, path, frames


def codes(model, seed: int) -> torch.Tensor:
    """One code from the model's prior, from ``seed``: a GAN's p(z), a VAE's prior, or a flow's N(0, I)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        if isinstance(model, GAN):
            return model.sample_noise(1, g)[0]
        if isinstance(model, Flow):
            return torch.randn(sum(c * h * w for c, h, w in model.shapes), generator=g)
        return model.prior.sample(1, generator=g)[0]


def show_walk(model: GAN, seed_a: int, seed_b: int, path: str, frames: int) -> None:
    st.subheader("Between two codes")
    z0, z1 = codes(model, seed_a), codes(model, seed_b)
    t = torch.linspace(0, 1, frames)
    rows = {name: interpolate(z0, z1, t) for name, interpolate in PATHS.items()}
    show_images(torch.cat([model.generate(z) for z in rows.values()]), nrow=frames, height=190,
                title="top: spherical, bottom: linear; left: seed " + f"{seed_a}, right: seed {seed_b}")
    left, right = st.columns([1, 1])
    with left:
        st.plotly_chart(figures.image_animation(model.generate(rows[path]), [f"t = {v:.2f}" for v in t.tolist()],
                                                height=330, title=f"{path}, animated"),
                        width="stretch", key="walk_animation")
    with right:
        typical = expected_norm(model.latent_dim, model.config.noise)
        norms = {name: z.norm(dim=1).tolist() for name, z in rows.items()}
        norms["typical |z| of p(z)"] = [typical] * frames
        st.plotly_chart(figures.lines(t.tolist(), norms, "the length of the code along the path", "t", "|z|"),
                        width="stretch")
    st.markdown(
        f"In {model.latent_dim} dimensions almost every code of $p(z)$ lies near a sphere of radius about "
        f"{typical:.1f}: the straight line between two codes cuts inside it, through codes the generator almost "
        "never saw in training, which often come out fainter or blurrier in the middle. The spherical path stays "
        "on the shell (White, 2016). Both paths should pass through digits only: frames that are not digits, or "
        "a sudden jump from one digit to another, show where $G$ maps a stretch of codes onto few images."
    )


def direction_controls(n_classes: int) -> tuple[int, float, int]:
    """(seed of the random direction, how far to walk, the digit the attribute walk heads for)."""
    c1, c2, c3 = st.columns(3)
    seed = int(c1.number_input("Seed of the random direction", 0, 100_000, 0, key="walk_direction_seed"))
    reach = float(c2.slider("How far to walk (in |z| units)", 1.0, 20.0, 8.0, step=1.0, key="walk_reach"))
    target = int(c3.selectbox("Attribute: how much it looks like", range(n_classes), index=8,
                              format_func=lambda d: f"digit {d}", key="walk_target"))
    return seed, reach, target


def show_directions(model: GAN, seed_a: int, frames: int) -> None:
    st.subheader("Along a direction")
    st.markdown(
        "From the first code, walk along a random direction (a straight line), and along the direction in which "
        "the judge's (the shipped MNIST classifier's) log-probability of one digit rises fastest, the gradient "
        "of $\\log p(\\text{digit} \\mid G(z))$ with respect to $z$. A random direction changes several things "
        "at once (class, slant, thickness). The gradient is the direction that changes the chosen attribute most, "
        "but only near where it was taken: the generator and the judge are far from linear, so the attribute "
        "walk takes small steps and follows the gradient afresh at each (steepest ascent), a curved path. The "
        "judge's curve below shows how the attribute grows along it."
    )
    judge = find_judge()
    seed, reach, target = direction_controls(10)
    z0 = codes(model, seed_a)
    u = torch.randn(model.latent_dim, generator=torch.Generator().manual_seed(seed))
    steps = torch.linspace(-reach, reach, frames)
    random_walk = z0 + steps[:, None] * (u / u.norm())
    show_images(model.generate(random_walk), nrow=frames, height=110,
                title=f"a random direction, from -{reach:g} to +{reach:g} around the first code")
    if judge is None:
        st.warning("No classifier checkpoint could be loaded, so the attribute direction cannot be computed. Train "
                   "one with `python -m train classifier --out checkpoints/mnist-classifier`.")
        return
    ahead = torch.linspace(0, reach, frames)
    images = model.generate(attribute_walk(model, judge, z0, target, reach, frames))
    show_images(images, nrow=frames, height=110, title=f"towards 'digit {target}', a path {reach:g} long")
    probability = judge.predict_proba(images)[:, target]
    st.plotly_chart(figures.lines(ahead.tolist(), {f"p(digit {target} | image)": probability.tolist()},
                                  "the judge along the attribute walk", "distance walked", "probability"),
                    width="stretch")


def show_vae_beside(model: GAN, seed_a: int, seed_b: int, path: str, frames: int) -> None:
    st.subheader("The same walk through a VAE and a flow")
    left, right = st.columns(2)
    picked = pick_other("vae", lambda c: not c.get("n_classes") and c.get("image_channels", 1) == 1, "vae-vamp-32d",
                        "unconditional VAE of grey images", "walk_vae", where=left)
    flow = pick_other("flow", lambda c: True, "flow", "normalizing flow", "walk_flow", where=right)
    if picked is None:
        return
    vae, name = picked
    t = torch.linspace(0, 1, frames)
    with torch.no_grad():
        rows = {"GAN": model.generate(PATHS[path](codes(model, seed_a), codes(model, seed_b), t)),
                "VAE": vae.decode_mean(PATHS[path](codes(vae, seed_a), codes(vae, seed_b), t))}
        names = f"top: the GAN, then {name}"
        if flow is not None:
            rows["flow"] = flow[0].decode(PATHS[path](codes(flow[0], seed_a), codes(flow[0], seed_b), t))
            names += f", then {flow[1]}"
    show_images(torch.cat(list(rows.values())), nrow=frames, height=95 * len(rows),
                title=f"{names} ({path}, codes from each model's prior, same seeds)")
    sharpness = {name: float(np.mean(np.minimum(row.numpy(), 1 - row.numpy()))) for name, row in rows.items()}
    st.markdown(
        "The VAE's decoder was trained to reconstruct: it maps each code to the *mean* of $p(x \\mid z)$, so a "
        "code between two digits decodes to a smooth blend, grey where the digits disagree. The GAN's generator "
        "was trained only to fool a discriminator, which rejects blends, so its frames stay sharp and the change "
        "happens in fewer frames. Grey pixels in numbers, the mean of min(p, 1 - p) over all pixels "
        "(0 for pure black and white): " + ", ".join(f"{k} {v:.3f}" for k, v in sharpness.items()) + ". The VAE "
        "pays with blur for a code space that covers every training digit (its encoder must find a code for "
        "each); the GAN is free to ignore digits it finds hard, which the class histograms of the training page "
        "check."
        + (" The flow's code has as many numbers as the image (784) and its decoder is the exact inverse of its "
           "encoder: every code is some image, and its samples carry the texture of its Gaussian. On the linear "
           "path the middle codes are shorter than typical ones (in 784 dimensions almost every draw has length "
           "near 28), and a short code decodes to a smoother, more typical digit, as a temperature below 1 does; "
           "the spherical path keeps the length, and the texture." if flow is not None else "")
    )


introduction()
model: GAN = pick_checkpoint(__file__)
seed_a, seed_b, path, frames = walk_controls()
lazy_tabs({"Between two codes": lambda: show_walk(model, seed_a, seed_b, path, frames),
           "Along a direction": lambda: show_directions(model, seed_a, frames),
           "Beside a VAE and a flow": lambda: show_vae_beside(model, seed_a, seed_b, path, frames)}, key="walk_tab")
show_code(slerp, attribute_direction, attribute_walk, GAN.generate)
model_card(model)
