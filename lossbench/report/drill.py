"""The data behind the HTML page's drill-down and interactive curves (one JSON object in the page):

- `runs`: every run of the results folder by id: its label (the cell's), seed, status, the table column
  it is counted in (statuses.tally: completed, diverged or failed), group (index into
  `groups`, or null for a run in no table), the config keys that tell its cell from the others in its group
  (cells.differing_keys), its error line, its values of the group's metrics and its learning curves;
- `groups`: per group its title, curve axis, the runs of each cell (every status), the metrics' titles, and
  the mean ± std curves per variant (curves.curve_stats: the numbers the PNG curves draw);
- `colours`: the report's palette (one colour per variant, grey beyond the highlighted ones).

Values are rounded to six significant digits and a curve is thinned to about MAX_POINTS points: they are for
looking (the tables' numbers come from page.py, at the CSV's precision).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd
from matplotlib.colors import to_hex

from lossbench.report.aggregate import GroupTable
from lossbench.report.catalogue import columns_of
from lossbench.report.cells import differing_keys
from lossbench.report.curves import curve_stats
from lossbench.report.page import ERROR_CHARS, GROUP_CURVES, Sources
from lossbench.statuses import tally

MAX_POINTS = 200  # per curve; a longer one keeps every k-th point and the last
CURVES = ("grad_norm_mean", "train_loss", "val_loss")  # drawn for a run besides its task's headline metric
NAMES = {"grad_norm_mean": "mean grad-norm"}  # curve titles of columns without a label in the catalogue


def rounded(value: Any) -> float | None:
    """A finite number at six significant digits; None for NaN, inf or no number."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return float(f"{number:.6g}") if math.isfinite(number) else None


def thinned(*series: list) -> list[list]:
    """A curve's aligned series (x, y, ...) at most MAX_POINTS + 1 points long: every k-th and the last; rounded."""
    n = len(series[0])
    step = max(1, math.ceil(n / MAX_POINTS))
    keep = list(range(0, n, step)) + ([n - 1] if n and (n - 1) % step else [])
    return [[rounded(values[i]) for i in keep] for values in series]


def run_curves(history: pd.DataFrame, run_ids: pd.Series, x: str, columns: list[str]) -> dict[str, dict]:
    """Per run id, its curves of `columns` over `x` (each [xs, ys], NaN points dropped)."""
    wanted = [c for c in dict.fromkeys(columns) if c in history and c != x]
    if history.empty or x not in history or not wanted:
        return {}
    rows = history[history.run_id.isin(set(run_ids))].sort_values(["run_id", x])
    out: dict[str, dict] = {}
    for rid, own in rows.groupby("run_id", sort=False):
        curves = {}
        for c in wanted:
            points = own[[x, c]].dropna()
            if len(points):
                curves[c] = thinned(points[x].tolist(), points[c].tolist())
        out[str(rid)] = curves
    return out


def _error(value: Any) -> str:
    return str(value).strip().splitlines()[0][:ERROR_CHARS] if isinstance(value, str) and value.strip() else ""


def run_entries(rows: pd.DataFrame, group: int | None, keys: pd.Series, metrics: list[str],
                curves: dict[str, dict]) -> dict[str, dict]:
    """The drill-down entry of each row."""
    out = {}
    for i, row in enumerate(rows.itertuples(index=False)):
        rid = str(row.run_id)
        out[rid] = {"variant": str(row.variant), "seed": int(row.seed), "status": str(row.status), "tally": tally(row.status),
                    "group": group,
                    "keys": keys.iloc[i], "error": _error(getattr(row, "error", None)),
                    "values": {m: rounded(getattr(row, m)) for m in metrics if rounded(getattr(row, m)) is not None},
                    "curves": curves.get(rid, {})}
    return out


def group_entry(table: GroupTable, history: pd.DataFrame) -> dict[str, Any]:
    """A group's cells (variant -> run ids), its metrics' titles and its mean ± std curves per variant."""
    view, catalogue = table.task.report, columns_of(table.task)
    charts = []
    for column in GROUP_CURVES:
        column = view.headline if column == "headline" else column
        stats, why = curve_stats(table, history, column)
        means = {}
        for v, own in (() if stats is None else stats.groupby(level="variant")):
            own = own.droplevel("variant")
            means[str(v)] = thinned(list(own.index), own["mean"].tolist(), own["std"].tolist())
        charts.append({"column": column, "title": f"{_title(column, catalogue)} over training", "means": means,
                       "note": why})
    cells = {str(v): [str(r) for r in ids] for v, ids in table.rows.groupby("variant").run_id}
    return {"title": table.title, "x": view.curve_x, "cells": cells, "baseline": table.baseline,
            "metrics": {m.name: m.title for m in table.metrics}, "charts": charts}


def payload(sources: Sources) -> dict[str, Any]:
    """The page's data: every run of the results folder, every group, the palette."""
    runs: dict[str, dict] = {}
    groups = []
    for g, table in enumerate(sources.tables):
        view = table.task.report
        rows = table.rows
        curves = run_curves(sources.history, rows.run_id, view.curve_x, [view.headline, *CURVES])
        runs.update(run_entries(rows, g, differing_keys(rows.config_json), [m.name for m in table.metrics],
                                curves))
        groups.append(group_entry(table, sources.history))
    rest = sources.runs[~sources.runs.run_id.isin(runs)]
    if len(rest):
        x = "epoch" if "epoch" in sources.history and sources.history["epoch"].notna().any() else "step"
        curves = run_curves(sources.history, rest.run_id, x, [*CURVES, "val_acc", "val_nll"])
        runs.update(run_entries(rest, None, differing_keys(rest.config_json), [], curves))
    palette = sources.palette
    variants = {str(v) for t in sources.tables for v in t.rows.variant}
    return {"runs": runs, "groups": groups, "colours": {v: to_hex(palette.colour(v)) for v in sorted(variants)},
            "highlighted": [v for v in palette.colours if v in variants], "titles": curve_titles(sources.tables)}


def _title(column: str, catalogue: dict) -> str:
    found = catalogue.get(column)
    return NAMES.get(column) or (found.title if found is not None else column.replace("_", " "))


def curve_titles(tables: list[GroupTable]) -> dict[str, str]:
    """Titles of the curves' columns (the catalogue's, else the name in words)."""
    titles = {c: _title(c, {}) for c in CURVES}
    for table in tables:
        catalogue = columns_of(table.task)
        titles.update({c: _title(c, catalogue) for c in (table.task.report.headline, *CURVES)})
    return titles
