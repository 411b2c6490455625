"""What the benchmark scripts share: median step time, and peak memory above a baseline.

On CUDA the peak is torch.cuda.max_memory_allocated; on CPU it is the process's maximum resident set
size, which only ever rises, so each CPU case runs in a fresh process (`in_fresh_process`).
"""

from __future__ import annotations

import json
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

import torch


def synchronizer(device: torch.device) -> Callable[[], None]:
    """Waits for queued GPU work so wall time covers it; a no-op on CPU."""
    return torch.cuda.synchronize if device.type == "cuda" else (lambda: None)


def memory_baseline(device: torch.device) -> int:
    """Bytes in use now (CUDA: allocated, and the peak counter restarts here; CPU: the peak RSS so far)."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
        return torch.cuda.memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def peak_memory(device: torch.device) -> int:
    """The peak bytes since `memory_baseline` (CUDA) or over the process's life (CPU)."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated()
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def median_seconds(step: Callable[[], None], sync: Callable[[], None], repeats: int) -> float:
    """Median wall time of `repeats` calls of `step`, each waited for."""
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def in_fresh_process(script: str, *args: str) -> dict[str, Any]:
    """Run `script` (its hidden --worker mode) in a new Python process and read the JSON it prints last."""
    out = subprocess.run([sys.executable, script, *args], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])
