"""The files of a results folder, each written atomically: layout, writers and tolerant readers.

Layout under `results_dir`: `runs/<run_id>.parquet` (one row) and `history/<run_id>.parquet` (one row
per epoch); `running/<run_id>.json`, the lock of a run in progress (locks.py); `errors/<run_id>.log`
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
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from lossbench import LossbenchError

if TYPE_CHECKING:
    import pyarrow as pa

RUNS, HISTORY, RUNNING, SWEEPS, ERRORS, CHECKPOINTS = "runs", "history", "running", "sweeps", "errors", "checkpoints"
MODELS = "models"
log = logging.getLogger(__name__)


def file_mode() -> int:
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
            os.fchmod(handle.fileno(), file_mode())
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def write_table(path: Path, table: pa.Table) -> Path:
    """Atomically write an Arrow table as one Parquet file at `path` (no column statistics: a result
    file holds a few rows, and statistics would double its size and its read time)."""
    import pyarrow.parquet as pq  # here, not at import: a bad command line is refused before pyarrow loads

    return _atomic_write(path, lambda handle: pq.write_table(table, handle, write_statistics=False))


def write_json(path: Path, data: dict[str, Any]) -> Path:
    """Atomically write a JSON document."""
    return _atomic_write(path, lambda handle: handle.write(json.dumps(data, indent=1, default=str).encode()))


def warn_unreadable(path: Path, exc: BaseException) -> None:
    """One warning line for a result file a reader leaves out."""
    log.warning("skipping unreadable result file %s (%s); re-running its command redoes that run",
                path, str(exc).splitlines()[0] if str(exc) else type(exc).__name__)


def checkpoint_path(results_dir: Path, rid: str) -> Path:
    """Where an unfinished run's training state is kept (engine.Trainer's checkpoints)."""
    return results_dir / CHECKPOINTS / f"{rid}.pt"


# what train_state.TrainState.state_dict() holds: a checkpoint without these is not one
CHECKPOINT_KEYS = frozenset({"model", "optimizer", "scheduler", "criterion", "stream", "rng", "cuda_rng", "result",
                             "best_score", "best_state"})


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
        state = torch.load(path, map_location="cpu", weights_only=False)  # lossbench's own file
    except Exception as exc:
        log.warning("checkpoint %s cannot be read (%s); the run starts from the beginning", path, exc)
        return None
    missing = CHECKPOINT_KEYS - set(state) if isinstance(state, dict) else CHECKPOINT_KEYS
    if missing or not hasattr(state["result"], "history"):
        log.warning("checkpoint %s is not a lossbench training state (missing %s); discarded, the run starts from "
                    "the beginning", path, ", ".join(sorted(missing)) or "result")
        path.unlink(missing_ok=True)
        return None
    return state


def write_error_log(results_dir: Path, rid: str, text: str) -> Path | None:
    """The traceback of a failed run, next to the results: errors/<run_id>.log (None, with a warning,
    when it cannot be written: the failed row matters more than its traceback)."""
    try:
        return _atomic_write(results_dir / ERRORS / f"{rid}.log", lambda handle: handle.write(text.encode()))
    except OSError as exc:
        log.warning("could not write the traceback of run %s (%s)", rid, exc.strerror or exc)
        return None


def write_manifest(results_dir: Path, sweep: str, command: str, run_ids: list[str]) -> Path:
    """sweeps/<sweep>.json: the command and every run id it should produce."""
    return write_json(results_dir / SWEEPS / f"{sweep}.json",
                      {"sweep": sweep, "command": command, "run_ids": run_ids, "created_at": time.time()})


def load_manifests(results_dir: Path) -> list[dict[str, Any]]:
    """Sweep manifests; one that cannot be read or is not a manifest (a sweep id, a command and a list of
    run ids) is named in a warning and skipped."""
    manifests = []
    for path in sorted((results_dir / SWEEPS).glob("*.json")):
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            log.warning("skipping unreadable sweep manifest %s (%s)", path, exc)
            continue
        ids = manifest.get("run_ids") if isinstance(manifest, dict) else None
        if not (isinstance(ids, list) and all(isinstance(i, str) for i in ids)
                and isinstance(manifest.get("sweep"), str) and isinstance(manifest.get("command"), str)):
            log.warning("skipping sweep manifest %s: not a lossbench manifest (sweep, command, run_ids)", path)
            continue
        manifests.append(manifest)
    return manifests


LAYOUT = (RUNS, HISTORY, RUNNING, SWEEPS, ERRORS, CHECKPOINTS, MODELS, "logs", "compacted", "studies", "tuning")


def check_layout(results_dir: Path) -> None:
    """Raise LossbenchError (one line) unless `results_dir` can hold results: not the filesystem root, not a
    dangling link, writable, and each of its subfolders a folder or absent. Checked before a run trains,
    so a finished run is never lost to the layout of its results folder."""
    if results_dir.expanduser().resolve() == Path(results_dir.anchor or "/").resolve():
        raise LossbenchError(f"results_dir={results_dir}: the filesystem root; name a folder for the results")
    if results_dir.is_symlink() and not results_dir.exists():
        raise LossbenchError(f"results_dir={results_dir}: a link to {os.readlink(results_dir)}, which does not exist")
    for sub in LAYOUT:
        if (results_dir / sub).exists() and not (results_dir / sub).is_dir():
            raise LossbenchError(f"results_dir={results_dir}: {results_dir / sub} is a file; lossbench needs a folder "
                                 "there (move the file away)")
    check_writable(results_dir, "results_dir")


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
