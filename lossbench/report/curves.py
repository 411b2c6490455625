"""Line figures: learning curves of a group (mean over seeds, band = ± std over seeds, named in the legend)
and a metric against a config value (error bars = std over seeds)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
from matplotlib.ticker import MaxNLocator

from lossbench.report.aggregate import GroupTable, Metric
from lossbench.report.palette import Palette
from lossbench.report.plotting import Figure, band_handle, legend_outside, plt, save, variant_handles


def curve_figure(table: GroupTable, history: pd.DataFrame, column: str, label: str, base: Path,
                 palette: Palette) -> Figure:
    """`column` from the history over epochs (steps for language models), averaged over the seeds of each
    cell; coloured variants with a ± std band, the others as thin grey lines without one."""
    x = table.task.report.curve_x
    name = f"{label} over training"
    stats, why = curve_stats(table, history, column)
    if stats is None:
        return Figure(name, note=f"not drawn: {why}")
    variants = list(dict.fromkeys(stats.index.get_level_values("variant")))
    fig, ax = plt.subplots(figsize=(7.5, 4.2), layout="constrained")
    for v in sorted(variants, key=palette.highlighted):  # grey first, coloured on top
        own = stats.loc[v]
        if palette.highlighted(v):
            ax.plot(own.index, own["mean"], lw=1.3, color=palette.colour(v), zorder=3)
            spread = own["std"].fillna(0.0)
            ax.fill_between(own.index, own["mean"] - spread, own["mean"] + spread, alpha=0.15, color=palette.colour(v),
                            lw=0, zorder=2)
        else:
            ax.plot(own.index, own["mean"], lw=0.7, color=palette.colour(v), alpha=0.7, zorder=1)
    ax.set(xlabel=x, ylabel=label, title=table.title)
    if x == "epoch":
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    handles = variant_handles(variants, palette)
    if any(palette.highlighted(v) for v in variants):
        handles.append(band_handle("band: ± std over seeds"))
    legend_outside(fig, handles)
    return Figure(name, save(fig, base))


def curve_stats(table: GroupTable, history: pd.DataFrame, column: str) -> tuple[pd.DataFrame | None, str]:
    """`column`'s mean and std over the seeds of each cell per (variant, x) of the group's completed runs (the
    figure's lines and bands, and the HTML page's); None and why where there is nothing to draw."""
    x = table.task.report.curve_x
    if history.empty or column not in history or x not in history:
        return None, f"the history has no {column}"
    curves = history[["run_id", x, column]].merge(table.completed[["run_id", "variant"]], on="run_id").dropna()
    if curves.empty:
        return None, f"no history rows with {column} for this group's runs"
    return curves.groupby(["variant", x])[column].agg(["mean", "std"]), ""


def sweep_figure(stats: pd.DataFrame, x: str, metric: Metric, base: Path) -> dict[str, Path]:
    """`metric` against the values of a config path, one line per variant, error bars = std over seeds."""
    fig, ax = plt.subplots(figsize=(7, 4), layout="constrained")
    xs = list(dict.fromkeys(stats.index.get_level_values("x")))
    lines = []
    for variant in dict.fromkeys(stats.index.get_level_values("variant")):
        rows = stats.loc[variant].reindex(xs)
        lines.append(ax.errorbar(range(len(xs)), rows["mean"], yerr=rows["std"].fillna(0), marker="o", capsize=3,
                                 label=variant))
    ax.set_xticks(range(len(xs)), xs)
    ax.set(xlabel=x, ylabel=metric.title, title=f"{metric.title} vs {x} (mean ± std over seeds)")
    legend_outside(fig, lines)
    return save(fig, base)
