"""Run identity: the effective config of a run, its id, and the labels every row and report uses.

A run is a pure function of its effective config (DESIGN.md). The effective config is the resolved
config without output locations and composition-only defaults, with `distance: null` for heads that
have no distance (so `loss=ce` is the same run whatever `distance` says). `run_id` hashes it and
nothing else: every spelling of one effective config (`loss=focal`, `loss=ce loss/criterion=focal`)
gets the same id. The labels (`loss`, `criterion`, `distance`, `variant`) are read from the classes
the config names (their `name`), never from which yaml file was chosen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from hydra.utils import get_class
from omegaconf import DictConfig, OmegaConf

from lossbench import LossbenchError

# Keys that locate inputs and outputs, set machine resources, or only feed defaults into other keys
# (harmonic_n and harmonic_eps are resolved into loss.head.n and .eps): they never change what a run is.
NON_IDENTITY_KEYS = ("results_dir", "data_dir", "harmonic_n", "harmonic_eps", "threads", "save_model")
# Trainer settings that change how fast or how safely a run trains, not the function it computes (like
# `threads`, compile and channels_last may change the last bits of float results): a run's id, and so
# skip-if-done and resuming from a checkpoint, do not depend on them.
NON_IDENTITY_TRAINER_KEYS = ("compile", "channels_last", "checkpoint_every", "checkpoint_interval_s")
# Config groups whose choice names label a row (display only: the id never depends on them).
CHOICE_AXES = ("task", "dataset", "backbone", "optim")


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run the run it is: its id, its effective config, and the labels of its row."""

    run_id: str
    config: dict[str, Any]
    axes: dict[str, Any]

    @property
    def label(self) -> str:
        """`key=value` pairs of the axes, for log lines and summaries."""
        return " ".join(f"{k}={v}" for k, v in self.axes.items() if k not in ("experiment",))


def hash_id(identity: Mapping[str, Any]) -> str:
    """Stable 16-hex-digit SHA-256 prefix of a JSON-serialisable mapping (sorted keys)."""
    blob = json.dumps(identity, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]


def effective_config(cfg: DictConfig) -> dict[str, Any]:
    """The resolved config as plain data, with `distance: null` for heads without a distance."""
    data = OmegaConf.to_container(cfg, resolve=True)
    assert isinstance(data, dict)
    if "distance" not in data["loss"]["head"]:
        data["distance"] = None
    return data


def _named(node: Mapping[str, Any], path: str) -> Any:
    """The class a `_target_` node instantiates."""
    try:
        return get_class(node["_target_"])
    except Exception as exc:
        raise LossbenchError(f"{path}._target_: cannot import '{node.get('_target_')}' ({exc})") from None


def loss_labels(loss: Mapping[str, Any]) -> dict[str, str]:
    """head, loss, criterion, distance and variant labels of a loss node (= head x criterion).

    A linear head is labelled by its criterion (`ce`, `focal`); a distance head is `harmonic/<distance>`,
    with ` + <criterion>` when the criterion is not plain cross-entropy.
    """
    head = _named(loss["head"], "loss.head")
    criterion_node = loss["criterion"]
    criterion = _named(criterion_node, "loss.criterion").label(criterion_node)
    distance_node = loss["head"].get("distance")
    if distance_node is None:
        return {"head": head.name, "loss": criterion, "criterion": criterion, "distance": "none", "variant": criterion}
    distance = _named(distance_node, "loss.head.distance").name
    variant = f"{head.name}/{distance}" + ("" if criterion == "ce" else f" + {criterion}")
    return {"head": head.name, "loss": head.name, "criterion": criterion, "distance": distance, "variant": variant}


def run_identity(cfg: DictConfig, choices: Mapping[str, str], experiment: str | None = None) -> RunIdentity:
    """The identity of the run `cfg` configures: id from the effective config alone; axes from the
    config's classes (loss labels) and the group choices (dataset, backbone, ... names)."""
    data = effective_config(cfg)
    identity = {k: v for k, v in data.items() if k not in NON_IDENTITY_KEYS}
    if isinstance(identity.get("trainer"), dict):
        identity["trainer"] = {k: v for k, v in identity["trainer"].items() if k not in NON_IDENTITY_TRAINER_KEYS}
    axes: dict[str, Any] = {axis: choices.get(axis) for axis in CHOICE_AXES}
    axes.update(loss_labels(data["loss"]))
    axes.update(seed=data["seed"], experiment=experiment if experiment is not None else choices.get("experiment"))
    return RunIdentity(hash_id(identity), data, axes)


def variant_of_legacy(row: Mapping[str, Any]) -> str:
    """The variant label of a schema-1 row (written before rows carried `variant`): from its loss,
    distance and criterion columns, in the same format as `loss_labels`."""
    loss, distance = row.get("loss"), row.get("distance") or "none"
    criterion = row.get("criterion") or "ce"
    if distance == "none":
        return str(criterion if loss == "ce" else loss)
    return f"{loss}/{distance}" + ("" if criterion in ("ce", loss) else f" + {criterion}")
