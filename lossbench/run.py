"""One run: config -> seeded objects -> Trainer.fit -> final metrics and energy -> Parquet rows.

A run is a pure function of its effective config (identity.py); within one seed every head starts
from the same backbone initialisation and sees the same data order, so heads are compared on equal
terms. Everything task-specific comes from the task object (tasks/); whether a run should run at all
(skip-if-done) is the sweep's business (sweep.py), not this module's.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
import time
import traceback
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench import LossbenchError, store
from lossbench.config import group_options
from lossbench.cost.clock import GpuClock, process_cpu_seconds
from lossbench.cost.flops import training_flops
from lossbench.cost.threads import HostShare, Threads, machine_load
from lossbench.data.base import Dataset, Splits
from lossbench.identity import RunIdentity, run_identity
from lossbench.losses.base import AuxZLoss, Criterion
from lossbench.metrics import count_params, grad_stability, param_norm, summarize
from lossbench.models.classifier import Classifier
from lossbench.provenance import provenance
from lossbench.results import write_run
from lossbench.schema import SCHEMA_VERSION
from lossbench.tasks.base import Task
from lossbench.tasks.registry import option_task, task_class

log = logging.getLogger(__name__)
machine_load()  # start this process's load meter at import, so the first run's threads need no wait


@dataclass
class RunOutcome:
    """The summary row and where it is."""

    summary: dict[str, Any]
    path: Path


def derived_seed(seed: int, stream: str) -> int:
    """An independent seed per random stream (head init, data order, dropout) from the run seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:7], "big")


def resolve_device(name: str, require_cuda: bool = False) -> torch.device:
    """The torch device of `device=`; `auto` is CUDA where available. `require_cuda` (a cluster job that
    asked for GPUs) makes `auto` on a node without a visible GPU an error, never silent CPU training."""
    if name == "auto":
        if require_cuda and not torch.cuda.is_available():
            raise LossbenchError(f"the job asked the cluster for GPUs but none is visible on {socket.gethostname()} "
                                 "(device=auto): not training on CPU")
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LossbenchError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LossbenchError(f"device={name} but CUDA is not available on {socket.gethostname()}; "
                             "use device=cpu or device=auto")
    return device


def build(cfg: DictConfig, path: str, *args: Any, **kwargs: Any) -> Any:
    """instantiate(cfg.<path>) (and, for `_partial_` nodes, call it with args/kwargs), with
    constructor errors reported as one line naming the config node."""
    node = OmegaConf.select(cfg, path)
    try:
        if node.get("_partial_", False):
            return instantiate(node)(*args, **kwargs)
        return instantiate(node, *args, **kwargs)
    except (InstantiationException, ValueError) as exc:
        cause = exc.__cause__ or exc
        raise LossbenchError(f"{path}: {cause}".splitlines()[0]) from None


def build_criterion(cfg: DictConfig) -> Criterion:
    """The loss's criterion plus its optional auxiliary z-loss term (`loss.z_loss`, 0 = off)."""
    z_loss = cfg.loss.get("z_loss", 0.0)
    if not isinstance(z_loss, (int, float)) or isinstance(z_loss, bool):
        raise LossbenchError(f"loss.z_loss: expected float, got {z_loss!r}")
    try:
        return AuxZLoss(build(cfg, "loss.criterion"), float(z_loss))
    except ValueError as exc:
        raise LossbenchError(f"loss.z_loss: {exc}") from None


def dry_build(cfg: DictConfig, choices: dict[str, str], here: bool = True) -> None:
    """Everything `execute` builds except the data and the backbone, on dummy shapes: catches bad
    values (e.g. a negative exponent) before any output is written. `cfg` is validated already.
    `here=False` (jobs for cluster nodes): the device and the data files are checked on the node, where
    the run will use them, not on the submitting host."""
    if here:
        resolve_device(cfg.device)
    dataset = build(cfg, "dataset")
    check_task(build(cfg, "task"), dataset, choices)
    if here:
        dataset.check()
    head = build(cfg, "loss.head", in_features=4, num_classes=3)
    build_criterion(cfg)
    trainer = build(cfg, "trainer")
    optimizer = build(cfg, "optim.optimizer", head.parameters())
    build(cfg, "optim.scheduler", optimizer, total_steps=trainer.epochs)
    build(cfg, "tracker")


def check_task(task: Task, dataset: Dataset, choices: dict[str, str]) -> None:
    """The task must accept the dataset's kind of data; the message names the tasks that would."""
    if task.accepts(dataset):
        return
    kind = getattr(dataset, "kind", "?")
    takers = [option for option in group_options("task") if option_task(option).data_kind == kind]
    hint = f"; add {' or '.join(f'task={t}' for t in takers)}" if takers else ""
    raise LossbenchError(f"dataset={choices.get('dataset')} gives {kind} data, which task={choices.get('task')} "
                         f"does not take (it takes {task.data_kind}){hint}")


def build_model(cfg: DictConfig, splits: Splits) -> Classifier:
    """Backbone + head. The backbone's init depends on the seed only, never on the head, so every
    head of one seed starts from the same features."""
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    backbone = build(cfg, "backbone", input_shape=splits.input_shape, vocab_size=splits.vocab_size)
    torch.manual_seed(derived_seed(seed, "head"))
    head = build(cfg, "loss.head", in_features=backbone.out_features, num_classes=splits.num_classes)
    if getattr(backbone, "tie_embeddings", False):
        backbone.tie(head)
    return Classifier(backbone, head)


def execute(cfg: DictConfig, choices: dict[str, str], sweep: str | None = None,
            identity: RunIdentity | None = None, parallel_jobs: int = 1, restart: bool = False,
            force: bool = False, require_cuda: bool = False) -> RunOutcome:
    """Train one configuration and write its row; always leave a row, never a partial file.

    A run that raises gets a `failed` row with the error (traceback in errors/<run_id>.log), a run
    whose loss stops being finite a `diverged` row: in a sweep, the other runs go on. `sweep` is the id
    of the launching sweep (recorded, not part of the identity); `parallel_jobs` how many jobs its
    launcher runs at once on this host (cost/threads.py divides the CPUs by it).

    One trainer per run at a time (store.run_lock): if another live process trains this run, nothing is
    started and the outcome's status is `running_elsewhere` (no row written); once the lock is held, a run
    that another trainer completed meanwhile is not trained again (unless `force`). `require_cuda`: the
    job asked its cluster for GPUs; a node without one fails the run (resolve_device).

    An unfinished run (killed, cancelled, preempted, requeued) left its training state in
    checkpoints/<run_id>.pt: running it again resumes there (`restart=True` discards it first). The
    checkpoint is removed once the run's row is written as completed or diverged.
    """
    identity = identity or run_identity(cfg, choices)
    rid, axes = identity.run_id, identity.axes
    results = Path(cfg.results_dir).expanduser()
    try:
        device = resolve_device(cfg.device, require_cuda)
        device_error = None
    except LossbenchError as exc:  # checked here, on the node: the run fails with a row saying why
        device, device_error = torch.device("cpu"), exc
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    log.info("run %s: %s", rid, "  ".join(f"{k}={v}" for k, v in axes.items() if k != "experiment"))
    with ExitStack() as held:
        try:
            held.enter_context(store.run_lock(results, rid, sweep))
        except store.RunLocked as exc:  # another process trains this run now: never two trainers for one run
            log.warning("%s: not started here", exc)
            return RunOutcome({"run_id": rid, "status": "running_elsewhere", "error": str(exc)},
                              results / store.RUNS / f"{rid}.parquet")
        if not force and store.is_completed(results, rid):  # finished by another trainer since the plan was made
            log.info("run %s completed meanwhile (another sweep); not trained again", rid)
            return RunOutcome(store.read_run(results, rid) or {}, results / store.RUNS / f"{rid}.parquet")
        share = held.enter_context(HostShare())
        threads = Threads(cfg.threads, parallel_jobs, share, machine_load())
        summary, path = _train_and_write(cfg, identity, sweep, device, threads, restart, started, t0, device_error)
    return RunOutcome(summary, path)


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
        outcome, history, scored = _train(cfg, device, threads, checkpoint, restart, model_file)
    except Exception as exc:  # isolate the failure: record it, let the sweep go on
        error_log = store.write_error_log(results, rid, traceback.format_exc())  # None if it cannot be written
        outcome, history, scored = ({"status": failure_status(exc), "error": f"{type(exc).__name__}: {exc}",
                                     "error_log": str(error_log) if error_log else None}, [], [])
        log.error("run %s %s: %s (traceback: %s)", rid, outcome["status"], outcome["error"], error_log)
    summary = _row(identity, sweep, outcome, time.perf_counter() - t0, device, store.where_it_runs(), started)
    if device_error is not None:
        summary["device"] = str(cfg.device)  # the configured device: the run never reached one
    try:
        path = write_run(results, summary, history, _task_of(cfg))
    except OSError as exc:  # disk full, quota: earlier files are intact (atomic writes); say so in one line
        log.error("run %s %s but its row could not be written to %s (%s); earlier results are intact",
                  rid, summary["status"], results, exc.strerror or exc)
        return summary, results / store.RUNS / f"{rid}.parquet"
    if summary["status"] in ("completed", "diverged"):
        checkpoint.unlink(missing_ok=True)
    if summary["status"] != "failed":
        energy = f"{summary['energy_kwh']:.3g} kWh" if summary["energy_kwh"] is not None else "energy n/a"
        scores = "  ".join(f"{k} {summary[k]:.4f}" for k in scored)
        log.info("%s  %s  %.1fs  %s  -> %s", summary["status"], scores, summary["wall_time_s"], energy, path)
    return summary, path


def record_unfinished(cfg: DictConfig, identity: RunIdentity, sweep: str | None, status: str, reason: str,
                      where: dict[str, Any]) -> Path:
    """The row of a run that ended without finishing on its own (a cancelled, timed-out or never submitted
    cluster job): its identity, the status and reason, and where it ran, so that the sweep's summary and
    `lossbench status` can say so; a re-run redoes it (only `completed` rows are skipped)."""
    outcome = {"status": status, "error": reason, "error_log": where.get("job_log")}
    summary = _row(identity, sweep, outcome, None, torch.device("cpu"), where, datetime.now(timezone.utc))
    summary["device"] = str(cfg.device)  # the configured device: the run never reached one
    return write_run(Path(cfg.results_dir).expanduser(), summary, [], _task_of(cfg))


def _task_of(cfg: DictConfig) -> type[Task] | None:
    """The task class the config names (its columns join the row's schema), or None if it cannot be imported."""
    try:
        return task_class(cfg.task._target_)
    except LossbenchError:
        return None


def _row(identity: RunIdentity, sweep: str | None, outcome: dict[str, Any], wall_time_s: float | None,
         device: torch.device, where: dict[str, Any], started: datetime) -> dict[str, Any]:
    """A summary row: identity, the run's outcome columns, provenance, where it ran, schema and config."""
    return {
        "run_id": identity.run_id,
        "cell_id": identity.cell_id,
        **identity.axes,
        "sweep": sweep,
        **outcome,
        "wall_time_s": wall_time_s,
        **provenance(device),
        **{key: where.get(key) for key in ("host", "slurm_job_id", "slurm_array_task_id", "job_log")},
        "started_at": started.isoformat(),
        "finished_at": datetime.now(timezone.utc).isoformat(),
        "schema_version": SCHEMA_VERSION,
        "config_json": json.dumps(identity.config, sort_keys=True),
    }


def failure_status(exc: BaseException) -> str:
    """`failed`, or `timeout` / `preempted` when the exception is submitit's way of ending a job at its
    time limit or on preemption (raised inside the run by its signal handler; matched by name so that
    submitit is not imported here)."""
    if type(exc).__name__ == "UncompletedJobError":
        text = str(exc)
        if "timed-out" in text or "timed out" in text:
            return "timeout"
        if "preempt" in text:
            return "preempted"
    return "failed"


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
        "status": fit.status,
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
        "precision": "bf16" if trainer.precision == "bf16" and device.type == "cuda" else "fp32",
        **energy,
    }
    columns.update(task.from_history(fit.history))
    return {**columns, **task.extras(columns)}, fit.history, [f"test_{c.name}" for c in task.score_columns]
