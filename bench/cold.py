"""``python -m bench --only cold``: a student's first view of each page, in a real browser, on a fresh server.

For every page: a new ``streamlit run`` (nothing imported or cached yet beyond what start-up does), one headless
Chromium opening that page's address, and the time until the page has finished rendering; on an idle machine,
then beside a CPU hog (one busy process per core), as on a laptop that is doing something else. Targets: 3 s
idle, 6 s beside the hog (issue 12).
"""

import multiprocessing
import time
from pathlib import Path

from bench import table
from bench.browser import BrowserError, chromium, problems_on_page, start_server, stop_server, wait_for_render
from bench.load import PAGES

ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def first_view(page: str) -> tuple[float, list[str]]:
    """Seconds from asking for the page on a fresh server to its finished render, and the problems shown."""
    proc, url = start_server(ROOT / "bench" / "out" / "cold-server.log")
    driver = chromium(1400, 1400)
    try:
        driver.get(f"{url}/_stcore/health")  # the browser itself warmed up, so its own start is not counted
        started = time.perf_counter()
        driver.get(f"{url}/{page}")
        wait_for_render(driver, timeout=300, settle=0.2)
        return time.perf_counter() - started, problems_on_page(driver)
    except BrowserError as err:
        return float("nan"), [str(err)]
    finally:
        driver.quit()
        stop_server(proc)


def run() -> None:
    rows = {page: [f"/{page}"] for page in PAGES}
    for busy in (False, True):
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(multiprocessing.cpu_count())]
        for hog in hogs if busy else []:
            hog.start()
        try:
            for page in PAGES:
                seconds, problems = first_view(page)
                target = 6 if busy else 3
                rows[page].append(f"{seconds:.1f} {'ok' if seconds <= target else 'OVER'}"
                                  + (f" ({problems[0][:60]})" if problems else ""))
        finally:
            for hog in hogs if busy else []:
                hog.kill()
    table("First view of each page in Chromium, a fresh server each time",
          ["page", "idle, s (target 3)", f"beside {multiprocessing.cpu_count()} busy processes, s (target 6)"],
          list(rows.values()))
