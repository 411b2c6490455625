"""Table formats of a group: markdown, booktabs LaTeX and CSV (and the markdown of a metric-vs-config
table). Rounding happens here and nowhere else."""

from __future__ import annotations

import re

import pandas as pd

from lossbench.report.aggregate import GroupTable, Metric, best_variants
from lossbench.schema import BLOCKS


def _cell(table: GroupTable, variant: str, metric: Metric, latex: bool) -> str:
    mean, std = table.mean.at[variant, metric.name], table.std.at[variant, metric.name]
    if pd.isna(mean):
        return "–"
    number = _latex_number if latex else (lambda v: f"{v:{metric.fmt}}")
    text = number(mean) if not latex else number(f"{mean:{metric.fmt}}")
    if not pd.isna(std):
        text += (r" \pm " + number(f"{std:{metric.fmt}}")) if latex else f" ± {std:{metric.fmt}}"
    if variant in best_variants(table, metric):
        text = rf"\mathbf{{{text}}}" if latex else f"**{text}**"
    return f"${text}$" if latex else text


def _latex_number(text: str) -> str:
    """1.84e-06 -> 1.84\\times10^{-6} (math mode)."""
    mantissa, e, exponent = text.partition("e")
    return rf"{mantissa}\times10^{{{int(exponent)}}}" if e else text


def to_markdown(table: GroupTable, metrics: list[Metric]) -> str:
    blocks = [b for b in BLOCKS if any(m.block == b for m in metrics)]
    header = ["variant", "n"] + [m.title for m in metrics] + [f"rank {b[:4].lower()}." for b in blocks] + ["failed", "diverged"]
    lines = [f"**{table.title}** — mean ± std over seeds (n); best in bold; ranks per block (1 = best)", "",
             "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for v in table.mean.index:
        cells = [v, str(table.n[v])] + [_cell(table, v, m, False) for m in metrics]
        cells += [f"{table.ranks.at[v, b]:.0f}" if b in table.ranks else "–" for b in blocks]
        cells += [str(table.failed[v]), str(table.diverged[v])]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def latex_escape(text: str) -> str:
    """Escape LaTeX's special characters (pandas' Styler leaves `_` in headers unescaped)."""
    return re.sub(r"([_%&#$])", r"\\\1", text).replace("~", r"\textasciitilde{}").replace("^", r"\^{}")


def to_latex(table: GroupTable, metrics: list[Metric]) -> str:
    blocks = [b for b in BLOCKS if any(m.block == b for m in metrics)]
    spans = [(b, [m for m in metrics if m.block == b]) for b in blocks]
    cols = "l r " + " ".join("c" * len(ms) for _, ms in spans) + " r r"
    head_blocks = " & ".join(rf"\multicolumn{{{len(ms)}}}{{c}}{{{b}}}" for b, ms in spans)
    rules, start = [], 3
    for _, ms in spans:
        rules.append(rf"\cmidrule(lr){{{start}-{start + len(ms) - 1}}}")
        start += len(ms)
    lines = [
        r"\begin{table}[t]", r"\centering", rf"\caption{{{latex_escape(table.title)}: mean $\pm$ std over seeds}}",
        rf"\label{{tab:{table.slug}}}", r"\begin{tabular}{" + cols + "}", r"\toprule",
        rf" & & {head_blocks} & & \\", " ".join(rules),
        "Variant & $n$ & " + " & ".join(latex_escape(m.title) for m in metrics) + r" & Failed & Diverged \\",
        r"\midrule",
    ]
    for v in table.mean.index:
        cells = [latex_escape(v), str(table.n[v])] + [_cell(table, v, m, True) for m in metrics]
        lines.append(" & ".join(cells + [str(table.failed[v]), str(table.diverged[v])]) + r" \\")
    lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}"]
    return "\n".join(lines) + "\n"


def to_csv(table: GroupTable, metrics: list[Metric]) -> str:
    frame = pd.DataFrame(index=table.mean.index)
    for k, v in table.key.items():
        frame[k] = v
    frame["n"], frame["failed"], frame["diverged"] = table.n, table.failed, table.diverged
    for m in metrics:
        frame[f"{m.name}_mean"], frame[f"{m.name}_std"] = table.mean[m.name], table.std[m.name]
    for b in table.ranks:
        frame[f"rank_{b.lower()}"] = table.ranks[b]
    return frame.rename_axis("variant").reset_index().to_csv(index=False)


WRITERS = {"md": (to_markdown, "md"), "tex": (to_latex, "tex"), "csv": (to_csv, "csv")}
FORMAT_ALIASES = {"markdown": "md", "latex": "tex", "md": "md", "tex": "tex", "csv": "csv"}


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
