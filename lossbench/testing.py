"""Synthetic result rows on the declared schema, for tests and the scale benchmarks (as numpy.testing and
pandas.testing serve theirs): a report or a reader can be exercised on thousands of runs without training.

A synthetic row is a real row in every column a reader relies on: its `run_id` and `cell_id` are hashed
from its stored config exactly as a trained run's are (identity.py), so cells, pairing by seed and
skip-if-done behave as they do for real results.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lossbench.identity import cell_id, hash_id, identity_config
from lossbench.results import write_run
from lossbench.schema import SCHEMA_VERSION
from lossbench.statuses import RunStatus

TASK = "lossbench.tasks.classification.Classification"


def synthetic_row(variant: str = "ce", seed: int = 0, dataset: str = "d", backbone: str = "b",
                  status: str = RunStatus.COMPLETED.value, settings: dict[str, Any] | None = None, task: str = TASK,
                  **columns: Any) -> dict[str, Any]:
    """One run's summary row: `variant` on `dataset` x `backbone`, `seed`, `status`, with `settings`
    merged into its config (e.g. {"optim": {"lr": 0.01}}: another cell) and `columns` as its metrics."""
    head, _, distance = variant.partition("/")
    config: dict[str, Any] = {"task": {"_target_": task}, "dataset": {"name": dataset},
                              "backbone": {"name": backbone}, "loss": {"variant": variant},
                              "optim": {"name": "adam"}, "seed": seed, "tracker": {"name": "off"}}
    for key, value in (settings or {}).items():
        config[key] = {**config.get(key, {}), **value} if isinstance(value, dict) else value
    return {
        "run_id": hash_id(identity_config(config)), "cell_id": cell_id(config), "task": task.rsplit(".", 1)[-1].lower(),
        "dataset": dataset, "backbone": backbone, "head": "harmonic" if distance else "linear",
        "loss": head if distance else variant, "criterion": "ce", "distance": distance.split(" ")[0] or "none",
        "variant": variant, "optim": "adam", "seed": seed, "status": status, "schema_version": SCHEMA_VERSION,
        "config_json": json.dumps(config, sort_keys=True), "finished_at": f"2026-01-01T00:00:{seed % 60:02d}",
        **columns,
    }


def write_synthetic(root: Path, rows: Iterable[dict[str, Any]],
                    history: dict[str, list[dict[str, Any]]] | None = None) -> list[str]:
    """Write rows (and history rows by run id) into a results folder, as runs write theirs; the run ids."""
    ids = []
    for row in rows:
        write_run(root, row, (history or {}).get(row["run_id"], []))
        ids.append(row["run_id"])
    return ids
