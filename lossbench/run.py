"""One run's life: lock -> build (build.py) -> Trainer.fit -> final metrics, probes and cost -> Parquet rows.

A run is a pure function of its effective config (identity.py); within one seed every head starts
from the same backbone initialisation and sees the same data order, so heads are compared on equal
terms. Everything task-specific comes from the task object (tasks/); whether a run should run at all
(skip-if-done) is the plan's business (plan.py), not this module's.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from lossbench import LossbenchError, store
from lossbench.build import build, build_criterion, build_model, derived_seed, resolve_device
from lossbench.context import RunContext
from lossbench.cost.clock import GpuClock, process_cpu_seconds
from lossbench.cost.flops import training_flops
from lossbench.cost.threads import HostShare, Threads, machine_load
from lossbench.host import where_it_runs
from lossbench.identity import RunIdentity, run_identity
from lossbench.locks import RunLocked, run_lock
from lossbench.metrics import count_params, grad_stability, param_norm, summarize
from lossbench.provenance import provenance
from lossbench.results import is_completed, read_run, write_run
from lossbench.schema import SCHEMA_VERSION
from lossbench.statuses import TRAINED, RunStatus
from lossbench.tasks.base import Task
from lossbench.tasks.registry import task_class

log = logging.getLogger(__name__)


@dataclass
class RunRow:
    """The summary row a run wrote (or, for a run another trainer holds, would have) and where it is."""

    summary: dict[str, Any]
    path: Path


def execute(cfg: DictConfig, choices: dict[str, str], context: RunContext = RunContext(),
            identity: RunIdentity | None = None) -> RunRow:
    """Train one configuration and write its row; always leave a row, never a partial file.

    A run that raises gets a `failed` row with the error (traceback in errors/<run_id>.log), a run
    whose loss stops being finite a `diverged` row: in a sweep, the other runs go on. `context` says how
    it was launched (context.py: sweep id, parallel jobs, --force, --restart, a cluster job's GPUs).

    One trainer per run at a time (locks.run_lock): if another live process trains this run, nothing is
    started and the status is `running_elsewhere` (no row written); once the lock is held, a run that
    another trainer completed meanwhile is not trained again (unless `force`). `require_cuda`: the job
    asked its cluster for GPUs; a node without one fails the run (build.resolve_device).

    An unfinished run (killed, cancelled, preempted, requeued) left its training state in
    checkpoints/<run_id>.pt: running it again resumes there (`restart` discards it first). The
    checkpoint is removed once the run's row is written as completed or diverged.
    """
    identity = identity or run_identity(cfg, choices)
    rid, axes = identity.run_id, identity.axes
    results = Path(cfg.results_dir).expanduser()
    try:
        device = resolve_device(cfg.device, context.require_cuda)
        device_error = None
    except LossbenchError as exc:  # checked here, on the node: the run fails with a row saying why
        device, device_error = torch.device("cpu"), exc
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    log.info("run %s: %s", rid, "  ".join(f"{k}={v}" for k, v in axes.items() if k != "experiment"))
    with ExitStack() as held:
        try:
            held.enter_context(run_lock(results, rid, context.sweep))
        except RunLocked as exc:  # another process trains this run now: never two trainers for one run
            log.warning("%s: not started here", exc)
            return RunRow({"run_id": rid, "status": RunStatus.RUNNING_ELSEWHERE.value, "error": str(exc)},
                          results / store.RUNS / f"{rid}.parquet")
        if not context.force and is_completed(results, rid):  # finished by another trainer meanwhile
            log.info("run %s completed meanwhile (another sweep); not trained again", rid)
            return RunRow(read_run(results, rid) or {}, results / store.RUNS / f"{rid}.parquet")
        if context.parallel_jobs > 1:  # several runs write to one terminal: say whose line it is
            held.enter_context(_prefixed_log(rid))
        share = held.enter_context(HostShare())
        threads = Threads(cfg.threads, context.parallel_jobs, share, machine_load())
        summary, path = _train_and_write(cfg, identity, context.sweep, device, threads, context.restart, started,
                                         t0, device_error)
    return RunRow(summary, path)


@contextmanager
def _prefixed_log(prefix: str) -> Iterator[None]:
    """Every log line of this process starts with `prefix` while the context lasts."""

    class Prefix(logging.Filter):
        def filter(self, record: logging.LogRecord) -> bool:
            record.msg = f"{prefix}  {record.msg}"
            return True

    handlers = logging.getLogger().handlers
    added = Prefix()
    for handler in handlers:
        handler.addFilter(added)
    try:
        yield
    finally:
        for handler in handlers:
            handler.removeFilter(added)


def _train_and_write(cfg: DictConfig, identity: RunIdentity, sweep: str | None, device: torch.device,
                     threads: Threads, restart: bool, started: datetime, t0: float,
                     device_error: LossbenchError | None = None) -> tuple[dict[str, Any], Path]:
    """Train (failures isolated into a `failed` row), write the row, drop the checkpoint of a finished run."""
    results, rid = Path(cfg.results_dir).expanduser(), identity.run_id
    checkpoint = store.checkpoint_path(results, rid)
    try:
        if device_error is not None:
            raise device_error
        model_file = store.model_path(results, rid) if cfg.get("save_model") else None
        columns, history, scored = _train(cfg, device, threads, checkpoint, restart, model_file)
    except Exception as exc:  # isolate the failure: record it, let the sweep go on
        error_log = store.write_error_log(results, rid, traceback.format_exc())  # None if it cannot be written
        columns, history, scored = ({"status": failure_status(exc).value, "error": f"{type(exc).__name__}: {exc}",
                                     "error_log": str(error_log) if error_log else None}, [], [])
        log.error("run %s %s: %s (traceback: %s)", rid, columns["status"], columns["error"], error_log)
    summary = _row(identity, sweep, columns, time.perf_counter() - t0, device, where_it_runs(), started)
    if device_error is not None:
        summary["device"] = str(cfg.device)  # the configured device: the run never reached one
    try:
        path = write_run(results, summary, history, _task_of(cfg))
    except OSError as exc:  # disk full, quota: earlier files are intact (atomic writes); say so in one line
        log.error("run %s %s but its row could not be written to %s (%s); earlier results are intact",
                  rid, summary["status"], results, exc.strerror or exc)
        return summary, results / store.RUNS / f"{rid}.parquet"
    if summary["status"] in TRAINED:
        checkpoint.unlink(missing_ok=True)
    if summary["status"] != RunStatus.FAILED:
        energy = f"{summary['energy_kwh']:.3g} kWh" if summary["energy_kwh"] is not None else "energy n/a"
        scores = "  ".join(f"{k} {summary[k]:.4f}" for k in scored)
        log.info("%s  %s  %.1fs  %s  -> %s", summary["status"], scores, summary["wall_time_s"], energy, path)
    return summary, path


def record_unfinished(cfg: DictConfig, identity: RunIdentity, sweep: str | None, status: RunStatus, reason: str,
                      where: dict[str, Any]) -> Path:
    """The row of a run that ended without finishing on its own (a cancelled, timed-out or never submitted
    cluster job): its identity, the status and reason, and where it ran, so that the sweep's summary and
    `lossbench status` can say so; a re-run redoes it (only `completed` rows are skipped)."""
    columns = {"status": RunStatus(status).value, "error": reason, "error_log": where.get("job_log")}
    summary = _row(identity, sweep, columns, None, torch.device("cpu"), where, datetime.now(timezone.utc))
    summary["device"] = str(cfg.device)  # the configured device: the run never reached one
    return write_run(Path(cfg.results_dir).expanduser(), summary, [], _task_of(cfg))


def _task_of(cfg: DictConfig) -> type[Task] | None:
    """The task class the config names (its columns join the row's schema), or None if it cannot be imported."""
    try:
        return task_class(cfg.task._target_)
    except LossbenchError:
        return None


def _row(identity: RunIdentity, sweep: str | None, columns: dict[str, Any], wall_time_s: float | None,
         device: torch.device, where: dict[str, Any], started: datetime) -> dict[str, Any]:
    """A summary row: identity, the run's own columns (status, metrics or error), provenance, where it ran,
    schema and config."""
    return {
        "run_id": identity.run_id,
        "cell_id": identity.cell_id,
        **identity.axes,
        "sweep": sweep,
        **columns,
        "wall_time_s": wall_time_s,
        **provenance(device),
        **{key: where.get(key) for key in ("host", "slurm_job_id", "slurm_array_task_id", "job_log")},
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "config_json": json.dumps(identity.config, sort_keys=True),
    }


def failure_status(exc: BaseException) -> RunStatus:
    """`failed`, or `timeout` / `preempted` when the exception is submitit's way of ending a job at its
    time limit or on preemption (raised inside the run by its signal handler; matched by name so that
    submitit is not imported here)."""
    if type(exc).__name__ == "UncompletedJobError":
        text = str(exc)
        if "timed-out" in text or "timed out" in text:
            return RunStatus.TIMEOUT
        if "preempt" in text:
            return RunStatus.PREEMPTED
    return RunStatus.FAILED


def _train(cfg: DictConfig, device: torch.device, threads: Threads, checkpoint: Path,
           restart: bool, model_file: Path | None = None) -> tuple[dict[str, Any], list[dict[str, Any]], list[str]]:
    """Build, train (from `checkpoint` when one is there and not `restart`), evaluate with the selected
    weights, measure cost: (summary columns, history, the test-score columns worth a log line). Threads
    are set before any torch work. With `model_file`, the evaluated weights are saved there."""
    threads_used = threads.apply()
    seed = int(cfg.seed)
    task: Task = build(cfg, "task")
    dataset = build(cfg, "dataset")
    dataset.check()
    splits = dataset.load().to(device)
    model = build_model(cfg, splits).to(device)
    criterion = build_criterion(cfg)
    trainer = build(cfg, "trainer")
    optimizer = build(cfg, "optim.optimizer", model.parameters())
    scheduler = build(cfg, "optim.scheduler", optimizer, total_steps=trainer.planned_steps(splits))
    order = torch.Generator().manual_seed(derived_seed(seed, "data"))
    torch.manual_seed(derived_seed(seed, "train"))  # dropout etc.

    if restart:
        checkpoint.unlink(missing_ok=True)
    resume = store.read_checkpoint(checkpoint)

    tracker = build(cfg, "tracker")
    tracker.start(device)
    gpu_clock = GpuClock(device)
    cpu0, t0 = process_cpu_seconds(), time.perf_counter()
    try:
        fit = trainer.fit(model, criterion, optimizer, scheduler, splits, order, task, at_evaluation=threads.apply,
                          resume=resume, at_checkpoint=lambda state: store.write_checkpoint(checkpoint, state))
        final: dict[str, float] = {}
        for split in ("train", "val", "test"):
            x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
            metrics = trainer.evaluate(model, criterion, x, y, splits.num_classes, task)
            final.update({f"{split}_{k}": v for k, v in metrics.items()})
        probes = task.probe(model, splits, int(cfg.probe_samples), trainer.eval_batch_size)
        duration = time.perf_counter() - t0
        if model_file is not None:
            store.write_model(model_file, model.state_dict())
    finally:
        cpu_time = process_cpu_seconds() - cpu0 - tracker.own_cpu_seconds()  # the run's work, not the tracker's
        gpu_time = gpu_clock.stop()
        energy = tracker.stop(cpu_time)
    try:
        flops = training_flops(model, criterion, task, fit.shape_examples, fit.shape_counts)
    except Exception as exc:  # a cost figure must never lose a trained run
        log.warning("FLOP counting failed (%s); flops will be null", exc)
        flops = None

    per_epoch = fit.train_time_s / fit.epochs if fit.epochs > 0 else None
    columns = {
        "status": RunStatus(fit.status).value,
        **final,
        "best_epoch": fit.best_epoch,
        "epochs": fit.epochs,
        "steps": fit.steps,
        "resumed_from_step": fit.resumed_from_step,
        **summarize(fit.grad_norms, "grad_norm"),
        **grad_stability(fit.grad_norms, trainer.grad_clip, trainer.spike_factor, trainer.spike_window),
        "head_param_norm": param_norm(model.head),
        "model_param_norm": param_norm(model),
        "n_params": count_params(model),
        "n_head_params": count_params(model.head),
        **probes,
        **splits.sizes(),
        "duration_s": duration,  # training + evaluation + probes: the window the tracker measures
        "cpu_time_s": cpu_time,  # the process's user + system time over the same window, all threads
        "gpu_time_s": gpu_time,
        "flops": flops,
        "threads": threads_used,
        "train_time_s": fit.train_time_s,
        "time_per_epoch_s": per_epoch,
        "s_per_epoch_per_gflop": per_epoch / (flops / fit.samples / 1e9) if per_epoch and flops and fit.samples else None,
        "samples_per_s": fit.samples / fit.train_time_s if fit.train_time_s > 0 else None,
        "samples_seen": fit.samples,  # training targets: examples, or tokens for language models
        "precision": trainer.effective_precision(device),
        **energy,
    }
    columns.update(task.from_history(fit.history))
    return {**columns, **task.extras(columns)}, fit.history, [f"test_{c.name}" for c in task.score_columns]
