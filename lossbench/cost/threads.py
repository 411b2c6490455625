"""Threads per job: torch's intra-op thread count, chosen so that jobs do not oversubscribe the cores.

`threads=auto` gives a run the CPUs it may use: `SLURM_CPUS_PER_TASK` under SLURM; otherwise its CPU
affinity divided by the number of jobs its launcher runs at once (joblib's `n_jobs`), and further by
the number of lossbench runs alive on this host (a fair share), and never more than the cores that other
processes leave free (`MachineLoad`). Re-evaluated at every evaluation point, so two runs started side
by side settle on half the cores each, and a run gives a core back while a neighbour holds it. A number
sets it exactly.

Measured on 2 cores: two default runs side by side with torch's default 2 threads each took 49.5 s
against 8.1 s with 1 thread each. OpenMP threads spin while they wait for a partner that has lost its
core: beside one busy process, the default run with 2 threads took 10-12 s and 13-16 s of CPU time
(alone: 2.9 s, 5.7 s CPU); beside two, 160-358 s. With one thread it needs ~4.5 s of CPU either way.
"""

from __future__ import annotations

import functools
import logging
import math
import os
import tempfile
import time
from pathlib import Path
from typing import Literal

import psutil
import torch

from lossbench.cost.clock import process_cpu_seconds
from lossbench.host import pid_alive

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


class MachineLoad:
    """How many of this process's CPUs other processes kept busy since the last look.

    Busy time of the CPUs in the affinity mask (psutil's per-CPU times: user, nice, system, irq, softirq)
    minus the CPU time of this process and its finished children, over the wall time between two looks.
    Intervals shorter than `min_interval_s` keep the previous estimate (a clock tick is 10 ms); the first
    look waits that long. Written here because no library says "cores other processes use": psutil gives
    the counters; CodeCarbon and threadpoolctl do not look at other processes.
    """

    def __init__(self, min_interval_s: float = 0.5) -> None:
        self.min_interval_s = min_interval_s
        self._last = self._counters()
        self.others: float | None = None

    @staticmethod
    def _counters() -> tuple[float, float, float]:
        """(wall time, busy seconds of our CPUs, CPU seconds of this process and its finished children)."""
        try:
            mine = os.sched_getaffinity(0)
        except AttributeError:  # not Linux: every CPU
            mine = None
        per_cpu = psutil.cpu_times(percpu=True)
        busy = sum(t.user + t.nice + t.system + getattr(t, "irq", 0.0) + getattr(t, "softirq", 0.0)
                   for i, t in enumerate(per_cpu) if mine is None or i in mine)
        # with the children it waited for (CodeCarbon's hardware probes)
        return time.monotonic(), busy, process_cpu_seconds(children=True)

    def busy_elsewhere(self) -> float:
        """Cores other processes kept busy (a mean over the interval since the previous estimate)."""
        if self.others is None:
            time.sleep(max(0.0, self.min_interval_s - (time.monotonic() - self._last[0])))
        now = self._counters()
        wall = now[0] - self._last[0]
        if self.others is None or wall >= self.min_interval_s:
            self.others = max(0.0, ((now[1] - self._last[1]) - (now[2] - self._last[2])) / wall)
            self._last = now
            log.debug("other processes kept %.2f of this run's CPUs busy over %.1f s", self.others, wall)
        return self.others


@functools.cache
def machine_load() -> MachineLoad:
    """This process's meter: one per process, so the runs of an in-process sweep continue its intervals."""
    return MachineLoad()


class Threads:
    """The thread policy of one run: `resolve()` says how many threads to use now; `apply()` sets them."""

    def __init__(self, setting: int | Literal["auto"], parallel_jobs: int = 1, share: HostShare | None = None,
                 load: MachineLoad | None = None) -> None:
        self.setting, self.parallel_jobs, self.share, self.load = setting, max(1, parallel_jobs), share, load

    def resolve(self) -> int:
        """`auto`: min(CPUs ÷ parallel jobs, CPUs ÷ live lossbench runs, CPUs other processes leave free), at
        least 1; under SLURM, the allocation. A number: itself."""
        if self.setting != "auto":
            return int(self.setting)
        cpus = available_cpus()
        if os.environ.get("SLURM_CPUS_PER_TASK"):
            return cpus  # the scheduler has allocated these cores to this job alone
        threads = max(1, cpus // self.parallel_jobs)
        if self.share:
            threads = min(threads, cpus // self.share.live())
        if self.load:
            threads = min(threads, cpus - math.floor(self.load.busy_elsewhere() + 0.5))
        return max(1, threads)

    def apply(self) -> int:
        """Set torch's intra-op threads to `resolve()` (when it changed); return the count."""
        threads = self.resolve()
        if torch.get_num_threads() != threads:
            log.debug("torch threads: %d -> %d", torch.get_num_threads(), threads)
            torch.set_num_threads(threads)
        return threads
