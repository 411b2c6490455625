"""What can be reported for a task: its metrics (schema columns) and its view, found from the rows.

The report never keeps its own table of tasks or metrics: a row's task is the class its stored
config names (`task._target_`), its metrics are the schema's common columns plus the task's own
(`lossbench.schema.summary_columns`), and its view (radar axes, headline, curve axis) is the task's
`report`.
"""

from __future__ import annotations

from functools import cache

import pandas as pd

from lossbench import LossbenchError
from lossbench.schema import Column, summary_columns
from lossbench.tasks.base import Task
from lossbench.tasks.registry import task_target


def task_targets(runs: pd.DataFrame) -> pd.Series:
    """The task class path of every row."""
    return runs["config_json"].map(task_target)


@cache
def columns_of(task: type[Task]) -> dict[str, Column]:
    """Every summary column of this task's rows, by name."""
    return {c.name: c for c in summary_columns(task.columns, task.score_columns)}


def metrics_of(task: type[Task], names: list[str] | None = None, block: str | None = None) -> list[Column]:
    """The task's report metrics (or the given names, where they are the task's), cut to one block."""
    catalogue = columns_of(task)
    chosen = [catalogue[n] for n in (names or task.report.metrics) if n in catalogue]
    if block is None:
        return chosen
    return [m for m in chosen if m.block == block] or [catalogue[n] for n in task.report.metrics
                                                       if catalogue[n].block == block]


def check_metric_names(names: list[str], tasks: list[type[Task]]) -> None:
    """Every name must be a reportable column of at least one task (one-line error otherwise)."""
    known = {name: None for task in tasks for name, c in columns_of(task).items() if c.block}
    unknown = [n for n in names if n not in known]
    if unknown:
        raise LossbenchError(f"unknown metric '{unknown[0]}'; choose from: {', '.join(known)}")
