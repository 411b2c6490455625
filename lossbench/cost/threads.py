"""Threads per job: torch's intra-op thread count, chosen so that jobs do not oversubscribe the cores.

`threads=auto` gives a run the CPUs it may use: `SLURM_CPUS_PER_TASK` under SLURM; otherwise its CPU
affinity divided by the number of jobs its launcher runs at once (joblib's `n_jobs`), and further by
the number of lossbench runs alive on this host (a fair share, re-evaluated at every evaluation point,
so two runs started side by side settle on half the cores each). A number sets it exactly.

Measured on 2 cores: two default runs side by side with torch's default 2 threads each took 49.5 s
against 8.1 s with 1 thread each (OpenMP threads spin while they wait for a core).
"""

from __future__ import annotations

import logging
import os
import tempfile
from pathlib import Path
from typing import Literal

import torch

from lossbench.store import pid_alive

log = logging.getLogger(__name__)


def available_cpus() -> int:
    """CPUs this process may run on: SLURM's allocation, else its affinity mask, else the core count."""
    slurm = os.environ.get("SLURM_CPUS_PER_TASK")
    if slurm and slurm.isdigit() and int(slurm) > 0:
        return int(slurm)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class HostShare:
    """This run's entry in a host-wide registry of live lossbench runs (one file per process in the
    temp folder; files of dead processes are ignored), so runs that share a machine share its cores."""

    def __init__(self, folder: Path | None = None) -> None:
        self.folder = folder or Path(tempfile.gettempdir()) / f"lossbench-{os.getuid()}" / "runs"
        self.entry = self.folder / str(os.getpid())

    def __enter__(self) -> HostShare:
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            self.entry.touch()
        except OSError as exc:  # a fair share is a courtesy: never stop a run for it
            log.warning("cannot register in %s (%s); threads are not shared with other runs", self.folder, exc)
        return self

    def __exit__(self, *exc: object) -> None:
        self.entry.unlink(missing_ok=True)

    def live(self) -> int:
        """Live lossbench runs on this host, this one included."""
        count = 0
        for entry in self.folder.glob("[0-9]*"):
            if entry.name.isdigit() and not pid_alive(int(entry.name)):
                entry.unlink(missing_ok=True)  # a run that died without removing its entry
                continue
            count += 1
        return max(1, count)


class Threads:
    """The thread policy of one run: `resolve()` says how many threads to use now; `apply()` sets them."""

    def __init__(self, setting: int | Literal["auto"], parallel_jobs: int = 1, share: HostShare | None = None) -> None:
        self.setting, self.parallel_jobs, self.share = setting, max(1, parallel_jobs), share

    def resolve(self) -> int:
        if self.setting != "auto":
            return int(self.setting)
        cpus = available_cpus()
        if os.environ.get("SLURM_CPUS_PER_TASK"):
            return cpus  # the scheduler has allocated these cores to this job alone
        per_job = max(1, cpus // self.parallel_jobs)
        return max(1, min(per_job, cpus // self.share.live())) if self.share else per_job

    def apply(self) -> int:
        """Set torch's intra-op threads to `resolve()` (when it changed); return the count."""
        threads = self.resolve()
        if torch.get_num_threads() != threads:
            log.debug("torch threads: %d -> %d", torch.get_num_threads(), threads)
            torch.set_num_threads(threads)
        return threads
