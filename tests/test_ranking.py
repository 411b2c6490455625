"""Ranking across datasets (`lossbench report --across dataset`) on constructed results folders: mean ranks
and Friedman against scipy on per-dataset means computed here from the rows, the Nemenyi critical difference
against Demšar's published table, the post-hoc p-values against their formulas and statsmodels' Holm, the
rliable-style aggregates against scipy, the files a report writes, and figures that are not drawn say why."""

from __future__ import annotations

import json
import math
import re
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.report import build_report
from lossbench.report.aggregates import improvement_interval, iqm_interval, normalise
from lossbench.report.palette import GREY, Palette
from lossbench.report.ranking import nemenyi_cd, rank_across
from lossbench.results import load_runs
from lossbench.testing import synthetic_row, write_synthetic

VARIANTS = ["ce", "harmonic/cosine", "harmonic/euclidean", "harmonic/manhattan"]
# per dataset, the mean accuracy of each variant (in VARIANTS order); d2 has a tie and d4 reverses the order
MEANS = {"d1": [0.80, 0.84, 0.86, 0.82], "d2": [0.70, 0.75, 0.75, 0.72], "d3": [0.90, 0.91, 0.93, 0.92],
         "d4": [0.60, 0.66, 0.62, 0.64], "d5": [0.85, 0.86, 0.88, 0.87]}
OFFSETS = [-0.01, 0.0, 0.01]  # three seeds around each mean: the mean over seeds is exactly MEANS


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("ranking")
    rng = np.random.default_rng(3)
    for dataset, means in MEANS.items():
        for variant, mean in zip(VARIANTS, means):
            rows = [synthetic_row(variant, seed, dataset=dataset, test_acc=mean + off, val_acc=mean,
                                  energy_kwh=1e-6 * (1 + 0.1 * rng.random()), cpu_energy_source="model:cpu-time")
                    for seed, off in enumerate(OFFSETS)]
            write_synthetic(root, rows, {r["run_id"]: [{"epoch": float(e), "step": 10 * e, "test_acc": mean * e / 3}
                                                                   for e in (1, 2, 3)]
                                         for r in rows})
    return root


def per_dataset_means(root: Path) -> pd.DataFrame:
    """dataset x variant: the mean over seeds, from the rows with the standard library."""
    runs = load_runs(root)
    return pd.DataFrame({d: {v: statistics.fmean(runs[(runs.dataset == d) & (runs.variant == v)].test_acc)
                             for v in VARIANTS} for d in MEANS}).T


def test_mean_ranks_and_friedman_equal_scipy_on_the_per_dataset_means(folder, tmp_path):
    report = build_report(folder, tmp_path, ["dataset", "backbone"], ["test_acc"], formats=["csv"], across="dataset")
    assert report.rankings and "Friedman" in report.rankings
    means = per_dataset_means(folder)
    ranks = stats.rankdata(-means.to_numpy(), axis=1)  # 1 = highest accuracy, ties averaged
    assert ranks[1].tolist() == [4.0, 1.5, 1.5, 3.0]  # d2's tie shares the average rank
    friedman = stats.friedmanchisquare(*means.to_numpy().T)
    csv = pd.read_csv(tmp_path / "tables" / "ranking_test_acc.csv").set_index("variant")
    assert csv["mean_rank"].to_dict() == pytest.approx(dict(zip(VARIANTS, ranks.mean(axis=0))))
    assert list(csv.index) == sorted(VARIANTS, key=lambda v: csv.at[v, "mean_rank"])  # best first
    summary = json.loads((tmp_path / "tables" / "ranking_test_acc.json").read_text())
    assert (summary["n_datasets"], summary["n_variants"]) == (5, 4)
    assert summary["friedman_chi2"] == pytest.approx(friedman.statistic)
    assert summary["friedman_p"] == pytest.approx(friedman.pvalue)
    q = stats.studentized_range.ppf(0.95, 4, np.inf) / math.sqrt(2)
    assert summary["critical_difference"] == pytest.approx(q * math.sqrt(4 * 5 / (6 * 5)))
    for ext in ("png", "pdf"):
        assert (tmp_path / "figures" / f"cd_test_acc.{ext}").stat().st_size > 2000
    index = (tmp_path / "index.md").read_text()
    assert "figures/cd_test_acc.png" in index and "# Ranking across dataset" in index
    for link in re.findall(r"\]\(([^)]+)\)", index):
        assert (tmp_path / link).exists(), link


@pytest.mark.parametrize("k, q", [(2, 1.960), (3, 2.343), (4, 2.569), (5, 2.728), (6, 2.850), (10, 3.164)])
def test_the_nemenyi_quantile_is_demsar_table_5(k, q):
    """Demšar (2006), Table 5(a): critical values q_0.05 of the two-tailed Nemenyi test."""
    got, cd = nemenyi_cd(k, 14)
    assert got == pytest.approx(q, abs=1e-3)  # the table prints three decimals (2.3437 as 2.343)
    assert cd == pytest.approx(got * math.sqrt(k * (k + 1) / (6 * 14)))


def test_post_hoc_p_values_follow_their_formulas_and_agree_with_the_cd():
    rng = np.random.default_rng(0)
    means = pd.DataFrame(rng.random((12, 6)) + np.linspace(0, 0.8, 6), columns=list("abcdef"))
    r = rank_across(means, higher_is_better=True)
    k, n = 6, 12
    se = math.sqrt(k * (k + 1) / (6 * n))
    assert r.best in ("e", "f") and r.rejects
    for a in r.mean_ranks.index:
        for b in r.mean_ranks.index:
            gap = abs(r.mean_ranks[a] - r.mean_ranks[b])
            expected = 1.0 if a == b else stats.studentized_range.sf(gap / se * math.sqrt(2), k, np.inf)
            assert r.nemenyi.at[a, b] == pytest.approx(expected, abs=1e-6)
            assert (r.nemenyi.at[a, b] < 0.05) == (gap > r.critical_difference)  # the diagram's bars = the CD
    others = list(r.mean_ranks.index[1:])
    raw = [2 * stats.norm.sf((r.mean_ranks[v] - r.mean_ranks.iloc[0]) / se) for v in others]
    assert r.p_holm_vs_best[others].tolist() == pytest.approx(list(multipletests(raw, method="holm")[1]))
    assert set(r.tied_with_best()) == {v for v in r.mean_ranks.index if r.nemenyi.at[v, r.best] >= 0.05}
    assert 1 < len(r.tied_with_best()) < k


def test_variants_missing_on_a_dataset_are_dropped_and_named():
    means = pd.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 3.0, 1.0], "c": [3.0, math.nan, 2.0], "d": [0.5, 1, 2]})
    r = rank_across(means, higher_is_better=False)
    assert r.dropped == ["c"] and set(r.mean_ranks.index) == {"a", "b", "d"}


def test_no_ranking_without_two_variants_on_every_dataset(tmp_path):
    rows = [synthetic_row(v, s, dataset=d, test_acc=0.8 + 0.01 * s) for d, vs in (("d1", ("ce", "a")), ("d2", ("ce", "b")))
            for v in vs for s in range(3)]
    write_synthetic(tmp_path / "results", rows)
    report = build_report(tmp_path / "results", tmp_path / "r", ["dataset"], ["test_acc"], ["csv"], across="dataset")
    assert "No ranking of Test acc. across dataset: fewer than two variants" in report.rankings
    assert "(not on every one: a, b)" in report.rankings and not (tmp_path / "r" / "tables" / "ranking_test_acc.csv").exists()


def test_iqm_and_probability_of_improvement_equal_rliable_formulas():
    rng = np.random.default_rng(1)
    x = {"d1": rng.normal(0.8, 0.02, 5), "d2": rng.normal(0.6, 0.05, 5), "d3": rng.normal(0.9, 0.01, 5)}
    y = {"d1": rng.normal(0.79, 0.02, 5), "d2": rng.normal(0.62, 0.05, 5), "d3": rng.normal(0.88, 0.01, 5)}
    scaled = normalise({"x": x, "y": y}, higher_is_better=True)
    for d, runs in x.items():  # min-max over both variants' runs of each dataset
        pooled = np.concatenate([runs, y[d]])
        assert scaled["x"][d] == pytest.approx((runs - pooled.min()) / (pooled.max() - pooled.min()))
    iqm = iqm_interval(scaled["x"])
    assert iqm.value == pytest.approx(stats.trim_mean(np.concatenate([scaled["x"][d] for d in x]), 0.25))
    assert iqm.low <= iqm.value <= iqm.high and iqm == iqm_interval(scaled["x"])  # deterministic
    poi = improvement_interval(x, y, higher_is_better=True)
    u = [stats.mannwhitneyu(x[d], y[d]).statistic / 25 for d in x]  # rliable: U / (n m), averaged over tasks
    assert poi.value == pytest.approx(np.mean(u)) and poi.low <= poi.value <= poi.high
    lower = improvement_interval(x, y, higher_is_better=False)
    assert lower.value == pytest.approx(1 - poi.value)


def test_a_radar_with_fewer_than_three_variants_is_not_drawn_and_the_index_says_why(tmp_path):
    rows = [synthetic_row(v, s, test_acc=0.8 + 0.01 * s, pc2_ev=0.5, pca90=3.0, test_f1=0.7)
            for v in ("ce", "harmonic/cosine") for s in range(3)]
    write_synthetic(tmp_path / "results", rows)
    build_report(tmp_path / "results", tmp_path / "r", ["dataset", "backbone"], formats=["md"])
    assert not list((tmp_path / "r" / "figures").glob("radar_*"))
    index = (tmp_path / "r" / "index.md").read_text()
    assert "- radar: not drawn: 2 variant(s); a radar needs three or more" in index
    assert "Pareto front (Test acc. vs energy): not drawn: no run in this group tracked energy" in index


def test_one_colour_per_variant_and_grey_beyond_nine():
    names = [f"v{i:02d}" for i in range(40)]
    palette = Palette.of(names)
    coloured = [palette.colour(v) for v in names[:9]]
    assert len(set(coloured)) == 9 and GREY not in coloured
    assert {palette.colour(v) for v in names[9:]} == {GREY}
    assert Palette.of(names).colour("v03") == palette.colour("v03")


def test_format_latex_prints_no_markdown_table(folder, tmp_path):
    result = CliRunner().invoke(app, ["report", str(folder), "--out", str(tmp_path / "r"), "--format", "latex",
                                      "--across", "dataset"])
    assert result.exit_code == 0, result.output
    assert "| variant |" not in result.output and "wrote" in result.output
    suffixes = sorted(p.suffix for p in (tmp_path / "r" / "tables").iterdir())
    assert suffixes == [".csv", ".json", ".md", ".tex"] + [".tex"] * 5  # the ranking's four, one .tex per dataset
    bad = CliRunner().invoke(app, ["report", str(folder), "--out", str(tmp_path / "x"), "--across", "colour"])
    assert bad.exit_code == 2 and "--across colour: not a column" in bad.output
