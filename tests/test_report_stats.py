"""Report statistics on constructed results folders (rows written here, not by training): paired
differences against the baseline recomputed independently with scipy, bold and ties, Holm, seeds needed,
number formatting, and LaTeX that compiles without overfull boxes."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from lossbench.report import build_report
from lossbench.report.aggregate import aggregate, best_variants, tied_with_best
from lossbench.report.catalogue import columns_of, metrics_of
from lossbench.report.formats import column_exponent, mean_std
from lossbench.report.stats import holm, seeds_needed
from lossbench.results import load_runs
from lossbench.tasks.classification import Classification
from lossbench.testing import synthetic_row, write_synthetic

SEEDS = range(8)


def write_results(root: Path, drop: tuple[str, int] | None = None,
                  threads: dict[str, int] | None = None) -> dict[str, np.ndarray]:
    """ce; `better` (+0.05 accuracy on every seed, with seed noise); `same` (ce + symmetric noise).
    `threads`: a `threads` column by variant."""
    rng = np.random.default_rng(0)
    base = 0.90 + 0.01 * rng.standard_normal(len(SEEDS))
    accs = {"ce": base, "better": base + 0.05 + 0.003 * rng.standard_normal(len(SEEDS)),
            "same": base + 0.004 * np.array([1, -1, 1, -1, 1, -1, 1, -1]) * rng.uniform(0.5, 1, len(SEEDS))}
    for variant, acc in accs.items():
        for seed, a in zip(SEEDS, acc):
            if drop == (variant, seed):
                continue
            write_synthetic(root, [synthetic_row(
                variant, seed, head="linear" if variant == "ce" else "harmonic", test_acc=float(a), val_acc=float(a), test_f1=float(a) - 0.01,
                energy_kwh=1e-6 * (1 + 0.1 * seed), cpu_energy_source="model:cpu-time", ram_energy_source="model:ram",
                gpu_energy_source="none", proto_alignment=0.5, threads=threads[variant] if threads else None)])
    return accs


def table_of(root: Path, baseline: str = "ce"):
    (table,) = aggregate(load_runs(root), ["dataset", "backbone"], metrics_of(Classification), Classification, baseline)
    return table


def test_differences_intervals_and_p_values_match_scipy(tmp_path):
    accs = write_results(tmp_path)
    table = table_of(tmp_path)
    by_variant = {c.variant: c for c in table.comparisons["test_acc"]}
    raw = {}
    for variant in ("better", "same"):
        a, b = accs[variant], accs["ce"]
        t = stats.ttest_rel(a, b)
        ci = t.confidence_interval(0.95)
        c = by_variant[variant]
        assert c.n == len(SEEDS)
        assert c.mean_diff == pytest.approx(float(np.mean(a - b)), abs=1e-9)
        assert (c.ci_low, c.ci_high) == pytest.approx((ci.low, ci.high), abs=1e-9)
        assert c.p_t == pytest.approx(t.pvalue, abs=1e-9)
        assert c.p_wilcoxon == pytest.approx(stats.wilcoxon(a - b, method="exact").pvalue, abs=1e-9)
        raw[variant] = (t.pvalue, stats.wilcoxon(a - b, method="exact").pvalue)
    # Holm across the two comparisons, computed by hand: smaller p x 2, larger p x 1, running maximum
    (p1, w1), (p2, w2) = raw["better"], raw["same"]
    lo, hi = sorted([p1, p2])
    expected = {p1: min(1, 2 * p1) if p1 == lo else max(min(1, 2 * lo), p1),
                p2: min(1, 2 * p2) if p2 == lo else max(min(1, 2 * lo), p2)}
    assert by_variant["better"].p_t_holm == pytest.approx(expected[p1], abs=1e-9)
    assert by_variant["same"].p_t_holm == pytest.approx(expected[p2], abs=1e-9)
    assert by_variant["better"].p_t_holm < 0.05 < by_variant["same"].p_t_holm


def test_a_real_difference_is_bold_and_no_difference_is_a_tie(tmp_path):
    write_results(tmp_path)
    table = table_of(tmp_path)
    acc = columns_of(Classification)["test_acc"]
    assert best_variants(table, acc) == {"better"}  # significantly better than ce and than same
    assert table.standings["test_acc"].ranks == {"better": 1, "ce": 2, "same": 2}  # ce and same tie
    energy = columns_of(Classification)["energy_kwh"]  # identical energy per seed for all: all tied
    assert best_variants(table, energy) == set() and len(tied_with_best(table, energy)) == 3
    assert "val_acc" not in table.standings  # the selection metric is shown, never ranked
    build_report(tmp_path, tmp_path / "r", ["dataset", "backbone"])
    text = (tmp_path / "r" / "tables" / "d_b_all.md").read_text()
    assert re.search(r"\| better \| 8 \| \*\*0\.9\d+ ± 0\.0\d+\*\*", text)
    assert "| n/a |" in text  # prototype alignment of the linear-head ce
    assert "Energy is modelled" in text and "checkpoint-selection score, shown but not ranked" in text
    assert "thread counts" not in text  # the rows carry no `threads`: nothing to warn about


def test_energy_caption_warns_when_runs_used_different_thread_counts(tmp_path):
    write_results(tmp_path, threads={"ce": 2, "better": 1, "same": 1})
    assert table_of(tmp_path).thread_counts == {1, 2}
    build_report(tmp_path, tmp_path / "r", ["dataset", "backbone"])
    text = (tmp_path / "r" / "tables" / "d_b_all.md").read_text()
    assert "different torch thread counts (1, 2)" in text


def test_unpaired_rows_are_dropped_and_counted(tmp_path):
    write_results(tmp_path, drop=("better", 3))
    table = table_of(tmp_path)
    better = next(c for c in table.comparisons["test_acc"] if c.variant == "better")
    assert better.n == len(SEEDS) - 1
    build_report(tmp_path, tmp_path / "r", ["dataset", "backbone"])
    assert "| Test acc. | better | 7 |" in (tmp_path / "r" / "tables" / "d_b_all.md").read_text()


def test_holm_on_a_known_case():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([0.5, math.nan, 0.01]) == pytest.approx([0.5, math.nan, 0.02], nan_ok=True)


def test_seeds_needed_matches_the_textbook_power_table():
    # one-sample / paired t-test, two-sided alpha 0.05, power 0.8 (Cohen 1988; G*Power): d = 1 -> 10, 0.5 -> 34
    assert seeds_needed(1.0) == 10 and seeds_needed(0.5) == 34 and seeds_needed(-0.5) == 34
    assert math.isnan(seeds_needed(0.0))


def test_number_formatting_rounds_mean_and_std_at_two_digits_of_the_std():
    assert mean_std(0.96937, 0.01452, 0) == ("0.969", "0.015")
    assert mean_std(0.06, 0.00383, 0) == ("0.0600", "0.0038")
    assert mean_std(2.63e-08, 3e-10, -8) == ("2.630", "0.030")
    assert mean_std(1234.5, 38.3, 0) == ("1234", "38")
    assert column_exponent(__import__("pandas").Series([2.63e-8, 1.1e-8])) == -8
    assert column_exponent(__import__("pandas").Series([0.5, 0.97])) == 0


@pytest.mark.latex
def test_latex_tables_compile_without_overfull_boxes(tmp_path):
    write_results(tmp_path)
    build_report(tmp_path, tmp_path / "r", ["dataset", "backbone"], formats=["latex"])
    tables = sorted((tmp_path / "r" / "tables").glob("*.tex"))
    assert tables
    doc = tmp_path / "doc.tex"
    doc.write_text("\\documentclass{article}\n\\usepackage{booktabs}\n\\usepackage{graphicx}\n"
                   "\\usepackage[T1]{fontenc}\n\\usepackage[utf8]{inputenc}\n\\begin{document}\n"
                   + "".join(f"\\input{{{t}}}\n\\clearpage\n" for t in tables) + "\\end{document}\n")
    proc = subprocess.run([shutil.which("pdflatex") or "pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           doc.name], cwd=tmp_path, capture_output=True, text=True, timeout=300)
    log = (tmp_path / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0 and (tmp_path / "doc.pdf").exists(), log[-3000:]
    overfull = [float(x) for x in re.findall(r"Overfull \\hbox \(([\d.]+)pt too wide\)", log)]
    assert not [x for x in overfull if x > 10], overfull
