"""Which tasks exist: the classes that `conf/task/*.yaml` (and the folders on `LOSSBENCH_CONFIG_PATH`) name.

The results schema is the union of their columns (lossbench/results.py), and the report finds a row's
task again through the `task._target_` of its stored config. A task is never listed by hand.
"""

from __future__ import annotations

import json
from functools import cache

import yaml

from lossbench import LossbenchError
from lossbench.config import extra_dirs, group_options, option_file
from lossbench.targets import locate
from lossbench.tasks.base import Task


@cache
def task_class(target: str) -> type[Task]:
    """The Task class a `task._target_` names."""
    return locate(target, "task class")  # named by a config's task._target_ or a stored row's config


def option_task(option: str) -> type[Task]:
    """The Task class of one `conf/task/<option>.yaml` (read from the file, not composed)."""
    node = yaml.safe_load(option_file("task", option).read_text())
    return task_class(node["task"]["_target_"])


def known_tasks() -> tuple[type[Task], ...]:
    """Every task the config folders offer, in option order (one entry per class)."""
    return _known(tuple(str(d) for d in extra_dirs()))


@cache
def _known(_dirs: tuple[str, ...]) -> tuple[type[Task], ...]:  # cached per LOSSBENCH_CONFIG_PATH
    return tuple(dict.fromkeys(option_task(option) for option in group_options("task")))


def task_target(config_json: object) -> str:
    """`task._target_` of a row's stored config."""
    try:
        return json.loads(str(config_json))["task"]["_target_"]
    except (ValueError, KeyError, TypeError):
        raise LossbenchError("a row has no task in its stored config_json; cannot tell how to report it") from None
