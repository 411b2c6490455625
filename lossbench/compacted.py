"""Fast reads of a folder of many small Parquet files: `<results>/compacted/<folder>.parquet`, a cache.

A results folder at paper scale holds 10-25 thousand per-run files. Reading them costs about 1 ms per file
for a few columns and 3 ms for all of them (the per-column overhead of each file's footer), so every
`lossbench status` or report would pay a minute. The compacted file holds the rows of every file read so
far, each tagged with the file it came from and that file's inode, size and modification time. A reader
lists the folder (one `scandir`), keeps the compacted rows whose file is unchanged, reads only the files
that are new or changed (multi-threaded, through `pyarrow.dataset`), and rewrites the compacted file when
that was `COMPACT_AFTER` files or more.

The per-run files stay the only truth: the compacted file is derived from them, written atomically
(a temp file renamed over it), and ignored when it cannot be read or was written on another schema.
Two readers that rewrite it at once each write a complete, correct copy; the last rename wins. A file
replaced while it is read is recorded with its older stat, so the next reader reads it again. Deleting
the folder loses nothing. Where the results folder is read-only it is simply not written.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from lossbench import store

COMPACTED = "compacted"
COMPACT_AFTER = 32  # files read one by one before the compacted copy is rewritten
BOOKKEEPING = pa.schema([("_file", pa.string()), ("_ino", pa.int64()), ("_size", pa.int64()),
                         ("_mtime_ns", pa.int64())])
log = logging.getLogger(__name__)
Stat = tuple[int, int, int]


def listing(folder: Path) -> dict[str, Stat]:
    """Every result file of a folder (name -> inode, size, mtime_ns); hidden and temp files excluded."""
    try:
        entries = list(os.scandir(folder))
    except (FileNotFoundError, NotADirectoryError):
        return {}
    out = {}
    for entry in entries:
        if entry.name.endswith(".parquet") and not entry.name.startswith((".", "_")):
            try:
                if entry.is_file():
                    st = entry.stat()
                    out[entry.name] = (st.st_ino, st.st_size, st.st_mtime_ns)
            except OSError:
                continue
    return out


def relaxed(schema: pa.Schema) -> pa.Schema:
    """The schema with every field nullable: for reading files of other versions, whatever they miss."""
    return pa.schema([field.with_nullable(True) for field in schema])


def conform(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """A table on exactly `schema` (all fields nullable): missing columns as typed nulls, extra columns
    dropped, types cast (NaN in a float column now declared int becomes null). Raises ArrowException
    when a column cannot be cast (a foreign or damaged file)."""
    columns = []
    for field in schema:
        if field.name not in table.column_names:
            columns.append(pa.nulls(table.num_rows, field.type))
            continue
        column = table[field.name]
        if pa.types.is_floating(column.type) and pa.types.is_integer(field.type):
            column = pc.if_else(pc.is_nan(column), pa.scalar(None, column.type), column)
        columns.append(column.cast(field.type))
    return pa.Table.from_arrays(columns, schema=relaxed(schema))


def _with_file(table: pa.Table, files: list[str]) -> pa.Table:
    return table.append_column(BOOKKEEPING.field("_file"), pa.array(files, pa.string()))


def _read_files(folder: Path, names: Sequence[str], schema: pa.Schema) -> pa.Table:
    """The rows of the named files on `schema`, with the `_file` each row came from. All files are read
    together first (multi-threaded); if that fails, one at a time, and a file that cannot be read or cast
    is named in a warning and left out."""
    target = relaxed(schema)
    if not names:
        return _with_file(target.empty_table(), [])
    try:
        batches, files = [], []
        dataset = ds.dataset([str(folder / n) for n in names], schema=target, format="parquet")
        for tagged in dataset.scanner(columns=target.names).scan_batches():
            batches.append(tagged.record_batch)
            files += [Path(tagged.fragment.path).name] * tagged.record_batch.num_rows
        return _with_file(pa.Table.from_batches(batches, target), files)
    except (OSError, pa.ArrowException):
        pass  # some file is damaged or of another shape: read them one at a time to name it
    tables = [target.empty_table().append_column(BOOKKEEPING.field("_file"), pa.array([], pa.string()))]
    for name in names:
        try:
            table = conform(pq.read_table(folder / name), target)
        except (OSError, pa.ArrowException) as exc:
            store.warn_unreadable(folder / name, exc)
            continue
        tables.append(_with_file(table, [name] * table.num_rows))
    return pa.concat_tables(tables)


def _cached(path: Path, schema: pa.Schema, columns: list[str]) -> pa.Table | None:
    """The compacted rows (`columns` + bookkeeping), or None when absent, unreadable or on another schema."""
    try:
        stored = relaxed(pq.read_schema(path))
        if not stored.equals(pa.unify_schemas([relaxed(schema), BOOKKEEPING])):
            return None
        return pq.read_table(path, columns=[*columns, *BOOKKEEPING.names])
    except (OSError, pa.ArrowException):
        return None


def read_folder(folder: Path, schema: pa.Schema, columns: list[str] | None = None,
                valid: Callable[[pa.Table], pa.Array] | None = None) -> pa.Table:
    """Every row of every result file in `folder` on `schema` (only `columns`, if given), through the
    compacted copy `<folder>/../compacted/<folder name>.parquet` (module docstring). `valid(table)` is a
    boolean mask of the rows to keep: files whose rows fail it are named in a warning and left out."""
    columns = list(schema.names) if columns is None else list(columns)
    files = listing(folder)
    cache = folder.parent / COMPACTED / f"{folder.name}.parquet"
    cached = _cached(cache, schema, list(schema.names)) if files else None
    kept, stale = None, sorted(files)
    if cached is not None:
        seen = cached.select(BOOKKEEPING.names).group_by(BOOKKEEPING.names).aggregate([])
        unchanged = [f for f, *stat in zip(*(seen[n].to_pylist() for n in BOOKKEEPING.names))
                     if files.get(f) == tuple(stat)]
        kept = cached.filter(pc.is_in(cached["_file"], value_set=pa.array(unchanged, pa.string())))
        stale = sorted(set(files) - set(unchanged))
    fresh = _read_files(folder, stale, schema)
    if valid is not None and fresh.num_rows:
        mask = valid(fresh)
        for name in sorted(set(pc.filter(fresh["_file"], pc.invert(mask)).to_pylist())):
            store.warn_unreadable(folder / name, ValueError("its rows lack a run_id or a status"))
        fresh = fresh.filter(mask)
    names = fresh["_file"].to_pylist()
    for i, field in enumerate(BOOKKEEPING.remove(0)):
        fresh = fresh.append_column(field, pa.array([files[n][i] for n in names], pa.int64()))
    parts = [t for t in (kept, fresh) if t is not None]
    table = pa.concat_tables(parts)
    changed = len(stale) >= COMPACT_AFTER or (cached is not None and cached.num_rows - kept.num_rows >= COMPACT_AFTER)
    if changed and (fresh.num_rows or cached is not None):
        _write(cache, table)
    return table.select(columns)


def _write(path: Path, table: pa.Table) -> None:
    """Write the compacted copy atomically; a folder that cannot take it is read without one."""
    try:
        store.write_table(path, table)
    except OSError as exc:
        log.debug("not writing the compacted copy %s (%s)", path, exc)
