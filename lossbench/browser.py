"""Headless Chromium for the HTML report's browser tests and benchmark (tests/test_html_browser.py,
scripts/bench_html.py), through selenium (a `dev` dependency) and Debian's `chromium` and `chromium-driver`.

Chromium starts with a fresh profile and without the background services that would call Google (updates,
sync, component downloads), and the page is loaded with the network emulated offline. Every request the page
makes is read back from the browser's performance log (Chrome DevTools' Network events): a self-contained page
makes none beyond its own file and its data URIs.
"""

from __future__ import annotations

import json
import math
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--hide-scrollbars", "--window-size=1400,1000")
LOCAL = ("file:", "data:", "about:", "chrome:", "devtools:")  # what a request may load without the network
if TYPE_CHECKING:
    from selenium.webdriver.remote.webdriver import WebDriver

READY = "lossbench-ready"  # html.READY: the mark the page's script sets once it is interactive


def binaries() -> tuple[str | None, str | None]:
    """(chromium, chromedriver) on the PATH, or None for what is missing."""
    browser = next((p for p in map(shutil.which, ("chromium", "chromium-browser", "google-chrome")) if p), None)
    return browser, shutil.which("chromedriver")


@contextmanager
def chromium(profile: Path | None = None) -> Iterator[WebDriver]:
    """A headless Chromium driven by selenium, its console and performance logs recorded, network offline."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    browser, driver_path = binaries()
    if browser is None or driver_path is None:
        raise RuntimeError("chromium and chromedriver are needed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in FLAGS:
        options.add_argument(flag)
    with tempfile.TemporaryDirectory() as fresh:
        options.add_argument(f"--user-data-dir={profile or fresh}")
        options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
        driver = webdriver.Chrome(options=options, service=Service(driver_path))
        try:
            driver.execute_cdp_cmd("Network.enable", {})
            driver.execute_cdp_cmd("Network.emulateNetworkConditions", {
                "offline": True, "latency": 0, "downloadThroughput": 0, "uploadThroughput": 0})
            yield driver
        finally:
            driver.quit()


def open_page(driver: WebDriver, path: Path) -> dict[str, float]:
    """Load a page from its file URL (the logs emptied first); its timings in ms from navigation start: the
    DOMContentLoaded end, the load end and the page's READY mark (NaN where the page sets none)."""
    driver.get("about:blank")
    driver.get_log("performance"), driver.get_log("browser")
    driver.get(path.resolve().as_uri())
    timings = driver.execute_script(
        "const n = performance.getEntriesByType('navigation')[0], r = performance.getEntriesByName(arguments[0]);"
        "return [n.domContentLoadedEventEnd, n.loadEventEnd, r.length ? r[0].startTime : null];", READY)
    return dict(zip(("dom_content_loaded_ms", "load_ms", "ready_ms"), (math.nan if t is None else float(t)
                                                                      for t in timings)))


def requests(driver: WebDriver) -> list[str]:
    """URLs the page requested since it was opened (performance log: Network.requestWillBeSent)."""
    urls = []
    for entry in driver.get_log("performance"):
        message: dict[str, Any] = json.loads(entry["message"])["message"]
        if message.get("method") == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    return urls


def remote(urls: list[str]) -> list[str]:
    """The URLs that would leave the machine (not the page's file, a data URI or the browser's own)."""
    return [u for u in urls if not u.startswith(LOCAL)]


def console_errors(driver: WebDriver) -> list[str]:
    """Console messages at level SEVERE (errors) since the last read."""
    return [e["message"] for e in driver.get_log("browser") if e["level"] == "SEVERE"]
