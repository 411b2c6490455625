"""The results folder as one dataset: every file of `runs/` and of `history/` on one declared Arrow schema.

The schema of `runs/` is the union of the common summary columns and every known task's columns
(tasks/registry.py: the tasks `conf/task` and `LOSSBENCH_CONFIG_PATH` offer); that of `history/` the
union of every task's history columns. Each column has its declared type and nullability
(lossbench/schema.py); a row that has no value for a column holds a typed null (a computed NaN, an
undefined value such as the clip rate of a run without clipping, stays NaN). Every writer writes exactly this schema, whatever the task or the
status, so `pandas.read_parquet("results/runs")`, `pyarrow.dataset`, `polars.scan_parquet` and DuckDB's
`read_parquet` read a folder as one table without options, in whatever order its files sort.

Files of older schema versions stay readable through `load_runs` / `load_history`: columns are read by
name and cast to the declared type (NaN in a float column now declared int becomes null); columns that
no longer exist are dropped, missing ones are null; rows before version 2 get `variant` from their loss,
criterion and distance columns, rows before version 3 get `cell_id` from their stored config. Their
`run_id` stays what it was (it named their history): re-running their command trains them again under
the version-3 id. Reads go through a compacted copy (lossbench/compacted.py), so a folder of 20,000
runs reads in seconds.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from lossbench import LossbenchError, store
from lossbench.compacted import conform, listing, read_folder, relaxed
from lossbench.identity import cell_id, variant_of_legacy
from lossbench.schema import (
    HISTORY,
    SUMMARY,
    Column,
    arrow_schema,
    history_columns,
    split_columns,
    union,
)
from lossbench.statuses import RunStatus
from lossbench.tasks.base import Task


def runs_columns(tasks: Iterable[type[Task]]) -> list[Column]:
    """Every summary column a run of any of these tasks can write: common ones first, then each task's."""
    return union([*SUMMARY, *(c for t in tasks for c in [*split_columns(t.score_columns), *t.columns])])


def all_history_columns(tasks: Iterable[type[Task]]) -> list[Column]:
    """Every history column of any of these tasks (validation and test scores both)."""
    return union([*HISTORY, *(c for t in tasks for c in history_columns(t.score_columns, t.train_score, True))])


def _tasks(extra: type[Task] | None = None) -> tuple[type[Task], ...]:
    from lossbench.tasks.registry import known_tasks

    known = known_tasks()
    return known if extra is None or extra in known else (*known, extra)


@cache
def _schemas(tasks: tuple[type[Task], ...]) -> tuple[pa.Schema, pa.Schema]:
    return arrow_schema(runs_columns(tasks)), arrow_schema(all_history_columns(tasks))


def runs_schema(task: type[Task] | None = None) -> pa.Schema:
    """The declared Arrow schema of `runs/` (the known tasks, plus `task` if it is not one of them)."""
    return _schemas(_tasks(task))[0]


def history_schema(task: type[Task] | None = None) -> pa.Schema:
    """The declared Arrow schema of `history/`."""
    return _schemas(_tasks(task))[1]


def _value(value: Any, kind: pa.DataType) -> Any:
    """A row value as its column's type: numpy scalars unwrapped, int as float where the column is a float,
    NaN as null where it is an int; anything else that does not fit raises TypeError."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value) and not pa.types.is_floating(kind):
        return None
    if pa.types.is_floating(kind) and isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if pa.types.is_integer(kind) and isinstance(value, (int, float)) and not isinstance(value, bool):
        if float(value) != int(value):
            raise TypeError(f"{value!r} is not an integer")
        return int(value)
    if pa.types.is_string(kind) and isinstance(value, str) or pa.types.is_boolean(kind) and isinstance(value, bool):
        return value
    raise TypeError(f"{value!r} is not of type {kind}")


def to_table(rows: Sequence[dict[str, Any]], schema: pa.Schema) -> pa.Table:
    """Rows as a table on exactly `schema`. A column the schema does not declare, a value of the wrong
    type or a null where the schema forbids one raises ValueError (a bug in the writer, caught by tests)."""
    undeclared = sorted({k for row in rows for k in row} - set(schema.names))
    if undeclared:
        raise ValueError(f"undeclared result columns: {', '.join(undeclared)} (declare them in the schema)")
    arrays = []
    for field in schema:
        try:
            values = [_value(row.get(field.name), field.type) for row in rows]
        except TypeError as exc:
            raise ValueError(f"column {field.name}: {exc}") from None
        if not field.nullable and any(v is None for v in values):
            raise ValueError(f"column {field.name} is declared non-null but a row has no value")
        arrays.append(pa.array(values, field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def write_run(results_dir: Path, summary: dict[str, Any], history: list[dict[str, Any]],
              task: type[Task] | None = None) -> Path:
    """Write the run's history, then its summary row (the row is what marks a run as present), each on
    the declared schema; a history written for a row that could not be written is removed again."""
    rid = summary["run_id"]
    row = to_table([summary], runs_schema(task))
    curve = results_dir / store.HISTORY / f"{rid}.parquet"
    new_curve = bool(history) and not curve.exists()
    if history:
        store.write_table(curve, to_table([{"run_id": rid, **r} for r in history], history_schema(task)))
    try:
        return store.write_table(results_dir / store.RUNS / f"{rid}.parquet", row)
    except OSError:
        if new_curve:  # no history without its row (a full disk): the run counts as not done, cleanly
            curve.unlink(missing_ok=True)
        raise


def _root(path: str | os.PathLike[str], folder: str) -> Path:
    root = Path(path)
    return root / folder if root.name != folder else root


def _has_identity(table: pa.Table) -> pa.Array:
    return pc.and_(pc.is_valid(table["run_id"]), pc.is_valid(table["status"]))


def load_runs(path: str | os.PathLike[str], columns: list[str] | None = None) -> pd.DataFrame:
    """All summary rows under a results folder (or its `runs/` folder), one per run, on the declared
    schema (only `columns`, if given); rows of older versions mapped as the module docstring says. A
    file that cannot be read, or whose rows lack a run_id or status, is named in a warning and left out."""
    schema = runs_schema()
    if columns is not None:
        unknown = [c for c in columns if c not in schema.names]
        if unknown:
            raise LossbenchError(f"unknown result column '{unknown[0]}'")
    needed = None if columns is None else list(dict.fromkeys([*columns, "schema_version", "config_json", "variant",
                                                               "cell_id", "loss", "distance", "criterion"]))
    table = read_folder(_root(path, store.RUNS), schema, needed, _has_identity)
    frame = _legacy(table.to_pandas())
    return frame if columns is None else frame[columns]


def _legacy(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of schema versions 1 and 2 get the labels later versions write (module docstring)."""
    if frame.empty:
        return frame
    old = frame["schema_version"].isna() | (frame["schema_version"] < 3)
    if not old.any():
        return frame
    frame = frame.copy()
    no_variant = old & frame["variant"].isna()
    frame.loc[no_variant, "variant"] = frame[no_variant].apply(lambda r: variant_of_legacy(r.to_dict()), axis=1)
    no_cell = old & frame["cell_id"].isna()
    frame.loc[no_cell, "cell_id"] = frame.loc[no_cell, "config_json"].map(_cell_of_json)
    return frame


def _cell_of_json(text: object) -> str | None:
    try:
        return cell_id(json.loads(str(text)))
    except ValueError:
        return None


def load_history(path: str | os.PathLike[str]) -> pd.DataFrame:
    """All history rows (one per evaluation) under a results folder, on the declared schema."""
    table = read_folder(_root(path, store.HISTORY), history_schema(), None, lambda t: pc.is_valid(t["run_id"]))
    return table.to_pandas()


def read_run(results_dir: Path, rid: str) -> dict[str, Any] | None:
    """The summary row of one run, or None when it has none: never run, killed before the end, or a file that
    is not its row (unreadable, another run's id, no status, columns that do not cast to their declared
    types), which is named in a warning; a re-run then redoes the run and replaces the file."""
    import pyarrow.parquet as pq

    path = results_dir / store.RUNS / f"{rid}.parquet"
    if not path.exists():
        return None
    try:
        rows = conform(pq.read_table(path), runs_schema()).to_pylist()
    except (OSError, pa.ArrowException) as exc:
        store.warn_unreadable(path, exc)
        return None
    if len(rows) != 1 or rows[0]["run_id"] != rid or not rows[0]["status"]:
        store.warn_unreadable(path, ValueError(f"not the row of run {rid}: {len(rows)} rows, "
                                               f"run_id {rows[0]['run_id'] if rows else None!r}"))
        return None
    return rows[0]


def is_completed(results_dir: Path, rid: str) -> bool:
    """Whether the run has a row that says it completed."""
    row = read_run(results_dir, rid)
    return row is not None and row.get("status") == RunStatus.COMPLETED


def read_rows(results_dir: Path, run_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The summary rows of these runs that have one, by run id. A few are read one by one; many, through
    `load_runs` (the compacted copy), so a sweep of thousands plans and sums up in seconds."""
    present = set(run_ids) & {name[:-len(".parquet")] for name in listing(results_dir / store.RUNS)}
    if len(present) < 64:
        rows = {rid: read_run(results_dir, rid) for rid in sorted(present)}
        return {rid: row for rid, row in rows.items() if row is not None}
    runs = load_runs(results_dir)
    runs = runs[runs.run_id.isin(present)].astype(object).where(runs.notna(), None)
    return {row["run_id"]: row for row in runs.to_dict("records")}


def completed(results_dir: Path, run_ids: Iterable[str]) -> set[str]:
    """Which of these runs have a `completed` row (skip-if-done)."""
    return {rid for rid, row in read_rows(results_dir, run_ids).items() if row.get("status") == RunStatus.COMPLETED}


def export(results_dir: Path, out: Path, history_out: Path | None = None) -> tuple[int, int]:
    """`lossbench export`: the runs (and, with `history_out`, the history) of a results folder as one
    Parquet file each, on the declared schema. Returns (runs, history rows) written."""
    records = load_runs(results_dir).to_dict("records")
    try:
        table = to_table(records, runs_schema())
    except ValueError:  # rows of old versions without a value the declared schema requires
        table = to_table(records, relaxed(runs_schema()))
    store.write_table(out, table)
    rows = 0
    if history_out is not None:
        history = read_folder(_root(results_dir, store.HISTORY), history_schema(), None,
                              lambda t: pc.is_valid(t["run_id"]))
        store.write_table(history_out, history)
        rows = history.num_rows
    return table.num_rows, rows
