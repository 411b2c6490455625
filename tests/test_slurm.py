"""Sweeps on a real SLURM cluster (slurmctld + slurmd + slurmdbd; scripts/slurm_local_cluster.sh, started
by .ci/run): jobs named after the sweep and traceable from each row, re-runs that submit only what is
missing (counted in sacct), a cancelled job, a timed-out job and a rejected submission that become rows
and a summary instead of a traceback, grids larger than MaxArraySize split into several arrays, and a job
requeued mid-training that resumes from its checkpoint."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lossbench.cluster import max_array_size
from lossbench.results import load_runs

pytestmark = pytest.mark.slurm
FAST = ["backbone=mlp", "trainer.epochs=1", "tracker=off", "trainer.progress=false"]


def lossbench(tmp_path: Path, *args: str, timeout: int = 900) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lossbench", "run", "-m", *args, f"results_dir={tmp_path / 'results'}"]
    return subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=timeout)


def jobs_named(name: str, at_least: int = 0) -> list[tuple[str, str]]:
    """(job id, state) of every array task with this job name, from accounting (slurmdbd records jobs a
    moment after they end: wait up to 30 s for `at_least` of them)."""
    deadline = time.time() + 30
    while True:
        out = subprocess.run(["sacct", "-n", "-P", "-X", "--name", name, "-o", "JobID,State", "-S", "now-1days"],
                             capture_output=True, text=True, check=True).stdout
        jobs = [tuple(line.split("|")[:2]) for line in out.strip().splitlines() if line]
        if len(jobs) >= at_least and all(state not in ("RUNNING", "PENDING", "COMPLETING") for _, state in jobs) \
                or time.time() > deadline:
            return jobs
        time.sleep(1)


def sweep_of(results: Path) -> str:
    return json.loads(next((results / "sweeps").glob("*.json")).read_text())["sweep"]


def test_a_sweep_runs_on_the_cluster_and_a_rerun_submits_nothing(tmp_path):
    grid = ["hydra/launcher=slurm_cpu", "loss=ce,harmonic", "distance=euclidean,cosine", *FAST]
    first = lossbench(tmp_path, *grid)
    assert first.returncode == 0, first.stderr[-3000:]
    results = tmp_path / "results"
    runs = load_runs(results)
    assert len(runs) == 3 and (runs.status == "completed").all()  # CE once: 3 jobs for 3 runs, not 4
    name = f"lossbench-{sweep_of(results)}"
    jobs = jobs_named(name, at_least=3)
    assert len(jobs) == 3 and {state for _, state in jobs} == {"COMPLETED"}
    assert sorted(runs.slurm_job_id) == sorted(job for job, _ in jobs)  # every row names its job
    assert all(Path(log).is_dir() for log in runs.job_log)
    again = lossbench(tmp_path, *grid)
    assert again.returncode == 0 and "(3 already done, skipped)" in again.stderr
    assert len(jobs_named(name)) == 3  # nothing was submitted
    status = subprocess.run([sys.executable, "-m", "lossbench", "status", str(results)], capture_output=True,
                            text=True, check=True).stdout
    assert f"SLURM jobs {name}: 3 COMPLETED" in status  # joined with sacct


def test_a_grid_larger_than_max_array_size_is_split_into_arrays(tmp_path):
    limit = max_array_size()
    assert limit <= 8, "the test cluster keeps MaxArraySize small (scripts/slurm_local_cluster.sh)"
    seeds = ",".join(map(str, range(limit + 1)))
    proc = lossbench(tmp_path, "hydra/launcher=slurm_cpu", f"seed={seeds}", *FAST)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert len(load_runs(tmp_path / "results")) == limit + 1
    jobs = jobs_named(f"lossbench-{sweep_of(tmp_path / 'results')}", at_least=limit + 1)
    arrays = {job.split("_")[0] for job, _ in jobs}
    assert len(arrays) == 2


def _start_and_cancel_one(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], str]:
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "lossbench", "run", "-m", *args, f"results_dir={results}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, job = time.time() + 300, None
    while time.time() < deadline and job is None:
        markers = sorted((results / "running").glob("*.json")) if (results / "running").is_dir() else []
        job = json.loads(markers[0].read_text()).get("slurm_job_id") if markers else None
        time.sleep(0.5)
    assert job, "no job started"
    subprocess.run(["scancel", job], check=True)
    out, err = proc.communicate(timeout=900)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err), job


def test_a_cancelled_job_becomes_a_row_and_the_summary_not_a_traceback(tmp_path):
    proc, job = _start_and_cancel_one(tmp_path, "hydra/launcher=slurm_cpu", "seed=0,1", "backbone=cnn",
                                      "trainer.epochs=150", "tracker=off", "trainer.progress=false")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert "2 runs: 1 completed, 1 cancelled" in proc.stderr
    runs = load_runs(tmp_path / "results").set_index("slurm_job_id")
    assert runs.at[job, "status"] == "cancelled" and "CANCELLED" in runs.at[job, "error"]
    assert not list((tmp_path / "results" / "running").glob("*.json"))
    status = subprocess.run([sys.executable, "-m", "lossbench", "status", str(tmp_path / "results")],
                            capture_output=True, text=True, check=True).stdout
    assert f"[SLURM job {job}]" in status and status.splitlines()[1].split()[1:8] == ["2", "1", "0", "0", "0", "1", "0"]
    rerun = lossbench(tmp_path, "hydra/launcher=slurm_cpu", "seed=0,1", "backbone=cnn", "trainer.epochs=2",
                      "tracker=off", "trainer.progress=false")
    assert rerun.returncode == 0  # a different config (epochs): both run; the cancelled config is not skipped


def test_a_timed_out_job_becomes_a_timeout_row(tmp_path):
    # submitit asks SLURM for its warning signal 90 s before the limit: 2 min leaves the run ~30 s
    proc = lossbench(tmp_path, "hydra/launcher=slurm_cpu", "hydra.launcher.timeout_min=2", "seed=0",
                     "backbone=cnn", "trainer.epochs=2000", "tracker=off", "trainer.progress=false")
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    row = load_runs(tmp_path / "results").iloc[0]
    assert row.status == "timeout" and "timed-out" in row.error and row.slurm_job_id
    assert "1 runs: 1 timeout" in proc.stderr


def test_a_rejected_submission_is_one_line_and_not_submitted_rows(tmp_path):
    # the GPU preset on a cluster without GPUs: sbatch rejects the gres request
    proc = lossbench(tmp_path, "hydra/launcher=slurm", "seed=0,1", *FAST)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr
    assert "the launcher stopped: FailedJobError: sbatch: error: Invalid generic resource" in proc.stderr
    runs = load_runs(tmp_path / "results")
    assert len(runs) == 2 and set(runs.status) == {"not_submitted"}
    assert "2 runs: 2 not_submitted" in proc.stderr


def test_a_requeued_job_resumes_from_its_checkpoint_with_identical_metrics(tmp_path):
    """`scontrol requeue` mid-training (what preemption and a time-limit requeue do): SLURM kills the job
    and starts it again; the run resumes from its last checkpoint and ends with the metrics of an
    uninterrupted run, bit for bit."""
    config = ["seed=0", "backbone=cnn", "trainer.epochs=100", "threads=1", "tracker=off", "trainer.progress=false",
              "trainer.checkpoint_interval_s=0"]
    results = tmp_path / "results"
    cmd = [sys.executable, "-m", "lossbench", "run", "-m", "hydra/launcher=slurm_cpu", *config, f"results_dir={results}"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline, job = time.time() + 300, None
    while time.time() < deadline and job is None:
        markers = sorted((results / "running").glob("*.json")) if (results / "running").is_dir() else []
        checkpoints = list((results / "checkpoints").glob("*.pt")) if (results / "checkpoints").is_dir() else []
        job = json.loads(markers[0].read_text()).get("slurm_job_id") if markers and checkpoints else None
        time.sleep(0.2)
    assert job, "no checkpoint was written"
    subprocess.run(["scontrol", "requeue", job], check=True)
    _, err = proc.communicate(timeout=900)
    assert proc.returncode == 0, err[-3000:]
    row = load_runs(results).iloc[0]
    assert row.status == "completed" and row.resumed_from_step > 0
    local = subprocess.run([sys.executable, "-m", "lossbench", "run", *config, f"results_dir={tmp_path / 'local'}"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert local.returncode == 0, local.stderr[-3000:]
    reference = load_runs(tmp_path / "local").iloc[0]
    assert row.run_id == reference.run_id
    for column in ("test_acc", "test_loss", "val_loss", "train_loss", "grad_norm_mean", "best_epoch", "steps"):
        assert row[column] == reference[column], column


def test_the_device_is_checked_on_the_node_not_on_the_submitting_host(tmp_path):
    """device=cuda is submittable from a host without CUDA; on a node without CUDA the run fails with a
    row that says so (never silent CPU training)."""
    proc = lossbench(tmp_path, "hydra/launcher=slurm_cpu", "device=cuda", "seed=0", *FAST)
    assert proc.returncode == 1 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    row = load_runs(tmp_path / "results").iloc[0]
    assert row.status == "failed" and row.slurm_job_id and row.device == "cuda"
    assert row.error.startswith("LossbenchError: device=cuda but CUDA is not available on ")
    assert "1 runs: 1 failed" in proc.stderr


def test_two_overlapping_sweeps_submitted_at_once_train_each_run_once(tmp_path):
    results = tmp_path / "results"
    common = ["hydra/launcher=slurm_cpu", "backbone=cnn", "trainer.epochs=15", "tracker=off", "trainer.progress=false",
              f"results_dir={results}"]
    procs = [subprocess.Popen([sys.executable, "-m", "lossbench", "run", "-m", f"seed={seeds}", *common], cwd=tmp_path,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for seeds in ("0,1", "1,2")]
    errs = [p.communicate(timeout=900)[1] for p in procs]
    assert all("Traceback" not in e for e in errs), errs
    runs = load_runs(results)
    assert sorted(runs.seed) == [0, 1, 2] and (runs.status == "completed").all()
    shared = runs.set_index("seed").at[1, "run_id"]
    logs = [p.read_text() for p in results.rglob("*_log.err")]
    trained = [log for log in logs if f"run {shared}:" in log and "completed  test_acc" in log]
    declined = [log for log in logs if f"run {shared} is already training" in log or
                f"run {shared} completed meanwhile" in log]
    assert len(trained) == 1 and len(declined) == 1  # both sweeps submitted it; one job trained it
