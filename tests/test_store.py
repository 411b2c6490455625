"""Parquet results: atomic writes, tolerant loading, stable run ids."""

from __future__ import annotations

import os

import pandas as pd
import pyarrow.parquet as pq
import pytest

from lossbench import store


def test_interrupted_write_leaves_no_readable_partial_file(tmp_path, monkeypatch):
    path = tmp_path / "runs" / "abc.parquet"
    store.write_rows(path, [{"run_id": "abc", "test_acc": 0.5}])

    def crash(src, dst):  # die after the data is written but before the rename
        raise KeyboardInterrupt("killed")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(KeyboardInterrupt):
        store.write_rows(path, [{"run_id": "abc", "test_acc": 0.9}])
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ["abc.parquet"]  # temp file removed
    assert store.load_runs(tmp_path).test_acc.tolist() == [0.5]  # old row intact


def test_leftover_temp_file_is_invisible_to_readers(tmp_path):
    runs = tmp_path / "runs"
    store.write_rows(runs / "a.parquet", [{"run_id": "a", "x": 1.0}])
    (runs / ".tmp-b-123.part").write_bytes(b"PAR1 half a file")  # what SIGKILL mid-write leaves
    assert store.load_runs(tmp_path).run_id.tolist() == ["a"]
    assert len(pd.read_parquet(runs)) == 1  # pandas/pyarrow directory reads skip it too
    assert not list(runs.glob("*.parquet"))[0].name.startswith(".")


def test_load_runs_keeps_columns_that_only_some_files_have(tmp_path):
    store.write_rows(tmp_path / "runs" / "a.parquet", [{"run_id": "a", "test_acc": 0.1, "energy_kwh": None}])
    store.write_rows(tmp_path / "runs" / "b.parquet", [{"run_id": "b", "test_acc": 0.2, "energy_kwh": 1e-5, "new": "x"}])
    df = store.load_runs(tmp_path).set_index("run_id")
    assert df.loc["b", "new"] == "x" and pd.isna(df.loc["a", "new"])
    assert df.loc["b", "energy_kwh"] == 1e-5 and pd.isna(df.loc["a", "energy_kwh"])
    assert store.load_runs(tmp_path / "runs").shape == df.reset_index().shape


def test_write_run_writes_history_and_summary(tmp_path):
    path = store.write_run(tmp_path, {"run_id": "r1", "status": "completed"}, [{"epoch": 1}, {"epoch": 2}])
    assert path == tmp_path / "runs" / "r1.parquet"
    history = pq.read_table(tmp_path / "history" / "r1.parquet").to_pandas()
    assert history.run_id.tolist() == ["r1", "r1"] and history.epoch.tolist() == [1, 2]


def test_empty_results_folder_loads_as_empty_frame(tmp_path):
    assert store.load_runs(tmp_path).empty


@pytest.mark.parametrize("umask,mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_result_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = store.write_rows(tmp_path / "runs" / "a.parquet", [{"run_id": "a"}])
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
    where = store.where_it_runs()
    assert (where["slurm_job_id"], where["job_log"]) == (job, log)
