"""The report's unit: a cell, the runs whose effective configs differ only by seed.

Every row carries `cell_id` (identity.cell_id: its identity keys without the seed). The report pools
runs of one cell only: within a report group, cells that share a variant label are kept apart and
labelled by the config keys in which they differ, e.g. `ce (optim.optimizer.lr=0.01)`, or by the
config choice that explains them (`ce (optim=sgd)`). Rows of one cell and seed that are several runs
(files of schema versions before 3, whose ids still hashed measurement settings such as the tracker)
count once: the completed, most recently finished one is kept.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from lossbench.identity import CHOICE_AXES, REPLICATE_KEYS, hash_id, identity_config
from lossbench.statuses import RunStatus

MAX_KEYS = 3  # differing keys named in a label; more are counted


@dataclass
class Cells:
    """Rows with `variant` replaced by their cell's label (`variant_name` keeps the plain label), and the
    duplicate rows of one cell and seed that were left out."""

    runs: pd.DataFrame
    dropped: pd.DataFrame = field(default_factory=pd.DataFrame)


def _leaves(node: Any, path: str = "") -> dict[str, str]:
    if isinstance(node, dict) and node:
        out: dict[str, str] = {}
        for key, value in node.items():
            out.update(_leaves(value, f"{path}.{key}" if path else str(key)))
        return out
    return {path: json.dumps(node) if isinstance(node, (list, dict)) or node is None else str(node)}


def _config_leaves(config_json: str, ignore: tuple[str, ...]) -> dict[str, str]:
    config = identity_config(json.loads(config_json), (*REPLICATE_KEYS, *ignore))
    return _leaves(config)


def _labels(variant: str, cells: pd.DataFrame, leaves: dict[str, dict[str, str]]) -> dict[str, str]:
    """Cell id -> `variant (k=v, ...)`, naming what tells each cell from the others: a config choice that
    differs (`optim=sgd`) stands for the keys under it, except those that differ between cells with the
    same choice. Labels that would still coincide (keys cut at MAX_KEYS) get the cell id's prefix."""
    paths = sorted({k for d in leaves.values() for k in d})
    differing = [p for p in paths if len({d.get(p) for d in leaves.values()}) > 1]
    axes = [a for a in CHOICE_AXES if a in cells and cells[a].nunique(dropna=False) > 1]
    choice = {row.cell_key: {a: str(getattr(row, a)) for a in axes} for row in cells.itertuples()}
    labels = {}
    for cell, own in leaves.items():
        parts = [f"{a}={choice[cell][a]}" for a in axes]
        for path in differing:
            axis = path.split(".", 1)[0]
            peers = [c for c in leaves if axis not in axes or choice[c][axis] == choice[cell][axis]]
            if len({leaves[c].get(path) for c in peers}) > 1:
                parts.append(f"{path}={own.get(path, 'absent')}")
        shown = parts[:MAX_KEYS] + ([f"+{len(parts) - MAX_KEYS} more"] if len(parts) > MAX_KEYS else [])
        labels[cell] = f"{variant} ({', '.join(shown)})"
    repeated = {label for label in labels.values() if list(labels.values()).count(label) > 1}
    return {c: f"{label} [{c[:6]}]" if label in repeated else label for c, label in labels.items()}


def label_cells(runs: pd.DataFrame, group_by: list[str], ignore: tuple[str, ...] = ()) -> Cells:
    """Cells of `runs` within each group of `group_by`, labelled where a variant holds several; config
    paths in `ignore` (a --x axis) are not part of a cell here."""
    if runs.empty:
        return Cells(runs.assign(variant_name=runs.get("variant")), runs)
    leaves = runs["config_json"].map(lambda text: _config_leaves(text, ignore))
    key = runs["cell_id"] if not ignore else leaves.map(lambda d: hash_id(d))
    runs = runs.assign(cell_key=key.values, variant_name=runs["variant"])
    runs, dropped = _deduplicate(runs)
    leaves = leaves.loc[runs.index]
    labels = runs["variant"].copy()
    for _, group in runs.groupby([*group_by, "variant"], sort=False, dropna=False):
        cells = group.drop_duplicates("cell_key")
        if len(cells) < 2:
            continue
        name = str(cells["variant"].iloc[0])
        named = _labels(name, cells, {cell: leaves[idx] for idx, cell in zip(cells.index, cells["cell_key"])})
        labels[group.index] = group["cell_key"].map(named)
    return Cells(runs.assign(variant=labels).drop(columns="cell_key"), dropped.drop(columns="cell_key"))


def _deduplicate(runs: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """One row per cell and seed, the completed, most recently finished one; and the rows left out."""
    order = runs.assign(_done=runs["status"].eq(RunStatus.COMPLETED), _end=runs["finished_at"].fillna(""))
    order = order.sort_values(["_done", "_end"], kind="stable")
    keep = ~order.duplicated(["variant_name", "cell_id", "seed"], keep="last")
    return runs.loc[order.index[keep]].sort_index(), runs.loc[order.index[~keep]]


def differing_keys(config_jsons: pd.Series) -> pd.Series:
    """Per row, the config keys (dotted paths; the seed left out) whose values differ between the rows given,
    with this row's value as text (`absent` where it has none): what tells its cell from the others."""
    leaves = config_jsons.map(lambda text: _config_leaves(text, ()))
    paths = sorted({k for d in leaves for k in d})
    differing = [p for p in paths if len({d.get(p) for d in leaves}) > 1]
    return leaves.map(lambda d: {p: d.get(p, "absent") for p in differing})
