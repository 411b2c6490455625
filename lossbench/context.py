"""How a run is launched, as opposed to what it computes: one value handed from the command line through
the plan and the launcher to each run, instead of flags threaded through every function on the way."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RunContext:
    """Settings of a command that steer what runs and where, never what a run computes (none is part of
    the run id).

    - `force`: train runs that already completed again; `restart`: discard the checkpoints of unfinished
      runs (not on a SLURM requeue: that resumes);
    - `sweep`: the id of the launching sweep, recorded in each row;
    - `parallel_jobs`: how many jobs the launcher runs at once on this host (threads=auto divides the
      CPUs by it);
    - `require_cuda`: the job asked its cluster for GPUs, so a node without one fails the run instead of
      training on the CPU.
    """

    force: bool = False
    restart: bool = False
    sweep: str | None = None
    parallel_jobs: int = 1
    require_cuda: bool = False
