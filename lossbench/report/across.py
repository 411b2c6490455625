"""`lossbench report --across COLUMN`: the variants ranked over the groups that differ in COLUMN (datasets,
usually), per task, the other group columns and ranked metric (ranking.py, aggregates.py).

Per ranking it writes `tables/ranking_<metric>[_<group>].{csv,json,md,tex}` and the critical-difference
diagram `figures/cd_<metric>[_<group>].{png,pdf}` (drawn by scikit-posthocs' `critical_difference_diagram`
with the report's colours), and returns the markdown index.md shows.
"""

from __future__ import annotations

import json
import math
import re
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from lossbench import LossbenchError
from lossbench.report.aggregate import GroupTable, Metric
from lossbench.report.aggregates import REPS, improvement_interval, iqm_interval, normalise
from lossbench.report.catalogue import columns_of
from lossbench.report.formats import decimals, latex_escape, number, p_equals
from lossbench.report.latex import Grid, render
from lossbench.report.palette import Palette
from lossbench.report.plotting import Figure, plt, save
from lossbench.report.ranking import Ranking, rank_across

TIED = "≈"


@dataclass
class RankingView:
    """One ranking as index.md and the HTML page show it: title, caption (or why there is no ranking), the table's
    header and rows (the markdown's cells), the group tables by value of the ranked column, the CD diagram."""

    title: str
    note: str
    head: list[str] = field(default_factory=list)
    rows: list[list[str]] = field(default_factory=list)
    tables: dict[str, GroupTable] = field(default_factory=dict)
    figure: Figure | None = None


def partitions(tables: list[GroupTable], across: str) -> dict[tuple, list[GroupTable]]:
    """Tables by (task, the group key without `across`)."""
    out: dict[tuple, list[GroupTable]] = {}
    for t in tables:
        if across not in t.key:
            raise LossbenchError(f"--across {across}: not a group column (group by: {', '.join(t.key)})")
        rest = tuple((k, v) for k, v in t.key.items() if k != across)
        out.setdefault((t.task, rest), []).append(t)
    return out


def ranked_metrics(task, names: list[str] | None) -> list[Metric]:
    """The named metrics that have a direction (default: the task's headline metric)."""
    catalogue = columns_of(task)
    chosen = [catalogue[n] for n in (names or [task.report.headline]) if n in catalogue]
    return [m for m in chosen if m.higher_is_better is not None]


def _json(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _cell(mean: float, std: float, rank: float) -> str:
    """`mean (rank)`, the mean rounded at two significant digits of its std over seeds (in the group tables)."""
    return f"{number(mean, decimals(mean, std))} ({rank:g})"


def write_ranking(tables: list[GroupTable], across: str, rest: tuple, metric: Metric, baseline: str | None,
                  palette: Palette, out: Path, suffix: str) -> tuple[list[str], RankingView]:
    """One ranking: files under out/tables and out/figures; the markdown lines for index.md and its view."""
    higher = bool(metric.higher_is_better)
    means = pd.DataFrame({t.key[across]: t.mean[metric.name] for t in tables}).T
    stds = pd.DataFrame({t.key[across]: t.std[metric.name] for t in tables}).T
    ranking = rank_across(means, higher)
    variants = list(ranking.mean_ranks.index)
    title = f"{metric.title} across {across}" + "".join(f", {k}={v}" for k, v in rest)
    if len(variants) < 2:
        why = (f"No ranking of {metric.title} across {across}: fewer than two variants have a value on every "
               f"{across} (not on every one: {', '.join(ranking.dropped) or 'none'}).")
        return [f"\n*{why}*\n"], RankingView(title, why)
    scores = {v: {t.key[across]: t.values[metric.name][v].dropna().to_numpy(dtype=float) for t in tables
                  if v in t.values[metric.name]} for v in variants}
    iqms = {v: iqm_interval(s) for v, s in normalise(scores, higher).items()}
    poi = {v: improvement_interval(scores[v], scores[baseline], higher) for v in variants
           if baseline in scores and v != baseline}
    tied = set(ranking.tied_with_best())
    name = f"ranking_{metric.name}{suffix}"
    frame = pd.DataFrame({
        "variant": variants, "mean_rank": ranking.mean_ranks.values,
        "tied_with_best_nemenyi": [v in tied for v in variants],
        "p_nemenyi_vs_best": ranking.nemenyi[ranking.best].values, "p_holm_vs_best": ranking.p_holm_vs_best.values,
        "iqm_normalised": [iqms[v].value for v in variants], "iqm_low": [iqms[v].low for v in variants],
        "iqm_high": [iqms[v].high for v in variants],
        f"p_improvement_vs_{baseline}": [poi[v].value if v in poi else math.nan for v in variants],
        "p_improvement_low": [poi[v].low if v in poi else math.nan for v in variants],
        "p_improvement_high": [poi[v].high if v in poi else math.nan for v in variants],
        **{f"mean@{d}": ranking.means.loc[d, variants].values for d in ranking.means.index},
        **{f"rank@{d}": ranking.ranks.loc[d, variants].values for d in ranking.means.index}})
    (out / "tables").mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "tables" / f"{name}.csv", index=False)
    summary = {"metric": metric.name, "higher_is_better": higher, "across": across, "group": dict(rest),
               "datasets": [str(d) for d in ranking.means.index], "variants": variants,
               "dropped_variants": ranking.dropped, "n_datasets": len(ranking.means), "n_variants": len(variants),
               "friedman_chi2": ranking.friedman_chi2, "friedman_p": ranking.friedman_p,
               "iman_davenport_f": ranking.iman_davenport_f, "iman_davenport_p": ranking.iman_davenport_p,
               "alpha": ranking.alpha, "q_alpha": ranking.q_alpha, "critical_difference": ranking.critical_difference,
               "best": ranking.best, "tied_with_best": sorted(tied), "baseline": baseline,
               "bootstrap_replicates": REPS, "interval": 0.95}
    (out / "tables" / f"{name}.json").write_text(json.dumps({k: _json(v) for k, v in summary.items()}, indent=2) + "\n")
    note = _caption(ranking, title, across, baseline, higher)
    head, rows = _grid(ranking, stds, iqms, poi, tied, baseline)
    md = "\n".join([note, "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
                     *("| " + " | ".join(cells) + " |" for cells in rows)]) + "\n"
    (out / "tables" / f"{name}.md").write_text(md)
    (out / "tables" / f"{name}.tex").write_text(_latex(ranking, stds, iqms, poi, tied, note, baseline, name))
    figure = cd_figure(ranking, palette, title, out / "figures" / f"cd_{metric.name}{suffix}")
    lines = [f"\n## {title}\n", md, *(f"- table ({ext}): [tables/{name}.{ext}](tables/{name}.{ext})"
                                      for ext in ("csv", "json", "md", "tex"))]
    for ext, path in figure.paths.items():
        lines.append(f"- {figure.name} ({ext}): [{path.relative_to(out)}]({path.relative_to(out)})")
    if "png" in figure.paths:
        lines.append(f"\n  ![{figure.name}]({figure.paths['png'].relative_to(out)})\n")
    return lines, RankingView(title, note, head, rows, {t.key[across]: t for t in tables}, figure)


def _caption(r: Ranking, title: str, across: str, baseline: str | None, higher: bool) -> str:
    k, n = len(r.mean_ranks), len(r.means)
    text = (f"{title}: each variant's mean over seeds per {across}, ranked within each {across} (1 = best, ties "
            f"averaged); mean rank over the N = {n} {across} values; k = {k} variants. Friedman's test: "
            f"chi2 = {r.friedman_chi2:.3g}, {p_equals(r.friedman_p)}. Nemenyi critical difference at alpha = "
            f"{r.alpha}: CD = {r.critical_difference:.3g}; {TIED}: within the CD of the best mean rank"
            + (" (Friedman does not reject: no variant is declared different)" if not r.rejects else "") +
            f". IQM: interquartile mean of the runs' scores normalised per {across} to [0, 1] (1 = best run), "
            f"95 % stratified-bootstrap interval ({REPS} replicates).")
    if baseline is not None:
        text += (f" P(> {baseline}): probability that a run beats a run of {baseline}, averaged over {across}, "
                 "same interval.")
    if r.dropped:
        text += f" Not ranked (no value on every {across}): {', '.join(r.dropped)}."
    return text


def _interval(i) -> str:
    return "–" if i is None or not math.isfinite(i.value) else f"{i.value:.2f} [{i.low:.2f}, {i.high:.2f}]"


def _grid(r: Ranking, stds: pd.DataFrame, iqms, poi, tied, baseline: str | None) -> tuple[list[str], list[list[str]]]:
    """The ranking table's header and rows (one per variant, best mean rank first), as index.md prints them."""
    datasets = list(r.means.index)
    head = ["variant", "mean rank", "IQM [95 % CI]"] + ([f"P(> {baseline}) [95 % CI]"] if baseline else []) + [
        f"{d}: mean (rank)" for d in datasets]
    rows = []
    for v in r.mean_ranks.index:
        cells = [str(v), f"{r.mean_ranks[v]:.2f}{' ' + TIED if v in tied else ''}", _interval(iqms[v])]
        cells += [_interval(poi.get(v))] if baseline else []
        cells += [_cell(r.means.at[d, v], float(stds.at[d, v]), r.ranks.at[d, v]) for d in datasets]
        rows.append(cells)
    return head, rows


def _latex(r: Ranking, stds: pd.DataFrame, iqms, poi, tied, note: str, baseline: str | None, name: str) -> str:
    datasets = list(r.means.index)
    headers = ["Mean rank", "IQM"] + ([f"P($>$ {latex_escape(baseline)})"] if baseline else []) + [
        latex_escape(str(d)) for d in datasets]
    rows = []
    for v in r.mean_ranks.index:
        cells = [f"{r.mean_ranks[v]:.2f}" + (r"$^{\approx}$" if v in tied else ""), latex_escape(_interval(iqms[v]))]
        cells += [latex_escape(_interval(poi.get(v)))] if baseline else []
        cells += [latex_escape(_cell(r.means.at[d, v], float(stds.at[d, v]), r.ranks.at[d, v])) for d in datasets]
        rows.append((latex_escape(v), cells))
    label = "tab:" + re.sub(r"[^A-Za-z0-9]+", "-", name)
    return render(Grid(note, label, "Variant", headers, rows, short=f"{note.split(':')[0]}, continued."))


def cd_figure(r: Ranking, palette: Palette, title: str, base: Path) -> Figure:
    """Demšar's critical-difference diagram: mean ranks on an axis (1 = best, left), the CD as a bar, and
    a line joining every maximal set of variants no two of which differ significantly (Nemenyi)."""
    import scikit_posthocs

    name = "critical-difference diagram (Nemenyi)"
    k = len(r.mean_ranks)
    if k < 2 or len(r.means) < 2:
        return Figure(name, note=f"not drawn: needs two variants and two values of the column ({k}, {len(r.means)})")
    longest = max(len(str(v)) for v in r.mean_ranks.index)
    rows = (k + 1) // 2
    fig, ax = plt.subplots(figsize=(min(14.0, 5.0 + 0.13 * longest), 1.9 + 0.2 * rows), layout="constrained")
    drawn = scikit_posthocs.critical_difference_diagram(
        r.mean_ranks.to_dict(), r.significance(), alpha=r.alpha, ax=ax,
        color_palette={str(v): palette.colour(str(v)) for v in r.mean_ranks.index},
        label_props={"fontsize": 7}, label_fmt_left="{label} ({rank:.2f})", label_fmt_right="({rank:.2f}) {label}")
    bottom = min(label.get_position()[1] for label in drawn["labels"]) - 1.2
    start = float(r.mean_ranks.iloc[0])
    ax.plot([start, start + r.critical_difference], [bottom, bottom], color="black", lw=1.5)
    for end in (start, start + r.critical_difference):
        ax.plot([end, end], [bottom - 0.2, bottom + 0.2], color="black", lw=1.5)
    ax.annotate(f"CD = {r.critical_difference:.2f}", (start + r.critical_difference, bottom), xytext=(6, 0),
                textcoords="offset points", va="center", fontsize=7)
    ax.set_ylim(bottom - 0.6, ax.get_ylim()[1])
    ax.tick_params(axis="x", labelsize=7)
    verdict = f"Friedman {p_equals(r.friedman_p)}" + ("" if r.rejects else ": no difference declared (one bar)")
    text = (f"{title}: mean rank (1 = best); bars join variants not significantly different (Nemenyi, "
            f"alpha = {r.alpha}); {verdict}")
    ax.set_title(textwrap.fill(text, int(fig.get_size_inches()[0] * 14)), fontsize=8, pad=14)
    return Figure(name, save(fig, base))


def across_report(tables: list[GroupTable], across: str, metric_names: list[str] | None, baseline: str | None,
                  palette: Palette, out: Path) -> tuple[list[str], list[RankingView]]:
    """Every ranking of the report: lines for index.md (a note where a ranking cannot be made) and views."""
    found = partitions(tables, across)
    lines: list[str] = []
    views: list[RankingView] = []
    for (task, rest), group in found.items():
        suffix = "" if len(found) == 1 else "_" + "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", v) for _, v in rest)
        if len(group) < 2:
            why = f"No ranking across {across}{suffix.replace('_', ' ')}: one value of {across} only."
            lines.append(f"\n*{why}*\n")
            views.append(RankingView(f"Ranking across {across}{suffix.replace('_', ' ')}", why))
            continue
        group_baseline = baseline if all(baseline in t.mean.index for t in group) else None
        for metric in ranked_metrics(task, metric_names):
            more, view = write_ranking(group, across, rest, metric, group_baseline, palette, out, suffix)
            lines += more
            views.append(view)
    return lines, views
