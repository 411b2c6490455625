"""Where this process runs and whether another one still does: the facts a lock, a row and a worker
watchdog need about processes and cluster jobs (Linux `/proc`, `os.kill(pid, 0)`, SLURM's environment)."""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def process_started(pid: int) -> str | None:
    """A process's start time (Linux /proc, field 22): with the pid it names one process, never a reused pid."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[19]
    except (OSError, IndexError):
        return None


def process_alive(pid: int, started: str | None) -> bool:
    """The process that had this pid and start time still runs (a reused pid does not count)."""
    return pid_alive(pid) and (started is None or process_started(pid) == started)


def where_it_runs() -> dict[str, Any]:
    """Host, and under SLURM the job id, array task id and submitit log folder: what links a row or a
    lock to its cluster job."""
    env = os.environ
    array = env.get("SLURM_ARRAY_JOB_ID")
    job = f"{array}_{env.get('SLURM_ARRAY_TASK_ID', '')}" if array else env.get("SLURM_JOB_ID")
    folder = env.get("SUBMITIT_FOLDER")  # submitit's log folder pattern, with %j for the job id
    return {
        "host": socket.gethostname(),
        "slurm_job_id": job,
        "slurm_array_task_id": env.get("SLURM_ARRAY_TASK_ID"),
        "job_log": folder.replace("%j", job) if folder and job else None,
    }


def requeued() -> bool:
    """True in a SLURM job that runs again after a requeue (preemption, time-limit checkpoint, `scontrol
    requeue`)."""
    return int(os.environ.get("SLURM_RESTART_COUNT", "0") or 0) > 0


def exit_with_launcher(pid: int, started: str | None, interval_s: float = 0.5) -> None:
    """End this worker process now if the launcher is gone, else as soon as it goes (a daemon thread)."""

    def end() -> None:
        log.error("the lossbench run that launched this job (pid %d) is gone: ending job process %d", pid, os.getpid())
        os.kill(os.getpid(), signal.SIGKILL)

    if not process_alive(pid, started):
        end()

    def watch() -> None:
        while process_alive(pid, started):
            time.sleep(interval_s)
        end()

    threading.Thread(target=watch, name="lossbench-launcher-watch", daemon=True).start()
