"""Report figures (matplotlib, PNG + PDF), each with its uncertainty: a forest plot of every variant's
paired difference against the baseline with 95 % CIs (the main figure), the headline metric vs energy
with error bars (std over seeds) on both axes and the Pareto front of the means, a radar over the
task's six paper axes (min-max normalised, each axis's range printed), and gradient-norm and
headline-metric curves from the history table (shaded: std over seeds). Axes of modelled energy say so."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from lossbench.report.aggregate import GroupTable, Metric, pareto_front  # noqa: E402
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


def pareto_figure(table: GroupTable, base: Path) -> dict[str, Path]:
    """The task's headline metric vs energy per run (dots) and per variant mean (labelled), with the
    Pareto front (least energy for the best headline value)."""
    y = columns_of(table.task)[table.task.report.headline]
    rows = table.completed.dropna(subset=["energy_kwh", y.name])
    if rows.empty:
        return {}
    by_variant = rows.groupby("variant")[["energy_kwh", y.name]]
    means, stds = by_variant.mean(), by_variant.std(ddof=1).fillna(0.0)
    fig, ax = plt.subplots(figsize=(6, 4), layout="constrained")
    colors = dict(zip(means.index, plt.cm.tab20(np.linspace(0, 1, max(2, len(means))))))
    for variant, group in rows.groupby("variant"):
        ax.scatter(group.energy_kwh, group[y.name], s=10, alpha=0.3, color=colors[variant])
    for variant, point in means.iterrows():
        ax.errorbar(point.energy_kwh, point[y.name], xerr=stds.at[variant, "energy_kwh"], yerr=stds.at[variant, y.name],
                    fmt="o", ms=6, color=colors[variant], mec="black", capsize=3, zorder=3)
        ax.annotate(variant, (point.energy_kwh, point[y.name]), fontsize=7, xytext=(4, 3), textcoords="offset points")
    sign = 1.0 if y.higher_is_better else -1.0
    front = pareto_front(means.assign(score=sign * means[y.name]), "energy_kwh", "score")
    ax.step(front.energy_kwh, front[y.name], where="post", color="black", lw=1, label="Pareto front (means)")
    ax.set(xscale="log", xlabel=f"energy per run (kWh{', modelled' if table.modelled_energy else ''}); "
           "bars: std over seeds", ylabel=y.title, title=table.title)
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
    catalogue = columns_of(table.task)
    norm = ((values - lo) / (hi - lo).replace(0, np.nan)).fillna(1.0)
    for a in axes:
        if catalogue[a].higher_is_better is False:
            norm[a] = 1.0 - norm[a]
    angles = np.linspace(0, 2 * np.pi, len(axes), endpoint=False).tolist()
    fig = plt.figure(figsize=(5.5, 5.5), layout="constrained")
    ax = fig.add_subplot(projection="polar")
    for variant, row in norm.iterrows():
        vals = row.tolist()
        ax.plot(angles + angles[:1], vals + vals[:1], lw=1.2, label=variant)
        ax.fill(angles + angles[:1], vals + vals[:1], alpha=0.1)
    suffix = {True: "", False: " (inv.)", None: " (no direction)"}
    def label(a: str) -> str:
        name = catalogue[a].title + suffix[catalogue[a].higher_is_better]
        if catalogue[a].energy_derived and table.modelled_energy:
            name += " (modelled)"
        return f"{name}\n[{lo[a]:.3g} .. {hi[a]:.3g}]"

    ax.set_xticks(angles, [label(a) for a in axes], fontsize=7)
    ax.set_yticks([0.25, 0.5, 0.75, 1.0], [], fontsize=6)
    ax.set_title(f"{table.title}\nmin-max normalised per axis across variants; [min .. max] of the means",
                 fontsize=8)
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, fontsize=7)
    return _save(fig, base)


def curve_figure(table: GroupTable, history: pd.DataFrame, column: str, label: str, base: Path) -> dict[str, Path]:
    """`column` from the history over epochs (steps for language models), averaged over seeds per
    variant (shaded: ± std)."""
    x = table.task.report.curve_x
    if history.empty or column not in history:
        return {}
    rows = table.completed[["run_id", "variant"]]
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


def forest_figure(table: GroupTable, base: Path) -> dict[str, Path]:
    """Difference against the baseline with its 95 % CI (paired t), one panel per ranked metric, one row
    per variant; filled markers where the Holm-corrected paired t-test gives p < 0.05."""
    metrics = [m for m in table.metrics if table.ranked(m) and any(c.n for c in table.comparisons.get(m.name, []))]
    if table.baseline is None or not metrics:
        return {}
    variants = [c.variant for c in table.comparisons[metrics[0].name]]
    cols = min(4, len(metrics))
    rows_n = -(-len(metrics) // cols)
    fig, axes = plt.subplots(rows_n, cols, figsize=(3.1 * cols, 0.45 * len(variants) * rows_n + 1.4),
                             layout="constrained", squeeze=False, sharey=True)
    for ax, m in zip(axes.flat, metrics):
        for y, c in enumerate(table.comparisons[m.name]):
            significant = c.p_t_holm < 0.05
            ax.errorbar(c.mean_diff, y, xerr=[[c.mean_diff - c.ci_low], [c.ci_high - c.mean_diff]] if np.isfinite(c.ci_low)
                        else None, fmt="o", color="C0" if significant else "0.45", mfc="C0" if significant else "white",
                        capsize=3)
        ax.axvline(0.0, color="black", lw=0.8)
        better = {True: "→ better", False: "← better"}[bool(m.higher_is_better)]
        modelled = " (modelled)" if m.energy_derived and table.modelled_energy else ""
        ax.set_title(f"{m.title}{modelled}\n{better}", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.ticklabel_format(axis="x", style="sci", scilimits=(-3, 4))
    for ax in axes.flat[len(metrics):]:
        ax.set_visible(False)
    axes[0, 0].set_yticks(range(len(variants)), variants, fontsize=7)
    axes[0, 0].invert_yaxis()
    fig.suptitle(f"{table.title}: difference vs {table.baseline} (paired by seed, 95 % CI of the paired t-test; "
                 "filled: Holm-corrected p < 0.05)", fontsize=8)
    return _save(fig, base)


def group_figures(table: GroupTable, history: pd.DataFrame, out: Path) -> dict[str, Path]:
    """All figures of one group; returns {description: path} for PNG and PDF files."""
    view = table.task.report
    headline = columns_of(table.task)[view.headline]
    made = {
        f"differences vs {table.baseline} (forest plot, 95 % CI)": forest_figure(table, out / f"forest_{table.slug}"),
        f"Pareto front ({headline.title} vs energy)": pareto_figure(table, out / f"pareto_{table.slug}"),
        "radar (six paper axes)": radar_figure(table, out / f"radar_{table.slug}"),
        "gradient norm over training": curve_figure(table, history, "grad_norm_mean", "mean grad-norm",
                                                    out / f"gradnorm_{table.slug}"),
        f"{headline.title} over training": curve_figure(table, history, view.headline, headline.title,
                                                        out / f"{view.headline}_{table.slug}"),
    }
    return {f"{name} ({ext})": path for name, paths in made.items() for ext, path in paths.items()}
