"""``python -m bench --only first-views``: a student's first view of each page, in a real browser, on a fresh server.

A student arrives at the model zoo (the home page) and then opens a page. So for every page: a new ``streamlit
run`` (nothing imported, nothing cached), one headless Chromium that opens the zoo (timed: the server's wake-up,
which imports torch and the app once per process and loads every shipped model for the cards) and then the page
from the sidebar menu (timed: the page's own first view, its computations and figures not cached yet), each
until the page has finished rendering (no spinner, no skeleton). On an idle machine, then beside a CPU hog (one
busy process per core), as on a laptop that is doing something else. Targets (issue 12): 3 s idle and 6 s beside
the hog for a page's first view.
"""

import multiprocessing
import time
from pathlib import Path

from bench import table
from bench.browser import (
    BrowserError,
    chromium,
    open_from_menu,
    problems_on_page,
    start_server,
    stop_server,
    wait_for_render,
)
from bench.load import PAGES

ROOT = Path(__file__).resolve().parent.parent


def _spin() -> None:
    while True:
        pass


def first_view(page: str) -> tuple[float, float, list[str]]:
    """Seconds from asking for the zoo on a fresh server to its finished render, then from asking for ``page`` to
    its finished render, and the problems shown on either."""
    proc, url = start_server(ROOT / "bench" / "out" / "first-views-server.log")
    driver = chromium(1400, 1400)
    try:
        driver.get(f"{url}/_stcore/health")  # the browser itself warmed up, so its own start is not counted
        started = time.perf_counter()
        driver.get(url)
        wait_for_render(driver, timeout=300, settle=0.2)
        zoo = time.perf_counter() - started
        problems = problems_on_page(driver)
        if problems:
            return zoo, float("nan"), problems
        started = time.perf_counter()
        open_from_menu(driver, page)
        return zoo, time.perf_counter() - started, problems_on_page(driver)
    except BrowserError as err:
        return float("nan"), float("nan"), [str(err)]
    finally:
        driver.quit()
        stop_server(proc)


def run(only: list[str] | None = None) -> None:
    """Every page's first view (or those in ``only``), idle and beside one busy process per core."""
    pages = [page for page in PAGES if page and (not only or page in only)]  # the zoo: the wake-up column
    rows = {page: [f"/{page}"] for page in pages}
    for busy in (False, True):
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(multiprocessing.cpu_count())]
        for hog in hogs if busy else []:
            hog.start()
        try:
            for page in pages:
                zoo, seconds, problems = first_view(page)
                target = 6 if busy else 3
                rows[page] += [f"{zoo:.1f}", f"{seconds:.1f} {'ok' if seconds <= target else 'OVER'}"
                               + (f" ({problems[0][:60]})" if problems else "")]
        finally:
            for hog in hogs if busy else []:
                hog.kill()
    cores = multiprocessing.cpu_count()
    table("First views in Chromium: the zoo on a fresh server (its wake-up), then the page",
          ["page", "idle: zoo s", "idle: page s (target 3)", f"beside {cores} busy processes: zoo s",
           "page s (target 6)"], list(rows.values()))
