"""A results folder is one dataset: a mixed folder written by real runs reads as the same table in pandas,
pyarrow, polars and DuckDB as through `load_runs`, whatever order its files sort in; every file has the
declared types; the report keeps cells apart; export writes one file; the compacted copy stays right."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from lossbench import compacted
from lossbench.config import compose_run
from lossbench.engine import Trainer
from lossbench.report import build_report
from lossbench.results import export, history_schema, load_history, load_runs, runs_schema
from lossbench.run import execute
from lossbench.testing import synthetic_row, write_synthetic

FAST = ["trainer.progress=false", "device=cpu", "tracker=off"]
DIGITS = ["dataset=digits", "backbone=mlp", "trainer.epochs=1"]
TINY_LM = ["task=lm", "backbone.n_layer=1", "backbone.n_head=2", "backbone.n_embd=16", "backbone.block_size=16",
           "trainer.steps=4", "trainer.eval_every=2", "trainer.batch_size=4", "dataset.eval_windows=4",
           "probe_samples=32"]


@pytest.fixture(scope="module")
def mixed(tmp_path_factory) -> Path:
    """A 5-seed digits sweep, a sixth seed with CodeCarbon on, seed 0 again at another learning rate, a diverged
    SGD run, a failed run, a tiny language model and a tiny algorithmic run: one results folder."""
    root = tmp_path_factory.mktemp("mixed") / "results"
    jobs = [[*DIGITS, f"seed={s}"] for s in range(5)]
    jobs += [[*DIGITS, "seed=5", "tracker=codecarbon"], [*DIGITS, "optim.optimizer.lr=0.01"],
             [*DIGITS, "optim=sgd", "optim.optimizer.lr=1e12"], TINY_LM,
             ["task=algorithmic", "dataset=modular_addition", "trainer.epochs=2"]]
    for overrides in jobs:
        execute(*compose_run([*FAST, f"results_dir={root}", *overrides]))
    with pytest.MonkeyPatch.context() as patch:  # a run that fails while training: a failed row
        patch.setattr(Trainer, "fit", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("out of luck")))
        execute(*compose_run([*FAST, f"results_dir={root}", *DIGITS, "seed=9"]))
    return root


def records(frame: pd.DataFrame) -> list[dict]:
    """Rows sorted by run id (by run id, then step, for history), NaN and None alike, for comparing readers."""
    keys = [k for k in ("run_id", "step") if k in frame]
    frame = frame.sort_values(keys, kind="stable")
    return [{k: (None if v is None or (isinstance(v, float) and math.isnan(v)) else v) for k, v in row.items()}
            for row in frame.astype(object).to_dict("records")]


def readers(folder: Path) -> dict[str, pd.DataFrame]:
    glob = str(folder / "*.parquet")
    return {
        "pandas": pd.read_parquet(folder),
        "pyarrow": ds.dataset(folder).to_table().to_pandas(),
        "polars": pl.scan_parquet(glob).collect().to_pandas(),
        "duckdb": duckdb.sql(f"SELECT * FROM read_parquet('{glob}')").df(),
    }


def test_the_mixed_folder_holds_every_task_and_status(mixed):
    runs = load_runs(mixed)
    assert sorted(runs.status.value_counts().items()) == [("completed", 9), ("diverged", 1), ("failed", 1)]
    assert set(runs.task) == {"classification", "lm", "algorithmic"}
    assert runs.energy_kwh.notna().sum() == 1  # only the CodeCarbon run measured energy


@pytest.mark.parametrize("folder,loader", [("runs", load_runs), ("history", load_history)])
def test_four_readers_give_the_table_load_runs_gives_whichever_file_sorts_first(mixed, tmp_path, folder, loader):
    expected = loader(mixed)
    columns = list((runs_schema() if folder == "runs" else history_schema()).names)
    assert list(expected.columns) == columns
    files = sorted((mixed / folder).glob("*.parquet"))
    for first in files:  # each file once at the front of the sort order
        copy = tmp_path / first.stem / folder
        copy.mkdir(parents=True)
        for i, path in enumerate([first, *(f for f in files if f != first)]):
            shutil.copy(path, copy / f"{i:03d}-{path.name}")
        for name, frame in readers(copy).items():
            assert list(frame.columns) == columns, (name, first.name)
            assert records(frame) == records(expected), (name, first.name)


def test_every_written_column_has_its_declared_type_for_each_task_and_status(mixed):
    runs, history = runs_schema(), history_schema()
    for path in (mixed / "runs").glob("*.parquet"):
        assert pq.read_schema(path).equals(runs), path
    for path in (mixed / "history").glob("*.parquet"):
        assert pq.read_schema(path).equals(history), path
    assert runs.field("flops").type == pa.float64() and runs.field("pca90").type == pa.float64()
    assert runs.field("steps").type == pa.int64() and not runs.field("status").nullable


def test_the_report_keeps_cells_apart_and_counts_each_cells_runs(mixed, tmp_path):
    report = build_report(mixed, tmp_path / "report", ["dataset", "backbone"], formats=["md", "csv"])
    (digits,) = [t for t in report.tables if t.key == {"dataset": "digits", "backbone": "mlp"}]
    adam = "ce (optim=adam, optim.optimizer.lr=0.001)"
    assert dict(digits.n) == {adam: 6, "ce (optim=adam, optim.optimizer.lr=0.01)": 1}  # seeds 0-5 / seed 0
    assert digits.diverged.sum() == 0 and digits.failed[adam] == 1  # the failed seed-9 run belongs to this cell
    assert digits.unfinished == {"ce (optim=sgd)": {"diverged": 1}}  # never counted under adam's runs
    text = (tmp_path / "report" / "index.md").read_text()
    assert "never pooled" in text and "No completed run: ce (optim=sgd) (1 diverged)" in text
    csv = pd.read_csv(next((tmp_path / "report" / "tables").glob("digits_mlp_*.csv")))
    assert sorted(csv.variant) == sorted(digits.n.index)


def test_export_writes_one_file_on_the_declared_schema(mixed, tmp_path):
    runs, rows = export(mixed, tmp_path / "runs.parquet", tmp_path / "history.parquet")
    assert runs == 11 and rows == len(load_history(mixed))
    assert pq.read_schema(tmp_path / "runs.parquet").equals(runs_schema())
    assert records(pd.read_parquet(tmp_path / "runs.parquet")) == records(load_runs(mixed))
    assert records(pd.read_parquet(tmp_path / "history.parquet")) == records(load_history(mixed))


def test_the_compacted_copy_follows_new_replaced_and_deleted_files(tmp_path, monkeypatch):
    monkeypatch.setattr(compacted, "COMPACT_AFTER", 4)
    rows = [synthetic_row(seed=s, test_acc=0.5) for s in range(6)]
    ids = write_synthetic(tmp_path, rows)
    assert len(load_runs(tmp_path)) == 6 and (tmp_path / "compacted" / "runs.parquet").exists()
    write_synthetic(tmp_path, [{**rows[0], "test_acc": 0.9}])  # replaced
    (tmp_path / "runs" / f"{ids[1]}.parquet").unlink()  # deleted
    write_synthetic(tmp_path, [synthetic_row(seed=7, test_acc=0.1)])  # new
    runs = load_runs(tmp_path).set_index("seed")
    assert sorted(runs.index) == [0, 2, 3, 4, 5, 7]
    assert runs.test_acc[0] == 0.9 and runs.test_acc[7] == 0.1
    (tmp_path / "compacted" / "runs.parquet").write_bytes(b"not parquet")  # a damaged copy is ignored
    assert sorted(load_runs(tmp_path).seed) == [0, 2, 3, 4, 5, 7]
