"""Time a run used, as opposed to the time that passed: the process's CPU time and the GPU's busy span."""

from __future__ import annotations

import os
import resource
import threading
from pathlib import Path

import torch


def process_cpu_seconds(children: bool = False) -> float:
    """User + system CPU time of this process and all its threads so far (getrusage RUSAGE_SELF): it
    grows only while the run computes, not while it waits for a core that another process holds.
    `children`: add the children it has waited for (RUSAGE_CHILDREN)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    total = usage.ru_utime + usage.ru_stime
    if children:
        waited = resource.getrusage(resource.RUSAGE_CHILDREN)
        total += waited.ru_utime + waited.ru_stime
    return total


def thread_cpu_seconds(native_ids: set[int]) -> float:
    """CPU time so far of some of this process's threads (Linux /proc/self/task; 0 elsewhere)."""
    ticks = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
    total = 0.0
    for tid in native_ids:
        try:
            fields = Path(f"/proc/self/task/{tid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


class ThreadsStartedBy:
    """The native ids of the threads started inside a `with` block (e.g. a tracker's sampling thread),
    so that their CPU time can be told apart from the run's."""

    def __enter__(self) -> ThreadsStartedBy:
        self._before = {t.native_id for t in threading.enumerate()}
        self.ids: set[int] = set()
        return self

    def __exit__(self, *exc: object) -> None:
        self.ids = {t.native_id for t in threading.enumerate() if t.native_id is not None} - self._before


class GpuClock:
    """Elapsed GPU time between construction and `stop()`, from CUDA events on the current stream
    (None off CUDA)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self._start = None
        if device.type == "cuda":
            self._start = torch.cuda.Event(enable_timing=True)
            self._start.record()

    def stop(self) -> float | None:
        if self._start is None:
            return None
        end = torch.cuda.Event(enable_timing=True)
        end.record()
        end.synchronize()
        return self._start.elapsed_time(end) / 1000.0
