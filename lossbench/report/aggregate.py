"""Aggregation over seeds: per group and variant, mean, std and counts of every metric; block ranks;
best values; metric-vs-config tables; Pareto fronts. Pure pandas on result rows, no files.

Only `completed` runs enter the numbers; failed and diverged runs are counted next to each row.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lossbench import LossbenchError
from lossbench.identity import variant_of_legacy
from lossbench.report.stats import Comparison, Standing, against_baseline, standing
from lossbench.schema import BLOCKS, Column
from lossbench.tasks.base import Task

Metric = Column


@dataclass
class GroupTable:
    """One (dataset, backbone, ...) group: per-variant mean, std and seed count of every metric, failure
    counts, per-seed values (for paired statistics), comparisons against the baseline, each ranked
    metric's standing (best, bold, ties, significance ranks) and block ranks."""

    task: type[Task]
    metrics: list[Metric]
    key: dict[str, str]
    mean: pd.DataFrame  # index: variant; columns: metrics
    std: pd.DataFrame
    n: pd.Series
    failed: pd.Series
    diverged: pd.Series
    values: dict[str, pd.DataFrame] = field(default_factory=dict)  # metric -> (seed x variant)
    baseline: str | None = None
    comparisons: dict[str, list[Comparison]] = field(default_factory=dict)  # metric -> vs baseline
    standings: dict[str, Standing] = field(default_factory=dict)  # ranked metrics only
    ranks: pd.DataFrame = field(default_factory=pd.DataFrame)  # index: variant; columns: blocks
    energy_sources: frozenset[str] = frozenset()  # cpu/gpu/ram sources of the rows' energy
    thread_counts: frozenset[int] = frozenset()  # torch threads the rows' runs used (the `threads` column)

    @property
    def slug(self) -> str:
        return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(v)) for v in self.key.values()) or "all"

    @property
    def title(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all runs"

    @property
    def modelled_energy(self) -> bool:
        """Whether any energy figure in this group is a model rather than a measurement."""
        return any(s.startswith("model:") for s in self.energy_sources)

    def ranked(self, metric: Metric) -> bool:
        """Ranked and bolded: has a direction and is not the checkpoint-selection score."""
        return metric.higher_is_better is not None and metric.name not in selection_columns(self.task)


def selection_columns(task: type[Task]) -> set[str]:
    """Columns computed on the split that chose the checkpoint: shown, never ranked (the validation
    score that selected the checkpoint, and perplexity derived from a selected NLL)."""
    chosen = {f"val_{task.selection}"}
    if task.selection == "nll":
        chosen.add("val_ppl")
    return chosen


def variant_of(runs: pd.DataFrame) -> pd.Series:
    """Each row's variant label: its `variant` column (schema 2), else derived from the loss,
    criterion and distance columns of older rows in the same format."""
    legacy = runs.apply(lambda row: variant_of_legacy(row.to_dict()), axis=1) if len(runs) else pd.Series(dtype=str)
    if "variant" not in runs:
        return legacy
    return runs["variant"].where(runs["variant"].notna(), legacy)


def aggregate(runs: pd.DataFrame, group_by: list[str], metrics: list[Metric], task: type[Task],
              baseline: str | None = "ce") -> list[GroupTable]:
    """Per group and variant: mean and sample std over seeds of every metric (completed runs only), paired
    comparisons against `baseline` and the standing of every ranked metric (stats.py)."""
    missing = [c for c in group_by if c not in runs.columns]
    if missing:
        raise LossbenchError(f"cannot group by '{missing[0]}'; columns include: dataset, backbone, optim, experiment")
    runs = runs.assign(variant=variant_of(runs))
    done = runs[runs.status == "completed"]
    if done.empty:
        counts = runs.status.value_counts().to_dict()
        raise LossbenchError(f"no completed runs to report ({', '.join(f'{v} {k}' for k, v in counts.items()) or 'none'})")
    names = [m.name for m in metrics]
    for name in names:
        done = done.assign(**{name: pd.to_numeric(done[name], errors="coerce")}) if name in done else done.assign(**{name: np.nan})
    if "head" in done:  # prototype geometry is defined for distance heads only: not applicable to linear heads
        linear = done["head"].eq("linear")
        for m in metrics:
            if m.distance_heads_only:
                done.loc[linear, m.name] = np.nan
    tables = []
    for key, group in done.groupby(group_by, sort=True) if group_by else [((), done)]:
        key = key if isinstance(key, tuple) else (key,)
        everything = runs.loc[(runs[group_by] == pd.Series(key, index=group_by)).all(axis=1)] if group_by else runs
        by_variant = group.groupby("variant")
        mean, std = by_variant[names].mean(), by_variant[names].std(ddof=1)
        status = everything.groupby("variant").status.value_counts().unstack(fill_value=0)
        n = by_variant.size()
        failed = status.get("failed", pd.Series(0, index=status.index)).reindex(n.index, fill_value=0)
        diverged = status.get("diverged", pd.Series(0, index=status.index)).reindex(n.index, fill_value=0)
        table = GroupTable(task, metrics, dict(zip(group_by, map(str, key))), mean, std, n, failed, diverged)
        table.values = {m: group.groupby(["seed", "variant"])[m].mean().unstack("variant") for m in names}
        table.baseline = baseline if baseline in mean.index else None
        if table.baseline is not None:
            table.comparisons = {m: against_baseline(table.values[m], table.baseline) for m in names}
        table.standings = {m.name: standing(table.values[m.name], bool(m.higher_is_better))
                           for m in metrics if table.ranked(m)}
        table.ranks = _block_ranks(table)
        sources = [c for c in ("cpu_energy_source", "gpu_energy_source", "ram_energy_source") if c in group]
        table.energy_sources = frozenset(s for c in sources for s in group[c].dropna().unique() if s != "none")
        if "threads" in group:
            table.thread_counts = frozenset(int(t) for t in group["threads"].dropna())
        tables.append(table)
    return tables


def _block_ranks(table: GroupTable) -> pd.DataFrame:
    """Rank of each variant per block: the mean over the block's ranked metrics of its significance rank
    (1 + variants significantly better), ranked again with ties sharing the lower rank (1 = best)."""
    ranks = {}
    for block in BLOCKS:
        per_metric = [pd.Series(table.standings[m.name].ranks, dtype=float) for m in table.metrics
                      if m.block == block and m.name in table.standings and table.standings[m.name].ranks]
        if per_metric:
            ranks[block] = pd.concat(per_metric, axis=1).mean(axis=1).rank(method="min")
    return pd.DataFrame(ranks, index=table.mean.index)


def best_variants(table: GroupTable, metric: Metric) -> set[str]:
    """The variant shown in bold: the best mean when it is significantly better than every other variant
    (Holm-corrected paired t-tests); none otherwise, or for metrics that are not ranked."""
    st = table.standings.get(metric.name)
    return {st.best} if st is not None and st.bold and st.best is not None else set()


def tied_with_best(table: GroupTable, metric: Metric) -> set[str]:
    """The best variant and the variants statistically tied with it (when the best is not bold)."""
    st = table.standings.get(metric.name)
    if st is None or st.best is None or st.bold:
        return set()
    return {st.best, *st.tied}


def config_value(config_json: str, path: str) -> str:
    """A dotted config path (e.g. backbone.widths) read from a row's stored config, as text."""
    node = json.loads(config_json)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise LossbenchError(f"config has no '{path}' (stopped at '{part}')")
        node = node[part]
    return json.dumps(node) if isinstance(node, (list, dict)) else str(node)


def sweep_table(runs: pd.DataFrame, x: str, metric: Metric, split: str | None = None) -> pd.DataFrame:
    """`metric` over the values of config path `x`, per variant (optionally split by another config
    path): rows = variant, columns = x values, cells = (mean, std, n) over seeds, completed runs only."""
    done = runs[runs.status == "completed"].copy()
    if done.empty:
        raise LossbenchError("no completed runs to report")
    done["variant"] = variant_of(done)
    if split:
        done["variant"] += " " + split.rsplit(".", 1)[-1] + "=" + done.config_json.map(lambda c: config_value(c, split))
    done["x"] = done.config_json.map(lambda c: config_value(c, x))
    stats = done.groupby(["variant", "x"])[metric.name].agg(["mean", "std", "count"])
    order = sorted(stats.index.get_level_values("x").unique(), key=_numeric_key)
    return stats.reindex(pd.MultiIndex.from_product([stats.index.levels[0], order], names=["variant", "x"]))


def _numeric_key(text: str) -> tuple[float, str]:
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    return (float(numbers[0]) if numbers else math.inf, text)


def group_runs(runs: pd.DataFrame, table: GroupTable) -> pd.DataFrame:
    """The completed rows of one group, with their variant."""
    runs = runs.assign(variant=variant_of(runs))
    mask = runs.status.eq("completed")
    for k, v in table.key.items():
        mask &= runs[k].astype(str).eq(v)
    return runs[mask]


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points not dominated when minimising x and maximising y, sorted by x."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best, keep = -math.inf, []
    for idx, row in ordered.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return ordered.loc[keep]
