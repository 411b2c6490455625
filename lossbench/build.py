"""Config -> objects: every component of a run built from its config node (Hydra `_target_`), and the dry
build that preflight runs before anything is written.

Scripts and tests build models and criteria through these functions, exactly as a run does.
"""

from __future__ import annotations

import hashlib
import json
import socket
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from lossbench import LossbenchError
from lossbench.config import group_options
from lossbench.data.base import Dataset, Splits
from lossbench.data.spec import DataSpec, check_splits
from lossbench.losses.base import AuxZLoss, Criterion
from lossbench.models.classifier import Classifier
from lossbench.tasks.base import Task
from lossbench.tasks.registry import option_task


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


def dry_build(cfg: DictConfig, choices: dict[str, str], here: bool = True,
              cache: dict[str, DataSpec | None] | None = None) -> None:
    """Everything `execute` builds before its first step, and one forward pass of the model on two examples,
    on the CPU: any error a run could hit before training (a setting a class rejects, a backbone that cannot
    take the data, empty splits) is one line before anything is written. `cfg` is validated already. The
    data's shape comes from the dataset's `spec()` or from loading it (data/spec.py). A preflight shares one
    `cache` between its jobs: each dataset config is read once, and each model (task, data, backbone, loss)
    built and run once, however many optimisers, schedules or seeds use it. `here=False` (jobs for cluster nodes): the
    device and the data files are checked on the node, where the run will use them; the model is built
    here only where the dataset says its shape without its files."""
    if here:
        resolve_device(cfg.device)
    task = build(cfg, "task")
    dataset = build(cfg, "dataset")
    check_task(task, dataset, choices)
    if here:
        dataset.check()
    cache = {} if cache is None else cache
    spec = _data_spec(cfg, dataset, choices, here, cache)
    criterion = build_criterion(cfg)
    trainer = build(cfg, "trainer")
    model = _key("model", cfg, ("task", "dataset", "backbone", "loss", "distance"))
    if spec is None or model in cache:  # no shape here, or this model ran already: the optimiser on a head
        params = list(build(cfg, "loss.head", in_features=4, num_classes=3).parameters())
    else:
        params = list(_dry_forward(cfg, spec, task, criterion, choices).parameters())
        cache[model] = None
    optimizer = build(cfg, "optim.optimizer", params)
    build(cfg, "optim.scheduler", optimizer, total_steps=trainer.epochs)
    build(cfg, "tracker")


def _data_spec(cfg: DictConfig, dataset: Dataset, choices: dict[str, str], here: bool,
               cache: dict[str, DataSpec | None]) -> DataSpec | None:
    """The dataset's spec (cached by its config): `spec()` where it has one, else from loading it here."""
    key = _key("data", cfg, ("dataset",))
    if key not in cache:
        name = choices.get("dataset", "?")
        if hasattr(dataset, "spec"):
            cache[key] = dataset.spec() if here or not getattr(dataset, "spec_reads_files", True) else None
        elif not here:
            cache[key] = None
        else:
            try:
                splits = dataset.load()
            except LossbenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever a dataset raises, a run would have failed on it
                raise LossbenchError(f"dataset={name}: cannot load it: {type(exc).__name__}: "
                                     f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
            check_splits(splits, name, getattr(dataset, "kind", "?"))
            cache[key] = DataSpec.of(splits)
    return cache[key]


def _key(kind: str, cfg: DictConfig, paths: tuple[str, ...]) -> str:
    """A cache key: `kind` and the resolved config nodes at `paths`."""
    nodes = {path: OmegaConf.to_container(cfg[path], resolve=True) if isinstance(cfg[path], DictConfig) else cfg[path]
             for path in paths if path in cfg}
    return kind + ":" + json.dumps(nodes, sort_keys=True, default=str)


def _dry_forward(cfg: DictConfig, spec: DataSpec, task: Task, criterion: Criterion,
                 choices: dict[str, str]) -> torch.nn.Module:
    """The model built for this data, and its criterion on the model's outputs for two examples."""
    where = f"backbone={choices.get('backbone')} with dataset={choices.get('dataset')} (inputs {spec.input_shape})"
    try:
        model = build_model(cfg, spec)
        with torch.no_grad():
            model.eval()
            inputs, target = task.batch(spec.sample_x, spec.sample_y)
            criterion(model(inputs).float(), target)
    except LossbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - a shape or setting error the first step would have hit
        raise LossbenchError(f"{where}: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"
                             ) from None
    return model


def check_task(task: Task, dataset: Dataset, choices: dict[str, str]) -> None:
    """The task must accept the dataset's kind of data; the message names the tasks that would."""
    if task.accepts(dataset):
        return
    kind = getattr(dataset, "kind", "?")
    takers = [option for option in group_options("task") if option_task(option).data_kind == kind]
    hint = f"; add {' or '.join(f'task={t}' for t in takers)}" if takers else ""
    raise LossbenchError(f"dataset={choices.get('dataset')} gives {kind} data, which task={choices.get('task')} "
                         f"does not take (it takes {task.data_kind}){hint}")


def build_model(cfg: DictConfig, splits: Splits | DataSpec) -> Classifier:
    """Backbone + head for data of this shape. The backbone's init depends on the seed only, never on the
    head, so every head of one seed starts from the same features."""
    seed = int(cfg.seed)
    torch.manual_seed(seed)
    backbone = build(cfg, "backbone", input_shape=splits.input_shape, vocab_size=splits.vocab_size)
    torch.manual_seed(derived_seed(seed, "head"))
    head = build(cfg, "loss.head", in_features=backbone.out_features, num_classes=splits.num_classes)
    if getattr(backbone, "tie_embeddings", False):
        backbone.tie(head)
    return Classifier(backbone, head)
