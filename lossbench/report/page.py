"""The HTML page's model (html.py renders it): per group the three blocks, the difference table, figures,
measurement notes and the runs that did not complete; the rankings, the metric-vs-config table and the tuning
tables. Every number and mark comes from the report's GroupTables and views through formats.py's functions
(the text of the markdown, the values of the CSV): nothing is recomputed here. Cells carry the keys of the
runs behind them (`drill`: group index, variant, metric), which the page's script looks up in drill.py's data.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from lossbench.report.aggregate import GroupTable, Metric
from lossbench.report.captions import caption, family_note
from lossbench.report.formats import (
    blocks_of,
    cell_text,
    column_exponent,
    comparison_rows,
    delta,
    header,
    omnibus_text,
    p_text,
    rank_text,
    seeds_text,
    significant,
    sweep_cells,
)
from lossbench.report.tuning import caption as tuning_caption
from lossbench.statuses import RunStatus

if TYPE_CHECKING:
    from lossbench.report.across import RankingView
    from lossbench.report.palette import Palette
    from lossbench.report.plotting import Figure

Embed = Callable[[Path], dict[str, Any]]  # a figure file -> its <img> attributes (html.embedded: data URI, size)

CURVE_SUFFIX = " over training"  # curves.curve_figure's names: the page draws these curves itself, interactive
GROUP_CURVES = ("headline", "grad_norm_mean")  # those curves (figures.group_figures), drawn from drill.py's data
ERROR_CHARS = 300  # an error line longer than this is cut (the full traceback: the run's error_log)


@dataclass
class Sweep:
    """The --x table: the config path, its metric, the (variant, x) statistics and the figure's files."""

    x: str
    metric: Metric
    stats: pd.DataFrame
    paths: dict[str, Path]


@dataclass
class Sources:
    """Everything `build_report` computed that the page shows; `figures`: each table's, in group_figures' order."""

    results_dir: Path
    runs: pd.DataFrame
    tables: list[GroupTable]
    figures: list[list[Figure]]
    history: pd.DataFrame
    palette: Palette
    rankings: list[RankingView] = field(default_factory=list)
    sweep: Sweep | None = None
    tuning: list[tuple[dict[str, Any], pd.DataFrame]] = field(default_factory=list)


@dataclass
class Cell:
    """One table cell: its text, mark (bold / tie), value to sort by, and the runs behind it (`drill`)."""

    text: str
    mark: str | None = None
    sort: float | str | None = None
    drill: dict[str, str] | None = None
    title: str = ""


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def block_view(table: GroupTable, g: int, block: str, metrics: list[Metric]) -> dict[str, Any]:
    """One block's table, as formats.to_markdown writes it; the ANOVA p row as its footer."""
    exps = {m.name: column_exponent(table.mean[m.name]) for m in metrics}
    head = ["variant", "n"] + [header(m, exps[m.name], False) for m in metrics] + ["rank", "failed", "diverged"]
    rows = []
    for v in table.mean.index:
        key = {"g": str(g), "v": str(v)}
        cells = [Cell(str(v), sort=str(v)), Cell(str(table.n[v]), sort=int(table.n[v]), drill=key,
                                                 title="completed runs: click for them")]
        for m in metrics:
            text, marked = cell_text(table, v, m, exps[m.name])
            mean, std = _number(table.mean.at[v, m.name]), _number(table.std.at[v, m.name])
            exact = "" if mean is None else f"mean {mean:.6g}" + ("" if std is None else f", std {std:.6g}")
            cells.append(Cell(text, marked, mean, {**key, "m": m.name}, exact and f"{exact}: click for the runs"))
        rank = rank_text(table, v, block)
        cells.append(Cell(rank or "–", sort=float(rank) if rank else None))
        for status, counts in (("failed", table.failed), ("diverged", table.diverged)):
            cells.append(Cell(str(counts[v]), sort=int(counts[v]), drill={**key, "s": status}))
        rows.append(cells)
    foot = []
    if len(table.mean.index) > 1 and any(omnibus_text(table, m) != "–" for m in metrics):
        foot = ["ANOVA p", ""] + [omnibus_text(table, m) for m in metrics] + ["", "", ""]
    return {"name": block, "head": head, "rows": rows, "foot": foot, "numeric": [False] + [True] * (len(head) - 1)}


def comparison_view(table: GroupTable, g: int, metrics: list[Metric]) -> dict[str, Any]:
    """The difference table against the baseline (formats.comparison_markdown's cells), or why there is none."""
    if table.baseline is None:
        return {"note": "No comparison: the baseline variant is not in this group."}
    found = comparison_rows(table, metrics)
    if not found:
        return {"note": f"No comparison: {table.baseline} is the only variant." if len(table.mean.index) < 2 else ""}
    head = ["metric", "variant", "pairs", "Δ", "95 % CI", "p (t, Holm)", "p (Wilcoxon, Holm)", "seeds for 80 % power"]
    rows = []
    for m, c, exp in found:
        d, low, high = delta(c, exp)
        key = {"g": str(g), "v": c.variant, "m": m.name, "b": table.baseline}
        rows.append([Cell(header(m, exp, False)), Cell(c.variant, drill=key), Cell(str(c.n), sort=c.n, drill=key),
                     Cell(d, "bold" if significant(table, m, c) else None, _number(c.mean_diff), key,
                          "paired by seed: click for both variants' runs"),
                     Cell(f"[{low}, {high}]" if low else "–", sort=_number(c.ci_low)),
                     Cell(p_text(c.p_t_holm), sort=_number(c.p_t_holm)),
                     Cell(p_text(c.p_wilcoxon_holm), sort=_number(c.p_wilcoxon_holm)),
                     Cell(seeds_text(c), sort=_number(c.seeds_needed) if not math.isinf(c.seeds_needed) else 1e9)])
    return {"caption": f"Difference against {table.baseline} — {family_note(table)}", "head": head, "rows": rows,
            "numeric": [False, False] + [True] * 6}


def figure_view(name: str, paths: dict[str, Path], note: str, embed: Embed) -> dict[str, Any]:
    """A drawn figure (`embed` of its SVG: source and size) or the note on why it is not drawn."""
    return {"name": name, "note": note, **(embed(paths["svg"]) if "svg" in paths else {"src": None})}


def measurement(table: GroupTable) -> list[tuple[str, str]]:
    """Where the group's energy numbers come from, and the thread counts and grids of its runs."""
    items = [("energy sources", ", ".join(sorted(table.energy_sources)) or "none (no run tracked energy)"),
             ("torch threads", ", ".join(map(str, sorted(table.thread_counts))) or "not recorded")]
    if table.countries:
        items.append(("grid intensity of", ", ".join(sorted(table.countries))))
    return items


def run_rows(rows: pd.DataFrame, unfinished: bool = True) -> list[dict[str, Any]]:
    """Runs (those that did not complete, or all): id, label, seed, status and the first line of their error."""
    out = []
    rows = rows[~rows.status.eq(RunStatus.COMPLETED)] if unfinished else rows
    for row in rows.sort_values(["status", "variant", "seed"]).itertuples():
        error = getattr(row, "error", None)
        line = str(error).strip().splitlines()[0][:ERROR_CHARS] if isinstance(error, str) and error.strip() else ""
        out.append({"run": row.run_id, "variant": str(row.variant), "seed": row.seed, "status": row.status,
                    "error": line})
    return out


def group_view(table: GroupTable, g: int, figures: list[Figure], embed: Embed) -> dict[str, Any]:
    """One group's section."""
    return {"index": g, "title": table.title, "slug": f"g{g}-{table.slug}", "caption": caption(table),
            "blocks": [block_view(table, g, b, ms) for b, ms in blocks_of(table.metrics)],
            "comparison": comparison_view(table, g, table.metrics),
            "figures": [figure_view(f.name, f.paths, f.note, embed) for f in figures
                        if not f.name.endswith(CURVE_SUFFIX)],
            "charts": len(GROUP_CURVES),
            "measurement": measurement(table), "unfinished": run_rows(table.rows)}


def ranking_view(view: RankingView, tables: list[GroupTable], embed: Embed) -> dict[str, Any]:
    """A ranking across groups: its table (the markdown's cells), each `mean (rank)` cell linked to its runs."""
    datasets = list(view.tables)
    rows = []
    for cells in view.rows:
        variant, first = cells[0], len(cells) - len(datasets)
        row = [Cell(c, sort=_number(c.split(" ")[0])) for c in cells]
        row[0].sort = variant
        for j, d in enumerate(datasets):
            row[first + j].drill = {"g": str(tables.index(view.tables[d])), "v": variant}
        rows.append(row)
    figure = figure_view(view.figure.name, view.figure.paths, view.figure.note, embed) if view.figure else None
    return {"title": view.title, "note": view.note, "head": view.head, "rows": rows, "figure": figure,
            "numeric": [False] + [True] * (len(view.head) - 1)}


def sweep_view(sweep: Sweep, embed: Embed) -> dict[str, Any]:
    """A metric-vs-config table's section: its cells (formats.sweep_cells) and figure."""
    xs, cells = sweep_cells(sweep.stats, sweep.metric)
    rows = [[Cell(v, sort=v)] + [Cell(c, sort=_number(c.split(" ")[0])) for c in row] for v, row in cells.items()]
    figure = figure_view(f"{sweep.metric.title} vs {sweep.x}", sweep.paths, "", embed)
    return {"title": figure["name"], "caption": "mean ± std over seeds (n)", "head": ["variant", *xs], "rows": rows,
            "figure": figure, "numeric": [False] + [True] * len(xs)}


def tuning_view(protocol: dict[str, Any], table: pd.DataFrame) -> dict[str, Any]:
    """A tuning protocol's section: its table (tuning.py) and caption."""
    rows = [[Cell(str(v), sort=_number(v) if _number(v) is not None else str(v)) for v in row]
            for row in table.itertuples(index=False)]
    return {"title": f"Tuning (protocol {protocol['protocol']})", "caption": tuning_caption(protocol),
            "head": list(table.columns), "rows": rows, "numeric": [False] * len(table.columns)}


def page_model(sources: Sources, embed: Embed) -> dict[str, Any]:
    """Everything the template shows; `embed(path)` turns a figure file into what an <img> loads."""
    runs, tables = sources.runs, sources.tables
    counts = ", ".join(f"{v} {k}" for k, v in runs.status.value_counts().items())
    in_tables = {rid for t in tables for rid in t.rows.run_id}
    return {"source": str(sources.results_dir), "summary": f"{len(runs)} runs ({counts})",
            "groups": [group_view(t, g, f, embed) for g, (t, f) in enumerate(zip(tables, sources.figures))],
            "rankings": [ranking_view(v, tables, embed) for v in sources.rankings],
            "sweep": sweep_view(sources.sweep, embed) if sources.sweep is not None else None,
            "tuning": [tuning_view(p, t) for p, t in sources.tuning],
            "outside": run_rows(runs[~runs.run_id.isin(in_tables)], unfinished=False)}
