"""The HTML report's size and time to interactive (issue 29). For synthetic results folders of N runs
(bench_results_scale.make_folder: V variants x N / (5 V) datasets x 5 seeds, 10-epoch histories, ranked
`--across dataset`) and for real results folders (--results), build the report in this process, then open
its index.html in headless Chromium (lossbench/browser.py: network emulated offline) --loads times:

    python scripts/bench_html.py                                   # 100 and 1,000 runs, 4 variants per dataset
    python scripts/bench_html.py --sizes 1000 --variants 40        # 1,000 runs, 40 variants x 5 datasets
    python scripts/bench_html.py --sizes --results results --screenshot docs/figures/html_report.png

Prints one markdown table: runs and groups; the page's size (MB) and what it holds: figures (SVG data URIs)
and data (the drill-down JSON); the report's build time (s) and the part of it spent writing SVG files; in
Chromium the median over loads of the time to interactive (navigation start to the ready mark the page's
script sets), of DOMContentLoaded and of the load event (ms), the time a click on the first number takes to
open its drill-down (ms), and the requests that left the file (must be 0). Wall-clock times on this machine.
With --screenshot, the first report's top, one drill-down and its first learning curves with a tooltip are saved
as PNGs (PATH, PATH-drill, PATH-curves).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import re
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import matplotlib.figure
from bench_results_scale import SEEDS, make_folder  # scripts/ is on the path of a script run from it

from lossbench.browser import chromium, console_errors, open_page, remote, requests
from lossbench.report import build_report

log = logging.getLogger("bench_html")
SAVE_SECONDS: dict[str, float] = defaultdict(float)  # seconds in Figure.savefig, by file suffix


def timed_savefig(original):
    """Figure.savefig that adds its time to SAVE_SECONDS under the file's suffix."""

    def savefig(self, fname, *args, **kwargs):
        start = time.perf_counter()
        try:
            return original(self, fname, *args, **kwargs)
        finally:
            SAVE_SECONDS[Path(str(fname)).suffix] += time.perf_counter() - start

    return savefig


def page_parts(text: str) -> tuple[float, float, int]:
    """(figures, data) of a page in MB (its SVG data URIs and its JSON), and the runs in its data."""
    figures = sum(len(m) for m in re.findall(r"data:image/svg\+xml;base64,[A-Za-z0-9+/=]+", text))
    data = re.search(r'<script type="application/json" id="lossbench-data">(.*?)</script>', text, re.DOTALL)[1]
    return figures / 1e6, len(data.encode()) / 1e6, len(json.loads(data)["runs"])


def build(results: Path, out: Path, across: str | None) -> dict[str, float | str]:
    """Build the report of `results` into `out`; its size and build times."""
    SAVE_SECONDS.clear()
    start = time.perf_counter()
    built = build_report(results, out, ["dataset", "backbone"], across=across)
    seconds = time.perf_counter() - start
    text = built.html.read_text(encoding="utf-8")
    figures, data, runs = page_parts(text)
    return {"runs": runs, "groups": len(built.tables), "page (MB)": built.html.stat().st_size / 1e6,
            "figures (MB)": figures, "data (MB)": data, "report (s)": seconds, "SVG writing (s)": SAVE_SECONDS[".svg"]}


def measure_in_browser(driver, page: Path, loads: int, screenshot: Path | None) -> dict[str, float | str]:
    """Median timings over `loads` loads; the drill-down's click time; requests that left the file."""
    timings, left, errors = [], [], []
    for _ in range(loads):
        timings.append(open_page(driver, page))
        left += remote(requests(driver))
        errors += console_errors(driver)
    if errors:
        raise SystemExit(f"{page}: console errors: {errors[:3]}")
    if screenshot is not None:
        driver.save_screenshot(str(screenshot))
    click_ms = driver.execute_script(
        "const cell = document.querySelector('td.drill[data-m]'), t = performance.now(); cell.click();"
        "return performance.now() - t;")
    if screenshot is not None:
        driver.save_screenshot(str(screenshot.with_name(f"{screenshot.stem}-drill{screenshot.suffix}")))
        hover_screenshot(driver, screenshot.with_name(f"{screenshot.stem}-curves{screenshot.suffix}"))
    median = {k: statistics.median(t[k] for t in timings) for k in timings[0]}
    return {"interactive (ms)": median["ready_ms"], "DOMContentLoaded (ms)": median["dom_content_loaded_ms"],
            "load (ms)": median["load_ms"], "drill-down click (ms)": click_ms, "requests out": len(left)}


def hover_screenshot(driver, path: Path) -> None:
    """The first group's learning curves, the pointer on the middle point of a run's curve (its tooltip shown)."""
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver.execute_script("document.getElementById('drill').hidden = true;"
                          "document.querySelector('.chart[data-chart]').scrollIntoView({block: 'center'})")
    svg = driver.find_element(By.CSS_SELECTOR, ".chart[data-chart] svg")
    points = re.findall(r"([\d.]+),([\d.]+)", svg.find_element(By.TAG_NAME, "path").get_attribute("d"))
    x, y = (float(v) for v in points[len(points) // 2])
    scale = svg.rect["width"] / 600  # the chart's viewBox width
    ActionChains(driver).move_to_element_with_offset(
        svg, int(x * scale - svg.rect["width"] / 2), int(y * scale - svg.rect["height"] / 2)).perform()
    driver.save_screenshot(str(path))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="*", default=[100, 1000], help="synthetic runs (none: only --results)")
    parser.add_argument("--variants", type=int, nargs="+", default=[4], help="variants per dataset (default 4)")
    parser.add_argument("--results", type=Path, nargs="*", default=[], help="real results folders to report")
    parser.add_argument("--loads", type=int, default=5, help="page loads per report (median)")
    parser.add_argument("--screenshot", type=Path, help="PNG of the first report's page, and PATH-drill")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    matplotlib.figure.Figure.savefig = timed_savefig(matplotlib.figure.Figure.savefig)
    rows = []
    with tempfile.TemporaryDirectory() as tmp, chromium() as driver:
        cases = [(f"{path} (real)", path, None) for path in args.results]
        for n in args.sizes:
            for v in args.variants:
                root = Path(tmp) / f"synthetic-{n}-{v}"
                make_folder(root / "results", n, v)
                cases.append((f"synthetic, {v} variants x {n // (v * SEEDS)} datasets", root / "results", "dataset"))
        for i, (name, results, across) in enumerate(cases):
            out = Path(tmp) / f"report-{i}"
            row = {"report": name, **build(results, out, across)}
            log.info("%s: built in %.1f s", name, row["report (s)"])
            row.update(measure_in_browser(driver, out / "index.html", args.loads, args.screenshot if i == 0 else None))
            rows.append(row)
    print(f"{os.cpu_count()} CPUs; Chromium headless, network offline; median of {args.loads} loads")
    head = list(rows[0])
    print("| " + " | ".join(head) + " |\n|" + "---|" * len(head))
    for row in rows:
        print("| " + " | ".join(f"{v:.2f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")


if __name__ == "__main__":
    main()
