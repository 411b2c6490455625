"""Results as Parquet rows: one summary file per run, one history file per run, written atomically.

Layout under `results_dir`: `runs/<run_id>.parquet` (one row) and `history/<run_id>.parquet` (one row
per epoch); `running/<run_id>.json` while a run is in progress, `errors/<run_id>.log` for a failed
run's traceback, `sweeps/<sweep>.json` listing the run ids a sweep command should produce. Each file is written under a temporary name that does not end in `.parquet`, flushed to
disk, then renamed: a crash leaves either the complete old file, the complete new one, or a
`.tmp-*` leftover that no Parquet glob (pandas, pyarrow, DuckDB) picks up.
"""

from __future__ import annotations

import json
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

RUNS, HISTORY, RUNNING, SWEEPS, ERRORS = "runs", "history", "running", "sweeps", "errors"


def _atomic_write(path: Path, write: Callable[[IO[bytes]], None]) -> Path:
    """Write through `write(handle)` to a temp file beside `path`, fsync, then rename over `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
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


def read_run(results_dir: Path, rid: str) -> dict[str, Any] | None:
    """The summary row of one run, or None when it has none (never run, or killed before the end)."""
    path = results_dir / RUNS / f"{rid}.parquet"
    if not path.exists():
        return None
    return pq.read_table(path).to_pylist()[0]


def is_completed(results_dir: Path, rid: str) -> bool:
    row = read_run(results_dir, rid)
    return row is not None and row.get("status") == "completed"


def write_error_log(results_dir: Path, rid: str, text: str) -> Path:
    """The traceback of a failed run, next to the results: errors/<run_id>.log."""
    return _atomic_write(results_dir / ERRORS / f"{rid}.log", lambda handle: handle.write(text.encode()))


@contextmanager
def running_marker(results_dir: Path, rid: str, sweep: str | None) -> Iterator[Path]:
    """running/<run_id>.json exists while a run is in progress (pid, host, start); removed at the end.

    A SIGKILL leaves it behind: it then only shows up as stale in `lossbench status` and never
    blocks a re-run (only a completed row does).
    """
    marker = write_json(
        results_dir / RUNNING / f"{rid}.json",
        {"run_id": rid, "sweep": sweep, "pid": os.getpid(), "host": socket.gethostname(), "started_at": time.time()},
    )
    try:
        yield marker
    finally:
        marker.unlink(missing_ok=True)


def load_markers(results_dir: Path) -> list[dict[str, Any]]:
    """Running markers, each with `alive`: False when its process is gone (same host only)."""
    markers = []
    for path in sorted((results_dir / RUNNING).glob("*.json")):
        try:
            marker = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        marker["alive"] = marker.get("host") != socket.gethostname() or _pid_alive(int(marker.get("pid", -1)))
        markers.append(marker)
    return markers


def _pid_alive(pid: int) -> bool:
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
    return [json.loads(p.read_text()) for p in sorted((results_dir / SWEEPS).glob("*.json"))]


def _load(folder: Path) -> pd.DataFrame:
    files = sorted(folder.glob("*.parquet"))
    if not files:
        return pd.DataFrame()
    tables = [pq.read_table(f) for f in files]
    return pa.concat_tables(tables, promote_options="permissive").to_pandas()


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
