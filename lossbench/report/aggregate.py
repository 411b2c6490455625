"""Aggregation over seeds: per group and cell, mean, std and counts of every metric; block ranks;
best values; metric-vs-config tables; Pareto fronts. Pure pandas on result rows, no files.

The rows of a table are cells (cells.py): runs that differ only by seed, labelled by their variant
and, where one variant holds several cells in a group, by the keys in which they differ. Only
`completed` runs enter the numbers; every other row is counted next to its own cell, as diverged or as
failed (raised, or its job ended by the cluster: statuses.tally).
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from lossbench import LossbenchError
from lossbench.report.cells import label_cells
from lossbench.report.stats import Comparison, Omnibus, Standing, against_baseline, omnibus_test, standing
from lossbench.schema import BLOCKS, Column
from lossbench.statuses import UNFINISHED, RunStatus, tally
from lossbench.tasks.base import Task

Metric = Column


@dataclass
class GroupTable:
    """One (dataset, backbone, ...) group: per-variant mean, std and seed count of every metric, failure
    counts, per-seed values (for paired statistics), each metric's omnibus test over the variants,
    comparisons against the baseline, each ranked metric's standing (best, bold, ties, mean ranks over
    seeds) and block ranks (stats.py)."""

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
    omnibus: dict[str, Omnibus] = field(default_factory=dict)  # metric -> RM-ANOVA over the variants, seeds as blocks
    comparisons: dict[str, list[Comparison]] = field(default_factory=dict)  # metric -> vs baseline
    standings: dict[str, Standing] = field(default_factory=dict)  # ranked metrics only
    ranks: pd.DataFrame = field(default_factory=pd.DataFrame)  # index: variant; columns: blocks (mean ranks)
    energy_sources: frozenset[str] = frozenset()  # cpu/gpu/ram sources of the rows' energy
    thread_counts: frozenset[int] = frozenset()  # torch threads the rows' runs used (the `threads` column)
    countries: frozenset[str] = frozenset()  # grid intensities the emissions were computed with
    split: dict[str, list[str]] = field(default_factory=dict)  # variant -> its cells' labels, where several
    rows: pd.DataFrame = field(default_factory=pd.DataFrame)  # the group's rows, every status, cell labels in `variant`
    duplicates: int = 0  # rows left out: another row holds their cell and seed (cells.py)
    unfinished: dict[str, dict[str, int]] = field(default_factory=dict)  # cell without a completed run -> statuses
    ended: dict[str, int] = field(default_factory=dict)  # cluster states counted as failed beside completed runs

    @property
    def slug(self) -> str:
        return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(v)) for v in self.key.values()) or "all"

    @property
    def title(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all runs"

    @property
    def completed(self) -> pd.DataFrame:
        """The group's completed rows, with their cell labels."""
        return self.rows[self.rows.status.eq(RunStatus.COMPLETED)]

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
    return {f"val_{score}" for score in (task.selection, *task.selection_derived)}


def aggregate(runs: pd.DataFrame, group_by: list[str], metrics: list[Metric], task: type[Task],
              baseline: str | None = "ce") -> list[GroupTable]:
    """Per group and cell (cells.py): mean and sample std over seeds of every metric (completed runs only),
    paired comparisons against `baseline` and the standing of every ranked metric (stats.py)."""
    missing = [c for c in group_by if c not in runs.columns]
    if missing:
        raise LossbenchError(f"cannot group by '{missing[0]}'; columns include: dataset, backbone, optim, experiment")
    if not runs.status.eq(RunStatus.COMPLETED).any():
        counts = runs.status.value_counts().to_dict()
        raise LossbenchError(f"no completed runs to report ({', '.join(f'{v} {k}' for k, v in counts.items()) or 'none'})")
    cells = label_cells(runs, group_by)
    runs = cells.runs.assign(**{m.name: pd.to_numeric(cells.runs[m.name], errors="coerce") for m in metrics})
    linear = runs["head"].eq("linear")  # prototype geometry is defined for distance heads only
    for m in metrics:
        if m.distance_heads_only:
            runs.loc[linear, m.name] = np.nan
    dropped = cells.dropped.groupby(group_by).size() if group_by and len(cells.dropped) else pd.Series(dtype=int)
    tables = []
    for key, everything in runs.groupby(group_by, sort=True) if group_by else [((), runs)]:
        key = key if isinstance(key, tuple) else (key,)
        group = everything[everything.status.eq(RunStatus.COMPLETED)]
        if group.empty:
            continue
        table = _group_table(task, metrics, dict(zip(group_by, map(str, key))), group, everything, baseline)
        table.duplicates = int(dropped.get(key if len(key) > 1 else key[0], 0)) if group_by else len(cells.dropped)
        tables.append(table)
    return tables


def _group_table(task: type[Task], metrics: list[Metric], key: dict[str, str], group: pd.DataFrame,
                 everything: pd.DataFrame, baseline: str | None) -> GroupTable:
    """One group's table from its completed rows (`group`) and all its rows (`everything`)."""
    names = [m.name for m in metrics]
    by_cell = group.groupby("variant")
    mean, std, n = by_cell[names].mean(), by_cell[names].std(ddof=1), by_cell.size()
    status = everything.groupby("variant").status.value_counts().unstack(fill_value=0)
    counts = status.reindex(n.index, fill_value=0)  # the cells with a completed run: rows per status
    by_tally = counts.T.groupby(counts.columns.map(tally)).sum().T  # completed / diverged / failed
    failed, diverged = (by_tally.get(s.value, pd.Series(0, index=n.index)) for s in (RunStatus.FAILED, RunStatus.DIVERGED))
    table = GroupTable(task, metrics, key, mean, std, n, failed, diverged, rows=everything)
    labels = everything.groupby("variant_name")["variant"].unique()
    table.split = {str(v): sorted(cells) for v, cells in labels.items() if len(cells) > 1}
    table.unfinished = {v: status.loc[v][status.loc[v] > 0].to_dict() for v in sorted(set(status.index) - set(n.index))}
    ended = counts[[c for c in counts.columns if c in {s.value for s in UNFINISHED}]].sum()
    table.ended = {str(s): int(count) for s, count in ended.items() if count}
    table.values = {m: group.groupby(["seed", "variant"])[m].mean().unstack("variant") for m in names}
    table.baseline = baseline if baseline in mean.index else None
    table.omnibus = {m: omnibus_test(table.values[m]) for m in names}
    if table.baseline is not None and len(mean.index) > 1:
        table.comparisons = {m: against_baseline(table.values[m], table.baseline) for m in names}
    table.standings = {m.name: standing(table.values[m.name], bool(m.higher_is_better), table.omnibus[m.name])
                       for m in metrics if table.ranked(m)}
    table.ranks = _block_ranks(table)
    sources = ("cpu_energy_source", "gpu_energy_source", "ram_energy_source")
    table.energy_sources = frozenset(s for c in sources for s in group[c].dropna().unique() if s != "none")
    table.thread_counts = frozenset(int(t) for t in group["threads"].dropna())
    table.countries = frozenset(group.loc[group["energy_kwh"].notna(), "country_iso_code"].dropna())
    return table


def _block_ranks(table: GroupTable) -> pd.DataFrame:
    """Rank of each variant per block: its mean rank over seeds (1 = best; Friedman's mean rank), averaged
    over the block's ranked metrics on which it has values. Not re-ranked: the number is the mean itself."""
    ranks = {}
    for block in BLOCKS:
        per_metric = [pd.Series(table.standings[m.name].mean_ranks, dtype=float) for m in table.metrics
                      if m.block == block and m.name in table.standings and table.standings[m.name].mean_ranks]
        if per_metric:
            ranks[block] = pd.concat(per_metric, axis=1).mean(axis=1)
    return pd.DataFrame(ranks, index=table.mean.index)


def best_variants(table: GroupTable, metric: Metric) -> set[str]:
    """The variant shown in bold: the best mean when every other variant is declared significantly worse
    (omnibus, then paired t against the best, Holm over V - 1); none otherwise, for a lone variant, or for
    metrics that are not ranked."""
    st = table.standings.get(metric.name)
    return {st.best} if st is not None and st.bold and st.best is not None and st.variants > 1 else set()


def tied_with_best(table: GroupTable, metric: Metric) -> set[str]:
    """The best variant and the variants not declared worse than it (when the best is not bold); none for
    a lone variant."""
    st = table.standings.get(metric.name)
    if st is None or st.best is None or st.bold or st.variants < 2:
        return set()
    return {st.best, *st.tied}


def config_value(config_json: str, path: str, option: str = "--x") -> str:
    """A dotted config path (e.g. backbone.widths) read from a row's stored config, as text."""
    node = json.loads(config_json)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            keys = ", ".join(sorted(node)) if isinstance(node, dict) else "(none: a value)"
            raise LossbenchError(f"{option} {path}: the runs' config has no '{path}' (stopped at '{part}'); "
                                 f"valid there: {keys}")
        node = node[part]
    return json.dumps(node) if isinstance(node, (list, dict)) else str(node)


def sweep_table(runs: pd.DataFrame, x: str, metric: Metric, split: str | None = None) -> pd.DataFrame:
    """`metric` over the values of config path `x`, per variant (optionally split by another config
    path): rows = variant, columns = x values, cells = (mean, std, n) over seeds, completed runs only."""
    done = runs[runs.status.eq(RunStatus.COMPLETED)]
    if done.empty:
        raise LossbenchError("no completed runs to report")
    done = label_cells(done, [], tuple(p for p in (x, split) if p)).runs
    if split:
        done["variant"] += " " + split.rsplit(".", 1)[-1] + "=" + done.config_json.map(lambda c: config_value(c, split, "--split"))
    done["x"] = done.config_json.map(lambda c: config_value(c, x))
    stats = done.groupby(["variant", "x"])[metric.name].agg(["mean", "std", "count"])
    order = sorted(stats.index.get_level_values("x").unique(), key=_numeric_key)
    return stats.reindex(pd.MultiIndex.from_product([stats.index.levels[0], order], names=["variant", "x"]))


def _numeric_key(text: str) -> tuple[float, str]:
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    return (float(numbers[0]) if numbers else math.inf, text)


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points not dominated when minimising x and maximising y, sorted by x."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best, keep = -math.inf, []
    for idx, row in ordered.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return ordered.loc[keep]
