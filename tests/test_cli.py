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
        ("seeed=1", "unknown key 'seeed'; valid keys: dataset, backbone, loss"),
        ("+foo=1", "unknown key 'foo' (+foo=1); valid keys: dataset, backbone, loss"),  # would be a new run id
        ("++foo=1", "unknown key 'foo' (++foo=1); valid keys: dataset, backbone, loss"),
        ("hydra.launcher.n_jobs=2", "Hydra's basic launcher takes no settings; pick one first, e.g. hydra/launcher"),
        ("trainer.epochs=abc", "trainer.epochs: got 'abc'; valid: int >= 1"),
        ("trainer.epochs=0", "trainer.epochs: got 0; valid: int >= 1"),
        ("seed=x", "seed: got 'x'; valid: int >= 0 and <= 9223372036854775807"),
        ("seed=18446744073709551616", "seed: got 18446744073709551616; valid: int >= 0 and <= 9223372036854775807"),
        ("optim.optimizer.lr=fast", "optim.optimizer.lr: got 'fast'; valid: finite float"),
        ("optim.optimizer.lr=nan", "optim.optimizer.lr: got nan; valid: finite float"),
        ("optim.optimizer.lr=inf", "optim.optimizer.lr: got inf; valid: finite float"),
        ("+optim.optimizer.betas=[0.9]", "optim.optimizer.betas: got [0.9]; valid: a list of 2"),
        ("optim.optimizer.lr=-1", "optim.optimizer.lr: got -1; valid: finite float >= 0"),  # torch's check, named
        ("+optim.optimizer.betas=[0.9,1.0]", "optim.optimizer.betas: got [0.9, 1.0]; valid: a list of 2: [finite "
         "float >= 0 and < 1"),
        ("trainer.eval_batch_size=100000000000000000000000", "trainer.eval_batch_size: got 100000000000000000000000; "
         "valid: int >= 1, within 64 bits"),
        ("results_dir=", "results_dir: got ''; valid: str, at least 1 item"),
        ("tracker.country_iso_code=XYZ", "country_iso_code='XYZ' is not in CodeCarbon's energy-mix data"),
        ("loss.head.bias=maybe", "loss.head.bias: got 'maybe'; valid: bool"),
        ("dataset.val_fraction=1.5", "dataset.val_fraction: got 1.5; valid: finite float > 0 and < 1"),
        ("probe_samples=-1", "probe_samples: got -1; valid: int >= 1"),
        ("backbone.channels=[]", "backbone.channels: got []; valid: a list [a,b,...] of int >= 1, at least 1 item"),
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


def test_top_level_plus_keys_that_exist_or_name_a_group_are_taken(tmp_path, monkeypatch):
    """`++seed=1` (what Hydra itself suggests for an existing key) and `+<group>=<option>` of a user's
    `@package _global_` group add no unread key: composed, not refused."""
    from lossbench.config import compose_run

    (tmp_path / "preset").mkdir()
    (tmp_path / "preset" / "fast.yaml").write_text("# @package _global_\ntrainer:\n  epochs: 2\n")
    monkeypatch.setenv("LOSSBENCH_CONFIG_PATH", str(tmp_path))
    cfg, _ = compose_run(["++seed=7", "+preset=fast"])
    assert cfg.seed == 7 and cfg.trainer.epochs == 2 and "preset" not in cfg


def test_a_target_that_cannot_be_imported_is_one_line_with_its_cause(tmp_path, monkeypatch):
    """A module off PYTHONPATH, a name not in it, and a distance that leaves out part of its contract (it fails
    on import): each one line naming the key, the target and the cause (Hydra's own lookup logged four)."""
    (tmp_path / "userdist.py").write_text(
        "import torch\nfrom lossbench.distances.base import Distance\n\n\n"
        "class Incomplete(Distance):\n    name = 'incomplete'\n\n"
        "    def pairwise(self, x, w):\n        return torch.cdist(x, w)\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.chdir(tmp_path)
    key = "loss.head.distance._target_"
    for target, cause in (("absent_module.Cls", "No module named 'absent_module' (is its folder on PYTHONPATH?)"),
                          ("lossbench.distances.Nope", "module 'lossbench.distances' has no attribute 'Nope'"),
                          ("userdist.Incomplete", "distance userdist.Incomplete must declare term_flops, reference")):
        result = CliRunner().invoke(app, ["run", "loss=harmonic", f"distance._target_={target}",
                                          f"results_dir={tmp_path / 'r'}"])
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == 2 and len(lines) == 1, result.stderr
        assert lines[0].startswith(f"error: {key}: cannot import '{target}': {cause}"), lines[0]
    assert not (tmp_path / "r").exists()


def test_export_report_and_tune_name_what_is_wrong_in_one_line(tmp_path, monkeypatch):
    """Bad paths and counts of the other commands: one line naming the option and what is valid (exit 2); a
    file that cannot be written (a path under /proc) is one line too, exit 1, never a traceback."""
    from lossbench.testing import synthetic_row, write_synthetic

    monkeypatch.chdir(tmp_path)
    write_synthetic(tmp_path / "results", [synthetic_row(seed=0, test_acc=0.9)])
    (tmp_path / "folder").mkdir()
    cases = [
        (["export", "results", "--out", "folder"], 2,
         "error: --out folder: is a folder; valid: a Parquet file's path, e.g. folder/runs.parquet"),
        (["export", "results", "--out", "nowhere/runs.parquet"], 2,
         "error: --out nowhere/runs.parquet: folder nowhere does not exist; valid: a file in an existing folder"),
        (["report", "absent"], 2, "error: no results folder at absent; valid: a folder lossbench run wrote"),
        (["tune", "--space", "optim.optimizer.lr=interval(1e-4,1e-1)", "--trials", "0"], 2,
         "error: --trials: got 0; valid: an integer >= 1 (trials per variant)"),
    ]
    if Path("/proc").is_dir():
        cases.append((["export", "results", "--out", "/proc/x.parquet"], 1, "error: stopped: cannot write"))
    for args, code, line in cases:
        result = CliRunner().invoke(app, args)
        lines = result.stderr.strip().splitlines()
        assert result.exit_code == code and len(lines) == 1 and lines[0].startswith(line), (args, result.stderr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder", "results"]
