"""Interrupted runs resume where their last checkpoint left them, with the metrics of an uninterrupted run
bit for bit (CPU, one thread), no duplicated or missing history points, and `--restart` starts over."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest

from lossbench import store
from lossbench.results import load_history, load_runs
from lossbench.run import execute

EXACT = ["test_acc", "test_loss", "val_loss", "train_loss", "grad_norm_mean", "grad_norm_max", "best_epoch",
         "head_param_norm", "model_param_norm", "steps"]
CASES = {  # classification with data augmentation-free shuffling; a language model with random windows
    "classification": ["dataset=mnist1d", "backbone=mlp", "loss=harmonic", "trainer.epochs=5", "threads=1",
                       "trainer.checkpoint_interval_s=0"],
    "lm": ["task=lm", "backbone.n_layer=1", "backbone.n_head=2", "backbone.n_embd=16", "backbone.block_size=16",
           "trainer.steps=30", "trainer.eval_every=6", "trainer.batch_size=4", "trainer.grad_accum=2",
           "dataset.eval_windows=4", "probe_samples=64", "loss=harmonic", "distance=cosine", "threads=1",
           "trainer.checkpoint_interval_s=0"],
}


class Interrupted(Exception):
    """Stands for the kill: raised right after the n-th checkpoint was written."""


def _crash_after(monkeypatch, n: int) -> list[int]:
    written: list[int] = []
    real = store.write_checkpoint

    def write(path, state):
        real(path, state)
        written.append(state["result"].steps)
        if len(written) == n:
            raise Interrupted(f"interrupted after checkpoint {n}")

    monkeypatch.setattr(store, "write_checkpoint", write)
    return written


@pytest.mark.parametrize("case", CASES)
def test_a_run_interrupted_after_a_checkpoint_resumes_to_identical_metrics(compose, tmp_path, monkeypatch, case):
    cfg, choices = compose(*CASES[case], f"results_dir={tmp_path / 'whole'}")
    whole = execute(cfg, choices).summary
    assert whole["resumed_from_step"] is None

    cfg, choices = compose(*CASES[case], f"results_dir={tmp_path / 'cut'}")
    written = _crash_after(monkeypatch, 2)
    first = execute(cfg, choices).summary
    assert first["status"] == "failed" and "interrupted after checkpoint 2" in first["error"]
    checkpoint = store.checkpoint_path(tmp_path / "cut", first["run_id"])
    assert checkpoint.exists()
    monkeypatch.undo()
    resumed = execute(cfg, choices).summary
    assert resumed["status"] == "completed" and resumed["resumed_from_step"] == written[-1] > 0
    assert resumed["run_id"] == whole["run_id"]
    for column in EXACT:
        assert resumed[column] == whole[column], column  # bit for bit
    cut, full = load_history(tmp_path / "cut"), load_history(tmp_path / "whole")
    assert list(cut.step) == list(full.step) and cut.step.is_unique  # no point missing or twice
    assert list(cut.train_loss) == list(full.train_loss) and list(cut.val_loss) == list(full.val_loss)
    assert not checkpoint.exists()  # a finished run leaves no checkpoint behind
    assert len(load_runs(tmp_path / "cut")) == 1  # the failed row was replaced


def test_checkpoints_every_n_evaluations_at_most_once_per_interval_and_never_with_zero(compose, tmp_path, monkeypatch):
    # 5 evaluations; none at the last. The classification case saves whenever due (interval 0).
    for every, interval, expected in ((2, 0, [2, 4]), (1, 0, [1, 2, 3, 4]), (0, 0, []), (1, 3600, [])):
        evaluations: list[int] = []
        monkeypatch.setattr(store, "write_checkpoint", lambda path, state: evaluations.append(len(state["result"].history)))
        cfg, choices = compose(*CASES["classification"], f"trainer.checkpoint_every={every}",
                               f"trainer.checkpoint_interval_s={interval}", f"results_dir={tmp_path / f'{every}-{interval}'}")
        assert execute(cfg, choices).summary["status"] == "completed"
        assert evaluations == expected, (every, interval)


def _lossbench(*args: str, results, **kw) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "lossbench", "run", *args, f"results_dir={results}"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


KILLED = ["dataset=mnist1d", "backbone=cnn", "trainer.epochs=6", "tracker=off", "trainer.progress=false", "threads=1",
          "trainer.checkpoint_interval_s=0"]


def _kill_after_first_checkpoint(tmp_path, results) -> str:
    proc = _lossbench(*KILLED, results=results)
    folder = results / store.CHECKPOINTS
    deadline = time.monotonic() + 300
    while not any(folder.glob("*.pt")) and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    (checkpoint,) = folder.glob("*.pt")
    assert not (results / store.RUNS).exists() or not any((results / store.RUNS).glob("*.parquet"))
    return checkpoint.stem


def test_a_sigkilled_lossbench_run_resumes_when_run_again_and_restart_starts_over(tmp_path):
    rid = _kill_after_first_checkpoint(tmp_path, tmp_path / "r")
    again = _lossbench(*KILLED, results=tmp_path / "r")
    _, err = again.communicate(timeout=600)
    assert again.returncode == 0, err
    row = load_runs(tmp_path / "r").iloc[0]
    assert row.run_id == rid and row.status == "completed" and row.resumed_from_step > 0
    assert "resuming at step" in err

    whole = _lossbench(*KILLED, results=tmp_path / "whole")
    assert whole.wait(timeout=600) == 0
    reference = load_runs(tmp_path / "whole").iloc[0]
    for column in EXACT:
        assert row[column] == reference[column], column

    _kill_after_first_checkpoint(tmp_path, tmp_path / "s")
    restart = _lossbench("--restart", *KILLED, results=tmp_path / "s")
    _, err = restart.communicate(timeout=600)
    assert restart.returncode == 0, err
    row = load_runs(tmp_path / "s").iloc[0]
    assert row.status == "completed" and pd.isna(row.resumed_from_step)
    assert "resuming" not in err and not any((tmp_path / "s" / store.CHECKPOINTS).glob("*.pt"))
