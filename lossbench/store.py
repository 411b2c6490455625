"""Results as Parquet rows: one summary file per run, one history file per run, written atomically.

Layout under `results_dir`: `runs/<run_id>.parquet` (one row) and `history/<run_id>.parquet` (one row
per epoch); `running/<run_id>.json` while a run is in progress, `errors/<run_id>.log` for a failed
run's traceback, `sweeps/<sweep>.json` listing the run ids a sweep command should produce,
`checkpoints/<run_id>.pt` the training state of an unfinished run (removed when it finishes). Each file is written under a temporary name that does not end in `.parquet`, flushed to
disk, then renamed: a crash leaves either the complete old file, the complete new one, or a
`.tmp-*` leftover that no Parquet glob (pandas, pyarrow, DuckDB) picks up.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from lossbench import LossbenchError

RUNS, HISTORY, RUNNING, SWEEPS, ERRORS, CHECKPOINTS = "runs", "history", "running", "sweeps", "errors", "checkpoints"
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


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Atomically write `rows` as one Parquet file at `path`."""
    table = pa.Table.from_pylist(rows)
    return _atomic_write(path, lambda handle: pq.write_table(table, handle))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Atomically write a JSON document."""
    return _atomic_write(path, lambda handle: handle.write(json.dumps(data, indent=1, default=str).encode()))


def write_run(results_dir: Path, summary: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    """Write history first, then the summary row (the row is what marks a run as present)."""
    rid = summary["run_id"]
    if history:
        write_rows(results_dir / HISTORY / f"{rid}.parquet", [{"run_id": rid, **row} for row in history])
    return write_rows(results_dir / RUNS / f"{rid}.parquet", [summary])


def _read(path: Path) -> pa.Table | None:
    """One Parquet file, or None with a one-line warning when it cannot be read (truncated, not Parquet,
    unreadable): a reader never crashes on one bad file, and the run it held counts as not done, so a
    re-run redoes it and replaces the file."""
    try:
        return pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        log.warning("skipping unreadable result file %s (%s); re-running its command redoes that run",
                    path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
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


@contextmanager
def running_marker(results_dir: Path, rid: str, sweep: str | None) -> Iterator[Path]:
    """running/<run_id>.json exists while a run is in progress (pid, host, start); removed at the end.

    A SIGKILL leaves it behind: it then only shows up as stale in `lossbench status` and never
    blocks a re-run (only a completed row does).
    """
    marker = results_dir / RUNNING / f"{rid}.json"
    try:
        write_json(marker, {"run_id": rid, "sweep": sweep, "pid": os.getpid(), "started_at": time.time(),
                            **where_it_runs()})
    except OSError as exc:  # advisory only: a full disk must not stop the run here
        log.warning("could not write the running marker of run %s (%s)", rid, exc.strerror or exc)
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)


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
    """Running markers, each with `alive`: False when its process is gone (same host only)."""
    markers = []
    for path in sorted((results_dir / RUNNING).glob("*.json")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        marker["alive"] = marker.get("host") != socket.gethostname() or pid_alive(int(marker.get("pid", -1)))
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


def _load(folder: Path) -> pd.DataFrame:
    tables = [t for t in map(_read, sorted(folder.glob("*.parquet"))) if t is not None]
    if not tables:
        return pd.DataFrame()
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


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


def load_runs(path: str | os.PathLike[str]) -> pd.DataFrame:
    """All summary rows under a results folder (or its `runs/` folder), one row per run.

    Files written by other lossbench versions may have extra or missing columns: the union of all
    columns is kept and absent values are null.
    """
    root = Path(path)
    return _load(root if root.name == RUNS else root / RUNS)


def load_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """All per-epoch history rows under a results folder, with a `run_id` column."""
    root = Path(path)
    return _load(root if root.name == HISTORY else root / HISTORY)
