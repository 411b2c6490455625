"""Parquet results: atomic writes, tolerant loading, stable run ids."""

from __future__ import annotations

import json
import os

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from lossbench import store
from lossbench.host import where_it_runs
from lossbench.identity import cell_id
from lossbench.results import history_schema, load_runs, runs_schema, write_run
from lossbench.testing import synthetic_row, write_synthetic


def test_interrupted_write_leaves_no_readable_partial_file(tmp_path, monkeypatch):
    write_synthetic(tmp_path, [synthetic_row(test_acc=0.5)])
    (path,) = (tmp_path / "runs").iterdir()

    def crash(src, dst):  # die after the data is written but before the rename
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        write_synthetic(tmp_path, [synthetic_row(test_acc=0.9)])
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]  # temp file removed
    assert load_runs(tmp_path).test_acc.tolist() == [0.5]  # old row intact


def test_leftover_temp_file_is_invisible_to_readers(tmp_path):
    runs = tmp_path / "runs"
    (rid,) = write_synthetic(tmp_path, [synthetic_row()])
    (runs / ".tmp-b-123.part").write_bytes(b"PAR1 half a file")  # what SIGKILL mid-write leaves
    assert load_runs(tmp_path).run_id.tolist() == [rid]
    assert len(pd.read_parquet(runs)) == 1  # pandas/pyarrow directory reads skip it too
    assert not list(runs.glob("*.parquet"))[0].name.startswith(".")


def test_files_of_older_versions_read_by_name_with_missing_columns_null(tmp_path):
    """A schema-2 file (inferred Arrow types: int64 pca90, an all-null energy column of type null, a column
    that no longer exists) reads on the declared schema beside a version-3 file."""
    config = '{"task": {"_target_": "lossbench.tasks.classification.Classification"}, "seed": 0}'
    old = {"run_id": "a", "status": "completed", "variant": "ce", "seed": 0, "schema_version": 2, "pca90": 3,
           "energy_kwh": None, "gone": "x", "config_json": config}
    store.write_table(tmp_path / "runs" / "a.parquet", pa.Table.from_pylist([old]))
    (new,) = write_synthetic(tmp_path, [synthetic_row(variant="harmonic/cosine", pca90=2.5, energy_kwh=1e-5)])
    df = load_runs(tmp_path).set_index("run_id")
    assert list(df.columns) == [n for n in runs_schema().names if n != "run_id"]
    assert df.loc["a", "pca90"] == 3.0 and df.loc[new, "pca90"] == 2.5
    assert df.loc[new, "energy_kwh"] == 1e-5 and pd.isna(df.loc["a", "energy_kwh"])
    assert df.loc["a", "cell_id"] == cell_id(json.loads(config))  # derived from the stored config
    assert load_runs(tmp_path / "runs").shape == df.reset_index().shape


def test_write_run_writes_history_and_summary_on_the_declared_schema(tmp_path):
    row = synthetic_row()
    path = write_run(tmp_path, row, [{"epoch": 1, "step": 10}, {"epoch": 2, "step": 20}])
    assert path == tmp_path / "runs" / f"{row['run_id']}.parquet"
    assert pq.read_schema(path).equals(runs_schema()) and len(pq.read_schema(path)) > 100
    history = pq.read_table(tmp_path / "history" / path.name)
    assert history.schema.equals(history_schema())
    assert history["run_id"].to_pylist() == [row["run_id"]] * 2 and history["epoch"].to_pylist() == [1.0, 2.0]


def test_a_row_the_schema_does_not_declare_is_refused(tmp_path):
    with pytest.raises(ValueError, match="undeclared result columns: bogus"):
        write_run(tmp_path, synthetic_row(bogus=1.0), [])
    with pytest.raises(ValueError, match="column steps: 1.5 is not an integer"):
        write_run(tmp_path, synthetic_row(steps=1.5), [])
    with pytest.raises(ValueError, match="column status is declared non-null"):
        write_run(tmp_path, synthetic_row(status=None), [])
    assert not (tmp_path / "runs").exists()


def test_empty_results_folder_loads_as_empty_frame(tmp_path):
    assert load_runs(tmp_path).empty


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_result_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = store.write_table(tmp_path / "runs" / "a.parquet", pa.table({"run_id": ["a"]}))
    finally:
        os.umask(old)
    assert path.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize("env,job,log", [
    ({}, None, None),
    ({"SLURM_JOB_ID": "42"}, "42", None),  # sbatch without submitit: no log folder, and no KeyError
    ({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3"}, "7_3", None),
    ({"SLURM_ARRAY_JOB_ID": "7", "SLURM_ARRAY_TASK_ID": "3", "SUBMITIT_FOLDER": "/logs/%j"}, "7_3", "/logs/7_3"),
])
def test_where_it_runs_reads_slurm_and_submitit_from_the_environment(monkeypatch, env, job, log):
    for key in ("SLURM_JOB_ID", "SLURM_ARRAY_JOB_ID", "SLURM_ARRAY_TASK_ID", "SUBMITIT_FOLDER"):
        monkeypatch.delenv(key, raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    where = where_it_runs()
    assert (where["slurm_job_id"], where["job_log"]) == (job, log)
