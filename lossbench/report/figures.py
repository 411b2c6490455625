"""Report figures (matplotlib, PNG + PDF): headline-metric-vs-energy Pareto front (test accuracy, or
validation perplexity for language models), radar over the paper's six axes of the task, gradient-norm
and headline-metric curves from the history table."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lossbench.report.aggregate import GroupTable, Metric, group_runs, pareto_front  # noqa: E402
from lossbench.report.catalogue import columns_of  # noqa: E402


def _save(fig: plt.Figure, base: Path) -> dict[str, Path]:
    base.parent.mkdir(parents=True, exist_ok=True)
    paths = {}
    for ext in ("png", "pdf"):
        path = base.with_suffix(f".{ext}")
        fig.savefig(path, dpi=150)
        paths[ext] = path
    plt.close(fig)
    return paths


def pareto_figure(table: GroupTable, runs: pd.DataFrame, base: Path) -> dict[str, Path]:
    """The task's headline metric vs energy per run (dots) and per variant mean (labelled), with the
    Pareto front (least energy for the best headline value)."""
    y = columns_of(table.task)[table.task.report.headline]
    rows = group_runs(runs, table).dropna(subset=["energy_kwh", y.name])
    if rows.empty:
        return {}
    means = rows.groupby("variant")[["energy_kwh", y.name]].mean()
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    colors = dict(zip(means.index, plt.cm.tab20(np.linspace(0, 1, max(2, len(means))))))
    for variant, group in rows.groupby("variant"):
        ax.scatter(group.energy_kwh, group[y.name], s=12, alpha=0.35, color=colors[variant])
    for variant, point in means.iterrows():
        ax.scatter(point.energy_kwh, point[y.name], s=50, color=colors[variant], edgecolor="black", zorder=3)
        ax.annotate(variant, (point.energy_kwh, point[y.name]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    sign = 1.0 if y.higher_is_better else -1.0
    front = pareto_front(means.assign(score=sign * means[y.name]), "energy_kwh", "score")
    ax.step(front.energy_kwh, front[y.name], where="post", color="black", lw=1, label="Pareto front")
    ax.set(xscale="log", xlabel="energy per run (kWh)", ylabel=y.title, title=table.title)
    ax.legend(loc="best", fontsize=8)
    return _save(fig, base)


def radar_figure(table: GroupTable, base: Path) -> dict[str, Path]:
    """Each variant over the task's six paper axes, min-max normalised across variants; 'lower is
    better' axes flipped, axes without a direction (effective rank) left as they are and labelled so."""
    axes = [a for a in table.task.report.radar if a in table.mean and table.mean[a].notna().any()]
    if len(axes) < 3:
        return {}
    values = table.mean[axes].astype(float)
    lo, hi = values.min(), values.max()
    norm = ((values - lo) / (hi - lo).replace(0, np.nan)).fillna(1.0)
    for a in axes:
        if columns_of(table.task)[a].higher_is_better is False:
            norm[a] = 1.0 - norm[a]
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig = plt.figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    for variant, row in norm.iterrows():
        vals = row.tolist()
        ax.plot(angles + angles[:1], vals + vals[:1], lw=1.2, label=variant)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.1)
    suffix = {True: "", False: " (inv.)", None: " (no direction)"}
    catalogue = columns_of(table.task)
    ax.set_xticks(angles, [catalogue[a].title + suffix[catalogue[a].higher_is_better] for a in axes], fontsize=8)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], [], fontsize=6)
    ax.set_title(table.title, fontsize=9)
    ax.legend(loc="upper right", bbox_to_anchor=(1.25, 1.1), fontsize=7)
    return _save(fig, base)


def curve_figure(table: GroupTable, runs: pd.DataFrame, history: pd.DataFrame, column: str, label: str,
                 base: Path) -> dict[str, Path]:
    """`column` from the history over epochs (steps for language models), averaged over seeds per
    variant (shaded: ± std)."""
    x = table.task.report.curve_x
    if history.empty or column not in history:
        return {}
    rows = group_runs(runs, table)[["run_id", "variant"]]
    curves = history.merge(rows, on="run_id")
    if curves.empty:
        return {}
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    for variant, group in curves.groupby("variant"):
        stats = group.groupby(x)[column].agg(["mean", "std"])
        ax.plot(stats.index, stats["mean"], lw=1.2, label=variant)
        ax.fill_between(stats.index, stats["mean"] - stats["std"].fillna(0), stats["mean"] + stats["std"].fillna(0), alpha=0.15)
    ax.set(xlabel=x, ylabel=label, title=table.title)
    ax.legend(fontsize=7)
    return _save(fig, base)


def sweep_figure(stats: pd.DataFrame, x: str, metric: Metric, base: Path) -> dict[str, Path]:
    """`metric` against the values of a config path, one line per variant, error bars = std over seeds."""
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    xs = list(dict.fromkeys(stats.index.get_level_values("x")))
    for variant in dict.fromkeys(stats.index.get_level_values("variant")):
        rows = stats.loc[variant].reindex(xs)
        ax.errorbar(range(len(xs)), rows["mean"], yerr=rows["std"].fillna(0), marker="o", capsize=3, label=variant)
    ax.set_xticks(range(len(xs)), xs)
    ax.set(xlabel=x, ylabel=metric.title, title=f"{metric.title} vs {x} (mean ± std over seeds)")
    ax.legend(fontsize=8)
    return _save(fig, base)


def group_figures(table: GroupTable, runs: pd.DataFrame, history: pd.DataFrame, out: Path) -> dict[str, Path]:
    """All figures of one group; returns {description: path} for PNG and PDF files."""
    view = table.task.report
    headline = columns_of(table.task)[view.headline]
    made = {
        f"Pareto front ({headline.title} vs energy)": pareto_figure(table, runs, out / f"pareto_{table.slug}"),
        "radar (six paper axes)": radar_figure(table, out / f"radar_{table.slug}"),
        "gradient norm over training": curve_figure(table, runs, history, "grad_norm_mean", "mean grad-norm",
                                                    out / f"gradnorm_{table.slug}"),
        f"{headline.title} over training": curve_figure(table, runs, history, view.headline, headline.title,
                                                        out / f"{view.headline}_{table.slug}"),
    }
    return {f"{name} ({ext})": path for name, paths in made.items() for ext, path in paths.items()}
