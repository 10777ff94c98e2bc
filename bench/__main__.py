"""``python -m bench [--quick]``: the app's start-up, loading, rendering, memory and training speed.

Each section prints a markdown table with the target it is held to. Timings are medians of
repeats on this machine; memory is measured in a fresh subprocess as the growth of its resident
set over a bare ``import torch``.
"""

import argparse
import importlib
import json
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

from bench import table  # noqa: E402 (after the path and the environment are set)
from genmodels import registry  # noqa: E402

PAGES = registry.page_paths()


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


def bench_threads(repeats: int) -> None:
    """The app's thread policy (app_pages.common.torch_threads): DDIM with 50 steps for 8 samples of the shipped
    DDPM, and two of them at once (two visitors), with 1 and with 2 intra-op torch threads and as the automatic
    policy decides (``auto_threads``: every core for a run alone on an idle host, else one), on an idle machine
    and beside a CPU hog (one busy process per core)."""
    code = """
        import os, sys, threading, time, statistics, torch, genmodels
        from app_pages.common import HostLoad, auto_threads
        if sys.argv[1] == "auto":
            load = HostLoad()
            time.sleep(1.2)  # two samples of the host's load
            alone, beside = (auto_threads(n, load.others_busy, os.cpu_count()) for n in (1, 2))
        else:
            alone = beside = int(sys.argv[1])
        model = genmodels.load("checkpoints/ddpm-linear")
        draw = lambda: model.sample(8, generator=torch.Generator().manual_seed(0), steps=50)
        one, two = [], []
        for _ in range(int(sys.argv[2])):
            torch.set_num_threads(alone)
            draw()
            t = time.perf_counter(); draw(); one.append(time.perf_counter() - t)
            torch.set_num_threads(beside)
            workers = [threading.Thread(target=draw) for _ in range(2)]
            t = time.perf_counter(); [w.start() for w in workers]; [w.join() for w in workers]
            two.append(time.perf_counter() - t)
        print(statistics.median(one), statistics.median(two), alone, beside)
    """
    rows = []
    for load in ("idle", "beside a CPU hog"):
        hogs = []
        if load != "idle":
            hogs = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(os.cpu_count() or 1)]
        try:
            for threads in ("1", "2", "auto"):
                out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), threads, str(repeats)],
                                     cwd=ROOT, capture_output=True, text=True, check=True,
                                     env={**os.environ, "PYTHONPATH": str(ROOT)})
                one, two, alone, beside = out.stdout.split()[-4:]
                label = threads if threads != "auto" else f"auto ({alone} alone, {beside} beside another)"
                rows.append([load, label, f"{float(one):.1f}", f"{float(two):.1f}"])
        finally:
            for hog in hogs:
                hog.kill()
    table("Thread policy: DDIM-50, 8 samples of ddpm-linear (a local app: auto; hosted: 1; GENMODELS_TORCH_THREADS)",
          ["machine", "torch threads", "one visitor, s", "two visitors at once, s"], rows)


def bench_malloc(repeats: int) -> None:
    """The hosted memory policy's price (streamlit_app.return_freed_memory_to_the_os): glibc's own malloc policy
    against a fixed 256 KB mmap threshold, on a U-Net-sized convolution loop and on 16 samples of the shipped DDPM
    (DDIM 10), one torch thread, in a fresh interpreter each."""
    code = """
        import ctypes, os, statistics, sys, time, torch, genmodels
        torch.set_num_threads(1)
        if sys.argv[1] == "hosted":
            libc = ctypes.CDLL("libc.so.6")
            libc.mallopt(-3, 256 * 1024); libc.mallopt(-8, 2)
        conv, x = torch.nn.Conv2d(32, 32, 3, padding=1), torch.randn(64, 32, 28, 28)
        model = genmodels.load("checkpoints/ddpm-linear")
        work = {"convolutions": lambda: [conv(x) for _ in range(50)],
                "DDIM 10": lambda: model.sample(16, generator=torch.Generator().manual_seed(0), steps=10)}
        with torch.no_grad():
            for name, run in work.items():
                run()
                times = []
                for _ in range(int(sys.argv[2])):
                    t, c = time.perf_counter(), os.times()
                    run()
                    times.append((time.perf_counter() - t, os.times().system - c.system))
                print(name, statistics.median(w for w, _ in times), statistics.median(s for _, s in times))
    """
    rows = []
    for policy in ("glibc's own", "hosted"):
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), policy.split("'")[0], str(repeats)],
                             cwd=ROOT, capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
        for line in out.stdout.splitlines():
            what, wall, system = line.rsplit(" ", 2)
            rows.append([what, policy, f"{float(wall):.2f}", f"{float(system):.2f}"])
    table("malloc policy (the app applies the hosted one only when GENMODELS_HOSTED=1)",
          ["work", "policy", "median s", "of which kernel (system) s"], rows)


def bench_sampling(repeats: int) -> None:
    """Sampling time per image of every family: the compare page's models (the shipped headline of each family),
    64 samples drawn as their recorded scores were, with 1 torch thread (the app's policy) and with 2, in a fresh
    interpreter each (the first draw, which allocates, not counted)."""
    code = """
        import json, statistics, sys, time, torch, genmodels
        from pathlib import Path
        from genmodels import compare, registry
        from genmodels.checkpoint import list_checkpoints
        torch.set_num_threads(int(sys.argv[1]))
        found = [(Path(loc).name, cfg, json.loads((Path(loc) / "metrics.json").read_text()))
                 for loc, cfg in sorted(list_checkpoints("checkpoints")) if registry.is_generative(cfg)]
        for name in compare.headline_models(found):
            model = genmodels.load(f"checkpoints/{name}")
            draw = lambda: compare.draw(model, 64, torch.Generator().manual_seed(0), **compare.FAST)
            _, sampler = draw()
            times = [compare.timed(draw)[1] for _ in range(int(sys.argv[2]))]
            print(json.dumps([name, model.config.family, sampler, statistics.median(times) / 64]))
    """
    found: dict[str, list] = {}
    for threads in (1, 2):
        out = subprocess.run([sys.executable, "-c", textwrap.dedent(code), str(threads), str(repeats)], cwd=ROOT,
                             capture_output=True, text=True, check=True,
                             env={**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": str(threads)})
        for line in out.stdout.splitlines():
            name, family, sampler, seconds = json.loads(line)
            found.setdefault(name, [family, sampler]).append(f"{seconds * 1000:.2f}")
    table("Sampling time per image (64 samples from seed 0, as the compare page draws them)",
          ["model", "family", "sampler", "ms an image, 1 thread", "ms an image, 2 threads"],
          [[name, *row] for name, row in found.items()])


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    p.add_argument("--quick", action="store_true", help="fewer repeats")
    families = {name: f.bench for name, f in registry.FAMILIES.items() if f.bench}
    sections = ["imports", "loading", "pages", "memory", "threads", "malloc", "sampling", *families]
    p.add_argument("--only", choices=[*sections, "first-views", "load"], nargs="*",
                   help="sections to run: the app's, then one per family; 'first-views' (a fresh server's first view "
                        "of each page in a browser, idle and busy) and 'load' (a crowd of browsers) take minutes and "
                        "run only when named")
    p.add_argument("--pages", nargs="*", default=None, metavar="PAGE",
                   help="first-views: only these pages (their URL names, for example ddpm rbm_gibbs; zoo: the zoo)")
    p.add_argument("--sessions", type=int, default=10, help="browser sessions of the load test")
    p.add_argument("--local", action="store_true", help="the load test against a local-mode server (default: hosted)")
    p.add_argument("--server-python", default=sys.executable,
                   help="the interpreter that serves the app in the load test (a venv with the CPU build of torch)")
    args = p.parse_args()
    repeats = 3 if args.quick else 5
    only = set(args.only or sections)
    print(f"## genmodels benchmarks ({os.cpu_count()} cores, python {sys.version.split()[0]})")
    if "imports" in only:
        bench_imports(repeats)
    if "loading" in only:
        bench_loading(repeats)
    if "pages" in only:
        bench_pages()
    if "memory" in only:
        bench_memory()
    if "threads" in only:
        bench_threads(2 if args.quick else 3)
    if "malloc" in only:
        bench_malloc(3 if args.quick else 5)
    if "sampling" in only:
        bench_sampling(1 if args.quick else 3)
    if "first-views" in only:
        from bench import first_views

        first_views.run(args.pages)
    if "load" in only:
        from bench import load

        load.run(args.sessions, hosted=not args.local, python=args.server_python)
    for name, entry in families.items():  # each family's own benchmarks, as the registry names them
        if name in only:
            module, _, function = entry.partition(":")
            getattr(importlib.import_module(module), function)(args.quick)


if __name__ == "__main__":
    main()
