"""Shared fixtures: compose configs exactly as the CLI does, with outputs in a temporary folder."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pyarrow.parquet as pq
import torch

# Without CUDA, the Triton kernels are tested under Triton's interpreter; it must be chosen before
# anything imports Triton.
if not torch.cuda.is_available():
    os.environ.setdefault("TRITON_INTERPRET", "1")

import pytest
from omegaconf import DictConfig

from lossbench.config import compose_run
from lossbench.schema import check_row, history_columns, summary_columns

# Small, fast runs: one or two epochs, no energy tracker, no progress bar.
TINY = ["tracker=off", "trainer.epochs=1", "trainer.progress=false", "device=cpu"]


@pytest.fixture
def compose(tmp_path: Path):
    """compose(*overrides) -> (cfg, choices) with results_dir in tmp_path and the TINY settings."""

    def _compose(*overrides: str) -> tuple[DictConfig, dict[str, str]]:
        return compose_run([*TINY, f"results_dir={tmp_path / 'results'}", *overrides])

    return _compose


def schema_gaps(summary: dict, task, results_dir=None, test_each_eval: bool = True) -> tuple[set, set, set, set]:
    """(undeclared, missing) columns of a run's summary row as the run built it, and (undeclared, missing)
    columns of its history file that hold values (read with pyarrow: null is no value), against the
    declared columns (lossbench/schema.py) of its task."""
    extra, missing = check_row(summary, summary_columns(task.columns, task.score_columns), summary["status"])
    path = Path(results_dir or ".") / "history" / f"{summary['run_id']}.parquet"
    if results_dir is None or not path.exists():
        return extra, missing, set(), set()
    history = pq.read_table(path)
    filled = {name for name in history.column_names if history[name].null_count < history.num_rows}
    declared = {c.name for c in history_columns(task.score_columns, task.train_score, test_each_eval)}
    return extra, missing, filled - declared, declared - filled


# Tests that need a real service carry its marker. Where the service is missing they are deselected with the
# reason printed, except in CI (CI=true), where .ci/run installs every service it can: there they run and fail.
# A GPU is hardware, not a package: CI machines have none, so `gpu` tests are deselected there too, with the
# reason printed (they run on any machine with CUDA).
INSTALLED_BY_CI = ("latex", "slurm", "browser")
SERVICES = {
    "browser": (lambda: _browser_present(), "chromium, chromedriver or selenium not found (apt-get install chromium "
                "chromium-driver; pip install selenium)"),
    "gpu": (lambda: torch.cuda.is_available(), "no CUDA device"),
    "latex": (lambda: shutil.which("pdflatex") is not None, "pdflatex not found (apt-get install texlive-latex-base "
              "texlive-latex-recommended)"),
    "slurm": (lambda: _slurm_up(), "no SLURM cluster answers sinfo (start one: bash scripts/slurm_local_cluster.sh)"),
}


def _browser_present() -> bool:
    import importlib.util

    from lossbench.browser import binaries

    return all(binaries()) and importlib.util.find_spec("selenium") is not None


def _slurm_up() -> bool:
    import subprocess

    try:
        out = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True, timeout=20)
    except (OSError, subprocess.SubprocessError):
        return False
    return out.returncode == 0 and any(s in out.stdout for s in ("idle", "mix", "alloc"))


def pytest_collection_modifyitems(config, items):
    in_ci = os.environ.get("CI", "").lower() in ("1", "true", "yes")
    missing = {name: reason for name, (present, reason) in SERVICES.items()
               if not (in_ci and name in INSTALLED_BY_CI) and not present()}
    keep, dropped = [], []
    for item in items:
        (dropped if any(item.get_closest_marker(name) for name in missing) else keep).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        items[:] = keep
        config._lossbench_missing = {name: (reason, sum(1 for i in dropped if i.get_closest_marker(name)))
                                     for name, reason in missing.items()}


def pytest_terminal_summary(terminalreporter, config):
    for name, (reason, count) in getattr(config, "_lossbench_missing", {}).items():
        if count:
            terminalreporter.write_line(f"deselected {count} test(s) marked '{name}': {reason}")
