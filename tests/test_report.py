"""`lossbench report` from rows of real (tiny) runs: numbers, best marks, escaping, figures, errors."""

from __future__ import annotations

import json
import math
import re
import statistics
import subprocess
import sys

import pandas as pd
import pytest

from lossbench import LossbenchError
from lossbench.report import build_report
from lossbench.report.aggregate import aggregate, best_variants, pareto_front, sweep_table
from lossbench.report.captions import caption
from lossbench.report.catalogue import columns_of, metrics_of
from lossbench.report.formats import latex_escape
from lossbench.results import load_runs
from lossbench.run import execute
from lossbench.tasks.classification import Classification
from lossbench.testing import synthetic_row, write_synthetic

METRICS = columns_of(Classification)
HARMONIC = "harmonic/euclidean (optim=adam)"  # the fixture's diverged SGD run is another cell of this variant


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    """2 variants x 2 seeds of completed spiral runs, plus a diverged and a failed run."""
    from lossbench.config import compose_run

    root = tmp_path_factory.mktemp("report") / "results"
    common = ["dataset=spiral", "backbone=mlp", "trainer.epochs=3", "trainer.progress=false", "tracker=codecarbon",
              f"results_dir={root}", "device=cpu"]
    for loss in ("ce", "harmonic"):
        for seed in (0, 1):
            execute(*compose_run([*common, f"loss={loss}", f"seed={seed}"]))
    execute(*compose_run([*common, "loss=harmonic", "seed=2", "optim=sgd", "optim.optimizer.lr=1e12"]))
    execute(*compose_run([*common, "loss=ce", "seed=3", "dataset=modadd"]))  # mlp on tokens: fails
    return root


def test_table_numbers_are_the_mean_and_std_of_the_rows(results):
    runs = load_runs(results)
    assert sorted(runs.status) == ["completed"] * 4 + ["diverged", "failed"]
    (table,) = aggregate(runs, ["dataset", "backbone"], metrics_of(Classification), Classification)
    done = runs[runs.status == "completed"]
    for variant, loss in (("ce", "ce"), (HARMONIC, "harmonic")):
        rows = done[done.loss == loss]
        for metric in ("test_acc", "grad_norm_cv", "pc2_ev", "nc1", "energy_kwh"):
            values = [float(v) for v in rows[metric]]  # stdlib statistics: independent of pandas' reductions
            assert table.mean.at[variant, metric] == pytest.approx(statistics.fmean(values), rel=1e-12)
            assert table.std.at[variant, metric] == pytest.approx(statistics.stdev(values), rel=1e-12)
        assert table.n[variant] == 2
    # the diverged SGD run is a cell of its own, never counted under the Adam runs; the failure is in another group
    assert table.unfinished == {"harmonic/euclidean (optim=sgd)": {"diverged": 1}}
    assert table.diverged[HARMONIC] == 0 and table.failed["ce"] == 0


def test_best_value_marking_respects_direction(results):
    (table,) = aggregate(load_runs(results), ["dataset", "backbone"], metrics_of(Classification), Classification)
    # two variants: the better one is whichever mean is larger (accuracy) or smaller (NC1, energy, CV)
    for name, higher in (("test_acc", True), ("nc1", False), ("energy_kwh", False), ("grad_norm_cv", False)):
        ce, harmonic = table.mean.at["ce", name], table.mean.at[HARMONIC, name]
        expected = "ce" if (ce > harmonic) == higher else HARMONIC
        assert table.standings[name].best == expected
        assert best_variants(table, METRICS[name]) <= {expected}  # bold only where significant (2 seeds: rarely)


def test_report_writes_tables_figures_and_an_index(results, tmp_path):
    out = tmp_path / "paper"
    build_report(results, out, ["dataset", "backbone"])
    tables = {p.name for p in (out / "tables").iterdir()}
    assert {"spiral_mlp_all.md", "spiral_mlp_all.tex", "spiral_mlp_all.csv"} <= tables
    figures = sorted((out / "figures").iterdir())
    for kind in ("forest_performance", "pareto", "gradnorm", "test_acc"):
        for ext in ("png", "pdf"):
            path = out / "figures" / f"{kind}_spiral_mlp.{ext}"
            assert path in figures and path.stat().st_size > 2000
    index = (out / "index.md").read_text()
    assert not any("radar" in p.name for p in figures)  # two variants: min-max would put every axis at rim or centre
    assert "- radar: not drawn: 2 variant(s); a radar needs three or more" in index
    for link in re.findall(r"\]\(([^)]+)\)", index):
        assert (out / link).exists(), link
    md = (out / "tables" / "spiral_mlp_all.md").read_text()
    ce = load_runs(results).query("loss == 'ce' and status == 'completed'").test_acc
    ce_acc, ce_std = ce.mean(), ce.std(ddof=1)
    places = 1 - math.floor(math.log10(ce_std))  # two significant digits of the std set the decimal place
    assert f"| ce | 2 | {ce_acc:.{places}f} ± {ce_std:.{places}f}" in md
    csv = pd.read_csv(out / "tables" / "spiral_mlp_all.csv").set_index("variant")
    assert csv.at["ce", "test_acc_mean"] == pytest.approx(ce_acc)


def test_latex_escapes_underscores_and_uses_booktabs(results, tmp_path):
    build_report(results, tmp_path, ["dataset", "backbone"], formats=["latex"], table="interpretability")
    tex = (tmp_path / "tables" / "spiral_mlp_interpretability.tex").read_text()
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert "PC2 EV" in tex and "Energy" not in tex  # only the interpretability block
    body = re.sub(r"\$[^$]*\$|\\label\{[^}]*\}", "", tex)  # outside math and labels, every _ must be escaped
    assert not re.search(r"(?<!\\)_", body)
    assert latex_escape("harmonic/hamming_soft 90%") == r"harmonic/hamming\_soft 90\%"


def test_pareto_front_keeps_only_undominated_points():
    points = pd.DataFrame({"e": [1.0, 2.0, 3.0, 4.0, 2.5], "acc": [0.5, 0.7, 0.6, 0.9, 0.7]})
    front = pareto_front(points, "e", "acc")
    assert front.index.tolist() == [0, 1, 3]


def test_errors(results, tmp_path):
    with pytest.raises(LossbenchError, match="unknown metric 'accuracy'; choose from: .*test_acc"):
        build_report(results, tmp_path, ["dataset"], ["accuracy"])
    empty = tmp_path / "empty"
    (empty / "runs").mkdir(parents=True)
    with pytest.raises(LossbenchError, match="no result rows"):
        build_report(empty, tmp_path, ["dataset"])
    proc = subprocess.run([sys.executable, "-m", "lossbench", "report", str(results), "--out", str(tmp_path / "x"),
                           "--metrics", "test_acc,bogus"], capture_output=True, text=True)
    assert proc.returncode == 2 and proc.stderr.startswith("error: unknown metric 'bogus'")
    assert not (tmp_path / "x").exists()


def test_report_with_only_failed_runs_is_a_clear_error(tmp_path):
    write_synthetic(tmp_path, [synthetic_row(status="failed", error="RuntimeError: boom")])
    proc = subprocess.run([sys.executable, "-m", "lossbench", "report", str(tmp_path), "--out", str(tmp_path / "o")],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and "no completed runs to report (1 failed)" in proc.stderr
    assert not (tmp_path / "o").exists()


def test_metric_against_a_config_value_with_error_bars(tmp_path):
    """--x backbone.widths --split loss.criterion.amplitude: a table and a figure of val_acc vs width."""
    from lossbench.config import compose_run

    root = tmp_path / "results"
    for amplitude in (1.0, 5.0):
        for width in (4, 8):
            for seed in (0, 1):
                execute(*compose_run([
                    "experiment=dynamical_spiral_small", "trainer.steps=40", "trainer.eval_every=20",
                    "loss.criterion.period=10", f"loss.criterion.amplitude={amplitude}", f"backbone.widths=[{width}]",
                    f"seed={seed}", "tracker=off", "trainer.progress=false", f"results_dir={root}",
                ]))
    runs = load_runs(root)
    stats = sweep_table(runs, "backbone.widths", METRICS["val_acc"], "loss.criterion.amplitude")
    assert list(dict.fromkeys(stats.index.get_level_values("x"))) == ["[4]", "[8]"]
    for amplitude in (1.0, 5.0):
        for width in (4, 8):
            values = [row.val_acc for row in runs.itertuples()
                      if json.loads(row.config_json)["loss"]["criterion"]["amplitude"] == amplitude
                      and json.loads(row.config_json)["backbone"]["widths"] == [width]]
            m, s, n = stats.loc[(f"dce amplitude={amplitude}", f"[{width}]")]
            assert n == len(values) == 2
            assert m == pytest.approx(statistics.fmean(values)) and s == pytest.approx(statistics.stdev(values))
    out = tmp_path / "paper"
    build_report(root, out, ["dataset"], ["val_acc"], x="backbone.widths", split="loss.criterion.amplitude")
    assert (out / "tables" / "val-acc-vs-backbone-widths.md").read_text().count("| dce amplitude=") == 2
    assert (out / "figures" / "val-acc-vs-backbone-widths.png").stat().st_size > 2000
    with pytest.raises(LossbenchError, match=r"^--x backbone.depth: the runs' config has no 'backbone.depth' \(stopped "
                                             r"at 'depth'\); valid there: .*\bwidths\b"):
        sweep_table(runs, "backbone.depth", METRICS["val_acc"])


def test_runs_whose_data_follows_the_seed_are_one_cell_paired_by_seed(tmp_path, compose):
    """The harmonic-loss experiments draw and split their data with the run's seed: CE and harmonic of one
    seed share a split and are paired; the seeds of a variant are one cell (n = 2), not two of one run each."""
    from lossbench.config import compose_run

    results = tmp_path / "r"
    for loss in (["loss=ce"], ["loss=harmonic", "distance=sqeuclidean"]):
        for seed in (0, 1):
            cfg, choices = compose_run(["task=algorithmic", "dataset=modular_addition", "backbone=toy_mlp",
                                        "trainer.epochs=2", "tracker=off", "trainer.progress=false", "device=cpu",
                                        "dataset.split_seed=${seed}", "dataset.data_seed=${seed}", *loss,
                                        f"seed={seed}", f"results_dir={results}"])
            assert execute(cfg, choices).summary["status"] == "completed"
    runs = load_runs(results)
    assert runs.groupby("variant").cell_id.nunique().tolist() == [1, 1]
    (table,) = build_report(results, tmp_path / "report", ["dataset", "backbone"], formats=["csv"]).tables
    assert table.n.to_dict() == {"ce": 2, "harmonic/sqeuclidean": 2}
    (paired,) = table.comparisons["test_acc"]  # harmonic - CE over the two seeds, each on its own split
    assert paired.n == 2 and list(table.values["test_acc"].index) == [0, 1]


def test_runs_the_cluster_ended_beside_completed_ones_are_counted_as_failed(tmp_path):
    """A cell with completed runs and one whose job timed out (and one that raised): n counts the completed, the
    failed column both others, and the caption names the cluster's state; no row of a cell goes uncounted."""
    rows = [synthetic_row(v, s, test_acc=0.9 + 0.01 * s) for v in ("ce", "harmonic/cosine") for s in range(3)]
    rows += [synthetic_row("ce", 7, status="timeout", error="TIMEOUT"),
             synthetic_row("ce", 8, status="failed", error="RuntimeError: boom"),
             synthetic_row("harmonic/cosine", 9, status="cancelled", error="CANCELLED by 42")]
    write_synthetic(tmp_path, rows, {})
    (table,) = aggregate(load_runs(tmp_path), ["dataset", "backbone"], metrics_of(Classification), Classification)
    assert table.n.to_dict() == {"ce": 3, "harmonic/cosine": 3}
    assert table.failed.to_dict() == {"ce": 2, "harmonic/cosine": 1} and table.diverged.sum() == 0
    assert table.unfinished == {}
    assert "Failed includes runs the cluster ended (1 cancelled, 1 timeout)." in caption(table)
    from lossbench.report.drill import run_entries

    entries = run_entries(table.rows, 0, pd.Series([{}] * len(table.rows)), [], {})
    assert sorted(e["tally"] for e in entries.values() if e["status"] != "completed") == ["failed"] * 3
