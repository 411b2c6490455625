"""Every reader of a results folder checks the shape of what it reads, not only that it parses: locks,
sweep manifests, checkpoints and row files of a foreign or damaged shape are named in one warning and
treated as absent (a bad lock is taken over, a bad manifest skipped, a bad checkpoint discarded, a bad
row file re-run); one bad file never blocks a run, `status` or a report. The folder's layout is checked
before a run trains, and a file that cannot be written mid-command is one line, exit 1."""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from lossbench import store
from lossbench.cli import app
from lossbench.config import compose_run
from lossbench.identity import run_identity
from lossbench.locks import live_lock, load_markers, lock_path, run_lock
from lossbench.results import load_runs
from lossbench.run import execute
from lossbench.status import sweep_status

FAST = ["backbone=mlp", "dataset=digits", "trainer.epochs=1", "tracker=off", "trainer.progress=false", "device=cpu"]
SCALARS = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=8))
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner,
                                                                                          max_size=3), max_leaves=8)
# lock documents that are not live lossbench locks: any JSON, or a lock whose pid or heartbeat is not a number
NOT_A_NUMBER = st.one_of(st.none(), st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans())
BAD_LOCKS = st.one_of(JSON.filter(lambda d: not isinstance(d, dict)),
                      st.fixed_dictionaries({"run_id": st.text(max_size=5), "pid": NOT_A_NUMBER,
                                             "heartbeat_at": st.floats(0, 2e9), "host": st.just(os.uname().nodename)}),
                      st.fixed_dictionaries({"run_id": st.text(max_size=5), "pid": st.just(os.getpid()),
                                             "heartbeat_at": NOT_A_NUMBER, "host": st.just(os.uname().nodename)}))


def one_run(results: Path, *extra: str) -> dict:
    cfg, choices = compose_run([*FAST, f"results_dir={results}", *extra])
    return execute(cfg, choices).summary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=BAD_LOCKS)
def test_a_lock_of_any_wrong_shape_is_stale_taken_over_and_never_crashes_status(tmp_path_factory, document):
    results = tmp_path_factory.mktemp("locks")
    path = lock_path(results, "abc")
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(document))
    assert live_lock(results, "abc") is None
    assert isinstance(sweep_status(results), str)
    assert all(not m["alive"] for m in load_markers(results))
    with run_lock(results, "abc", None) as held:  # taken over: the run can start
        assert json.loads(held.read_text())["pid"] == os.getpid()
    assert not path.exists()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(document=JSON)
def test_a_manifest_of_any_wrong_shape_is_skipped(tmp_path_factory, document):
    results = tmp_path_factory.mktemp("manifests")
    (results / store.SWEEPS).mkdir()
    (results / store.SWEEPS / "bad.json").write_text(json.dumps(document))
    store.write_manifest(results, "good", "lossbench run -m seed=0,1", ["r1", "r2"])
    assert [m["sweep"] for m in store.load_manifests(results)] == ["good"]
    assert "lossbench run -m seed=0,1" in sweep_status(results)


def test_a_checkpoint_with_other_content_is_discarded_and_the_run_trains(tmp_path, caplog):
    results = tmp_path / "r"
    cfg, choices = compose_run([*FAST, f"results_dir={results}"])
    checkpoint = store.checkpoint_path(results, run_identity(cfg, choices).run_id)
    checkpoint.parent.mkdir(parents=True)
    torch.save({"weights": torch.zeros(3)}, checkpoint)  # a valid torch file, not a training state
    row = execute(cfg, choices).summary
    assert row["status"] == "completed" and row["resumed_from_step"] is None
    assert "not a lossbench training state" in caplog.text and not checkpoint.exists()


@pytest.mark.parametrize("table", [
    pa.table({"something": [1, 2]}),  # no run_id, no status
    pa.table({"run_id": ["x"], "status": ["completed"], "test_acc": ["high"]}),  # a declared column of another type
])
def test_a_row_file_of_foreign_content_is_named_left_out_and_its_run_redone(tmp_path, caplog, table):
    results = tmp_path / "r"
    good = one_run(results, "seed=1")
    cfg, choices = compose_run([*FAST, f"results_dir={results}"])
    rid = run_identity(cfg, choices).run_id
    pq.write_table(table, results / store.RUNS / f"{rid}.parquet")
    runs = load_runs(results)
    assert runs.run_id.tolist() == [good["run_id"]] and f"{rid}.parquet" in caplog.text
    assert isinstance(sweep_status(results), str)
    assert execute(cfg, choices).summary["status"] == "completed"  # not done: trained, the file replaced
    assert sorted(load_runs(results).run_id) == sorted([good["run_id"], rid])


@pytest.mark.parametrize("layout,message", [
    ("runs-is-a-file", "is a file; lossbench needs a folder there"),
    ("dangling-link", "which does not exist"),
    ("root", "the filesystem root"),
])
def test_a_results_folder_that_cannot_hold_results_is_one_line_before_training(tmp_path, monkeypatch, layout, message):
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "r"
    if layout == "runs-is-a-file":
        results.mkdir()
        (results / "runs").write_text("not a folder")
    elif layout == "dangling-link":
        results.symlink_to(tmp_path / "gone")
    else:
        results = Path("/")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = CliRunner().invoke(app, ["run", *FAST, f"results_dir={results}"])
    assert result.exit_code == 2 and message in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_a_file_that_cannot_be_written_mid_command_is_one_line_exit_1(tmp_path):
    """Hydra saves the job's config before the run: with files capped at 1 kB (a full disk, seen by the
    process as its writes failing) that fails; the row of an earlier run stays intact."""
    results = tmp_path / "r"
    one_run(results)
    before = {p: p.read_bytes() for p in results.rglob("*.parquet")}

    def tiny_files() -> None:
        resource.setrlimit(resource.RLIMIT_FSIZE, (1000, 1000))

    proc = subprocess.run([sys.executable, "-m", "lossbench", "run", *FAST, "seed=5", f"results_dir={results}"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=300, preexec_fn=tiny_files)
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 1 and lines[-1].startswith("error: stopped: cannot write"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in results.rglob("*.parquet")} == before


@pytest.mark.parametrize("args,message", [
    (["-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=0", "seed=0,1"], "hydra.launcher.n_jobs: got 0"),
    (["-m", "seed=range(0)"], "has no jobs"),
])
def test_a_sweep_that_cannot_run_is_one_line(tmp_path, args, message):
    result = CliRunner().invoke(app, ["run", *args, *FAST, f"results_dir={tmp_path / 'r'}"])
    assert result.exit_code == 2 and message in result.stderr and not (tmp_path / "r").exists()
