"""One trainer per run at a time, across processes and hosts sharing a results folder: a run lock created
atomically, kept alive by a heartbeat, taken over when its holder is gone (dead process on this host, or no
heartbeat for STALE_AFTER intervals on any host); sweeps do not submit runs that are training elsewhere,
and `lossbench status` judges liveness by heartbeats."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from lossbench import locks, store
from lossbench.config import compose_run
from lossbench.identity import run_identity
from lossbench.results import load_runs

FAST = ["backbone=mlp", "trainer.epochs=1", "tracker=off", "trainer.progress=false"]


def lossbench(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "lossbench", *args], capture_output=True, text=True, timeout=600,
                          env=env)


def run_id(*overrides: str) -> str:
    cfg, choices = compose_run(list(overrides))
    return run_identity(cfg, choices).run_id


def hold(results: Path, rid: str, **fields) -> Path:
    """A lock as another trainer would have written it (by default: alive, on another host)."""
    lock = {"run_id": rid, "sweep": None, "pid": 4242, "host": "node-17", "slurm_job_id": "77_3",
            "started_at": time.time(), "heartbeat_at": time.time(), "token": "theirs", **fields}
    path = results / store.RUNNING / f"{rid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(lock))
    return path


def test_a_run_another_host_is_training_is_neither_trained_nor_submitted_again(tmp_path):
    results = tmp_path / "r"
    hold(results, run_id(*FAST, "seed=0"))
    single = lossbench("run", *FAST, "seed=0", f"results_dir={results}")
    assert single.returncode == 1
    assert "is already training on node-17 (pid 4242, SLURM job 77_3): not started" in single.stderr
    sweep = lossbench("run", "-m", *FAST, "seed=0,1", f"results_dir={results}")
    assert sweep.returncode == 1, sweep.stderr
    assert "2 runs: 1 completed, 1 running_elsewhere" in sweep.stderr
    assert "training on node-17 (pid 4242, SLURM job 77_3): not submitted again" in sweep.stderr
    assert list(load_runs(results).seed) == [1]


def test_a_lock_without_heartbeat_is_taken_over_and_released(tmp_path):
    results = tmp_path / "r"
    old = time.time() - locks.STALE_AFTER * locks.HEARTBEAT_S - 5
    path = hold(results, run_id(*FAST), heartbeat_at=old, started_at=old)
    status = lossbench("status", str(results))
    assert "stale" in status.stdout and "node-17" in status.stdout
    proc = lossbench("run", *FAST, f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    assert load_runs(results).iloc[0].status == "completed" and not path.exists()


def test_a_lock_of_a_dead_process_on_this_host_is_taken_over_at_once(tmp_path):
    results = tmp_path / "r"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    hold(results, run_id(*FAST), host=os.uname().nodename, pid=gone.pid, slurm_job_id=None)  # fresh heartbeat
    proc = lossbench("run", *FAST, f"results_dir={results}")
    assert proc.returncode == 0, proc.stderr
    assert load_runs(results).iloc[0].status == "completed"


def test_status_counts_a_run_with_a_fresh_heartbeat_elsewhere_as_running(tmp_path):
    results = tmp_path / "r"
    assert lossbench("run", "-m", *FAST, "seed=0,1", f"results_dir={results}").returncode == 0
    for path in (results / store.RUNS).glob("*.parquet"):
        path.unlink()
    rid = run_id(*FAST, "seed=0")
    hold(results, rid)
    out = lossbench("status", str(results)).stdout
    header, sweep = out.splitlines()[:2]
    counts = dict(zip(header.split()[2:8], sweep.split()[2:8]))
    assert counts["running"] == "1" and counts["pending"] == "1" and "stale" not in out


def test_the_heartbeat_advances_while_a_run_trains(tmp_path):
    results = tmp_path / "r"
    env = {**os.environ, "LOSSBENCH_HEARTBEAT_S": "0.2"}
    proc = subprocess.Popen([sys.executable, "-m", "lossbench", "run", "backbone=cnn", "trainer.epochs=8", "tracker=off",
                             "trainer.progress=false", "threads=1", f"results_dir={results}"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    beats = set()
    while proc.poll() is None:
        for path in (results / store.RUNNING).glob("*.json") if (results / store.RUNNING).is_dir() else []:
            try:
                beats.add(json.loads(path.read_text())["heartbeat_at"])
            except (OSError, ValueError):
                pass
        time.sleep(0.05)
    assert proc.returncode == 0, proc.stderr.read()
    assert len(beats) >= 3  # the lock was refreshed while training
    assert not list((results / store.RUNNING).glob("*.json"))


def test_two_commands_starting_the_same_run_at_once_train_it_once(tmp_path):
    results = tmp_path / "r"
    cmd = [sys.executable, "-m", "lossbench", "run", "backbone=cnn", "trainer.epochs=4", "tracker=off",
           "trainer.progress=false", "threads=1", f"results_dir={results}"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    errs = [p.communicate(timeout=600)[1] for p in procs]
    trained = [e for e in errs if "completed  test_acc" in e]
    refused = [e for e in errs if "is already training" in e or "completed meanwhile" in e]
    assert len(trained) == 1 and len(refused) == 1, errs
    assert len(load_runs(results)) == 1 and len(list((results / "history").glob("*.parquet"))) == 1


def test_status_lists_a_single_run_in_progress(tmp_path):
    """A run training now has a lock and no row yet: `status` counts it as running, not as nothing."""
    results = tmp_path / "r"
    path = results / store.RUNNING / "0123456789abcdef.json"
    path.parent.mkdir(parents=True)
    now = time.time()
    path.write_text(json.dumps({"run_id": "0123456789abcdef", "pid": os.getpid(), "host": socket.gethostname(),
                                "started_at": now, "heartbeat_at": now}))
    from lossbench.status import sweep_status

    line = next(line for line in sweep_status(results).splitlines() if "(single runs)" in line)
    assert line.split()[1:4] == ["1", "0", "1"]  # 1 run: 0 done, 1 running
