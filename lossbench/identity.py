"""Run identity: the effective config of a run, its id, and the labels every row and report uses.

A run is a pure function of its effective config (docs/design.md). The effective config is the resolved
config, with `distance: null` for heads that have no distance (so `loss=ce` is the same run whatever
`distance` says); it is stored with every row. Every config key is declared identity or not, once, in
`KEYS`: `run_id` hashes the identity keys and nothing else, so every spelling of one effective config
(`loss=focal`, `loss=ce loss/criterion=focal`) gets the same id, and the same training with or without
energy tracking is one run. `cell_id` hashes them without the seed: the report's unit. The labels
(`loss`, `criterion`, `distance`, `variant`) are read from the classes the config names (their `name`),
never from which yaml file was chosen.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from omegaconf import DictConfig, OmegaConf

from lossbench.targets import locate


@dataclass(frozen=True)
class Key:
    """Whether a config key (and everything below it) is part of a run's identity, and why."""

    identity: bool
    why: str


# Every config key, classified once. A key path names the key and everything below it; the longest
# path that matches decides. Identity keys define the function a run computes (its data, model, loss,
# optimisation, and what is measured on it); the others say where files go, how fast or how safely it
# trains, how it is measured from outside, or only feed defaults into other keys. `seed` is identity
# and also the replicate key: runs that differ only in it are one cell, the report's unit. The groups
# whose every setting shapes the function (task, dataset, backbone, loss, optim) and the tracker, whose
# none does, are declared as a whole; root and trainer keys one by one.
# tests/test_identity.py fails when a key of any config option matches no path here.
KEYS: dict[str, Key] = {
    "task": Key(True, "what is learned and how it is scored"),
    "dataset": Key(True, "the data: generator, sizes, splits, augmentation"),
    "backbone": Key(True, "the model's features"),
    "loss": Key(True, "head, criterion and their settings: what a comparison is about"),
    "distance": Key(True, "the distance of a harmonic head (null for heads without one)"),
    "optim": Key(True, "optimizer and learning-rate schedule"),
    # the trainer mixes both kinds: each of its keys is declared on its own
    "trainer._target_": Key(True, "the training loop"),
    "trainer.epochs": Key(True, "how long it trains"),
    "trainer.steps": Key(True, "how long it trains"),
    "trainer.batch_size": Key(True, "the optimisation"),
    "trainer.grad_accum": Key(True, "the optimisation"),
    "trainer.grad_clip": Key(True, "the optimisation"),
    "trainer.precision": Key(True, "the arithmetic of the forward pass"),
    "trainer.eval_every": Key(True, "which checkpoints can be selected, and the history"),
    "trainer.checkpoint": Key(True, "which weights are evaluated"),
    "trainer.eval_test_each_epoch": Key(True, "the test curves, and the grokking epochs computed from them"),
    "trainer.spike_factor": Key(True, "defines the grad_spikes column"),
    "trainer.spike_window": Key(True, "defines the grad_spikes column"),
    "seed": Key(True, "the replicate: backbone init, data order, dropout"),
    "device": Key(True, "the configured device: CPU and CUDA compute different floats"),
    "probe_samples": Key(True, "how many test samples the probes use: changes the probe columns"),
    "results_dir": Key(False, "where results go"),
    "data_dir": Key(False, "where input files are; the dataset settings name the data"),
    "threads": Key(False, "machine resources: speed, not the function (the row records the count)"),
    "save_model": Key(False, "an extra output file"),
    "objective": Key(False, "what a tuning sweep reads from the run's row; the run computes the same"),
    "harmonic_n": Key(False, "a composition default, resolved into loss.head.n (which is identity)"),
    "harmonic_eps": Key(False, "a composition default, resolved into loss.head.eps (which is identity)"),
    "tracker": Key(False, "energy measurement from outside the training (counters, power models): the same "
                          "training with or without it is one run; the row records the tracker's settings"),
    "trainer.progress": Key(False, "presentation: a progress bar"),
    "trainer.eval_batch_size": Key(False, "evaluation chunking: the same scores, up to float summation order"),
    "trainer.compile": Key(False, "speed: the same function, last bits may differ"),
    "trainer.channels_last": Key(False, "speed: memory layout, last bits may differ"),
    "trainer.checkpoint_every": Key(False, "resilience: how often training state is saved"),
    "trainer.checkpoint_interval_s": Key(False, "resilience: how often training state is saved"),
}
REPLICATE_KEYS = ("seed",)
UNCLASSIFIED = Key(True, "not classified in identity.KEYS: kept, so unlike runs are never merged")
# Config groups whose choice names label a row (display only: the id never depends on them).
CHOICE_AXES = ("task", "dataset", "backbone", "optim")


def classify(path: str) -> Key:
    """The declaration of a dotted config path: its longest declared prefix (UNCLASSIFIED if none)."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        key = KEYS.get(".".join(parts[:end]))
        if key is not None:
            return key
    return UNCLASSIFIED


def identity_config(config: Mapping[str, Any], drop: tuple[str, ...] = ()) -> dict[str, Any]:
    """The identity keys of an effective config (`KEYS`), without the paths in `drop`."""

    def keep(node: Any, path: str) -> Any:
        if not isinstance(node, Mapping):
            return node
        out = {}
        for key, value in node.items():
            sub = f"{path}.{key}" if path else str(key)
            if sub not in drop and classify(sub).identity:
                out[key] = keep(value, sub)
        return out

    return keep(config, "")


def cell_id(config: Mapping[str, Any]) -> str:
    """The cell of a run: the hash of its identity keys without the replicate keys (the seed)."""
    return hash_id(identity_config(config, REPLICATE_KEYS))


@dataclass(frozen=True)
class RunIdentity:
    """What makes a run the run it is: its id, its effective config, and the labels of its row."""

    run_id: str
    config: dict[str, Any]
    axes: dict[str, Any]
    cell_id: str = ""

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
    return locate(str(node.get("_target_")), f"{path}._target_")


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
        return {"head": head.name, "loss": criterion, "criterion": criterion, "distance": "none",
                "variant": variant_label(head.name, "none", criterion)}
    distance = _named(distance_node, "loss.head.distance").name
    return {"head": head.name, "loss": head.name, "criterion": criterion, "distance": distance,
            "variant": variant_label(head.name, distance, criterion)}


def variant_label(head: str, distance: str, criterion: str) -> str:
    """The variant label, the report's row name: a head without distance by its criterion (`ce`, `focal`); a
    distance head `<head>/<distance>`, with ` + <criterion>` when the criterion is not plain cross-entropy."""
    if distance == "none":
        return criterion
    return f"{head}/{distance}" + ("" if criterion == "ce" else f" + {criterion}")


def seed_bound(cfg: DictConfig, path: str = "") -> tuple[str, ...]:
    """Config paths whose value is the run's seed by interpolation (`dataset.split_seed: ${seed}`, as the
    harmonic-loss experiments draw and split their data): they vary with the seed and are part of the
    replicate, so runs that differ only in them are one cell and the report pairs them by seed."""
    found: list[str] = []
    for key in cfg:
        sub = f"{path}.{key}" if path else str(key)
        if OmegaConf.is_interpolation(cfg, key):
            if str(cfg._get_node(key)._value()).replace(" ", "") == "${seed}":
                found.append(sub)
        elif isinstance(cfg[key], DictConfig):
            found += seed_bound(cfg[key], sub)
    return tuple(found)


def run_identity(cfg: DictConfig, choices: Mapping[str, str], experiment: str | None = None) -> RunIdentity:
    """The identity of the run `cfg` configures: id and cell from the identity keys of the effective config
    alone (the cell without the seed and the keys that follow it, `seed_bound`); axes from the config's
    classes (loss labels) and the group choices (dataset, backbone, ... names)."""
    data = effective_config(cfg)
    cell = hash_id(identity_config(data, REPLICATE_KEYS + seed_bound(cfg)))
    axes: dict[str, Any] = {axis: choices.get(axis) for axis in CHOICE_AXES}
    axes.update(loss_labels(data["loss"]))
    axes.update(seed=data["seed"], experiment=experiment if experiment is not None else choices.get("experiment"))
    return RunIdentity(hash_id(identity_config(data)), data, axes, cell)


def variant_of_legacy(row: Mapping[str, Any]) -> str:
    """The variant label of a schema-1 row (written before rows carried `variant`): from its loss,
    distance and criterion columns, through `variant_label` as new rows are."""
    loss, distance = str(row.get("loss")), row.get("distance") or "none"
    criterion = str(row.get("criterion") or "ce")
    if distance == "none":
        criterion = criterion if loss == "ce" else loss  # schema 1: a linear head goes by its loss unless that is ce
    elif criterion == loss:
        criterion = "ce"  # schema 1 could name a plain distance head's criterion after the head
    return variant_label(loss, distance, criterion)
