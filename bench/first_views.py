"""``python -m bench --only first-views``: a student's first view of each page, in a real browser, on a fresh server.

A student arrives at the model zoo (the home page) and then opens a page. So for every page: a new ``streamlit
run`` (nothing imported, nothing cached), one headless Chromium that opens the zoo (timed: the server's wake-up,
which imports torch and the app once per process, and the zoo's own work) and then the page from the sidebar menu
(timed: the page's own first view, its computations and figures not cached yet), each until the page has finished
rendering (no spinner, no skeleton). The zoo's own first view is measured the same way: a fresh server woken by a
student who follows a link straight to another page (``WAKE_PAGE``), then the zoo from the menu, its cards not
loaded yet. On an idle machine, then beside a CPU hog (one busy process per core), as on a laptop that is doing
something else. Targets (issue 12): 3 s idle and 6 s beside the hog for a page's first view. The wake-up is the
process's, whichever page the first visitor lands on, and is reported beside it.
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
WAKE_PAGE = "vae_latent"  # the page whose address wakes the server before the zoo's own first view
ZOO = "zoo"  # the zoo's name in ``--pages`` (its address is the app's root)


def _spin() -> None:
    while True:
        pass


def first_view(page: str, land: str = "") -> tuple[float, float, list[str]]:
    """Seconds from asking for the page at address ``land`` (the zoo: the app's root) on a fresh server to its
    finished render (the server's wake-up), then from clicking ``page`` in the menu to its finished render (its own
    first view), and the problems shown on either."""
    proc, url = start_server(ROOT / "bench" / "out" / "first-views-server.log")
    driver = chromium(1400, 1400)
    try:
        driver.get(f"{url}/_stcore/health")  # the browser itself warmed up, so its own start is not counted
        started = time.perf_counter()
        driver.get(f"{url}/{land}")
        wait_for_render(driver, timeout=300, settle=0.2)
        wake = time.perf_counter() - started
        problems = problems_on_page(driver)
        if problems:
            return wake, float("nan"), problems
        started = time.perf_counter()
        open_from_menu(driver, page)
        return wake, time.perf_counter() - started, problems_on_page(driver)
    except BrowserError as err:
        return float("nan"), float("nan"), [str(err)]
    finally:
        driver.quit()
        stop_server(proc)


def later_visitors(visitors: int = 3) -> list[float]:
    """Seconds to the zoo's finished render for ``visitors`` students one after another, each in a fresh browser
    (nothing cached in it: Streamlit's frontend, plotly.js and the pictures are all fetched and parsed), on one
    server that the first visit woke up (its imports and models already loaded)."""
    proc, url = start_server(ROOT / "bench" / "out" / "first-views-server.log")
    times = []
    try:
        for _ in range(visitors + 1):  # the first visit wakes the server up and is not counted
            driver = chromium(1400, 1400)
            try:
                driver.get(f"{url}/_stcore/health")
                started = time.perf_counter()
                driver.get(url)
                wait_for_render(driver, timeout=300, settle=0.2)
                times.append(time.perf_counter() - started)
            finally:
                driver.quit()
    except BrowserError:
        pass
    finally:
        stop_server(proc)
    return (times[1:] + [float("nan")] * visitors)[:visitors]  # nan: a visit the browser could not finish


def run(only: list[str] | None = None) -> None:
    """Every page's first view (or those in ``only``), idle and beside one busy process per core."""
    pages = ([ZOO] if not only or ZOO in only else []) + [page for page in PAGES if page and (not only or page in only)]
    rows = {page: [f"/ (the zoo; woken by /{WAKE_PAGE})" if page == ZOO else f"/{page}"] for page in pages}
    zoo_rows = [[f"visitor {i + 2}"] for i in range(3)]
    for busy in (False, True):
        hogs = [multiprocessing.Process(target=_spin, daemon=True) for _ in range(multiprocessing.cpu_count())]
        for hog in hogs if busy else []:
            hog.start()
        try:
            for page in pages:
                wake, seconds, problems = first_view("", land=WAKE_PAGE) if page == ZOO else first_view(page)
                target = 6 if busy else 3
                rows[page] += [f"{wake:.1f}", f"{seconds:.1f} {'ok' if seconds <= target else 'OVER'}"
                               + (f" ({problems[0][:60]})" if problems else "")]
            if not only:
                for row, seconds in zip(zoo_rows, later_visitors(len(zoo_rows)), strict=True):
                    row.append(f"{seconds:.1f} {'ok' if seconds <= (6 if busy else 3) else 'OVER'}")
        finally:
            for hog in hogs if busy else []:
                hog.kill()
    cores = multiprocessing.cpu_count()
    table("First views in Chromium: a fresh server's first page (its wake-up: the zoo, or for the zoo's row a page "
          "opened by its address), then the page from the menu",
          ["page", "idle: wake-up s", "idle: page s (target 3)", f"beside {cores} busy processes: wake-up s",
           "page s (target 6)"], list(rows.values()))
    if not only:
        table("The zoo for later visitors: each in a fresh browser, on a server the first visit woke up",
              ["visitor", "idle: zoo s (target 3)", f"beside {cores} busy processes: zoo s (target 6)"], zoo_rows)
