"""Shared fixtures: compose configs exactly as the CLI does, with outputs in a temporary folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import DictConfig

from lossbench.config import compose_run

# Small, fast runs: one or two epochs, no energy tracker, no progress bar.
TINY = ["tracker=off", "trainer.epochs=1", "trainer.progress=false", "device=cpu"]


@pytest.fixture
def compose(tmp_path: Path):
    """compose(*overrides) -> (cfg, choices) with results_dir in tmp_path and the TINY settings."""

    def _compose(*overrides: str) -> tuple[DictConfig, dict[str, str]]:
        return compose_run([*TINY, f"results_dir={tmp_path / 'results'}", *overrides])

    return _compose
