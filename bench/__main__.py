"""``python -m bench [--quick]``: the app's start-up, loading, rendering, memory and training speed.

Each section prints a markdown table with the target it is held to. Timings are medians of
repeats on this machine; memory is measured in a fresh subprocess as the growth of its resident
set over a bare ``import torch``.
"""

import argparse
import os
import statistics
import subprocess
import sys
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED_DATA = ROOT.parent / "shared" / "data"
if "GENMODELS_DATA" not in os.environ and SHARED_DATA.is_dir():
    os.environ["GENMODELS_DATA"] = str(SHARED_DATA)
os.environ.setdefault("HF_HUB_OFFLINE", "1")

PAGES = ["app_pages/home.py", "app_pages/vae_priors.py", "app_pages/vae_latent.py", "app_pages/vae_beta.py",
         "app_pages/vae_conditional.py", "app_pages/ddpm.py", "app_pages/ddpm_training.py",
         "app_pages/ddpm_inpainting.py"]


def table(title: str, header: list[str], rows: list[list]) -> None:
    print(f"\n### {title}\n")
    print("| " + " | ".join(header) + " |")
    print("|" + "---|" * len(header))
    for row in rows:
        print("| " + " | ".join(str(c) for c in row) + " |")
    sys.stdout.flush()


def python(code: str) -> str:
    out = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT, capture_output=True, text=True,
                         env={**os.environ, "PYTHONPATH": str(ROOT)}, check=True)
    return out.stdout.strip()


def bench_imports(repeats: int) -> None:
    """Cold imports in fresh interpreters: torch alone, then everything the app imports."""
    def timed(stmt: str) -> float:
        return float(python(f"import time; t = time.perf_counter(); {stmt}; print(time.perf_counter() - t)"))

    torch_s = statistics.median(timed("import torch") for _ in range(repeats))
    app_s = statistics.median(timed("import torch, streamlit, plotly, genmodels, genmodels.vae, app_pages.common")
                              for _ in range(repeats))
    table("Import time (fresh interpreter)", ["what", "median s", "note"], [
        ["import torch", f"{torch_s:.2f}", "reference"],
        ["import the app (torch, streamlit, plotly, genmodels, app_pages.common)", f"{app_s:.2f}",
         f"{app_s / torch_s:.1f}x torch alone"],
    ])


def bench_loading(repeats: int) -> None:
    import genmodels
    from genmodels.checkpoint import list_checkpoints

    rows = []
    for location, config in list_checkpoints(ROOT / "checkpoints"):
        genmodels.load(location)  # warm the file cache
        times = []
        for _ in range(repeats):
            t = time.perf_counter()
            genmodels.load(location)
            times.append(time.perf_counter() - t)
        ms = 1000 * statistics.median(times)
        size = (Path(location) / "model.safetensors").stat().st_size / 1e6
        rows.append([Path(location).name, config["family"], f"{size:.1f}", f"{ms:.0f}",
                     "ok" if ms < 200 else "OVER 200 ms"])
    table("Checkpoint load time (genmodels.load, warm file cache)", ["checkpoint", "family", "MB", "median ms",
                                                                     "target < 200 ms"], rows)


def bench_pages() -> None:
    """First full render of each page with empty Streamlit caches, imports already done."""
    import streamlit as st
    from streamlit.testing.v1 import AppTest

    app = str(ROOT / "streamlit_app.py")
    AppTest.from_file(app, default_timeout=300).run()  # imports and module-level work, once
    rows = []
    for page in PAGES:
        at = AppTest.from_file(app, default_timeout=300)
        if page != PAGES[0]:
            at.run()  # the entry page first, as a visitor arrives; then the caches are emptied
        st.cache_data.clear()
        st.cache_resource.clear()
        t = time.perf_counter()
        if page == PAGES[0]:
            at.run()
        else:
            at.switch_page(page).run()
        s = time.perf_counter() - t
        ok = "ok" if s <= 3 and not at.exception else ("EXCEPTION" if at.exception else "OVER 3 s")
        rows.append([page, f"{s:.2f}", ok])
    table("First full render of each page (AppTest, cold Streamlit caches)", ["page", "s", "target <= 3 s"], rows)


def bench_memory() -> None:
    """RSS growth over a bare `import torch` with every shipped model loaded and every page rendered."""
    out = python(f"""
        def rss():
            for line in open('/proc/self/status'):
                if line.startswith('VmRSS'):
                    return int(line.split()[1]) / 1024
        import torch
        base = rss()
        from streamlit.testing.v1 import AppTest
        at = AppTest.from_file({str(ROOT / 'streamlit_app.py')!r}, default_timeout=300)
        at.run()
        for page in {PAGES[1:]!r}:
            at.switch_page(page).run()
        from genmodels.checkpoint import list_checkpoints
        from app_pages.common import load_model
        n = 0
        for location, _ in list_checkpoints({str(ROOT / 'checkpoints')!r}):
            load_model(location); n += 1
        print(base, rss(), n)
    """)
    base, full, n = out.splitlines()[-1].split()
    growth = float(full) - float(base)
    table("Memory of the app process", ["what", "MB"], [
        ["RSS after `import torch`", f"{float(base):.0f}"],
        [f"RSS with the app imported, every page rendered, all {n} models loaded once (8 stay cached)",
         f"{float(full):.0f}"],
        ["growth over bare torch (target <= 300)", f"{growth:.0f} {'ok' if growth <= 300 else 'OVER'}"],
    ])


def bench_vae(quick: bool) -> None:
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


def bench_ddpm(quick: bool) -> None:
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
    for name, steps_arg in (("DDIM, 50 steps", 50), ("DDIM, 10 steps", 10), ("DDPM, all 1000 steps", None)):
        t = time.perf_counter()
        model.sample(16, generator=torch.Generator().manual_seed(0), steps=steps_arg)
        rows.append([f"16 samples, {name}", f"{time.perf_counter() - t:.2f}", ""])
    table(f"DDPM (U-Net 32/64/64, {model.num_parameters():,} parameters, CPU)", ["what", "s", "rate"], rows)


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    p.add_argument("--only", choices=["imports", "loading", "pages", "memory", "vae", "ddpm"], nargs="*")
    args = p.parse_args()
    repeats = 3 if args.quick else 5
    only = set(args.only or ["imports", "loading", "pages", "memory", "vae", "ddpm"])
    print(f"## genmodels benchmarks ({os.cpu_count()} cores, python {sys.version.split()[0]})")
    if "imports" in only:
        bench_imports(repeats)
    if "loading" in only:
        bench_loading(repeats)
    if "pages" in only:
        bench_pages()
    if "memory" in only:
        bench_memory()
    if "vae" in only:
        bench_vae(args.quick)
    if "ddpm" in only:
        bench_ddpm(args.quick)


if __name__ == "__main__":
    main()
