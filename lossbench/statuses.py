"""Run statuses, defined once: what a result row's `status` column holds, and what a sweep's summary
says of a run that has no row.

A `str` enum: a member equals its value (`RunStatus.COMPLETED == "completed"`), so rows, DataFrame
filters and JSON keep plain strings, and code spells each status in one place.
"""

from __future__ import annotations

from enum import Enum


class RunStatus(str, Enum):
    """How a run ended. The first three a run writes itself; the cluster states are written for a run
    whose job ended before it could write its own row (a cancelled, timed-out, killed or never submitted
    SLURM job); the last two are never written: a sweep's summary uses them for runs without a row."""

    COMPLETED = "completed"  # trained to the end
    DIVERGED = "diverged"  # the training loss stopped being finite
    FAILED = "failed"  # raised (the error and a traceback are kept)
    CANCELLED = "cancelled"
    TIMEOUT = "timeout"
    OUT_OF_MEMORY = "out_of_memory"
    NODE_FAIL = "node_fail"
    PREEMPTED = "preempted"
    NOT_SUBMITTED = "not_submitted"
    RUNNING_ELSEWHERE = "running_elsewhere"  # no row; another live trainer holds the run's lock
    MISSING = "missing"  # no row and no live trainer (killed before the end?)

    __str__ = str.__str__  # "completed", not "RunStatus.COMPLETED", in messages and f-strings
    __format__ = str.__format__


# ended without finishing on their own (besides `failed`, which a run writes itself): the cluster's states
UNFINISHED = (RunStatus.CANCELLED, RunStatus.TIMEOUT, RunStatus.OUT_OF_MEMORY, RunStatus.NODE_FAIL,
              RunStatus.PREEMPTED, RunStatus.NOT_SUBMITTED)
# statuses of runs that trained (their rows hold metrics; their checkpoint is no longer needed)
TRAINED = (RunStatus.COMPLETED, RunStatus.DIVERGED)


def tally(status: str) -> str:
    """The report column a row of this status is counted in: `completed`, `diverged`, or `failed` for every
    other ending (raised, or its job ended by the cluster: cancelled, timeout, ...), so that no row of a
    cell goes uncounted."""
    return RunStatus(status).value if status in TRAINED else RunStatus.FAILED.value
