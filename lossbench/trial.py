"""One trial of a Hydra sweeper (Optuna, Nevergrad, Ax, ...): the sweeper proposes overrides, lossbench
composes, preflights and runs them like any job, and returns the run's objective.

The objective is `objective` of the config: by default the task's checkpoint-selection score on validation
(`val_acc` for classification, `val_nll` for language models), never a test score; a list of result columns
makes a multi-objective study (e.g. `[val_acc, energy_kwh]`). Its directions come from the columns'
declarations (schema.py: higher or lower is better). A trial whose run already completed returns the stored
row's value without training, so tuning composes with skip-if-done. A trial that cannot give a value (a bad
value in its config, a failed or diverged run) raises `TrialFailed` with one line: Hydra records the job as
failed and the sweeper marks the trial failed; the study goes on.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

from omegaconf import DictConfig

from lossbench import LossbenchError
from lossbench.config import compose_run
from lossbench.context import RunContext
from lossbench.identity import run_identity
from lossbench.schema import Column, summary_columns
from lossbench.statuses import RunStatus
from lossbench.tasks.registry import task_class
from lossbench.validate import validate

log = logging.getLogger(__name__)


class TrialFailed(LossbenchError):
    """A trial gives no objective value: the sweeper counts it as failed."""


def objective_columns(cfg: DictConfig) -> list[Column]:
    """The result columns a trial returns, each with a direction (LossbenchError naming `objective`
    otherwise)."""
    task = task_class(cfg.task._target_)
    declared = {c.name: c for c in summary_columns(task.columns, task.score_columns)}
    names = list(cfg.get("objective") or [f"val_{task.selection}"])
    columns = []
    valid = {n: c for n, c in declared.items() if c.dtype in ("float", "int") and c.higher_is_better is not None
             and not n.startswith("test_")}
    for name in names:
        if name.startswith("test_") and name in declared:
            raise LossbenchError(f"objective: '{name}' is a test score; tuning selects on validation (e.g. "
                                 f"val_{task.selection}) so that the test split stays unseen until the report")
        if name not in valid:
            raise LossbenchError(f"objective: '{name}' is not a result column with a direction (higher or lower "
                                 f"is better); valid: {', '.join(valid)}")
        columns.append(valid[name])
    return columns


def directions(columns: list[Column]) -> list[str]:
    """`maximize` / `minimize` per objective column, from its declaration (a score's split copies keep it)."""
    return ["maximize" if c.higher_is_better else "minimize" for c in columns]


def run_trial(overrides: list[str], context: RunContext, here: bool = True) -> float | list[float]:
    """Compose and preflight the trial's config exactly as a grid job's, train it unless it completed
    already (`context.force` trains again), and return its objective (a float, or a list for several)."""
    from lossbench.build import dry_build  # torch: imported in the trial's process, once its config is known
    from lossbench.results import read_run
    from lossbench.run import execute

    try:
        cfg, choices = compose_run(overrides)
        validate(cfg)
        dry_build(cfg, choices, here)
        columns = objective_columns(cfg)
    except LossbenchError as exc:
        raise TrialFailed(f"trial {' '.join(overrides)}: {exc}") from None
    identity = run_identity(cfg, choices)
    results = Path(cfg.results_dir).expanduser()
    row: dict[str, Any] | None = read_run(results, identity.run_id)
    if context.force or row is None or row.get("status") != RunStatus.COMPLETED:
        row = execute(cfg, choices, context, identity).summary
    else:
        log.info("trial: run %s completed already; its stored row gives the objective", identity.run_id)
    if row.get("status") != RunStatus.COMPLETED:
        detail = row.get("error") or "non-finite training loss"
        raise TrialFailed(f"run {identity.run_id} {row.get('status')}: {detail}")
    values = [row.get(c.name) for c in columns]
    bad = [c.name for c, v in zip(columns, values) if v is None or not math.isfinite(float(v))]
    if bad:
        raise TrialFailed(f"run {identity.run_id}: objective column {bad[0]} has no value "
                          "(e.g. energy_kwh needs tracker=codecarbon)")
    log.info("trial: run %s  %s", identity.run_id, "  ".join(f"{c.name} {float(v):.6g}" for c, v in zip(columns, values)))
    return float(values[0]) if len(values) == 1 else [float(v) for v in values]
