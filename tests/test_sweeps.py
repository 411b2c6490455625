"""Sweeps through Hydra's real multirun (basic, joblib and submitit launchers): skip what is done,
isolate failures, survive SIGKILL, lose nothing in parallel."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from lossbench.config import group_options, sweep_jobs
from lossbench.plan import preflight
from lossbench.results import load_history, load_runs

FAST = ["backbone=mlp", "trainer.epochs=1", "tracker=off", "trainer.progress=false", "device=cpu"]


EXTENSIONS = Path(__file__).resolve().parent / "extensions"
# backbone=fails_mid_training (tests/extensions): a run that fails while it trains, after a clean preflight
WITH_FAULTS = {**os.environ, "LOSSBENCH_CONFIG_PATH": str(EXTENSIONS / "conf"),
               "PYTHONPATH": os.pathsep.join(p for p in (str(EXTENSIONS), os.environ.get("PYTHONPATH", "")) if p)}


def lossbench(tmp_path: Path, *args: str, timeout: int = 600, env: dict[str, str] | None = None
              ) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lossbench", "run", *args, f"results_dir={tmp_path / 'results'}"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout, env=env)


def started_runs(proc: subprocess.CompletedProcess[str]) -> int:
    return sum(1 for line in proc.stderr.splitlines() if line.startswith("run ") and ": task=" in line)


def test_grid_writes_every_row_and_a_rerun_runs_nothing(tmp_path):
    grid = ["-m", "loss=ce,harmonic", "distance=euclidean,cosine", "seed=0", *FAST]
    first = lossbench(tmp_path, *grid)
    assert first.returncode == 0, first.stderr
    runs = load_runs(tmp_path / "results")
    # 4 jobs, but CE ignores distance: one CE row and two harmonic rows
    assert sorted(zip(runs.loss, runs.distance)) == [("ce", "none"), ("harmonic", "cosine"), ("harmonic", "euclidean")]
    assert (runs.status == "completed").all() and runs.sweep.nunique() == 1
    assert "3 runs: 3 completed" in first.stderr
    again = lossbench(tmp_path, *grid)
    assert again.returncode == 0 and started_runs(again) == 0 and "(3 already done, skipped)" in again.stderr
    assert len(load_runs(tmp_path / "results")) == 3
    forced = lossbench(tmp_path, *grid, "--force")
    assert forced.returncode == 0 and started_runs(forced) == 3  # CE once: the grid names it twice


def test_two_by_two_grid_gives_four_completed_rows(tmp_path):
    proc = lossbench(tmp_path, "-m", "loss=harmonic", "distance=euclidean,cosine", "seed=0,1", *FAST)
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(tmp_path / "results")
    assert len(runs) == 4 and (runs.status == "completed").all()
    assert sorted(zip(runs.distance, runs.seed)) == [("cosine", 0), ("cosine", 1), ("euclidean", 0), ("euclidean", 1)]
    assert len(load_history(tmp_path / "results")) == 4


def test_failing_and_diverging_runs_are_recorded_and_the_rest_complete(tmp_path):
    proc = lossbench(tmp_path, "-m", "optim=sgd", "optim.optimizer.lr=0.01,1e12", "backbone=mlp,fails_mid_training",
                     "trainer.epochs=2", "tracker=off", "trainer.progress=false", env=WITH_FAULTS)
    assert proc.returncode == 1
    runs = load_runs(tmp_path / "results").set_index(["backbone", "status"])
    assert sorted(runs.index) == [("fails_mid_training", "failed"), ("fails_mid_training", "failed"),
                                  ("mlp", "completed"), ("mlp", "diverged")]
    failed = runs.loc[("fails_mid_training", "failed")]
    assert failed.error.str.contains("injected failure at training forward 3").all()
    for log in failed.error_log:
        assert "Traceback" in Path(log).read_text()
    summary = proc.stderr[proc.stderr.index("4 runs:"):]
    assert "1 completed, 1 diverged, 2 failed" in summary and "non-finite training loss" in summary
    status = subprocess.run([sys.executable, "-m", "lossbench", "status", str(tmp_path / "results")],
                            capture_output=True, text=True, check=True, env=WITH_FAULTS).stdout
    sweep_line = status.splitlines()[1].split()
    assert sweep_line[1:8] == ["4", "1", "0", "2", "1", "0", "0"]  # runs done running failed diverged stopped pending
    assert status.count("failed    ") == 2 and "diverged  " in status


def test_sigkill_mid_sweep_then_rerun_completes_exactly_the_missing_runs(tmp_path):
    results = tmp_path / "results"
    grid = ["-m", "seed=0,1,2", "backbone=mlp", "trainer.epochs=3", "tracker=off", "trainer.progress=false"]
    cmd = [sys.executable, "-m", "lossbench", "run", *grid, f"results_dir={results}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 600  # generous: a loaded machine may take minutes to finish the first run
    while time.time() < deadline and not list((results / "runs").glob("*.parquet")):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    killed = load_runs(results)
    assert 1 <= len(killed) < 3 and (killed.status == "completed").all()
    rerun = lossbench(tmp_path, *grid)
    assert rerun.returncode == 0, rerun.stderr
    assert started_runs(rerun) == 3 - len(killed)
    runs = load_runs(results)
    assert sorted(runs.seed) == [0, 1, 2] and (runs.status == "completed").all()
    assert all(len(pd.read_parquet(p)) == 1 for p in (results / "runs").glob("*.parquet"))
    assert not list((results / "running").glob("*.json"))


def test_joblib_workers_in_parallel_lose_no_row(tmp_path):
    proc = lossbench(tmp_path, "-m", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2",
                     "loss=harmonic", "distance=euclidean,cosine", "seed=0,1", *FAST)
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(tmp_path / "results")
    assert len(runs) == 4 and runs.run_id.is_unique and (runs.status == "completed").all()
    assert runs.host.nunique() == 1 and "4 runs: 4 completed" in proc.stderr
    # two runs write to one terminal at once: every line of a run names it
    for rid in runs.run_id:
        assert any(line.startswith(f"{rid}  completed  test_acc") for line in proc.stderr.splitlines())
    steps = [line for line in proc.stderr.splitlines() if " step " in line or line.startswith("step ")]
    assert steps and all(line.split()[0] in set(runs.run_id) for line in steps)


def test_submitit_local_jobs_report_lossbench_status_not_the_launchers(tmp_path):
    proc = lossbench(tmp_path, "-m", "hydra/launcher=submitit_local", "hydra.launcher.timeout_min=30",
                     "backbone=mlp,fails_mid_training", "trainer.epochs=1", "tracker=off", "trainer.progress=false",
                     env=WITH_FAULTS)
    assert proc.returncode == 1, proc.stderr  # submitit calls the raising job a success; lossbench does not
    runs = load_runs(tmp_path / "results")
    assert len(runs) == 2, proc.stderr[-3000:]
    runs = runs.set_index("backbone")
    assert runs.loc["mlp", "status"] == "completed" and runs.loc["fails_mid_training", "status"] == "failed"
    assert "2 runs: 1 completed, 1 failed" in proc.stderr


def test_smoke_grid_runs_every_distance(tmp_path):
    proc = lossbench(tmp_path, "-m", "experiment=smoke")
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(tmp_path / "results")
    assert sorted(runs.distance) == sorted(["none", *group_options("distance")])
    assert (runs.status == "completed").all() and set(runs.experiment) == {"smoke"}


@pytest.mark.parametrize("experiment", group_options("experiment"))
def test_every_experiment_grid_expands_and_its_jobs_validate(tmp_path, experiment):
    # real-data grids: claim a download (torchvision) or provide token files (openwebtext)
    extra = ["dataset.download=true"] if experiment.startswith("paper_vision") else []
    for name in ("train.bin", "val.bin"):
        (tmp_path / name).write_bytes(bytes(2 * 5000))
    jobs = sweep_jobs([f"experiment={experiment}", f"data_dir={tmp_path}", *extra])
    assert len(jobs) >= 2
    sample = [" ".join(job) for job in jobs[:: max(1, len(jobs) // 6)]]
    checked = preflight([f"experiment={experiment}", f"data_dir={tmp_path}", *extra, *_sweep_of(sample)],
                        multirun=True)
    assert checked and all(len(job.run_id) == 16 for job in checked)


def _sweep_of(jobs: list[str]) -> list[str]:
    """Turn sampled jobs back into one comma sweep per key (keeps preflight of huge grids fast)."""
    values: dict[str, list[str]] = {}
    for job in jobs:
        for item in job.split():
            key, _, value = item.partition("=")
            if key != "experiment":
                values.setdefault(key, [])
                if value not in values[key]:
                    values[key].append(value)
    return [f"{key}={','.join(vals)}" for key, vals in values.items()]


@pytest.mark.slow
def test_dynamical_spiral_grid_in_ci_size_and_its_width_report(tmp_path):
    proc = lossbench(tmp_path, "-m", "experiment=dynamical_spiral_small", "trainer.steps=400", "trainer.eval_every=100",
                     "loss.criterion.period=40", "backbone.widths=[5],[20]", "seed=0,1", "tracker=off",
                     "trainer.progress=false")
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(tmp_path / "results")
    assert len(runs) == 8 and (runs.status == "completed").all() and (runs.steps == 400).all()
    report = subprocess.run([sys.executable, "-m", "lossbench", "report", str(tmp_path / "results"), "--out",
                             str(tmp_path / "paper"), "--metrics", "val_acc", "--x", "backbone.widths",
                             "--split", "loss.criterion.amplitude"], capture_output=True, text=True)
    assert report.returncode == 0, report.stderr
    assert "| dce amplitude=1.0 |" in report.stdout and "| dce amplitude=70.0 |" in report.stdout
    assert (tmp_path / "paper" / "figures" / "val-acc-vs-backbone-widths.png").exists()
