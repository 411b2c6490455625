"""Report figures of one group (matplotlib, PNG + PDF), each with its uncertainty and built for 40
variants: a forest plot per block of every variant's paired difference against the baseline with 95 % CIs
(the main figure), the headline metric vs energy from the table's own means (error bars: std over seeds)
with the Pareto front, a radar over the task's paper axes (drawn with three variants or more), and learning
curves (curves.py). Colours come from the report's palette (palette.py); axes of modelled energy say so.
A figure that cannot be drawn returns why, and index.md prints it.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from lossbench.report.aggregate import GroupTable, Metric, pareto_front
from lossbench.report.catalogue import columns_of
from lossbench.report.curves import curve_figure
from lossbench.report.formats import blocks_of, column_exponent, significant
from lossbench.report.palette import Palette
from lossbench.report.plotting import MAX_INCHES, Figure, legend_outside, plt, save, variant_handles

ROW_INCHES = 0.16  # one variant's row in the forest plot: 11.5 pt, above its 7 pt label
RADAR_MAX = 9  # variants drawn on a radar (the palette's coloured ones)


def _scaled(metric: Metric, exponent: int) -> str:
    scale = f"10^{exponent} " if exponent else ""
    unit = f"{scale}{metric.unit or ''}".strip()
    return f" [{unit}]" if unit else ""


def forest_figure(table: GroupTable, block: str, metrics: list[Metric], base: Path) -> Figure:
    """Difference against the baseline with its 95 % CI (paired t), one panel per ranked metric of the block,
    one row per variant; filled where declared significant (omnibus, then Holm over the V - 1)."""
    name = f"{block}: differences vs {table.baseline} (forest plot, 95 % CI)"
    metrics = [m for m in metrics if table.ranked(m) and any(c.n for c in table.comparisons.get(m.name, []))]
    if table.baseline is None or not metrics:
        reason = "the baseline is not in this group" if table.baseline is None else "no other variant to compare"
        return Figure(name, note=f"not drawn: {reason}")
    variants = [c.variant for c in table.comparisons[metrics[0].name]]
    rows_n = -(-len(metrics) // 6)  # at most six panels a row, rows filled evenly
    cols = -(-len(metrics) // rows_n)
    row = min(ROW_INCHES, 10.0 / (len(variants) * rows_n))
    label_pt = min(7.0, row * 72 * 0.7)
    longest = max(len(v) for v in variants)
    width = min(MAX_INCHES[0], max(5.0, 1.9 * cols + 0.0075 * label_pt * longest + 0.4))  # labels: 0.55 em a character
    title = (f"{table.title} - {block}: difference vs {table.baseline}, paired by seed; 95 % CI of the paired t-test; "
             "filled: declared significant (repeated-measures ANOVA over the variants, then paired t Holm-corrected "
             f"over the {len(variants)} comparisons with {table.baseline}, p < 0.05)")
    title = textwrap.fill(title, int(width * 15))
    height = rows_n * (row * len(variants) + 1.2) + 0.17 * (title.count("\n") + 1)
    fig, axes = plt.subplots(rows_n, cols, figsize=(width, height), layout="constrained", squeeze=False, sharey=True)
    for ax, m in zip(axes.flat, metrics):
        exp = column_exponent(table.mean[m.name])
        found = table.comparisons[m.name]
        diff = np.array([c.mean_diff for c in found]) / 10 ** exp
        low = np.array([c.mean_diff - c.ci_low for c in found]) / 10 ** exp
        high = np.array([c.ci_high - c.mean_diff for c in found]) / 10 ** exp
        filled = np.array([significant(table, m, c) for c in found], dtype=bool)
        rows = np.arange(len(found))
        for chosen, colour, face in ((filled, "C0", "C0"), (~filled, "0.45", "white")):  # one artist per style
            if chosen.any():
                ax.errorbar(diff[chosen], rows[chosen], xerr=np.nan_to_num([low[chosen], high[chosen]]), fmt="o",
                            ms=3.5, color=colour, mfc=face, capsize=2, lw=0.9)
        ax.axvline(0.0, color="black", lw=0.8)
        better = {True: "→ better", False: "← better"}[bool(m.higher_is_better)]
        modelled = " (modelled)" if m.energy_derived and table.modelled_energy else ""
        ax.set_title(f"{m.label or m.name}{modelled}\n{better}", fontsize=8)  # the unit is on the x axis
        ax.set_xlabel(f"Δ vs {table.baseline}{_scaled(m, exp)}", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(nbins=3))
        ax.tick_params(axis="x", labelsize=7)
        ax.tick_params(axis="y", labelsize=label_pt)
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(range(len(variants)), variants)
    axes[0, 0].set_ylim(len(variants) - 0.5, -0.5)
    fig.suptitle(title, fontsize=8)
    return Figure(name, save(fig, base))


def pareto_figure(table: GroupTable, palette: Palette, base: Path) -> Figure:
    """The headline metric vs energy per run, from the table's cells: each variant's point is the table's
    mean of both (error bars: the table's std), the runs as faint dots, the Pareto front of the means.
    Variants without energy, or with energy from fewer seeds than the headline, are named in the note."""
    y = columns_of(table.task)[table.task.report.headline]
    name = f"Pareto front ({y.title} vs energy)"
    energy = columns_of(table.task)["energy_kwh"]
    absent = [m.title for m in (y, energy) if m.name not in table.mean]
    if absent:
        return Figure(name, note=f"not drawn: {' and '.join(absent)} not among the reported metrics (--metrics)")
    means, stds = table.mean[["energy_kwh", y.name]], table.std[["energy_kwh", y.name]].fillna(0.0)
    drawn = means.dropna()
    if drawn.empty:
        return Figure(name, note="not drawn: no run in this group tracked energy (tracker=off or a tracker that failed)")
    counts = table.completed.groupby("variant")[["energy_kwh", y.name]].count()
    missing = [v for v in means.index if v not in drawn.index]
    partial = [f"{v} ({counts.at[v, 'energy_kwh']} of {counts.at[v, y.name]} seeds)" for v in drawn.index
               if counts.at[v, "energy_kwh"] < counts.at[v, y.name]]
    notes = ([f"no energy for {', '.join(missing)}"] if missing else []) + (
        [f"energy from fewer seeds than {y.title}: {', '.join(partial)}"] if partial else [])
    exp = column_exponent(drawn["energy_kwh"])
    scale = 10.0 ** exp
    fig, ax = plt.subplots(figsize=(7.5, 4.5), layout="constrained")
    runs = table.completed.dropna(subset=["energy_kwh", y.name])
    order = sorted(drawn.index, key=palette.highlighted)  # grey first, coloured on top
    colours = [palette.colour(v) for v in order]
    ax.scatter(runs.energy_kwh / scale, runs[y.name], s=8, alpha=0.3, lw=0,
               c=[palette.colour(v) for v in runs.variant])
    x, yy = drawn.loc[order, "energy_kwh"] / scale, drawn.loc[order, y.name]
    spread = stds.loc[order, "energy_kwh"] / scale
    ax.hlines(yy, x - spread, x + spread, colors=colours, lw=1)
    ax.vlines(x, yy - stds.loc[order, y.name], yy + stds.loc[order, y.name], colors=colours, lw=1)
    ax.scatter(x, yy, s=28, c=colours, edgecolors="black", linewidths=0.5, zorder=3)
    sign = 1.0 if y.higher_is_better else -1.0
    front = pareto_front(drawn.assign(score=sign * drawn[y.name]), "energy_kwh", "score")
    ax.step(front.energy_kwh / scale, front[y.name], where="post", color="black", lw=1)
    scale_text = f"10^{exp} " if exp else ""
    modelled = ", modelled" if table.modelled_energy else ""
    ax.set(xlabel=f"{energy.label or energy.name} [{scale_text}{energy.unit}{modelled}]; bars: std over seeds",
           ylabel=y.title,
           title=table.title)
    ax.xaxis.set_major_locator(MaxNLocator(nbins=5))
    handles = variant_handles(list(drawn.index), palette, marker="o")
    handles.append(plt.Line2D([], [], color="black", lw=1, label="Pareto front (means)"))
    legend_outside(fig, handles)
    return Figure(name, save(fig, base), "; ".join(notes))


def radar_figure(table: GroupTable, palette: Palette, base: Path) -> Figure:
    """The coloured variants (at most nine) over the task's radar axes that every drawn variant has, min-max
    normalised across them; 'lower is better' axes flipped; an axis on which all are equal sits at 0.5.
    Drawn only with three variants or more: with fewer, min-max puts every axis at its rim or centre."""
    catalogue = columns_of(table.task)
    variants = [v for v in palette.ordered(list(table.mean.index)) if palette.highlighted(v)][:RADAR_MAX]
    wanted = list(table.task.report.radar)
    axes = [a for a in wanted if a in table.mean and table.mean.loc[variants, a].notna().all()]
    dropped = [catalogue[a].title for a in wanted if a not in axes]
    name = f"radar ({len(axes)} axes: {', '.join(catalogue[a].title for a in axes)})"
    if len(variants) < 3:
        shown = f"{len(variants)} coloured of {len(table.mean.index)}" if len(table.mean.index) > len(variants) else (
            str(len(variants)))
        return Figure("radar", note=f"not drawn: {shown} variant(s); a radar needs three or more")
    if len(axes) < 3:
        return Figure("radar", note=f"not drawn: fewer than three axes with values for every variant "
                                    f"(no value: {', '.join(dropped)})")
    values = table.mean.loc[variants, axes].astype(float)
    lo, hi = values.min(), values.max()
    span = (hi - lo).where(hi > lo)
    norm = ((values - lo) / span).fillna(0.5)  # an axis without spread: every variant in the middle
    for a in axes:
        if catalogue[a].higher_is_better is False:
            norm[a] = 1.0 - norm[a]
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig = plt.figure(figsize=(9.5, 6.4))  # placed by hand: constrained layout misjudges polar tick labels
    ax = fig.add_axes((0.16, 0.12, 0.45, 0.45 * 9.5 / 6.4), projection="polar")
    for v, row in norm.iterrows():
        vals = row.tolist()
        ax.plot(angles + angles[:1], vals + vals[:1], lw=1.2, color=palette.colour(v))
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.08, color=palette.colour(v))
    suffix = {True: "", False: " (inv.)", None: " (no direction)"}

    def label(a: str) -> str:
        text = catalogue[a].title + suffix[catalogue[a].higher_is_better]
        if catalogue[a].energy_derived and table.modelled_energy:
            text += " (modelled)"
        return f"{text}\n[{lo[a]:.3g} .. {hi[a]:.3g}]" if pd.notna(span[a]) else f"{text}\n(all {lo[a]:.3g})"

    ax.set_xticks(angles, [label(a) for a in axes], fontsize=7)
    ax.tick_params(axis="x", pad=14)  # labels off the rim, clear of the polygons
    for text, angle in zip(ax.get_xticklabels(), angles):  # left half right-aligned, right half left-aligned
        cos = np.cos(angle)
        text.set_horizontalalignment("center" if abs(cos) < 0.3 else ("left" if cos > 0 else "right"))
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], [], fontsize=6)
    ax.set_ylim(0, 1)
    fig.suptitle(f"{table.title}\nmin-max normalised per axis across the drawn variants; [min .. max] of the means",
                 fontsize=8, x=0.385)
    fig.legend(handles=variant_handles(variants, palette), loc="upper left", bbox_to_anchor=(0.76, 0.86), fontsize=7,
               frameon=False)  # right of the axis labels
    others = len(table.mean.index) - len(variants)
    notes = ([f"not drawn: {others} grey variant(s) (see the tables)"] if others else []) + (
        [f"axes without a value for every variant: {', '.join(dropped)}"] if dropped else [])
    return Figure(name, save(fig, base), "; ".join(notes))


def group_figures(table: GroupTable, history: pd.DataFrame, out: Path, palette: Palette) -> list[Figure]:
    """Every figure of one group, drawn or with the reason it is not."""
    view = table.task.report
    headline = columns_of(table.task)[view.headline]
    figures = [forest_figure(table, block, ms, out / f"forest_{block.lower()}_{table.slug}")
               for block, ms in blocks_of(table.metrics)]
    figures += [pareto_figure(table, palette, out / f"pareto_{table.slug}"),
                radar_figure(table, palette, out / f"radar_{table.slug}"),
                curve_figure(table, history, "grad_norm_mean", "mean grad-norm", out / f"gradnorm_{table.slug}",
                             palette),
                curve_figure(table, history, view.headline, headline.title, out / f"{view.headline}_{table.slug}",
                             palette)]
    return figures
