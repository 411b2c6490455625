"""The command line as a user meets it: real subprocesses of `python -m lossbench`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossbench.cli import app
from lossbench.config import GROUPS, group_options
from lossbench.results import load_history, load_runs


def lossbench(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "lossbench", *args], cwd=cwd, capture_output=True, text=True, timeout=300
    )


@pytest.mark.parametrize(
    "override,expected",
    [
        ("distance=cosinee", "unknown distance 'cosinee'; choose one of: " + ", ".join(group_options("distance"))),
        ("dataset=mnist2d", "choose one of: " + ", ".join(group_options("dataset"))),
        ("trainer.epocs=3", "unknown key 'trainer.epocs'; valid keys of trainer: epochs, batch_size"),
        ("trainer.epochs=abc", "trainer.epochs: got 'abc'; valid: int >= 1"),
        ("trainer.epochs=0", "trainer.epochs: got 0; valid: int >= 1"),
        ("seed=x", "seed: got 'x'; valid: int >= 0 and <= 9223372036854775807"),
        ("seed=18446744073709551616", "seed: got 18446744073709551616; valid: int >= 0 and <= 9223372036854775807"),
        ("optim.optimizer.lr=fast", "optim.optimizer.lr: got 'fast'; valid: finite float"),
        ("optim.optimizer.lr=nan", "optim.optimizer.lr: got nan; valid: finite float"),
        ("optim.optimizer.lr=inf", "optim.optimizer.lr: got inf; valid: finite float"),
        ("+optim.optimizer.betas=[0.9]", "optim.optimizer.betas: got [0.9]; valid: a list of 2"),
        ("trainer.eval_batch_size=100000000000000000000000", "trainer.eval_batch_size: got 100000000000000000000000; "
         "valid: int >= 1, within 64 bits"),
        ("results_dir=", "results_dir: got ''; valid: str at least 1 item"),
        ("tracker.country_iso_code=XYZ", "country_iso_code='XYZ' is not in CodeCarbon's energy-mix data"),
        ("loss.head.bias=maybe", "loss.head.bias: got 'maybe'; valid: bool"),
        ("dataset.val_fraction=1.5", "dataset.val_fraction: got 1.5; valid: finite float > 0 and < 1"),
        ("probe_samples=-1", "probe_samples: got -1; valid: int >= 1"),
        ("backbone.channels=[]", "backbone.channels: got []; valid: list at least 1 item"),
        ("device=tpu", "unknown device 'tpu'"),
        ("dataset=cifar10", "CIFAR10 not found: expected"),
    ],
)
def test_bad_input_exits_2_with_one_line_and_writes_nothing(tmp_path, monkeypatch, override, expected):
    # in-process (typer's runner): what a subprocess adds is covered by the other tests of this module
    monkeypatch.chdir(tmp_path)
    results = tmp_path / "results"
    result = CliRunner().invoke(app, ["run", f"results_dir={results}", f"data_dir={tmp_path / 'data'}", override])
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and expected in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == []  # nothing written, here or in results/


def test_run_writes_a_row_and_prints_a_summary_line(tmp_path):
    results = tmp_path / "results"
    proc = lossbench(
        "run", "loss=harmonic", "distance=cosine", "backbone=mlp", "trainer.epochs=2", "seed=3",
        f"results_dir={results}", cwd=tmp_path,
    )
    assert proc.returncode == 0, proc.stderr
    runs = load_runs(results)
    assert len(runs) == 1 and len(load_history(results)) == 2
    row = runs.iloc[0]
    assert (row.loss, row.distance, row.seed, row.status) == ("harmonic", "cosine", 3, "completed")
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("completed  test_acc") and f"{row.test_acc:.4f}" in last and "kWh" in last
    assert last.endswith(f"{row.run_id}.parquet")
    assert row.energy_kwh > 0  # default tracker is codecarbon
    assert (results / "logs").is_dir() and list(results.glob("logs/*/*/run.log"))


def test_list_shows_every_group_and_option(tmp_path):
    proc = lossbench("list", cwd=tmp_path)
    assert proc.returncode == 0
    for group in GROUPS:
        line = next(line for line in proc.stdout.splitlines() if line.startswith(group + " "))
        assert all(option in line for option in group_options(group))
    assert "mnist1d*" in proc.stdout  # the default is marked
    detail = lossbench("list", "distance", cwd=tmp_path)
    assert "cosine" in detail.stdout and "1 - cos" in detail.stdout
    bad = lossbench("list", "distances", cwd=tmp_path)
    assert bad.returncode == 2 and "choose one of: task, dataset, backbone" in bad.stderr


def test_run_help_explains_overrides_with_examples(tmp_path):
    proc = lossbench("run", "--help", cwd=tmp_path)
    assert proc.returncode == 0
    for text in ("Hydra overrides", "lossbench run loss=harmonic distance=cosine", "-m", "lossbench list"):
        assert text in proc.stdout
