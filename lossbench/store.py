"""Results as Parquet rows: one summary file per run, one history file per run, written atomically.

Layout under `results_dir`: `runs/<run_id>.parquet` (one row) and `history/<run_id>.parquet` (one row
per epoch); `running/<run_id>.json`, the lock of a run in progress (`run_lock`); `errors/<run_id>.log`
for a failed run's traceback; `sweeps/<sweep>.json` listing the run ids a sweep command should produce;
`checkpoints/<run_id>.pt`, the training state of an unfinished run (removed when it finishes). Each file
is written under a temporary name that does not end in `.parquet`, flushed to disk, then renamed: a crash
leaves either the complete old file, the complete new one, or a `.tmp-*` leftover that no Parquet glob
(pandas, pyarrow, DuckDB) picks up.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pyarrow as pa
import pyarrow.parquet as pq

from lossbench import LossbenchError

RUNS, HISTORY, RUNNING, SWEEPS, ERRORS, CHECKPOINTS = "runs", "history", "running", "sweeps", "errors", "checkpoints"
MODELS = "models"
log = logging.getLogger(__name__)


def _file_mode() -> int:
    """The mode a plain new file gets under the process's umask (mkstemp's temp files are 0600, which
    would hide results from collaborators on a shared results folder)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through `write(handle)` to a temp file beside `path`, fsync, then rename over `path`; the
    file gets the mode the umask gives a new file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), _file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_table(path: Path, table: pa.Table) -> Path:
    """Atomically write an Arrow table as one Parquet file at `path` (no column statistics: a result
    file holds a few rows, and statistics would double its size and its read time)."""
    return _atomic_write(path, lambda handle: pq.write_table(table, handle, write_statistics=False))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Atomically write a JSON document."""
    return _atomic_write(path, lambda handle: handle.write(json.dumps(data, indent=1, default=str).encode()))


def warn_unreadable(path: Path, exc: BaseException) -> None:
    """One warning line for a result file a reader leaves out."""
    log.warning("skipping unreadable result file %s (%s); re-running its command redoes that run",
                path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def _read(path: Path) -> pa.Table | None:
    """One Parquet file, or None with a one-line warning when it cannot be read (truncated, not Parquet,
    unreadable): a reader never crashes on one bad file, and the run it held counts as not done, so a
    re-run redoes it and replaces the file."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        warn_unreadable(path, exc)
        return None


def read_run(results_dir: Path, rid: str) -> dict[str, Any] | None:
    """The summary row of one run, or None when it has none (never run, killed before the end, or an
    unreadable file)."""
    path = results_dir / RUNS / f"{rid}.parquet"
    if not path.exists():
        return None
    table = _read(path)
    return table.to_pylist()[0] if table is not None and table.num_rows else None


def is_completed(results_dir: Path, rid: str) -> bool:
    row = read_run(results_dir, rid)
    return row is not None and row.get("status") == "completed"


def checkpoint_path(results_dir: Path, rid: str) -> Path:
    """Where an unfinished run's training state is kept (engine.Trainer's checkpoints)."""
    return results_dir / CHECKPOINTS / f"{rid}.pt"


def write_checkpoint(path: Path, state: dict[str, Any]) -> Path:
    """The training state, atomically: a kill mid-write leaves the previous checkpoint intact."""
    import torch

    return _atomic_write(path, lambda f: torch.save(state, f))


def model_path(results_dir: Path, rid: str) -> Path:
    """Where a finished run's evaluated weights go when `save_model=true` (for figures and later analysis)."""
    return results_dir / MODELS / f"{rid}.pt"


def write_model(path: Path, state_dict: dict[str, Any]) -> Path:
    """A model's state_dict (moved to the CPU), atomically."""
    import torch

    cpu = {k: v.detach().cpu() for k, v in state_dict.items()}
    return _atomic_write(path, lambda f: torch.save(cpu, f))


def read_checkpoint(path: Path) -> dict[str, Any] | None:
    """The state saved at `path` (tensors on the CPU), or None when there is none or it cannot be read
    (then the run starts over, and says so)."""
    import torch

    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)  # lossbench's own file
    except Exception as exc:
        log.warning("checkpoint %s cannot be read (%s); the run starts from the beginning", path, exc)
        return None


def write_error_log(results_dir: Path, rid: str, text: str) -> Path | None:
    """The traceback of a failed run, next to the results: errors/<run_id>.log (None, with a warning,
    when it cannot be written: the failed row matters more than its traceback)."""
    try:
        return _atomic_write(results_dir / ERRORS / f"{rid}.log", lambda handle: handle.write(text.encode()))
    except OSError as exc:
        log.warning("could not write the traceback of run %s (%s)", rid, exc.strerror or exc)
        return None


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
    heartbeat is older than STALE_AFTER x HEARTBEAT_S (any host; clocks of a cluster's nodes agree)."""
    if holder.get("host") == socket.gethostname() and not pid_alive(int(holder.get("pid", -1))):
        return False
    mine = where_it_runs()["slurm_job_id"]
    if mine and holder.get("slurm_job_id") == mine and holder.get("pid") != os.getpid():
        return False
    beat = holder.get("heartbeat_at", holder.get("started_at", 0.0))
    return time.time() - float(beat) < STALE_AFTER * HEARTBEAT_S


def lock_path(results_dir: Path, rid: str) -> Path:
    """Where a run's lock lives while it trains (`run_lock`)."""
    return results_dir / RUNNING / f"{rid}.json"


def live_lock(results_dir: Path, rid: str) -> dict[str, Any] | None:
    """The lock of a run that another live trainer holds now (`lock_alive`), or None."""
    lock = _read_lock(lock_path(results_dir, rid))
    return lock if lock and lock_alive(lock) else None


def _read_lock(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}  # unreadable: treated as stale


def _create_exclusive(path: Path, data: dict[str, Any]) -> bool:
    """Create `path` with `data` only if it does not exist (a hard link of a complete temp file: atomic, on
    local filesystems and NFS alike); False when it exists."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "w") as handle:
            json.dump(data, handle)
            os.fchmod(handle.fileno(), _file_mode())
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


def where_it_runs() -> dict[str, Any]:
    """Host, and under SLURM the job id, array task id and submitit log folder: what links a row or a
    marker to its cluster job."""
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


def load_markers(results_dir: Path) -> list[dict[str, Any]]:
    """Run locks (running/*.json), each with `alive` (`lock_alive`: heartbeat, or the process on this host)."""
    markers = []
    for path in sorted((results_dir / RUNNING).glob("*.json")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        marker["alive"] = lock_alive(marker)
        markers.append(marker)
    return markers


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid exists on this host (one we may not signal counts as alive)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def write_manifest(results_dir: Path, sweep: str, command: str, run_ids: list[str]) -> Path:
    """sweeps/<sweep>.json: the command and every run id it should produce."""
    return write_json(results_dir / SWEEPS / f"{sweep}.json",
                      {"sweep": sweep, "command": command, "run_ids": run_ids, "created_at": time.time()})


def load_manifests(results_dir: Path) -> list[dict[str, Any]]:
    """Sweep manifests; an unreadable one is named in a warning and skipped."""
    manifests = []
    for path in sorted((results_dir / SWEEPS).glob("*.json")):
        try:
            manifests.append(json.loads(path.read_text()))
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable sweep manifest %s (%s)", path, exc)
    return manifests


def check_writable(path: Path, what: str) -> None:
    """Raise LossbenchError (one line) unless files can be created under `path`: checked before a
    run trains, so a finished run is never lost to an unwritable results folder. Leaves nothing behind."""
    existing = path
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise LossbenchError(f"{what}={path}: cannot write there ({existing} is not a folder)")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".lossbench-probe-"):
            pass
    except OSError as exc:
        raise LossbenchError(f"{what}={path}: cannot write there ({exc.strerror or exc})") from None
