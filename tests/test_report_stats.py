"""Report statistics on constructed results folders (rows written here, not by training): paired
differences against the baseline recomputed independently with scipy, the omnibus test against statsmodels'
repeated-measures ANOVA and scipy's Friedman test, the vs-best family against statsmodels' Holm, bold, ties
and difference marks that agree, mean ranks, seeds needed against a power integral, number formatting, and
LaTeX that compiles with the documented preamble (docs/report.md) without overfull boxes or floats taller than a page."""

from __future__ import annotations

import math
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import integrate, stats
from statsmodels.stats.anova import AnovaRM
from statsmodels.stats.multitest import multipletests

from lossbench.report import build_report
from lossbench.report.aggregate import aggregate, best_variants, tied_with_best
from lossbench.report.catalogue import columns_of, metrics_of
from lossbench.report.formats import column_exponent, mean_std, p_text, significant, to_markdown
from lossbench.report.latex import PREAMBLE, to_latex
from lossbench.report.stats import MAX_SEEDS, holm, seeds_needed
from lossbench.results import load_runs
from lossbench.tasks.classification import Classification
from lossbench.testing import synthetic_row, write_synthetic

SEEDS = range(8)
TIE_SIGN = "†"


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


def write_grid(root: Path, shifts: dict[str, float], seeds: int = 6, noise: float = 0.01, seed: int = 1,
               dataset: str = "d") -> dict[str, np.ndarray]:
    """One variant per entry of `shifts`: accuracy = a seed effect + the shift + independent noise."""
    rng = np.random.default_rng(seed)
    base = 0.8 + 0.02 * rng.standard_normal(seeds)
    accs = {v: base + shift + noise * rng.standard_normal(seeds) for v, shift in shifts.items()}
    for variant, acc in accs.items():
        head = "linear" if variant == "ce" else "harmonic"
        write_synthetic(root, [synthetic_row(variant, s, dataset=dataset, head=head, test_acc=float(a), val_acc=float(a))
                               for s, a in enumerate(acc)])
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
    # Holm across the two comparisons, t and Wilcoxon each, against statsmodels' implementation
    for test, attribute in ((0, "p_t_holm"), (1, "p_wilcoxon_holm")):
        adjusted = multipletests([raw["better"][test], raw["same"][test]], method="holm")[1]
        assert getattr(by_variant["better"], attribute) == pytest.approx(adjusted[0], abs=1e-9)
        assert getattr(by_variant["same"], attribute) == pytest.approx(adjusted[1], abs=1e-9)
    assert by_variant["better"].p_t_holm < 0.05 < by_variant["same"].p_t_holm


def test_a_real_difference_is_bold_and_no_difference_is_a_tie(tmp_path):
    accs = write_results(tmp_path)
    table = table_of(tmp_path)
    acc = columns_of(Classification)["test_acc"]
    assert best_variants(table, acc) == {"better"}  # significantly better than ce and than same
    # mean ranks: each seed ranks the variants (1 = best, ties averaged), then the mean over seeds
    names = sorted(accs)
    per_seed = stats.rankdata(-np.column_stack([accs[v] for v in names]), axis=1)
    assert table.standings["test_acc"].mean_ranks == pytest.approx(dict(zip(names, per_seed.mean(axis=0))))
    block = [table.standings[m.name].mean_ranks for m in table.metrics if m.block == "Performance"
             and m.name in table.standings]
    expected = {v: np.mean([r[v] for r in block if v in r]) for v in names}
    assert table.ranks["Performance"].to_dict() == pytest.approx(expected)  # the mean itself, not re-ranked
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
    assert math.isnan(seeds_needed(0.0)) and math.isnan(seeds_needed(math.nan))


def integral_power(d: float, n: int) -> float:
    """Paired-t power without the noncentral t: T = (Z + d sqrt(n)) / sqrt(V / df), V ~ chi2(df), so
    P(|T| > c) = E_V[Phi(-c s + delta) + Phi(-c s - delta)], s = sqrt(V / df), integrated over V."""
    df, delta = n - 1, d * math.sqrt(n)
    c = stats.t.ppf(0.975, df)

    def integrand(v: float) -> float:
        s = math.sqrt(v / df)
        return (stats.norm.cdf(-c * s + delta) + stats.norm.cdf(-c * s - delta)) * stats.chi2.pdf(v, df)

    return integrate.quad(integrand, 0, math.inf, limit=200)[0]


@pytest.mark.parametrize("d", [0.2, 0.3, 0.45, 0.8, 1.0, 1.3, 2.0, 3.0, 4.96, 5.0, 8.0, 20.0, 1e6])
def test_seeds_needed_equals_a_brute_force_power_computation(d):
    """The first n in 2..100 whose power (by numerical integration, not scipy's nct) reaches 0.8; beyond the
    cap: inf ('> 100'). Large effects were the bug: d = 4.96 needs 3 seeds, d = 20 needs 2."""
    expected = next((n for n in range(2, MAX_SEEDS + 1) if integral_power(d, n) >= 0.8), math.inf)
    assert seeds_needed(d) == expected == seeds_needed(-d)
    assert {4.96: 3, 20.0: 2}.get(d, expected) == expected


def test_p_values_print_as_papers_print_them():
    assert [p_text(p) for p in (0.00085, 0.001, 0.0342, 0.051, 0.5, 1.0, math.nan)] == [
        "< 0.001", "0.001", "0.034", "0.051", "0.5", "1", "–"]


def test_the_omnibus_test_equals_statsmodels_repeated_measures_anova_and_scipy_friedman(tmp_path):
    accs = write_grid(tmp_path, {"ce": 0.0, "a": 0.004, "b": 0.008, "c": 0.0}, seeds=5)
    test = table_of(tmp_path).omnibus["test_acc"]
    long = pd.DataFrame([(s, v, a) for v, acc in accs.items() for s, a in enumerate(acc)], columns=["seed", "v", "y"])
    anova = AnovaRM(long, "y", "seed", within=["v"]).fit().anova_table
    assert (test.k, test.blocks) == (4, 5)
    assert test.statistic == pytest.approx(anova["F Value"].iloc[0], rel=1e-9)
    assert test.p == pytest.approx(anova["Pr > F"].iloc[0], rel=1e-9)
    friedman = stats.friedmanchisquare(*accs.values())
    assert (test.friedman_chi2, test.friedman_p) == pytest.approx((friedman.statistic, friedman.pvalue))


def test_the_vs_best_family_is_holm_over_the_other_variants(tmp_path):
    accs = write_grid(tmp_path, {"ce": 0.0, "a": 0.02, "b": 0.03, "c": 0.033, "d": 0.0})
    standing = table_of(tmp_path).standings["test_acc"]
    best = max(accs, key=lambda v: accs[v].mean())
    assert standing.best == best and standing.omnibus.p < 0.05
    others = [v for v in sorted(accs) if v != best]
    raw = [stats.ttest_rel(accs[v], accs[best]).pvalue for v in others]
    adjusted = multipletests(raw, method="holm")[1]  # statsmodels' Holm: an independent implementation
    assert [c.variant for c in standing.vs_best] == others
    assert [c.p_t_holm for c in standing.vs_best] == pytest.approx(list(adjusted))
    assert standing.tied == {v for v, p in zip(others, adjusted) if p >= 0.05}
    assert 0 < len(standing.tied) < len(others)  # the case separates some variants from the best, not all


@pytest.mark.parametrize("shifts, seed, omnibus_rejects", [({"ce": 0.03, "a": 0.0, "b": 0.028, "c": 0.01}, 1, True),
                                                           ({"ce": 0.004, "a": 0.0, "b": 0.003, "c": 0.003}, 2, False)])
def test_bold_ties_and_difference_marks_agree(tmp_path, shifts, seed, omnibus_rejects):
    """With the baseline the best mean, the two families are one: a variant is tied with the best exactly
    when its difference against the baseline is not declared significant, and the baseline is bold exactly
    when every difference is. Without an omnibus rejection nothing is declared anywhere, even where a Holm
    p-value is below 0.05 (seed 2: ANOVA p = 0.08, ce vs a Holm p = 0.02)."""
    write_grid(tmp_path, shifts, noise=0.004, seed=seed)
    table = table_of(tmp_path)
    acc = columns_of(Classification)["test_acc"]
    assert table.standings["test_acc"].best == "ce"
    assert (table.omnibus["test_acc"].p < 0.05) == omnibus_rejects
    declared = {c.variant for c in table.comparisons["test_acc"] if significant(table, acc, c)}
    tied = tied_with_best(table, acc) - {"ce"}
    assert tied == set(shifts) - {"ce"} - declared
    assert (best_variants(table, acc) == {"ce"}) == (declared == set(shifts) - {"ce"})
    assert bool(declared) == omnibus_rejects and min(c.p_t_holm for c in table.comparisons["test_acc"]) < 0.05
    rows = [line.split(" | ") for line in to_markdown(table, table.metrics).splitlines()
            if line.startswith("| Test acc. | ")]
    assert {row[1] for row in rows if row[3].startswith("**")} == declared  # the difference is bold where declared


def test_a_lone_variant_gets_no_marks_and_no_difference_table(tmp_path):
    write_grid(tmp_path, {"ce": 0.0})
    table = table_of(tmp_path)
    acc = columns_of(Classification)["test_acc"]
    assert best_variants(table, acc) == set() == tied_with_best(table, acc)
    markdown, latex = to_markdown(table, table.metrics), to_latex(table, table.metrics)
    rows = [line for line in markdown.splitlines() if line.startswith("| ce |")]
    assert len(rows) == 3 and not any(TIE_SIGN in row or "**" in row for row in rows)
    assert "Difference against" not in markdown and "only variant" in markdown
    assert r"\dagger" not in latex and r"\mathbf" not in latex and "difference against" not in latex
    assert "ANOVA" not in markdown.split("*Performance*")[1]  # no omnibus row for one variant


def test_number_formatting_rounds_mean_and_std_at_two_digits_of_the_std():
    assert mean_std(0.96937, 0.01452, 0) == ("0.969", "0.015")
    assert mean_std(0.06, 0.00383, 0) == ("0.0600", "0.0038")
    assert mean_std(2.63e-08, 3e-10, -8) == ("2.630", "0.030")
    assert mean_std(1234.5, 38.3, 0) == ("1234", "38")
    assert column_exponent(__import__("pandas").Series([2.63e-8, 1.1e-8])) == -8
    assert column_exponent(__import__("pandas").Series([0.5, 0.97])) == 0


def compile_tables(folder: Path, tables: list[Path]) -> str:
    """pdflatex over every table with exactly the documented preamble; the log."""
    doc = folder / "doc.tex"
    doc.write_text(PREAMBLE + "\\begin{document}\n" + "".join(f"\\input{{{t}}}\n\\clearpage\n" for t in tables)
                   + "\\end{document}\n")
    proc = subprocess.run([shutil.which("pdflatex") or "pdflatex", "-interaction=nonstopmode", "-halt-on-error",
                           doc.name], check=False, cwd=folder, capture_output=True, text=True, timeout=300)
    log = (folder / "doc.log").read_text(errors="replace")
    assert proc.returncode == 0 and (folder / "doc.pdf").exists(), log[-3000:]
    return log


def test_the_docs_state_the_preamble_the_tests_compile_with():
    page = (Path(__file__).parents[1] / "docs" / "report.md").read_text()
    assert PREAMBLE.strip() in page


@pytest.mark.latex
def test_latex_tables_compile_with_the_minimal_preamble_at_full_size(tmp_path):
    """40 variants (a long table) with long names (a wide one): every table fits the page at its natural
    size (no scaling, no overfull box, no float taller than the page), the text is ASCII (no '<' in text
    mode: OT1 would print an inverted exclamation mark), p-values as `$<$ 0.001`."""
    write_results(tmp_path)
    shifts = {"ce": 0.0, **{f"harmonic/hamming_soft_{i:02d} (optim=sgd)": 0.001 * i for i in range(1, 40)}}
    write_grid(tmp_path / "big", shifts, seeds=5, dataset="cifar10")
    build_report(tmp_path, tmp_path / "r", ["dataset", "backbone"], formats=["latex"])
    build_report(tmp_path / "big", tmp_path / "r", ["dataset", "backbone"], formats=["latex"])
    tables = sorted((tmp_path / "r" / "tables").glob("*.tex"))
    assert len(tables) == 2
    for path in tables:
        text = path.read_text()
        assert text.isascii() and "resizebox" not in text and "scalebox" not in text
        assert not re.search(r"[<>]", re.sub(r"\$[^$]*\$", "", text))
    assert "$<$ 0.001" in (tmp_path / "r" / "tables" / "cifar10_b_all.tex").read_text()
    log = compile_tables(tmp_path, tables)
    assert "Float too large" not in log and "Overfull" not in log, re.findall(r"(Overfull.*|Float too large.*)", log)
