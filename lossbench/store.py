"""Results as Parquet rows: one summary file per run, one history file per run, written atomically.

Layout under `results_dir`: `runs/<run_id>.parquet` (one row) and `history/<run_id>.parquet` (one row
per epoch). Each file is written under a temporary name that does not end in `.parquet`, flushed to
disk, then renamed: a crash leaves either the complete old file, the complete new one, or a
`.tmp-*` leftover that no Parquet glob (pandas, pyarrow, DuckDB) picks up.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
RUNS, HISTORY = "runs", "history"


def run_id(identity: dict[str, Any]) -> str:
    """Stable 16-hex-digit hash of a run's identity (its effective config without output locations)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    """Atomically write `rows` as one Parquet file at `path` (temp file, fsync, rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".tmp-{path.stem}-", suffix=".part")
    try:
        with os.fdopen(fd, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_run(results_dir: Path, summary: dict[str, Any], history: list[dict[str, Any]]) -> Path:
    """Write history first, then the summary row (the row is what marks a run as present)."""
    rid = summary["run_id"]
    if history:
        write_rows(results_dir / HISTORY / f"{rid}.parquet", [{"run_id": rid, **row} for row in history])
    return write_rows(results_dir / RUNS / f"{rid}.parquet", [summary])


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
