"""The app served by ``streamlit run`` and opened, page by page, in headless Chromium.

Outside CI this test skips, with the reason, when Chromium or its driver is missing; in CI
(``CI=true``) it must run, and ``.ci/run`` installs Debian's chromium and chromium-driver.
"""

import os
from pathlib import Path

import pytest

from bench.browser import CHROMIUM, DRIVER, chromium, problems_on_page, start_server, stop_server, wait_for_render
from genmodels import registry

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "tests" / "out"
# url paths of every page; "" is the home page. A deep link comes first: the first visit to a fresh
# server must run the entry point (sidebar, navigation) whatever page it asks for.
# The url path of a page is its file's name; the pages are the ones the registry lists.
OTHERS = [Path(path).stem for path in registry.page_paths()[1:]]  # after the model zoo
FIRST = Path(registry.pages()[0][1].path).stem  # the first family's first page
PAGES = [FIRST, "", *(page for page in OTHERS if page != FIRST)]

# Under pytest-xdist (``-n 2 --dist loadgroup``) every browser test runs in one worker, one after another: their
# servers and browsers share the machine with one worker of the other tests, never with each other.
pytestmark = pytest.mark.xdist_group("browser")

if os.environ.get("CI", "").lower() != "true" and not (CHROMIUM and DRIVER):
    pytest.skip("headless Chromium and chromedriver are not installed "
                "(apt-get install chromium chromium-driver); CI installs them", allow_module_level=True)


@pytest.fixture(scope="module")
def server():
    proc, url = start_server(SHOTS / "streamlit.log")
    yield url
    stop_server(proc)


@pytest.fixture(scope="module")
def browser():
    driver = chromium()
    yield driver
    driver.quit()


@pytest.mark.parametrize("page", PAGES)
def test_page_renders_without_exception(server, browser, page):
    from selenium.webdriver.common.by import By

    browser.get(f"{server}/{page}")  # a new document: no title is shown until this page's script has run
    wait_for_render(browser, settle=0.3)
    SHOTS.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(SHOTS / f"page-{page or 'home'}.png"))
    exceptions = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stException"]')
    assert not exceptions, f"/{page} shows an exception: {exceptions[0].text[:500]}"
    errors = browser.find_elements(By.CSS_SELECTOR, '[data-testid="stAlertContentError"]')
    assert not errors, f"/{page} shows an error: {errors[0].text[:500]}"
    assert "Traceback" not in browser.find_element(By.TAG_NAME, "body").text
    sidebar = browser.find_element(By.CSS_SELECTOR, '[data-testid="stSidebar"]').text
    assert "Checkpoints" in sidebar and "Variational autoencoders" in sidebar, sidebar[:300]


CROWD = 6


def test_a_crowd_arriving_at_a_fresh_server(tmp_path):
    """Six visitors open six pages at the same moment on a server that has run no page yet: their first runs
    import the same libraries at once (issue 13: 5 of 6 sessions showed "partially initialized module 'pandas'"
    before ``app_pages.startup``). No page may show an exception or an error."""
    import threading

    proc, url = start_server(SHOTS / "streamlit-crowd.log")
    drivers = []
    try:
        drivers = [chromium(1200, 1200) for _ in range(CROWD)]
        # light pages (the test's minute is their cold render on 2 cores), each with a table (pandas) and charts
        wanted = ["vae_conditional", "vae_latent", "gan_conditional", "rbm_filters", "gan_training", "ddpm_training"]
        found: dict[str, list[str]] = {}

        def visit(driver, page):
            try:
                driver.get(f"{url}/{page}")
                wait_for_render(driver, timeout=240)
                found[page] = problems_on_page(driver)
            except BaseException as err:  # noqa: BLE001 (reported below, with the page)
                found[page] = [f"could not render: {err!r}"[:500]]

        threads = [threading.Thread(target=visit, args=(d, p)) for d, p in zip(drivers, wanted, strict=True)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(found) == CROWD
        assert not {p: f for p, f in found.items() if f}, found
    finally:
        for driver in drivers:
            driver.quit()
        stop_server(proc)
