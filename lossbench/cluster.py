"""What the SLURM cluster knows about a sweep's jobs: its array size limit and how a job ended.

Used by the sweep after a launcher stops (a cancelled or timed-out job, a rejected submission), so every
run that did not write its own row gets one with the SLURM job id and the reason.
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from lossbench.statuses import RunStatus

# SLURM job states (sacct) -> the status of a run whose job ended in that state without a row of its own
_STATES = {"CANCELLED": RunStatus.CANCELLED, "TIMEOUT": RunStatus.TIMEOUT, "OUT_OF_MEMORY": RunStatus.OUT_OF_MEMORY,
           "NODE_FAIL": RunStatus.NODE_FAIL, "PREEMPTED": RunStatus.PREEMPTED, "FAILED": RunStatus.FAILED,
           "BOOT_FAIL": RunStatus.NODE_FAIL, "DEADLINE": RunStatus.TIMEOUT}


def _run(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, timeout=60, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""


def max_array_size(default: int = 1001) -> int:
    """The cluster's MaxArraySize (`scontrol show config`): an array may hold at most that many tasks."""
    match = re.search(r"^MaxArraySize\s*=\s*(\d+)", _run("scontrol", "show", "config"), flags=re.M)
    return max(1, int(match.group(1))) if match else default


def wait_for_jobs(name: str, poll_s: float = 2.0) -> None:
    """Wait until no job named `name` is queued or running (`squeue`): after one job of a sweep fails, the
    launcher stops waiting, but the others still run and will write their rows."""
    import time

    while _run("squeue", "-h", "-n", name, "-o", "%i").strip():
        time.sleep(poll_s)


def job_state(job_id: str, log_folder: str | None = None) -> tuple[RunStatus, str]:
    """(lossbench status, SLURM state and reason) of one job from accounting (`sacct`). submitit catches
    the signal SLURM sends before the time limit and ends the job itself, which accounting may then record
    as COMPLETED or FAILED: the job's own log (`log_folder`) tells that it timed out."""
    out = _run("sacct", "-X", "-n", "-P", "-j", job_id, "-o", "State,Reason").strip().splitlines()
    state, _, reason = out[0].partition("|") if out else ("UNKNOWN", "", "no accounting record")
    word = state.split()[0] if state else "UNKNOWN"
    detail = f"SLURM {state.strip()}" + (f" ({reason})" if reason and reason != "None" else "")
    if word not in ("CANCELLED", "TIMEOUT") and log_folder and _timed_out(Path(log_folder)):
        return RunStatus.TIMEOUT, f"{detail}; submitit: the job reached its time limit (TIMEOUT)"
    return _STATES.get(word, RunStatus.FAILED), detail


def sweep_job_states(sweep: str) -> dict[str, int]:
    """How many of a sweep's SLURM jobs (named `lossbench-<sweep>`) are in each state, from accounting
    (`sacct`, the last 30 days; array tasks count one each); {} without SLURM or jobs."""
    out = _run("sacct", "-n", "-P", "-X", "--name", f"lossbench-{sweep}", "-o", "State", "-S", "now-30days")
    counts: dict[str, int] = {}
    for line in out.split():
        counts[line] = counts.get(line, 0) + 1
    return counts


def _timed_out(folder: Path) -> bool:
    """Whether submitit's log of a job says it was stopped at its time limit."""
    for log in folder.glob("*_log.err"):
        try:
            if "this job is timed-out" in log.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False
