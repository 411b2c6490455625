"""`index.html` without a browser, on a constructed results folder (rows written here, with histories, a
failed and a diverged run, a tuned protocol and a ranking across datasets): one file that fetches nothing,
tables with the markdown's text and marks and the CSV's values, every run of the folder in the drill-down
data with its differing config keys and curves, deterministic SVG figures, `--format html` alone, and the
CLI's default set. The same page in a real browser: test_html_browser.py."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser
from itertools import pairwise
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.report import build_report
from lossbench.report.captions import TIE
from lossbench.results import load_runs
from lossbench.testing import synthetic_row, write_synthetic

VARIANTS = {"ce": 0.0, "harmonic/euclidean": 0.03, "harmonic/cosine": 0.01}
DATASETS = ("d1", "d2")
SEEDS = (0, 1, 2)


class Page(HTMLParser):
    """The parts of a page the tests read: every tag's attributes, each table's cells (text, attributes, the
    tags inside), the JSON data."""

    def __init__(self, text: str):
        super().__init__()
        self.tags: list[tuple[str, dict]] = []
        self.tables: list[list[list[tuple[str, dict, set]]]] = []
        self._cell: list | None = None
        self._script = False
        self.data = ""
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        self.tags.append((tag, attrs))
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("td", "th") and self.tables:
            self._cell = ["", attrs, set()]
            self.tables[-1][-1].append(self._cell)
        elif self._cell is not None:
            self._cell[2].add(tag)
        self._script = tag == "script" and attrs.get("id") == "lossbench-data"

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self._cell[0] = self._cell[0].strip()
            self._cell = None
        self._script = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[0] += data
        if self._script:
            self.data += data


def write_folder(root: Path) -> None:
    """3 variants x 2 datasets x 3 seeds with 4-epoch histories, a failed and a diverged run, a tuned protocol."""
    rng = np.random.default_rng(7)
    for dataset in DATASETS:
        for variant, shift in VARIANTS.items():
            for seed in SEEDS:
                acc = 0.8 + shift + 0.005 * rng.standard_normal()
                row = synthetic_row(variant, seed, dataset=dataset, test_acc=acc, val_acc=acc, test_f1=acc - 0.01,
                                    energy_kwh=1e-6 * (1 + rng.random()), cpu_energy_source="model:cpu-time",
                                    threads=1 + seed % 2, country_iso_code="FRA", grad_norm_cv=0.5 + rng.random())
                history = [{"epoch": float(e), "step": 10 * e, "test_acc": acc * e / 4, "train_loss": 2.0 / e,
                            "grad_norm_mean": 1.0 / e} for e in range(1, 5)]
                write_synthetic(root, [row], {row["run_id"]: history})
    write_synthetic(root, [synthetic_row("ce", 9, dataset="d1", status="failed", error="RuntimeError: boom\nmore"),
                           synthetic_row("harmonic/cosine", 9, dataset="d2", status="diverged",
                                         settings={"optim": {"lr": 1e12}})])
    (root / "tuning").mkdir()
    (root / "tuning" / "protocol-p1.json").write_text(json.dumps({
        "protocol": "p1", "trials": 3, "space": ["optim.optimizer.lr=tag(log, interval(1e-4, 1e-1))"], "seeds": [0, 1],
        "objective": ["val_acc"], "sampler": "tpe", "tuning_dir": "tuning/p1", "command": "lossbench tune ...",
        "variants": [{"variant": v, "best": {"optim.optimizer.lr": 0.003}, "complete": 3, "failed": 0,
                      "objective": [0.81], "runs": ["a", "b"]} for v in VARIANTS]}))


@pytest.fixture(scope="module")
def report(tmp_path_factory) -> tuple[Path, Path, Page, str]:
    root = tmp_path_factory.mktemp("html")
    write_folder(root / "results")
    built = build_report(root / "results", root / "report", ["dataset", "backbone"], across="dataset")
    assert built.html == root / "report" / "index.html"
    text = built.html.read_text(encoding="utf-8")
    return root / "results", root / "report", Page(text), text


def test_the_page_is_one_file_that_fetches_nothing(report):
    _, out, page, _ = report
    sources = [(tag, a.get("src") or a.get("href")) for tag, a in page.tags if a.get("src") or a.get("href")]
    assert not any(tag in ("script", "link", "iframe", "object", "embed") for tag, _ in sources)
    images = [src for tag, src in sources if tag == "img"]
    assert len(images) >= 5 and all(src.startswith("data:image/svg+xml;base64,") for src in images)
    assert all(src.startswith("#") for tag, src in sources if tag == "a")  # links stay inside the page
    assert not re.search(r"""(src|href)\s*=\s*["']?\s*(https?:)?//""", (out / "index.html").read_text())
    policy = [a["content"] for tag, a in page.tags if a.get("http-equiv") == "Content-Security-Policy"]
    assert policy == ["default-src 'none'; img-src data:; style-src 'unsafe-inline'; script-src 'unsafe-inline'"]
    assert "[index.html](index.html)" in (out / "index.md").read_text()


def block_tables(page: Page) -> list:
    """The page's block tables (header `variant | n | ...`), in page order."""
    return [t for t in page.tables if t and t[0][0][0] == "variant" and t[0][1][0] == "n"]


def test_tables_have_the_markdowns_text_and_marks_and_the_csvs_values(report):
    _, out, page, _ = report
    markdown = [[c.strip() for c in line.strip().strip("|").split("|")] for slug in ("d1_b", "d2_b")
                for line in (out / "tables" / f"{slug}_all.md").read_text().splitlines()
                if line.startswith("| ") and line.split("|")[1].strip().startswith(tuple(VARIANTS))]  # not ANOVA, Δ
    tables = block_tables(page)
    shown = [[f"**{text}**" if "strong" in tags else text for text, _, tags in row]
             for table in tables for row in table[1:] if row[0][0] != "ANOVA p"]
    assert len(tables) == 6 and shown == markdown
    assert any(text.endswith(f" {TIE}") or text.startswith("**") for row in shown for text in row)
    csv = pd.read_csv(out / "tables" / "d1_b_all.csv").set_index("variant")
    header = [text for text, _, _ in tables[0][0]]
    column = header.index("Test acc.")
    for row in (r for r in tables[0][1:] if r[0][0] in csv.index):
        assert float(row[column][1]["data-sort"]) == csv.at[row[0][0], "test_acc_mean"]  # the CSV's full precision


def test_every_run_is_in_the_drill_down_data_with_its_keys_and_curves(report):
    results, _, page, _ = report
    data = json.loads(page.data)
    runs = load_runs(results)
    assert set(data["runs"]) == set(runs.run_id)
    for row in runs.itertuples():
        entry = data["runs"][row.run_id]
        assert (entry["seed"], entry["status"]) == (row.seed, row.status)
        assert row.run_id in data["groups"][entry["group"]]["cells"][entry["variant"]]
    by_status = {e["status"]: e for e in data["runs"].values()}
    assert by_status["failed"]["error"] == "RuntimeError: boom"  # the first line
    assert by_status["diverged"]["keys"] == {"loss.variant": "harmonic/cosine", "optim.lr": "1000000000000.0"}
    assert by_status["diverged"]["variant"] == "harmonic/cosine (optim.lr=1000000000000.0)"
    assert by_status["completed"]["curves"]["train_loss"] == [[1.0, 2.0, 3.0, 4.0], [2.0, 1.0, 0.666667, 0.5]]
    cells = [(int(a["data-g"]), a["data-v"]) for t in block_tables(page) for r in t for _, a, _ in r if "data-g" in a]
    assert len(cells) > 50 and all(v in data["groups"][g]["cells"] for g, v in cells)


def test_failures_rankings_tuning_and_measurements_are_shown(report):
    _, _, page, text = report
    runs_tables = [t for t in page.tables if t[0][0][0] == "run"]
    shown = {(row[3][0], row[4][0]) for t in runs_tables for row in t[1:]}
    assert shown == {("failed", "RuntimeError: boom"), ("diverged", "")}
    ranking = next(t for t in page.tables if t[0][1][0] == "mean rank")
    assert ranking[1][0][0] == "harmonic/euclidean"  # the best of the fixture
    assert [t for t in page.tables if t[0][1][0] == "trials"]
    assert "<dt>torch threads</dt><dd>1, 2</dd>" in text and "model:cpu-time" in text
    assert "Tuned protocol p1" in text and "critical-difference diagram (Nemenyi)" in text


def test_long_curves_are_thinned_to_every_kth_point_and_the_last():
    from lossbench.report.drill import MAX_POINTS, thinned

    xs, ys = thinned(list(range(1001)), [0.123456789 * i for i in range(1001)])
    assert len(xs) <= MAX_POINTS + 1 and xs[0] == 0 and xs[-1] == 1000 and ys[-1] == 123.457
    assert len({b - a for a, b in pairwise(xs[:-1])}) == 1 and thinned([1.0], [2.0]) == [[1.0], [2.0]]


def test_the_svg_figures_are_the_same_bytes_every_time(tmp_path):
    from lossbench.report.plotting import plt, save

    def draw(base: Path) -> bytes:
        fig, ax = plt.subplots()
        ax.plot([1, 2, 3], [3, 1, 2], label="a")
        return save(fig, base)["svg"].read_bytes()

    first, second = draw(tmp_path / "a"), draw(tmp_path / "b")
    assert first == second and b"<text" in first and b"dc:date" not in first


def test_format_html_alone_and_the_cli_default(report, tmp_path):
    results, _, _, _ = report
    build_report(results, tmp_path / "only", ["dataset", "backbone"], formats=["html"])
    assert (tmp_path / "only" / "index.html").is_file()
    assert not [p for p in (tmp_path / "only" / "tables").iterdir() if p.suffix in (".md", ".tex", ".csv")
                and not p.name.startswith("tuning_")]
    result = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert f"{tmp_path / 'cli' / 'index.html'}" in result.output
    assert {"index.html", "index.md"} <= {p.name for p in (tmp_path / "cli").iterdir()}
    bad = CliRunner().invoke(app, ["report", str(results), "--out", str(tmp_path / "x"), "--format", "pdf"])
    assert bad.exit_code != 0 and "csv, html" in bad.output
