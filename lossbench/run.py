"""One run: effective config -> seeded objects -> Trainer.fit -> final metrics and energy -> Parquet rows.

A run is a pure function of its effective config: `run_id` hashes it (without output locations),
and within one seed every head starts from the same backbone initialisation and sees the same
data order, so heads are compared on equal terms.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import traceback
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench import LossbenchError
from lossbench.config import NON_IDENTITY_KEYS, validate
from lossbench.data.base import Splits
from lossbench.losses.base import AuxZLoss, Criterion
from lossbench.models.classifier import Classifier
from lossbench.metrics import count_params, grad_stability, param_norm, summarize
from lossbench.provenance import provenance
from lossbench import store
from lossbench.store import SCHEMA_VERSION, run_id

log = logging.getLogger(__name__)
AXES = ("task", "dataset", "backbone", "loss", "criterion", "distance", "optim")


@dataclass
class RunOutcome:
    """The summary row, where it is, and whether this call skipped an already completed run."""

    summary: dict[str, Any]
    path: Path
    skipped: bool = False


def effective_config(cfg: DictConfig, choices: dict[str, str]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(resolved config as plain data, axis values). Heads without a distance get `distance: none`,
    so `loss=ce` is the same run whatever `distance` says."""
    validate(cfg)
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    axes: dict[str, Any] = {axis: choices.get(axis, choices.get(f"loss/{axis}")) for axis in AXES}
    if "distance" not in data["loss"]["head"]:
        data["distance"], axes["distance"] = None, "none"
    axes["seed"] = data["seed"]
    return data, axes


def run_identity(cfg: DictConfig, choices: dict[str, str]) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """(run_id, effective config, axes): the id hashes the axes and the config without output locations."""
    data, axes = effective_config(cfg, choices)
    identity = {k: v for k, v in data.items() if k not in NON_IDENTITY_KEYS}
    return run_id({"axes": axes, "config": identity}), data, axes


def derived_seed(seed: int, stream: str) -> int:
    """An independent seed per random stream (head init, data order, dropout) from the run seed."""
    return int.from_bytes(hashlib.sha256(f"{seed}:{stream}".encode()).digest()[:7], "big")


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        raise LossbenchError(f"unknown device '{name}'; use auto, cpu, cuda, cuda:N or mps") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise LossbenchError(f"device={name} but CUDA is not available here; use device=cpu or device=auto")
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


def dry_build(cfg: DictConfig, choices: dict[str, str]) -> None:
    """Everything `execute` builds except the data and the backbone, on dummy shapes: catches bad
    values (e.g. a negative exponent) before any output is written."""
    effective_config(cfg, choices)
    resolve_device(cfg.device)
    dataset = build(cfg, "dataset")
    check_task(build(cfg, "task"), dataset, choices)
    dataset.check()
    head = build(cfg, "loss.head", in_features=4, num_classes=3)
    build_criterion(cfg)
    trainer = build(cfg, "trainer")
    optimizer = build(cfg, "optim.optimizer", head.parameters())
    build(cfg, "optim.scheduler", optimizer, total_steps=trainer.epochs)
    build(cfg, "tracker")


def check_task(task: Any, dataset: Any, choices: dict[str, str]) -> None:
    """A token-stream dataset needs task=lm and a labelled one task=classification."""
    needed = getattr(dataset, "task", "classification")
    if needed != task.name:
        raise LossbenchError(f"dataset={choices.get('dataset')} needs task={needed}, not task={task.name}; "
                             f"add task={needed}")


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


def execute(cfg: DictConfig, choices: dict[str, str]) -> RunOutcome:
    """Run one configuration unless it already completed; always leave a row, never a partial file.

    A run that raises gets a `failed` row with the error (traceback in errors/<run_id>.log), a run
    whose loss stops being finite a `diverged` row: in a sweep, the other runs go on.
    """
    rid, data_cfg, axes = run_identity(cfg, choices)
    results = Path(cfg.results_dir).expanduser()
    done = store.read_run(results, rid)
    if done is not None and done.get("status") == "completed" and not cfg.get("force"):
        log.info("run %s already completed: skipped (--force re-runs it)", rid)
        return RunOutcome(done, results / store.RUNS / f"{rid}.parquet", skipped=True)
    device = resolve_device(cfg.device)
    started, t0 = datetime.now(timezone.utc), time.perf_counter()
    log.info("run %s: %s", rid, "  ".join(f"{k}={v}" for k, v in axes.items()))
    with store.running_marker(results, rid, cfg.sweep):
        try:
            outcome, history = _train(cfg, device)
        except Exception as exc:  # isolate the failure: record it, let the sweep go on
            error_log = store.write_error_log(results, rid, traceback.format_exc())
            outcome, history = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "error_log": str(error_log)}, []
            log.error("run %s failed: %s (traceback: %s)", rid, outcome["error"], error_log)
        summary: dict[str, Any] = {
            "run_id": rid,
            **axes,
            "experiment": choices.get("experiment"),
            "sweep": cfg.sweep,
            **outcome,
            "wall_time_s": time.perf_counter() - t0,
            **provenance(device),
            "started_at": started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "schema_version": SCHEMA_VERSION,
            "config_json": json.dumps(data_cfg, sort_keys=True),
        }
        path = store.write_run(results, summary, history)
    if summary["status"] != "failed":
        energy = f"{summary['energy_kwh']:.3g} kWh" if summary["energy_kwh"] is not None else "energy n/a"
        scores = "  ".join(f"{k} {summary[k]:.4f}" for k in ("test_acc", "test_f1", "test_ppl") if k in summary)
        log.info("%s  %s  %.1fs  %s  -> %s", summary["status"], scores, summary["wall_time_s"], energy, path)
    return RunOutcome(summary, path)


def _train(cfg: DictConfig, device: torch.device) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Build, train, evaluate with the best-validation weights, measure energy: (summary columns, history)."""
    seed = int(cfg.seed)
    task = build(cfg, "task")
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

    tracker = build(cfg, "tracker")
    tracker.start()
    t0 = time.perf_counter()
    try:
        fit = trainer.fit(model, criterion, optimizer, scheduler, splits, order, task)
        final: dict[str, float] = {}
        for split in ("train", "val", "test"):
            x, y = getattr(splits, f"x_{split}"), getattr(splits, f"y_{split}")
            metrics = trainer.evaluate(model, criterion, x, y, splits.num_classes, task)
            final.update({f"{split}_{k}": v for k, v in metrics.items()})
        probes = task.probe(model, splits.x_test, splits.y_test, int(cfg.probe_samples), trainer.eval_batch_size)
        duration = time.perf_counter() - t0
    finally:
        energy = tracker.stop()

    columns = {
        "status": fit.status,
        **final,
        "best_epoch": fit.best_epoch,
        "epochs": fit.epochs,
        "steps": fit.steps,
        **summarize(fit.grad_norms, "grad_norm"),
        **grad_stability(fit.grad_norms, trainer.grad_clip, trainer.spike_factor, trainer.spike_window),
        "head_param_norm": param_norm(model.head),
        "model_param_norm": param_norm(model),
        "n_params": count_params(model),
        "n_head_params": count_params(model.head),
        **probes,
        **splits.sizes(),
        "duration_s": duration,  # training + evaluation + probes: the window the tracker measures
        "train_time_s": fit.train_time_s,
        "time_per_epoch_s": fit.train_time_s / fit.epochs if fit.epochs > 0 else None,
        "samples_per_s": fit.samples / fit.train_time_s if fit.train_time_s > 0 else None,
        "samples_seen": fit.samples,  # training targets: examples, or tokens for language models
        "precision": "bf16" if trainer.precision == "bf16" and device.type == "cuda" else "fp32",
        **energy,
    }
    return {**columns, **task.extras(columns)}, fit.history
