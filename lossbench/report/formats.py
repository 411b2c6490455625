"""Table formats of a group: markdown and CSV here, booktabs LaTeX in latex.py; each with the Performance /
Interpretability / Sustainability blocks as separate tables and the paired comparison against the
baseline; and the markdown of a metric-vs-config table. Rounding happens here and nowhere else.

Numbers: mean and std are rounded to the same decimal place, set by two significant digits of the std
(three of the mean when there is no spread); each column has one power-of-ten scale, shown in its header.
p-values as papers print them: two significant digits, `< 0.001` below that.
"""

from __future__ import annotations

import math
import re

import pandas as pd

from lossbench.report.aggregate import GroupTable, Metric, best_variants, tied_with_best
from lossbench.report.captions import NOT_APPLICABLE, TIE, caption, family_note
from lossbench.report.stats import MAX_SEEDS, Comparison, declared
from lossbench.schema import BLOCKS


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


def mark(table: GroupTable, variant: str, metric: Metric) -> str | None:
    """"bold", "tie" or None: the mark of one cell (stats.Standing)."""
    if variant in best_variants(table, metric):
        return "bold"
    return "tie" if variant in tied_with_best(table, metric) else None


def cell_text(table: GroupTable, variant: str, metric: Metric, exponent: int) -> tuple[str, str | None]:
    """(`mean ± std` as text, or `–` / n/a without a value; its mark: "bold", "tie" or None)."""
    mean, std = table.mean.at[variant, metric.name], table.std.at[variant, metric.name]
    if pd.isna(mean):
        return NOT_APPLICABLE if metric.distance_heads_only else "–", None
    m, s = mean_std(float(mean), float(std), exponent)
    return f"{m} ± {s}" if s is not None else m, mark(table, variant, metric)


def _cell(table: GroupTable, variant: str, metric: Metric, exponent: int) -> str:
    text, marked = cell_text(table, variant, metric, exponent)
    return {"bold": f"**{text}**", "tie": f"{text} {TIE}", None: text}[marked]


def p_text(value: float) -> str:
    """A p-value as papers print it: `< 0.001`, else two significant digits; `–` when undefined."""
    if not math.isfinite(value):
        return "–"
    return "< 0.001" if value < 1e-3 else f"{value:.2g}"


def p_equals(value: float) -> str:
    """`p = 0.034`, `p < 0.001` or `p undefined`."""
    text = p_text(value)
    return "p undefined" if text == "–" else (f"p {text}" if text.startswith("<") else f"p = {text}")


def seeds_text(c: Comparison) -> str:
    """Seeds needed for 80 % power: `–` undefined, `> 100` beyond the search's cap."""
    if math.isnan(c.seeds_needed):
        return "–"
    return f"> {MAX_SEEDS}" if math.isinf(c.seeds_needed) else f"{c.seeds_needed:.0f}"


def omnibus_text(table: GroupTable, metric: Metric) -> str:
    """ANOVA p of a ranked metric (`–`: not ranked, or two variants: no omnibus test)."""
    test = table.omnibus.get(metric.name)
    return p_text(test.p) if test is not None and table.ranked(metric) and test.k > 2 else "–"


def rank_text(table: GroupTable, variant: str, block: str) -> str | None:
    """The variant's mean rank over the block's ranked metrics, one decimal (None: not ranked)."""
    value = table.ranks.at[variant, block] if block in table.ranks else math.nan
    return None if pd.isna(value) else f"{value:.1f}"


def blocks_of(metrics: list[Metric]) -> list[tuple[str, list[Metric]]]:
    """(block, its metrics) in the report's block order, non-empty blocks only."""
    return [(b, [m for m in metrics if m.block == b]) for b in BLOCKS if any(m.block == b for m in metrics)]


def to_markdown(table: GroupTable, metrics: list[Metric]) -> str:
    """One markdown table per block (last row: the omnibus ANOVA p per ranked metric), then the comparison against
    the baseline."""
    lines = [f"**{table.title}**", "", caption(table), ""]
    several = len(table.mean.index) > 1
    for block, ms in blocks_of(metrics):
        exps = {m.name: column_exponent(table.mean[m.name]) for m in ms}
        head = ["variant", "n"] + [header(m, exps[m.name], False) for m in ms] + ["rank", "failed", "diverged"]
        lines += [f"*{block}*", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for v in table.mean.index:
            cells = [v, str(table.n[v])] + [_cell(table, v, m, exps[m.name]) for m in ms]
            lines.append("| " + " | ".join(cells + [rank_text(table, v, block) or "–", str(table.failed[v]),
                                                    str(table.diverged[v])]) + " |")
        if several and any(omnibus_text(table, m) != "–" for m in ms):
            lines.append("| ANOVA p | | " + " | ".join(omnibus_text(table, m) for m in ms) + " | | | |")
        lines.append("")
    lines += comparison_markdown(table, metrics)
    return "\n".join(lines) + "\n"


def delta(c: Comparison, exponent: int) -> tuple[str, str, str]:
    """(difference, CI low, CI high) at one decimal place set by two significant digits of the CI half-width."""
    scale = 10.0 ** exponent
    half = (c.ci_high - c.ci_low) / 2 / scale if math.isfinite(c.ci_high - c.ci_low) else math.nan
    places = decimals(c.mean_diff / scale, half)
    if not math.isfinite(half):
        return number(c.mean_diff / scale, places), "", ""
    return (f"{c.mean_diff / scale:+.{max(places, 0)}f}", number(c.ci_low / scale, places),
            number(c.ci_high / scale, places))


def comparison_rows(table: GroupTable, metrics: list[Metric]) -> list[tuple[Metric, Comparison, int]]:
    """(metric, comparison, column exponent) of every variant against the baseline."""
    return [(m, c, column_exponent(table.mean[m.name])) for m in metrics for c in table.comparisons.get(m.name, [])
            if c.n > 0]


def significant(table: GroupTable, metric: Metric, c: Comparison) -> bool:
    """Declared different from the baseline: the group's omnibus test, then Holm over the V - 1 (stats.py)."""
    return declared(c, table.omnibus[metric.name])


def comparison_markdown(table: GroupTable, metrics: list[Metric]) -> list[str]:
    """The difference table against the baseline (or why there is none), as markdown lines."""
    if table.baseline is None:
        return ["*No comparison: the baseline variant is not in this group.*", ""]
    rows = comparison_rows(table, metrics)
    if not rows:
        return [f"*No comparison: {table.baseline} is the only variant.*", ""] if len(table.mean.index) < 2 else []
    lines = [f"*Difference against {table.baseline}* — {family_note(table)}", "",
             "| metric | variant | pairs | Δ | 95 % CI | p (t, Holm) | p (Wilcoxon, Holm) | seeds for 80 % power |",
             "|---|---|---|---|---|---|---|---|"]
    for m, c, exp in rows:
        d, low, high = delta(c, exp)
        d = f"**{d}**" if significant(table, m, c) else d
        lines.append(f"| {header(m, exp, False)} | {c.variant} | {c.n} | {d} | {f'[{low}, {high}]' if low else '–'} | "
                     f"{p_text(c.p_t_holm)} | {p_text(c.p_wilcoxon_holm)} | {seeds_text(c)} |")
    return lines + [""]


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (pandas' Styler leaves `_` in headers unescaped) and write the
    non-ASCII signs the report uses as commands, so the output is ASCII and needs no font encoding
    (OT1 prints `<` as an inverted exclamation mark: it goes to math)."""
    text = re.sub(r"([_%&#$])", r"\\\1", text).replace("~", r"\textasciitilde{}").replace("^", r"\^{}")
    for sign, command in SIGNS.items():
        text = text.replace(sign, command)
    return text


SIGNS = {"<": "$<$", ">": "$>$", "±": r"$\pm$", TIE: r"$^\dagger$", "≈": r"$\approx$", "–": "--", "—": "---",
         "Δ": r"$\Delta$", "×": r"$\times$", "≥": r"$\geq$", "≤": r"$\leq$", "’": "'", "²": "$^2$", "µ": r"$\mu$"}


def to_csv(table: GroupTable, metrics: list[Metric]) -> str:
    """Full precision: per variant, mean, std, mean rank, the omnibus test, the vs-best p-value and (against
    the baseline) the paired statistics with whether the difference is declared significant."""
    columns: dict[str, pd.Series] = {k: pd.Series(v, index=table.mean.index) for k, v in table.key.items()}
    columns.update(n=table.n, failed=table.failed, diverged=table.diverged)
    fields = ("n", "mean_diff", "ci_low", "ci_high", "p_t", "p_wilcoxon", "p_t_holm", "p_wilcoxon_holm", "seeds_needed")
    for m in metrics:
        columns[f"{m.name}_mean"], columns[f"{m.name}_std"] = table.mean[m.name], table.std[m.name]
        test = table.omnibus.get(m.name)
        if test is not None and test.k > 2:
            for f, value in (("anova_f", test.statistic), ("anova_p", test.p), ("friedman_chi2", test.friedman_chi2),
                             ("friedman_p", test.friedman_p)):
                columns[f"{m.name}_{f}"] = pd.Series(value, index=table.mean.index)
        st = table.standings.get(m.name)
        if st is not None:
            columns[f"{m.name}_mean_rank"] = pd.Series(st.mean_ranks, dtype=float)
            columns[f"{m.name}_vs_best_p_t_holm"] = pd.Series({c.variant: c.p_t_holm for c in st.vs_best}, dtype=float)
        comparisons = table.comparisons.get(m.name, [])
        for f in fields if comparisons else ():
            columns[f"{m.name}_vs_{table.baseline}_{f}"] = pd.Series({c.variant: getattr(c, f) for c in comparisons},
                                                                     dtype=float)
        if comparisons:
            columns[f"{m.name}_vs_{table.baseline}_significant"] = pd.Series(
                {c.variant: significant(table, m, c) for c in comparisons}, dtype=object)
    for b in table.ranks:
        columns[f"rank_{b.lower()}"] = table.ranks[b]
    frame = pd.DataFrame(columns, index=table.mean.index)
    return frame.rename_axis("variant").reset_index().to_csv(index=False)


def sweep_cells(stats: pd.DataFrame, metric: Metric) -> tuple[list[str], dict[str, list[str]]]:
    """The x values and, per variant, its cells (`mean ± std (n)`, `–` without runs) of a metric-vs-config table."""
    xs = list(dict.fromkeys(stats.index.get_level_values("x")))
    rows = {}
    for variant in dict.fromkeys(stats.index.get_level_values("variant")):
        cells = []
        for value in xs:
            m, s, n = stats.loc[(variant, value)]
            cells.append("–" if pd.isna(m) else f"{m:{metric.fmt}} ± {0 if pd.isna(s) else s:{metric.fmt}} ({int(n)})")
        rows[str(variant)] = cells
    return xs, rows


def sweep_markdown(stats: pd.DataFrame, x: str, metric: Metric) -> str:
    """The metric-vs-config table (aggregate.sweep_table) as markdown: one row per line, one column per x."""
    xs, rows = sweep_cells(stats, metric)
    lines = [f"**{metric.title} vs {x}** — mean ± std over seeds (n)", "",
             "| variant | " + " | ".join(xs) + " |", "|" + "---|" * (len(xs) + 1)]
    lines += [f"| {variant} | " + " | ".join(cells) + " |" for variant, cells in rows.items()]
    return "\n".join(lines) + "\n"


FORMAT_ALIASES = {"markdown": "md", "latex": "tex", "md": "md", "tex": "tex", "csv": "csv", "html": "html"}
