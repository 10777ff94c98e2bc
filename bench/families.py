"""Each family's benchmarks, named in ``genmodels.registry`` (``Family.bench``) and run by ``python -m bench``."""

import statistics
import time

from bench import table


def vae(quick: bool) -> None:
    """VAE training throughput and the aggregate-posterior figure."""
    import numpy as np
    import torch

    from genmodels import figures, latent
    from genmodels.data import load_dataset
    from genmodels.vae import VAE, VAEConfig

    data = load_dataset("binarized-mnist", train=True, subset=4096)
    rows = []
    for prior, dim in (("gaussian", 32), ("mog", 32), ("vamp", 32), ("gaussian", 2)):
        torch.manual_seed(0)
        model = VAE(VAEConfig(prior=prior, latent_dim=dim))
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        steps = 8 if quick else 24
        t = time.perf_counter()
        for i in range(steps):
            x = data.images[(i * 128) % 3968: (i * 128) % 3968 + 128]
            loss = model.loss(x)
            opt.zero_grad()
            loss.backward()
            opt.step()
        rate = steps * 128 / (time.perf_counter() - t)
        rows.append([f"{prior}, latent {dim}", f"{rate:,.0f}", f"{60000 / rate:.1f}"])
    table("VAE training throughput (MLP 784-512-512, batch 128, CPU)", ["prior", "images/s", "s per epoch"], rows)

    model = VAE(VAEConfig(prior="mog", latent_dim=32)).eval()
    x = data.images[:2000]
    labels = data.labels[:2000].numpy()
    times = []
    for _ in range(3):
        t = time.perf_counter()
        with torch.no_grad():
            mu, logvar = model.encode(x)
            prior_z = model.prior.sample(2000).numpy()
        proj = latent.fit_projection(mu.numpy())
        py, qy = proj(prior_z), proj(mu.numpy())
        xs, ys = latent.grid_around(np.concatenate([py, qy]))
        density = (xs, ys, latent.prior_density_grid(model.prior, proj, xs, ys))
        figures.latent_scatter(py, qy, labels, density=density).to_json()
        times.append(time.perf_counter() - t)
    table("Aggregate-posterior plot (2,000 points, 32-d MoG prior, projected, with density)",
          ["what", "median s"], [["encode + project + density grid + figure JSON", f"{statistics.median(times):.2f}"]])


def ddpm(quick: bool) -> None:
    """DDPM training throughput and sampling time for the U-Net the project ships (channels 32/64/64):
    float32, then channels_last memory with bfloat16 autocast (what ``python -m train ddpm --bf16`` does)."""
    import torch

    from genmodels.data import load_dataset
    from genmodels.ddpm import DDPM, DDPMConfig

    torch.manual_seed(0)
    model = DDPM(DDPMConfig(channels=[32, 64, 64]))
    opt = torch.optim.Adam(model.unet.parameters(), lr=2e-4)
    data = load_dataset("mnist", train=True, subset=1024).images
    steps = 3 if quick else 8
    rows = []
    for name, fast in (("float32", False), ("channels_last + bf16 autocast", True)):
        if fast:
            model.to(memory_format=torch.channels_last)
            data = data.contiguous(memory_format=torch.channels_last)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
            model.loss(data[:128]).backward()  # warm-up
        t = time.perf_counter()
        for i in range(steps):
            with torch.autocast("cpu", dtype=torch.bfloat16, enabled=fast):
                loss = model.loss(data[(i * 128) % 896: (i * 128) % 896 + 128])
            opt.zero_grad()
            loss.backward()
            opt.step()
            model.update_ema()
        step_s = (time.perf_counter() - t) / steps
        rows.append([f"training step, batch 128, {name}", f"{step_s:.3f}",
                     f"{128 / step_s:,.0f} images/s, {60000 / 128 * step_s / 60:.1f} min per epoch"])
    model.eval()
    for name, kwargs in (("DDIM, 50 steps", {"steps": 50}), ("DDIM, 10 steps", {"steps": 10}),
                         ("DPM-Solver++(2M), 20 steps, eta 1 (the app's)",
                          {"steps": 20, "method": "dpm++", "eta": 1.0}),
                         ("DDPM, all 1000 steps", {"steps": None})):
        t = time.perf_counter()
        model.sample(16, generator=torch.Generator().manual_seed(0), **kwargs)
        rows.append([f"16 samples, {name}", f"{time.perf_counter() - t:.2f}", ""])
    table(f"DDPM (U-Net 32/64/64, {model.num_parameters():,} parameters, CPU)", ["what", "s", "rate"], rows)


def gan(quick: bool) -> None:
    """GAN training throughput per backbone (one D step and one G step per batch of 128, as `python -m train
    gan` takes them) and the time to draw a 16-frame latent walk."""
    import torch

    from genmodels.data import load_dataset
    from genmodels.gan import GAN, GANConfig, slerp
    from train import gan as recipe
    from train.loop import StepContext, TrainConfig

    data = load_dataset("mnist", train=True, subset=2048)
    steps = 4 if quick else 12
    rows = []
    for backbone, spectral in (("mlp", False), ("dcgan", False), ("dcgan", True)):
        torch.manual_seed(0)
        model = GAN(GANConfig(backbone=backbone, spectral_norm=spectral))
        config = TrainConfig(lr=2e-4, betas=(0.5, 0.999), epochs=1)
        opts = recipe.optimizers(model, config, None)
        ctx = StepContext(config, torch.device("cpu"))
        recipe.train_step(model, [data.images[:128], data.labels[:128]], opts, ctx)  # warm-up
        t = time.perf_counter()
        for i in range(steps):
            batch = [data.images[(i * 128) % 1920:(i * 128) % 1920 + 128], data.labels[:128]]
            recipe.train_step(model, batch, opts, ctx)
            model.update_ema(i + 1)
        rate = steps * 128 / (time.perf_counter() - t)
        rows.append([f"{backbone}{' + spectral norm' if spectral else ''}", f"{model.num_parameters():,}",
                     f"{rate:,.0f}", f"{60000 / rate:.0f}"])
    table("GAN training throughput (batch 128, CPU)", ["backbone", "parameters", "images/s", "s per epoch"], rows)

    model = GAN(GANConfig()).eval()
    z0, z1 = model.sample_noise(2, torch.Generator().manual_seed(0))
    times = []
    for _ in range(5):
        t = time.perf_counter()
        model.generate(slerp(z0, z1, torch.linspace(0, 1, 16)))
        times.append(time.perf_counter() - t)
    table("Latent walk", ["what", "median ms"], [["16 frames, spherical interpolation, DCGAN generator",
                                                  f"{1000 * statistics.median(times):.1f}"]])


def rbm(quick: bool) -> None:
    """The RBM beside scikit-learn's BernoulliRBM at the same settings (256 hidden units, learning rate 0.05,
    batch 64, PCD with one Gibbs step, MNIST binarized at 0.5): seconds per epoch, test pseudo-likelihood on
    the same pixels flipped, and the error filling in the bottom half of test digits from the same start."""
    import numpy as np
    import torch
    from sklearn.neural_network import BernoulliRBM

    from genmodels.data import load_dataset
    from genmodels.rbm import RBM, RBMConfig, flat, row_mask
    from train import rbm as recipe
    from train.loop import StepContext, TrainConfig

    epochs = 1 if quick else 5
    train = flat(load_dataset("binarized-mnist", train=True).images)
    test = flat(load_dataset("binarized-mnist", train=False).images)
    if quick:
        train = train[:20_000]

    reference = BernoulliRBM(n_components=256, learning_rate=0.05, batch_size=64, n_iter=epochs, random_state=0)
    t = time.perf_counter()
    reference.fit(train.numpy())
    seconds_ref = (time.perf_counter() - t) / epochs

    torch.manual_seed(0)
    model = RBM(RBMConfig(n_hidden=256, n_chains=64))
    model.init_from_data(train)
    config = TrainConfig(optimizer="sgd", lr=0.05, batch_size=64, epochs=epochs)
    opts = recipe.optimizers(model, config, None)
    ctx = StepContext(config, torch.device("cpu"))
    seconds = []
    generator = torch.Generator().manual_seed(0)
    for _ in range(epochs):
        t = time.perf_counter()
        order = torch.randperm(len(train), generator=generator)
        for start in range(0, len(train), 64):
            recipe.train_step(model, [train[order[start:start + 64]]], opts, ctx)
        seconds.append(time.perf_counter() - t)
    seconds = sum(seconds) / epochs
    model.eval()

    # the same flipped pixel per test image for both (scikit-learn draws it from RandomState(random_state))
    index = np.random.RandomState(0).randint(0, 784, len(test))
    reference.random_state = 0
    pl_ref = float(reference.score_samples(test.numpy()).mean())
    pl = model.pseudo_likelihood(test, index=torch.from_numpy(index)).mean().item()

    observed = row_mask(14, "bottom").reshape(1, -1).expand_as(test)
    start = torch.where(observed, test, torch.bernoulli(torch.full_like(test, 0.5), generator=generator))
    v = start.numpy().copy()
    reference.random_state = np.random.RandomState(0)
    for _ in range(50):
        v = np.where(observed.numpy(), test.numpy(), reference.gibbs(v))
    missing = ~observed
    err_ref = float(np.abs(v - test.numpy())[missing.numpy()].mean())
    filled = model.gibbs(start, 50, generator=torch.Generator().manual_seed(0), mask=observed)
    err = (filled - test).abs()[missing].mean().item()

    table(f"RBM against scikit-learn's BernoulliRBM ({epochs} epoch{'s' * (epochs > 1)} on "
          f"{len(train):,} images, CPU)",
          ["", "s per epoch", "test pseudo-likelihood", "fill error, bottom half, 50 clamped Gibbs steps"],
          [["scikit-learn BernoulliRBM", f"{seconds_ref:.2f}", f"{pl_ref:.1f}", f"{err_ref:.3f}"],
           ["genmodels RBM (train.rbm.train_step)", f"{seconds:.2f}", f"{pl:.1f}", f"{err:.3f}"]])


def _train_rate(model, images, steps: int, batch: int) -> float:
    """Training images per second of ``model.loss`` with Adam (the first step, which allocates, not counted)."""
    import torch

    opt = torch.optim.Adam(model.parameters(), lr=1e-4)
    for i in range(steps + 1):
        if i == 1:
            t = time.perf_counter()
        loss = model.loss(images[(i * batch) % (len(images) - batch):][:batch])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return steps * batch / (time.perf_counter() - t)


def flow(quick: bool) -> None:
    """Flow training throughput (the issue's one-scale baseline against the multi-scale default) and sampling time."""
    import torch

    from genmodels.data import load_dataset
    from genmodels.flow import Flow, FlowConfig

    data = load_dataset("mnist", train=True, subset=2048).images
    rows = []
    for name, config in (("one scale, 8 checkerboard steps, 64 channels (the baseline)",
                          FlowConfig(levels=0, steps=8, hidden=64, blocks=1, invconv=False)),
                         ("2 levels, 4 steps per stage, 64 channels, 1x1 convolutions (the default)", FlowConfig())):
        torch.manual_seed(0)
        model = Flow(config)
        rate = _train_rate(model, data, 2 if quick else 6, 64)
        model.eval()
        t = time.perf_counter()
        model.sample(64, generator=torch.Generator().manual_seed(0))
        per_image = (time.perf_counter() - t) / 64
        rows.append([name, f"{model.num_parameters():,}", f"{rate:,.0f}", f"{60000 / rate / 60:.1f}",
                     f"{per_image * 1000:.1f}"])
    table("Normalizing flow (batch 64, CPU)", ["model", "parameters", "training images/s", "min per epoch",
                                               "ms per sample"], rows)


def cold(quick: bool) -> None:
    """Cold diffusion training throughput and sampling time per image (all T steps) for both degradations."""
    import torch

    from genmodels.cold import ColdConfig, ColdDiffusion
    from genmodels.data import load_dataset

    data = load_dataset("mnist", train=True, subset=2048).images
    rows = []
    for degradation in ("pixelate", "blur"):
        torch.manual_seed(0)
        model = ColdDiffusion(ColdConfig(degradation=degradation))
        rate = _train_rate(model, data, 2 if quick else 6, 128)
        model.eval()
        t = time.perf_counter()
        model.sample(64, generator=torch.Generator().manual_seed(0))
        per_image = (time.perf_counter() - t) / 64
        rows.append([degradation, f"{rate:,.0f}", f"{60000 / rate / 60:.1f}", f"{per_image * 1000:.1f}"])
    table("Cold diffusion (U-Net 32/64/64, T = 20, batch 128, float32, CPU)",
          ["degradation", "training images/s", "min per epoch", "ms per sample (20 steps)"], rows)
