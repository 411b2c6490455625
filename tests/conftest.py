"""Shared fixtures: compose configs exactly as the CLI does, with outputs in a temporary folder."""

from __future__ import annotations

import os
from pathlib import Path

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


def schema_gaps(row: dict, task, history=None, test_each_eval: bool = True) -> tuple[set, set, set, set]:
    """(undeclared, missing) summary columns and (undeclared, missing) history columns of one run,
    against the declared schema (lossbench/schema.py) of its task."""
    extra, missing = check_row(row, summary_columns(task.columns, task.score_columns), row["status"])
    if history is None or history.empty:
        return extra, missing, set(), set()
    declared = {c.name for c in history_columns(task.score_columns, task.train_score, test_each_eval)}
    return extra, missing, set(history.columns) - declared, declared - set(history.columns)
