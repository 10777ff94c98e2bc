"""The app served by ``streamlit run`` and driven in headless Chromium: shared by the browser tests and the load
test (``python -m bench --only load``)."""

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
DRIVER = shutil.which("chromedriver")


class BrowserError(RuntimeError):
    """The server did not start, or a page did not finish rendering in time."""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(log_path: Path, environ: dict | None = None,
                 python: str = sys.executable) -> tuple[subprocess.Popen, str]:
    """A fresh ``streamlit run`` of the app on a free port: (process, url), once it answers its health check.
    ``python``: the interpreter that serves it (another virtual environment, say one with the CPU build of torch)."""
    port = free_port()
    log_path.parent.mkdir(parents=True, exist_ok=True)
    log = open(log_path, "w")  # noqa: SIM115 (open for the server's lifetime)
    proc = subprocess.Popen(
        [python, "-m", "streamlit", "run", str(ROOT / "streamlit_app.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false"],
        cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(environ or {})},
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=2).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise BrowserError("streamlit run did not answer /_stcore/health within 60 s")


def stop_server(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()


def chromium(width: int = 1400, height: int = 1800):
    """A headless Chromium driven by selenium."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--no-first-run", f"--window-size={width},{height}"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service(DRIVER), options=options)


# True once every chart on the page has been drawn (plotly's SVG is there) and every picture decoded: plotly.js
# loads and draws after the script run has ended, so the script's state alone says too early that a page is ready.
DRAWN = """
const main = document.querySelector('[data-testid="stMain"]');
if (!main) return false;
for (const chart of main.querySelectorAll('[data-testid="stPlotlyChart"]'))
    if (!chart.querySelector('.main-svg')) return false;
for (const image of main.querySelectorAll('img'))
    if (!image.complete || image.naturalWidth === 0) return false;
return true;
"""


def wait_for_render(driver, timeout: float = 90.0, settle: float = 0.5) -> None:
    """Until the app has run its script to the end (stApp's script state is notRunning, a title is shown) and the
    browser has drawn what it sent: every chart and every picture."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + timeout
    time.sleep(settle)
    while time.time() < deadline:
        apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
        if apps and apps[0].get_attribute("data-test-script-state") == "notRunning" and \
                driver.find_elements(By.CSS_SELECTOR, '[data-testid="stMainBlockContainer"] h1') and \
                driver.execute_script(DRAWN):
            return
        time.sleep(0.1)
    raise BrowserError(f"{driver.current_url} did not finish rendering within {timeout} s")


def wait_for_rerun(driver, timeout: float = 600) -> None:
    """Until the rerun a control started has begun (if it is seen; a fast one may be over first) and ended."""
    from selenium.webdriver.common.by import By

    deadline = time.time() + 2
    while time.time() < deadline:
        apps = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stApp"]')
        if apps and apps[0].get_attribute("data-test-script-state") == "running":
            break
        time.sleep(0.05)
    wait_for_render(driver, timeout=timeout, settle=0.0)


def open_from_menu(driver, page: str, timeout: float = 300) -> None:
    """Click the page's link in the sidebar menu, as a student does (the app stays loaded in the browser; only
    the page's script runs), and wait until it has rendered."""
    from selenium.webdriver.common.by import By

    link = f'[data-testid="stSidebarNav"] a[href$="/{page}"]'
    links = driver.find_elements(By.CSS_SELECTOR, link)
    more = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stSidebarNavViewButton"]')
    if not links and more:  # a long menu shows its first pages and "View N more"
        more[0].click()
        deadline = time.time() + 5
        while not links and time.time() < deadline:  # (polled: a fixed wait would count as the page's time)
            time.sleep(0.02)
            links = driver.find_elements(By.CSS_SELECTOR, link)
    if not links:
        raise BrowserError(f"no link to /{page} in the sidebar menu")
    driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", links[0])
    links[0].click()
    wait_for_rerun(driver, timeout)


def problems_on_page(driver) -> list[str]:
    """The texts of every exception and error box on the page, and any traceback."""
    from selenium.webdriver.common.by import By

    boxes = driver.find_elements(By.CSS_SELECTOR, '[data-testid="stException"], [data-testid="stAlertContentError"]')
    found = [box.text[:500] for box in boxes]
    if "Traceback" in driver.find_element(By.TAG_NAME, "body").text:
        found.append("a traceback in the page's text")
    return found
