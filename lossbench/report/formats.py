"""Table formats of a group: markdown, booktabs LaTeX and CSV, each with the Performance /
Interpretability / Sustainability blocks as separate tables and the paired comparison against the
baseline; and the markdown of a metric-vs-config table. Rounding happens here and nowhere else.

Numbers: mean and std are rounded to the same decimal place, set by two significant digits of the std
(three of the mean when there is no spread); each column has one power-of-ten scale, shown in its header.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from lossbench.report.aggregate import GroupTable, Metric, best_variants, tied_with_best
from lossbench.report.stats import ALPHA, Comparison
from lossbench.schema import BLOCKS

TIE = "†"
NOT_APPLICABLE = "n/a"


def column_exponent(values: pd.Series) -> int:
    """The power of ten a column is shown in: 0 for magnitudes in [0.01, 10^4), else that of its largest."""
    finite = values.abs().replace([math.inf], math.nan).dropna()
    top = float(finite.max()) if not finite.empty else 0.0
    if top == 0.0 or 1e-2 <= top < 1e4:
        return 0
    return math.floor(math.log10(top))


def decimals(mean: float, spread: float) -> int:
    """Decimal places: two significant digits of `spread`, or three of `mean` when there is no spread."""
    if math.isfinite(spread) and spread > 0:
        return 1 - math.floor(math.log10(spread))
    if mean == 0 or not math.isfinite(mean):
        return 0
    return 2 - math.floor(math.log10(abs(mean)))


def number(value: float, places: int) -> str:
    """`value` rounded to `places` decimals (negative: to tens, hundreds, ...)."""
    return f"{value:.{places}f}" if places >= 0 else f"{round(value, places):.0f}"


def mean_std(mean: float, std: float, exponent: int) -> tuple[str, str | None]:
    """(mean, std) as text at the same decimal place, both divided by 10^exponent."""
    scale = 10.0 ** exponent
    m, s = mean / scale, std / scale
    places = decimals(m, s)
    return number(m, places), (number(s, places) if math.isfinite(s) else None)


def header(metric: Metric, exponent: int, latex: bool) -> str:
    """Column title with its unit and scale: `Energy [10^-6 kWh]`."""
    label = metric.label or metric.name
    scale = (f"$10^{{{exponent}}}$" if latex else f"10^{exponent}") if exponent else ""
    unit = " ".join(part for part in (scale, metric.unit) if part)
    title = latex_escape(label) if latex else label
    return f"{title} [{latex_escape(unit) if latex and not scale else unit}]" if unit else title


def _cell(table: GroupTable, variant: str, metric: Metric, exponent: int, latex: bool) -> str:
    mean, std = table.mean.at[variant, metric.name], table.std.at[variant, metric.name]
    if pd.isna(mean):
        return NOT_APPLICABLE if metric.distance_heads_only else "–"
    m, s = mean_std(float(mean), float(std), exponent)
    text = f"{m} \\pm {s}" if latex and s is not None else (f"{m} ± {s}" if s is not None else m)
    if variant in best_variants(table, metric):
        text = rf"\mathbf{{{text}}}" if latex else f"**{text}**"
    elif variant in tied_with_best(table, metric):
        text = f"{text}^{{\\dagger}}" if latex else f"{text} {TIE}"
    return f"${text}$" if latex else text


def caption(table: GroupTable, block: str | None = None) -> str:
    """What the numbers and marks mean (plain text; LaTeX escapes it)."""
    not_ranked = [m.label or m.name for m in table.metrics if m.higher_is_better is not None and not table.ranked(m)]
    parts = [f"{table.title}{' - ' + block if block else ''}: mean ± std over the seeds of each cell (n = completed "
             f"runs; a cell's runs differ only by seed). "
             f"Bold: the best mean, significantly better than every other variant (paired t-tests by seed, "
             f"Holm-corrected, p < {ALPHA}). {TIE}: no variant is significantly best; the best mean and every "
             f"variant statistically tied with it. Rank: mean over the block's ranked metrics of 1 + the number "
             f"of variants significantly better (ties share a rank)."]
    if table.split:
        names = "; ".join(f"{v}: {', '.join(labels)}" for v, labels in sorted(table.split.items()))
        parts.append(f"Rows labelled 'variant (key=value)' are separate cells of one variant, whose configs differ in "
                     f"those keys; they are never pooled ({names}).")
    if table.duplicates:
        parts.append(f"{table.duplicates} older row(s) left out: another row holds their cell and seed (files of "
                     "schema versions before 3, whose run ids hashed measurement settings); the completed, most "
                     "recently finished one is reported.")
    if table.unfinished:
        parts.append("No completed run: " + "; ".join(
            f"{v} ({', '.join(f'{n} {s}' for s, n in counts.items())})" for v, counts in table.unfinished.items()) + ".")
    if not_ranked:
        parts.append(f"{', '.join(not_ranked)}: the checkpoint-selection score, shown but not ranked.")
    if any(m.distance_heads_only for m in table.metrics):
        parts.append(f"{NOT_APPLICABLE}: prototype alignment is defined for distance-head prototypes only.")
    if table.modelled_energy and (block in (None, "Sustainability")):
        sources = ", ".join(sorted(table.energy_sources))
        parts.append(f"Energy is modelled, not measured ({sources}): see README, 'What the energy numbers mean'.")
        if "model:cpu-time" in table.energy_sources and len(table.thread_counts) > 1:
            counts = ", ".join(map(str, sorted(table.thread_counts)))
            parts.append(f"Runs used different torch thread counts ({counts}): modelled CPU energy grows with threads "
                         f"(a waiting thread spins), so it compares runs with the same thread count.")
    if len(table.countries) > 1 and block in (None, "Sustainability"):
        parts.append(f"Emissions use the grid intensities of several countries ({', '.join(sorted(table.countries))}): "
                     "compare energy, not emissions.")
    return " ".join(parts)


def blocks_of(metrics: list[Metric]) -> list[tuple[str, list[Metric]]]:
    """(block, its metrics) in the report's block order, non-empty blocks only."""
    return [(b, [m for m in metrics if m.block == b]) for b in BLOCKS if any(m.block == b for m in metrics)]


def to_markdown(table: GroupTable, metrics: list[Metric]) -> str:
    """One markdown table per block, then the comparison against the baseline."""
    lines = [f"**{table.title}**", "", caption(table), ""]
    for block, ms in blocks_of(metrics):
        exps = {m.name: column_exponent(table.mean[m.name]) for m in ms}
        head = ["variant", "n"] + [header(m, exps[m.name], False) for m in ms] + ["rank", "failed", "diverged"]
        lines += [f"*{block}*", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for v in table.mean.index:
            rank = f"{table.ranks.at[v, block]:.0f}" if block in table.ranks and pd.notna(table.ranks.at[v, block]) else "–"
            cells = [v, str(table.n[v])] + [_cell(table, v, m, exps[m.name], False) for m in ms]
            lines.append("| " + " | ".join(cells + [rank, str(table.failed[v]), str(table.diverged[v])]) + " |")
        lines.append("")
    lines += comparison_markdown(table, metrics)
    return "\n".join(lines) + "\n"


def _p(value: float) -> str:
    if not math.isfinite(value):
        return "–"
    return f"{value:.2g}" if value >= 1e-3 else f"{value:.1e}"


def _delta(c: Comparison, exponent: int) -> tuple[str, str]:
    """(difference, [low, high]) at one decimal place set by two significant digits of the CI half-width."""
    scale = 10.0 ** exponent
    half = (c.ci_high - c.ci_low) / 2 / scale if math.isfinite(c.ci_high - c.ci_low) else math.nan
    places = decimals(c.mean_diff / scale, half)
    if not math.isfinite(half):
        return number(c.mean_diff / scale, places), "–"
    return (f"{c.mean_diff / scale:+.{max(places, 0)}f}",
            f"[{number(c.ci_low / scale, places)}, {number(c.ci_high / scale, places)}]")


def comparison_rows(table: GroupTable, metrics: list[Metric]) -> list[tuple[Metric, Comparison, int]]:
    """(metric, comparison, column exponent) of every variant against the baseline."""
    return [(m, c, column_exponent(table.mean[m.name])) for m in metrics for c in table.comparisons.get(m.name, [])
            if c.n > 0]


def comparison_markdown(table: GroupTable, metrics: list[Metric]) -> list[str]:
    if table.baseline is None:
        return ["*No comparison: the baseline variant is not in this group.*", ""]
    lines = [f"*Difference against {table.baseline}* — paired by seed; 95 % CI of the paired t-test; p-values of "
             "the paired t-test and the exact Wilcoxon signed-rank test, Holm-corrected across the variants; "
             "seeds a paired t-test needs to detect this difference with 80 % power.", "",
             "| metric | variant | pairs | Δ | 95 % CI | p (t, Holm) | p (Wilcoxon, Holm) | seeds for 80 % power |",
             "|---|---|---|---|---|---|---|---|"]
    for m, c, exp in comparison_rows(table, metrics):
        delta, ci = _delta(c, exp)
        seeds = "–" if math.isnan(c.seeds_needed) else ("> 10000" if math.isinf(c.seeds_needed) else f"{c.seeds_needed:.0f}")
        lines.append(f"| {header(m, exp, False)} | {c.variant} | {c.n} | {delta} | {ci} | {_p(c.p_t_holm)} | "
                     f"{_p(c.p_wilcoxon_holm)} | {seeds} |")
    return lines + [""]


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (pandas' Styler leaves `_` in headers unescaped)."""
    text = re.sub(r"([_%&#$])", r"\\\1", text).replace("~", r"\textasciitilde{}").replace("^", r"\^{}")
    return text.replace("±", r"$\pm$").replace(TIE, r"$^\dagger$").replace("≈", r"$\approx$")


def _fit(tabular: list[str]) -> list[str]:
    """Scale a tabular down to the text width when it is wider (never up): graphicx's \\resizebox."""
    return [r"\resizebox{\ifdim\width>\linewidth\linewidth\else\width\fi}{!}{%", *tabular, "}"]


def to_latex(table: GroupTable, metrics: list[Metric]) -> str:
    """One booktabs table per block (fitted to the text width), then the comparison table. Needs the
    booktabs and graphicx packages."""
    out = []
    for block, ms in blocks_of(metrics):
        exps = {m.name: column_exponent(table.mean[m.name]) for m in ms}
        tabular = [r"\begin{tabular}{l r " + "c" * len(ms) + " r r r}", r"\toprule",
                   "Variant & $n$ & " + " & ".join(header(m, exps[m.name], True) for m in ms)
                   + r" & Rank & Failed & Diverged \\", r"\midrule"]
        for v in table.mean.index:
            rank = f"{table.ranks.at[v, block]:.0f}" if block in table.ranks and pd.notna(table.ranks.at[v, block]) else "--"
            cells = [latex_escape(v), str(table.n[v])] + [_cell(table, v, m, exps[m.name], True) for m in ms]
            tabular.append(" & ".join(cells + [rank, str(table.failed[v]), str(table.diverged[v])]) + r" \\")
        tabular += [r"\bottomrule", r"\end{tabular}"]
        out += [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(caption(table, block))}}}",
                rf"\label{{tab:{table.slug}-{block.lower()}}}", *_fit(tabular), r"\end{table}", ""]
    if table.baseline is not None and table.comparisons:
        tabular = [r"\begin{tabular}{l l r r c r r r}", r"\toprule",
                   r"Metric & Variant & Pairs & $\Delta$ & 95\,\% CI & $p_t$ (Holm) & $p_W$ (Holm) & Seeds \\",
                   r"\midrule"]
        for m, c, exp in comparison_rows(table, metrics):
            delta, ci = _delta(c, exp)
            seeds = "--" if math.isnan(c.seeds_needed) else ("$>10^4$" if math.isinf(c.seeds_needed) else f"{c.seeds_needed:.0f}")
            tabular.append(" & ".join([header(m, exp, True), latex_escape(c.variant), str(c.n), f"${delta}$",
                                       f"${ci}$" if ci != "–" else "--", _p(c.p_t_holm).replace("–", "--"),
                                       _p(c.p_wilcoxon_holm).replace("–", "--"), seeds]) + r" \\")
        tabular += [r"\bottomrule", r"\end{tabular}"]
        note = (f"{table.title}: difference against {table.baseline}, paired by seed. 95 % CI of the paired t-test; "
                "p-values of the paired t-test and the exact Wilcoxon signed-rank test, Holm-corrected across the "
                "variants; seeds a paired t-test needs for 80 % power at the observed difference.")
        out += [r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(note)}}}",
                rf"\label{{tab:{table.slug}-vs-{re.sub(r'[^A-Za-z0-9]+', '-', table.baseline)}}}", *_fit(tabular),
                r"\end{table}", ""]
    return "\n".join(out)


def to_csv(table: GroupTable, metrics: list[Metric]) -> str:
    """Full precision: per variant, mean, std and (against the baseline) the paired statistics."""
    columns: dict[str, pd.Series] = {k: pd.Series(v, index=table.mean.index) for k, v in table.key.items()}
    columns.update(n=table.n, failed=table.failed, diverged=table.diverged)
    fields = ("n", "mean_diff", "ci_low", "ci_high", "p_t", "p_wilcoxon", "p_t_holm", "p_wilcoxon_holm", "seeds_needed")
    for m in metrics:
        columns[f"{m.name}_mean"], columns[f"{m.name}_std"] = table.mean[m.name], table.std[m.name]
        comparisons = table.comparisons.get(m.name, [])
        for f in fields if comparisons else ():
            columns[f"{m.name}_vs_{table.baseline}_{f}"] = pd.Series({c.variant: getattr(c, f) for c in comparisons},
                                                                     dtype=float)
    for b in table.ranks:
        columns[f"rank_{b.lower()}"] = table.ranks[b]
    frame = pd.DataFrame(columns, index=table.mean.index)
    return frame.rename_axis("variant").reset_index().to_csv(index=False)


def sweep_markdown(stats: pd.DataFrame, x: str, metric: Metric) -> str:
    xs = list(dict.fromkeys(stats.index.get_level_values("x")))
    lines = [f"**{metric.title} vs {x}** — mean ± std over seeds (n)", "",
             "| variant | " + " | ".join(xs) + " |", "|" + "---|" * (len(xs) + 1)]
    for variant in dict.fromkeys(stats.index.get_level_values("variant")):
        cells = []
        for value in xs:
            m, s, n = stats.loc[(variant, value)]
            cells.append("–" if pd.isna(m) else f"{m:{metric.fmt}} ± {0 if pd.isna(s) else s:{metric.fmt}} ({int(n)})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


WRITERS = {"md": (to_markdown, "md"), "tex": (to_latex, "tex"), "csv": (to_csv, "csv")}
FORMAT_ALIASES = {"markdown": "md", "latex": "tex", "md": "md", "tex": "tex", "csv": "csv"}
