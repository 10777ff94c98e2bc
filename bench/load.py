"""``python -m bench --only load [--sessions 10]``: a class arriving at the hosted demo at once.

Each of N headless Chromium sessions opens every page (each session starts at another page, so the server sees
all of them at the same time), waits until the page has rendered, then moves the page's first slider one step
(its main control) and waits for the rerun. The server runs in hosted mode, as the public demo does. Reported:
per page, the latency percentiles of opening it and of moving its control, over the sessions; the server's peak
resident memory; every exception or error box seen.
"""

import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

from bench import table
from bench.browser import (
    BrowserError,
    chromium,
    problems_on_page,
    start_server,
    stop_server,
    wait_for_render,
    wait_for_rerun,
)
from genmodels import registry

ROOT = Path(__file__).resolve().parent.parent
PAGES = ["", *(Path(path).stem for path in registry.page_paths()[1:])]  # url paths; "" is the model zoo


def rss_mb(pid: int) -> float:
    """Resident memory of a process, in MB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def move_main_control(driver) -> bool:
    """Press the right arrow on the main area's first slider: the page reruns with its next value."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    sliders = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"] [data-testid="stSlider"] '
                                                    'input[type="range"]')
    if not sliders:
        return False
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'}); arguments[0].focus();", sliders[0])
    ActionChains(driver).send_keys(Keys.ARROW_RIGHT).perform()
    return True


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(sessions: int = 10, hosted: bool = True, python: str = sys.executable) -> None:
    environ = {"GENMODELS_HOSTED": "1"} if hosted else {}
    proc, url = start_server(ROOT / "bench" / "out" / "load-server.log", environ, python)
    torch_build = subprocess.run([python, "-c", "import torch; print(torch.__version__)"], capture_output=True,
                                 text=True).stdout.strip()
    peak = {"rss": rss_mb(proc.pid)}
    idle = peak["rss"]
    done = threading.Event()

    def watch() -> None:
        while not done.is_set():
            peak["rss"] = max(peak["rss"], rss_mb(proc.pid))
            time.sleep(0.2)

    opened: dict[str, list[float]] = {p: [] for p in PAGES}
    moved: dict[str, list[float]] = {p: [] for p in PAGES}
    problems: list[str] = []
    drivers = [chromium(1200, 1400) for _ in range(sessions)]

    def visit(i: int, driver) -> None:
        for j in range(len(PAGES)):
            page = PAGES[(i + j) % len(PAGES)]
            try:
                started = time.perf_counter()
                driver.get(f"{url}/{page}")
                wait_for_render(driver, timeout=600, settle=0.3)
                opened[page].append(time.perf_counter() - started)
                if move_main_control(driver):
                    started = time.perf_counter()
                    wait_for_rerun(driver)
                    moved[page].append(time.perf_counter() - started)
                problems.extend(f"/{page}: {p}" for p in problems_on_page(driver))
            except (BrowserError, Exception) as err:  # noqa: BLE001 (reported in the summary)
                problems.append(f"/{page}: {type(err).__name__}: {str(err)[:200]}")

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    started = time.perf_counter()
    try:
        threads = [threading.Thread(target=visit, args=(i, d)) for i, d in enumerate(drivers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        wall = time.perf_counter() - started
        done.set()
        for driver in drivers:
            driver.quit()
        stop_server(proc)

    def cell(values: list[float], q: float) -> str:
        return f"{percentile(values, q):.1f}" if values else "-"

    rows = [[f"/{page}", cell(opened[page], 0.5), cell(opened[page], 0.9), cell(opened[page], 1.0),
             cell(moved[page], 0.5), cell(moved[page], 0.9)] for page in PAGES]
    every_open = [v for values in opened.values() for v in values]
    every_move = [v for values in moved.values() for v in values]
    rows.append(["all pages", cell(every_open, 0.5), cell(every_open, 0.9), cell(every_open, 1.0),
                 cell(every_move, 0.5), cell(every_move, 0.9)])
    table(f"Load: {sessions} browser sessions at once, each opening every page and moving its first slider "
          f"({'hosted mode' if hosted else 'local mode'}, torch {torch_build}; {wall:.0f} s in all)",
          ["page", "open p50 s", "open p90 s", "open max s", "control p50 s", "control p90 s"], rows)
    table("Load: server memory", ["server", "resident MB"],
          [["idle, after start", f"{idle:.0f}"], [f"peak with {sessions} sessions", f"{peak['rss']:.0f}"],
           ["mean page open, s", f"{statistics.mean(every_open):.1f}" if every_open else "-"]])
    table("Load: problems seen", ["problem"], [[p] for p in problems] or [["none"]])
