"""`index.html` of a real (tiny) sweep in headless Chromium (lossbench/browser.py), opened from its file URL
with the network emulated offline: no request leaves the file and the console has no error (and the same
checks do catch a page that fetches), a table cell reads as the CSV, a header click sorts its column, a
number opens the runs behind it and a run its own drill-down, hovering a curve names the run and its value.
Screenshots are saved in the test's tmp folder (CI keeps them as artifacts)."""

from __future__ import annotations

import json
import math
import re

import pandas as pd
import pytest

from lossbench.report import build_report
from lossbench.report.formats import decimals
from lossbench.results import load_runs
from lossbench.run import execute

pytestmark = pytest.mark.browser
HARMONIC = "harmonic/euclidean (optim=adam)"  # the diverged SGD run is another cell of this variant


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    """ce and harmonic x 3 seeds of 2-epoch spiral runs, a diverged run, a failed one and a ce run whose
    cluster job timed out (the row `lossbench run -m` writes for it); its report."""
    from lossbench.config import compose_run
    from lossbench.identity import run_identity
    from lossbench.run import record_unfinished
    from lossbench.statuses import RunStatus

    root = tmp_path_factory.mktemp("html_browser")
    common = ["dataset=spiral", "backbone=mlp", "trainer.epochs=2", "trainer.progress=false", "tracker=codecarbon",
              f"results_dir={root / 'results'}", "device=cpu"]
    for loss in ("ce", "harmonic"):
        for seed in (0, 1, 2):
            execute(*compose_run([*common, f"loss={loss}", f"seed={seed}"]))
    execute(*compose_run([*common, "loss=harmonic", "seed=3", "optim=sgd", "optim.optimizer.lr=1e12"]))
    execute(*compose_run([*common, "loss=ce", "seed=4", "dataset=modadd"]))  # mlp on tokens: fails
    cfg, choices = compose_run([*common, "loss=ce", "seed=5"])
    record_unfinished(cfg, run_identity(cfg, choices), "s1", RunStatus.TIMEOUT, "DUE TO TIME LIMIT", {})
    build_report(root / "results", root / "report", ["dataset", "backbone"])
    return root / "results", root / "report"


@pytest.fixture(scope="module")
def browser():
    from lossbench.browser import chromium

    with chromium() as driver:
        yield driver


def opened(browser, report):
    from lossbench.browser import open_page

    return open_page(browser, report / "index.html")


def performance_table(browser):
    from selenium.webdriver.common.by import By

    return browser.find_element(By.CSS_SELECTOR, "section.group table.sortable")


def cells(row) -> list:
    from selenium.webdriver.common.by import By

    return row.find_elements(By.CSS_SELECTOR, "th, td")


def test_the_page_opens_offline_with_no_request_and_no_console_error(sweep, browser, tmp_path):
    from lossbench.browser import console_errors, remote, requests

    _, report = sweep
    timings = opened(browser, report)
    assert browser.execute_script("return navigator.onLine") is False  # the network really is off
    assert 0 < timings["ready_ms"] < 10_000 and browser.execute_script("return document.documentElement.dataset.ready")
    urls = requests(browser)
    assert urls[0] == (report / "index.html").resolve().as_uri() and remote(urls) == []
    entries = browser.execute_script("return performance.getEntriesByType('resource').map(e => e.name)")
    assert remote(entries) == []
    assert browser.execute_script("return [...document.images].every(i => i.src.startsWith('data:'))")
    assert console_errors(browser) == []
    browser.save_screenshot(str(tmp_path / "report.png"))
    assert (tmp_path / "report.png").stat().st_size > 20_000


def test_the_same_checks_catch_a_page_that_fetches(browser, tmp_path):
    from lossbench.browser import console_errors, open_page, remote, requests

    leaky = tmp_path / "leaky.html"
    leaky.write_text('<img src="http://192.0.2.1/figure.png"><script>console.error("broken")</script>')
    open_page(browser, leaky)
    assert remote(requests(browser)) == ["http://192.0.2.1/figure.png"]
    assert any("broken" in m for m in console_errors(browser))


def test_a_cell_reads_as_the_csv_and_a_header_click_sorts_its_column(sweep, browser):
    from selenium.webdriver.common.by import By

    _, report = sweep
    opened(browser, report)
    csv = pd.read_csv(report / "tables" / "spiral_mlp_all.csv").set_index("variant")
    table = performance_table(browser)
    header = [c.text for c in cells(table.find_element(By.CSS_SELECTOR, "thead tr"))]
    column = header.index("Test acc.")
    rows = {cells(r)[0].text: cells(r) for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")}
    shown = rows["ce"][column].text.replace("†", "").strip()
    mean, std = (float(x) for x in shown.split(" ± "))
    places = decimals(mean, csv.at["ce", "test_acc_std"])
    assert mean == round(csv.at["ce", "test_acc_mean"], places) and std == round(csv.at["ce", "test_acc_std"], places)
    assert float(rows["ce"][column].get_attribute("data-sort")) == csv.at["ce", "test_acc_mean"]
    th = table.find_elements(By.CSS_SELECTOR, "thead th")[column]
    for direction, reverse in (("ascending", False), ("descending", True)):
        th.click()
        order = [cells(r)[0].text for r in table.find_elements(By.CSS_SELECTOR, "tbody tr")]
        assert th.get_attribute("aria-sort") == direction
        assert order == list(csv.test_acc_mean.sort_values(ascending=not reverse).index)


def test_a_number_opens_the_runs_behind_it_and_a_run_its_own_drill_down(sweep, browser, tmp_path):
    from selenium.webdriver.common.by import By

    results, report = sweep
    opened(browser, report)
    runs = load_runs(results)
    done = runs[(runs.loss == "harmonic") & runs.status.eq("completed")]
    table = performance_table(browser)
    browser.find_element(By.CSS_SELECTOR, f'td[data-v="{HARMONIC}"][data-m="test_acc"]').click()
    panel = browser.find_element(By.ID, "drill")
    assert panel.is_displayed() and "Test acc." in panel.find_element(By.TAG_NAME, "h2").text
    listed = panel.find_elements(By.CSS_SELECTOR, "tbody tr")
    found = {(r.find_element(By.CSS_SELECTOR, "td.run").text, int(r.find_element(By.CSS_SELECTOR, "td.seed").text),
              float(r.find_element(By.CSS_SELECTOR, "td.value").get_attribute("data-sort"))) for r in listed}
    assert found == {(r.run_id, r.seed, float(f"{r.test_acc:.6g}")) for r in done.itertuples()}
    assert panel.find_elements(By.CSS_SELECTOR, "figure.chart svg path")  # the runs' curves
    browser.save_screenshot(str(tmp_path / "drill-down.png"))
    first = min(done.itertuples(), key=lambda r: r.seed)
    panel.find_element(By.CSS_SELECTOR, f'td.run[data-run="{first.run_id}"]').click()
    assert panel.find_element(By.CSS_SELECTOR, "code.run-id").text == first.run_id
    assert panel.find_element(By.CSS_SELECTOR, "dd.seed").text == str(first.seed)
    assert browser.execute_script("return location.hash") == f"#run={first.run_id}"
    assert "loss" in panel.find_element(By.CSS_SELECTOR, "table").text  # the config keys that differ
    browser.find_element(By.CSS_SELECTOR, "#drill .close").click()
    assert not panel.is_displayed() and table.is_displayed()


def test_the_failed_count_opens_the_runs_that_did_not_finish_with_their_state(sweep, browser):
    """ce's `failed` count is its timed-out run (a cluster state is counted as failed): one click lists it."""
    from selenium.webdriver.common.by import By

    results, report = sweep
    opened(browser, report)
    (timed_out,) = load_runs(results).query("status == 'timeout'").run_id
    count = browser.find_element(By.CSS_SELECTOR, 'td[data-v="ce"][data-s="failed"]')
    assert count.text == "1"
    count.click()
    rows = browser.find_elements(By.CSS_SELECTOR, "#drill tbody tr")
    assert [(r.find_element(By.CSS_SELECTOR, "td.run").text, r.find_element(By.CSS_SELECTOR, "td.status").text)
            for r in rows] == [(timed_out, "timeout")]


def test_hovering_a_curve_names_the_run_and_its_value(sweep, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    _, report = sweep
    opened(browser, report)
    data = json.loads(browser.find_element(By.ID, "lossbench-data").get_attribute("textContent"))
    browser.find_element(By.CSS_SELECTOR, 'td[data-v="ce"][data-m="test_acc"]').click()
    svg = browser.find_element(By.CSS_SELECTOR, "#drill figure.chart svg")
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", svg)
    x, y = (float(v) for v in re.match(r"M([\d.]+),([\d.]+)", svg.find_element(By.TAG_NAME, "path")
                                             .get_attribute("d")).groups())
    box = svg.rect
    scale = box["width"] / 600  # the chart's viewBox width
    ActionChains(browser).move_to_element_with_offset(
        svg, int(x * scale - box["width"] / 2), int(y * scale - box["height"] / 2)).perform()
    tip = browser.find_element(By.ID, "tip")
    assert tip.is_displayed()
    run = re.search(r"run (\w+) · seed (\d+)", tip.text)
    assert run and data["runs"][run[1]]["variant"] == "ce" and data["runs"][run[1]]["seed"] == int(run[2])
    xs, ys = data["runs"][run[1]]["curves"]["test_acc"]
    shown = re.search(r"epoch ([\d.]+): ([-\d.e]+)", tip.text)
    assert float(shown[1]) == xs[0] and math.isclose(float(shown[2]), ys[0], rel_tol=1e-3)  # the first epoch's
    charts = browser.find_elements(By.CSS_SELECTOR, "section.group figure.chart")
    browser.execute_script("document.querySelector('#drill').hidden = true; arguments[0].scrollIntoView()", charts[0])
    assert len(charts[0].find_elements(By.CSS_SELECTOR, "svg path")) == 6 + 2  # six runs, two means (lazy drawn)
