"""Run locks: one trainer per run at a time, across processes and hosts that share a results folder.

`running/<run_id>.json` is created atomically (a hard link of a complete temp file: atomic on local
filesystems and NFS alike), refreshed by a heartbeat thread while the run trains, taken over when its
holder is gone (a dead pid on this host, an earlier start of the same requeued SLURM job, or
STALE_AFTER missed heartbeats on any host), and removed at the end.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lossbench import LossbenchError
from lossbench.host import pid_alive, where_it_runs
from lossbench.store import RUNNING, file_mode, write_json

log = logging.getLogger(__name__)

HEARTBEAT_S = float(os.environ.get("LOSSBENCH_HEARTBEAT_S", "30"))  # how often a training run says it is alive
STALE_AFTER = 3  # heartbeats missed before a lock may be taken over


class RunLocked(LossbenchError):
    """The run is training elsewhere: another live process holds its lock."""

    def __init__(self, holder: dict[str, Any]) -> None:
        self.holder = holder
        super().__init__(f"run {holder.get('run_id')} is already training {describe_holder(holder)}")


def describe_holder(holder: dict[str, Any]) -> str:
    """'on host H (pid P, SLURM job J)': where a lock's holder runs."""
    job = f", SLURM job {holder['slurm_job_id']}" if holder.get("slurm_job_id") else ""
    return f"on {holder.get('host')} (pid {holder.get('pid')}{job})"


def lock_alive(holder: dict[str, Any]) -> bool:
    """Whether a run lock's holder is still training. Dead when: on this host its process is gone; it is an
    earlier start of this very SLURM job (requeued: preempted, time limit, `scontrol requeue`); or its
    heartbeat is older than STALE_AFTER x HEARTBEAT_S (any host; clocks of a cluster's nodes agree). A lock
    that does not say these things (not a lossbench lock: a damaged or foreign file) is dead."""
    pid, beat = _number(holder.get("pid"), int), heartbeat(holder)
    if pid is None or beat is None:
        return False
    if holder.get("host") == socket.gethostname() and not pid_alive(pid):
        return False
    mine = where_it_runs()["slurm_job_id"]
    if mine and holder.get("slurm_job_id") == mine and pid != os.getpid():
        return False
    return time.time() - beat < STALE_AFTER * HEARTBEAT_S


def heartbeat(holder: dict[str, Any]) -> float | None:
    """When a lock's holder last said it was alive (seconds since the epoch), or None if the lock says no time."""
    return _number(holder.get("heartbeat_at", holder.get("started_at")), float)


def _number(value: Any, kind: type) -> Any:
    """`value` as an int or a finite float, or None when it is not a number (a damaged or foreign lock)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value or abs(value) == float("inf"):
        return None
    return kind(value)


def lock_path(results_dir: Path, rid: str) -> Path:
    """Where a run's lock lives while it trains (`run_lock`)."""
    return results_dir / RUNNING / f"{rid}.json"


def live_lock(results_dir: Path, rid: str) -> dict[str, Any] | None:
    """The lock of a run that another live trainer holds now (`lock_alive`), or None."""
    lock = _read_lock(lock_path(results_dir, rid))
    return lock if lock and lock_alive(lock) else None


def _read_lock(path: Path) -> dict[str, Any] | None:
    """The lock at `path`; None when there is none; {} (stale: taken over) when it is not a lock's JSON object."""
    try:
        lock = json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        lock = None
    if not isinstance(lock, dict):
        log.warning("the run lock %s is not a lossbench lock (unreadable or of another shape): treated as stale", path)
        return {}
    return lock


def _create_exclusive(path: Path, data: dict[str, Any]) -> bool:
    """Create `path` with `data` only if it does not exist (a hard link of a complete temp file: atomic, on
    local filesystems and NFS alike); False when it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            os.fchmod(handle.fileno(), file_mode())
        os.link(tmp, path)
        return True
    except FileExistsError:
        return False
    finally:
        Path(tmp).unlink(missing_ok=True)


def _acquire(path: Path, lock: dict[str, Any]) -> None:
    for _ in range(5):
        if _create_exclusive(path, lock):
            return
        holder = _read_lock(path)
        if holder is None:
            continue  # released meanwhile
        if holder and lock_alive(holder):
            raise RunLocked(holder)
        # stale: move it aside under a unique name (of several takers, one rename wins), then create ours
        aside = path.with_name(f".stale-{path.stem}-{lock['token']}")
        try:
            os.rename(path, aside)
        except FileNotFoundError:
            continue
        taken = _read_lock(aside) or {}
        if taken.get("token") != holder.get("token"):  # not the stale lock we judged: a new holder's, put it back
            os.rename(aside, path)
            raise RunLocked(taken)
        aside.unlink(missing_ok=True)
        log.info("run %s: took over the lock of a run that stopped %s", lock["run_id"], describe_holder(holder))
    raise RunLocked(_read_lock(path) or {"run_id": lock["run_id"]})


class _Heartbeat(threading.Thread):
    """Refreshes the lock's `heartbeat_at` every HEARTBEAT_S while the run trains (a daemon thread: it
    needs no cooperation from the training loop, however long a step takes)."""

    def __init__(self, path: Path, lock: dict[str, Any]) -> None:
        super().__init__(name="lossbench-heartbeat", daemon=True)
        self.path, self.lock, self.done = path, lock, threading.Event()

    def run(self) -> None:
        while not self.done.wait(HEARTBEAT_S):
            if (_read_lock(self.path) or {}).get("token") != self.lock["token"]:
                return  # taken over (we were judged stale): never write over another holder
            try:
                write_json(self.path, {**self.lock, "heartbeat_at": time.time()})
            except OSError as exc:
                log.warning("could not refresh the lock of run %s (%s)", self.lock["run_id"], exc)


@contextmanager
def run_lock(results_dir: Path, rid: str, sweep: str | None) -> Iterator[Path]:
    """running/<run_id>.json: one trainer per run at a time, across processes and hosts that share the
    results folder. Created atomically (or taken over from a holder that is gone, `lock_alive`), refreshed
    by a heartbeat while the run trains, removed at the end; it records pid, host, SLURM job id, array
    task id and job log. Raises RunLocked when a live holder trains the run. A lock left by a SIGKILL
    shows as stale in `lossbench status` and is taken over by the next start of the run.
    """
    now = time.time()
    lock = {"run_id": rid, "sweep": sweep, "pid": os.getpid(), "started_at": now, "heartbeat_at": now,
            "token": uuid.uuid4().hex, **where_it_runs()}
    path = lock_path(results_dir, rid)
    _acquire(path, lock)
    beat = _Heartbeat(path, lock)
    beat.start()
    try:
        yield path
    finally:
        beat.done.set()
        beat.join()
        if (_read_lock(path) or {}).get("token") == lock["token"]:
            path.unlink(missing_ok=True)


def load_markers(results_dir: Path) -> list[dict[str, Any]]:
    """Run locks (running/*.json), each with `alive` (`lock_alive`: heartbeat, or the process on this host)."""
    markers = []
    for path in sorted((results_dir / RUNNING).glob("*.json")):
        marker = _read_lock(path)
        if not marker:
            continue
        marker = {**marker, "run_id": str(marker.get("run_id") or path.stem), "alive": lock_alive(marker)}
        markers.append(marker)
    return markers


