r"""Booktabs LaTeX tables a paper can `\input` with a minimal preamble:

    \documentclass{article}
    \usepackage{booktabs}

Every table is typeset at `\small` with 4 pt column padding and never scaled: a block too wide for the text width (345 pt, the
article class at 10 pt) is split into tables of fewer columns, each repeating the variant column, and one
too long for a page is split into tables of fewer rows ("continued"). Widths and heights are estimated
from the characters of each column (Computer Modern at 9 pt, a little generously); the `latex` tests compile
the output with exactly this preamble and fail on any overfull box or float too large for its page. The
output is ASCII: signs such as < and ± are written as math (no font encoding or inputenc needed).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field

from lossbench.report.aggregate import GroupTable, Metric
from lossbench.report.captions import NOT_APPLICABLE, caption, family_note
from lossbench.report.formats import (
    blocks_of,
    column_exponent,
    comparison_rows,
    delta,
    latex_escape,
    mark,
    mean_std,
    omnibus_text,
    p_text,
    rank_text,
    seeds_text,
    significant,
)

PREAMBLE = "\\documentclass{article}\n\\usepackage{booktabs}\n"  # the minimal preamble docs/report.md states
LINEWIDTH_PT = 345.0  # \linewidth of article at 10 pt
TEXTHEIGHT_PT = 550.0  # \textheight of article at 10 pt
COLSEP_PT = 8.0  # 2 \tabcolsep, set to 4 pt in every table (LaTeX's default is 6 pt)
ROW_PT = 11.5  # one row at \small (\baselineskip 11 pt, plus rule spacing spread over the rows)
CAPTION_CHARS = 68  # characters per caption line at \small over LINEWIDTH_PT

Row = tuple[str, list[str]]


@dataclass
class Grid:
    """A table before typesetting: a key column, body columns, rows (key, cells) or section rows (a
    string spanning the row), and footer rows after a rule (shown with the last rows only)."""

    caption: str  # plain text, escaped here
    label: str
    key: str
    headers: list[str]
    rows: list[Row | str]
    footer: list[Row] = field(default_factory=list)
    short: str = ""  # caption of a continued part


def _chars(plain: str) -> float:
    """Width (pt) of plain characters in Computer Modern at 9 pt: digits and most lowercase 4.6, narrow
    signs 2.6, capitals 6.6, spaces 3."""
    narrow, wide = set(".,:;'!|()[]-ijlrtf/"), set("mwMW%")
    return sum(2.6 if c in narrow else 3.0 if c == " " else 7.2 if c in wide else 6.6 if c.isupper() else 4.6
               for c in plain)


def width(text: str) -> float:
    """Estimated typeset width (pt) of one cell's LaTeX at \\small (the widest line of a stacked header),
    a little generous: math spaces are dropped, binary signs such as \\pm count 11.5 pt."""
    if "\\\\" in text:
        inner = re.sub(r"\\(begin|end)\{tabular\}(\[b\])?(\{@\{\}c@\{\}\})?", "", text)
        return max(width(line) for line in inner.split("\\\\"))
    total = 0.0
    for i, part in enumerate(text.split("$")):
        bold = 1.1 if "\\mathbf" in part or "\\textbf" in part else 1.0
        signs = len(re.findall(r"\\(pm|times|geq|leq|approx)\b", part)) * 11.5 + part.count("\\Delta") * 7.5
        part = re.sub(r"\^\{?\\dagger\}?", "'", re.sub(r"\\(pm|times|geq|leq|approx|Delta)\b", "", part))
        part = re.sub(r"\\[a-zA-Z]+|[{}^_]|\\,", "", part).replace("--", "-")
        if i % 2:  # math: spaces vanish; minus and plus are 7 pt signs; a comma is followed by a thin space
            signs += 7.8 * (part.count("-") + part.count("+")) + 1.7 * part.count(",")
            part = part.replace(" ", "").replace("-", "").replace("+", "")
        total += bold * (_chars(part) + signs)
    return 1.05 * total


def _stack(title: str, unit: str) -> str:
    """A header of two lines (title, [unit]) in a nested tabular: no package needed."""
    return rf"\begin{{tabular}}[b]{{@{{}}c@{{}}}}{title}\\{{}}[{unit}]\end{{tabular}}" if unit else title


def metric_header(metric: Metric, exponent: int) -> str:
    """A metric's column header in LaTeX: its label, the column's power of ten and its unit."""
    scale = f"$10^{{{exponent}}}$" if exponent else ""
    unit = " ".join(part for part in (scale, latex_escape(metric.unit or "")) if part)
    return _stack(latex_escape(metric.label or metric.name), unit)


def _column_chunks(grid: Grid) -> list[list[int]]:
    """Body columns per table: as many as fit the text width beside the key column."""
    data = [row for row in grid.rows + grid.footer if not isinstance(row, str)]
    columns = list(zip(*(cells for _, cells in data))) if data else [() for _ in grid.headers]
    key_width = max(width(k) for k in [grid.key] + [key for key, _ in data]) + COLSEP_PT
    widths = [max(width(h), *(width(c) for c in col)) + COLSEP_PT for h, col in zip(grid.headers, columns)]
    chunks, current, used = [], [], key_width
    for i, w in enumerate(widths):
        if current and used + w > LINEWIDTH_PT:
            chunks.append(current)
            current, used = [], key_width
        current.append(i)
        used += w
    return chunks + [current] if current else chunks


def _rows_per_table(text: str, header_lines: int) -> int:
    caption_pt = (math.ceil(len(text) / CAPTION_CHARS) + 2) * 11.0
    return max(5, int((TEXTHEIGHT_PT - caption_pt - (header_lines + 3) * ROW_PT) // ROW_PT))


def _row_chunks(grid: Grid, header_lines: int) -> list[list[Row | str]]:
    """Rows per table, room left for the footer; a part that starts inside a section repeats its title."""
    limit = _rows_per_table(grid.caption, header_lines) - len(grid.footer) - 1
    later = _rows_per_table(grid.short or grid.caption, header_lines) - len(grid.footer) - 1
    chunks: list[list[Row | str]] = []
    current: list[Row | str] = []
    section = None
    for row in grid.rows:
        if len(current) >= limit or (isinstance(row, str) and len(current) >= limit - 1):
            chunks.append(current)
            current, limit = [], later
            if section is not None and not isinstance(row, str):
                current.append(f"{section} (continued)")
        section = row if isinstance(row, str) else section
        current.append(row)
    return chunks + [current]


def render(grid: Grid) -> str:
    """The grid as one or more `table` floats, each fitting the text width and height."""
    header_lines = 2 if any("\\\\" in h for h in grid.headers) else 1
    row_chunks = _row_chunks(grid, header_lines)
    parts = [(c, rows, r == len(row_chunks) - 1) for c in _column_chunks(grid) for r, rows in enumerate(row_chunks)]
    out = []
    for i, (chunk, rows, last) in enumerate(parts):
        text = grid.caption if i == 0 else (grid.short or grid.caption)
        if len(parts) > 1:
            text += f" (part {i + 1} of {len(parts)})"
        lines = [r"\begin{table}[tbp]", r"\centering", r"\small", r"\setlength{\tabcolsep}{4pt}",
                 rf"\caption{{{latex_escape(text)}}}",
                 rf"\label{{{grid.label}{'' if i == 0 else f'-part{i + 1}'}}}",
                 r"\begin{tabular}{l" + "r" * len(chunk) + "}", r"\toprule",
                 " & ".join([grid.key] + [grid.headers[j] for j in chunk]) + r" \\", r"\midrule"]
        for row in rows:
            if isinstance(row, str):
                lines.append(rf"\multicolumn{{{len(chunk) + 1}}}{{l}}{{\emph{{{row}}}}} \\")
            else:
                lines.append(" & ".join([row[0]] + [row[1][j] for j in chunk]) + r" \\")
        if grid.footer and last:
            lines.append(r"\midrule")
            lines += [" & ".join([key] + [cells[j] for j in chunk]) + r" \\" for key, cells in grid.footer]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{table}", ""]
        out.append("\n".join(lines))
    return "\n".join(out)


def _cell(table: GroupTable, variant: str, metric: Metric, exponent: int) -> str:
    mean, std = table.mean.at[variant, metric.name], table.std.at[variant, metric.name]
    if math.isnan(float(mean)):
        return NOT_APPLICABLE if metric.distance_heads_only else "--"
    m, s = mean_std(float(mean), float(std), exponent)
    text = f"{m} \\pm {s}" if s is not None else m
    return "$" + {"bold": rf"\mathbf{{{text}}}", "tie": rf"{text}^{{\dagger}}", None: text}[
        mark(table, variant, metric)] + "$"


def block_grid(table: GroupTable, block: str, metrics: list[Metric]) -> Grid:
    """One block: mean $\\pm$ std per metric, rank, failures (only where a run failed or diverged); the
    omnibus (repeated-measures ANOVA) p-value of each ranked metric in the footer."""
    exps = {m.name: column_exponent(table.mean[m.name]) for m in metrics}
    counts = bool(table.failed.sum() or table.diverged.sum())
    headers = ["$n$"] + [metric_header(m, exps[m.name]) for m in metrics] + ["Rank"] + (["Failed", "Diverged"] * counts)
    rows: list[Row | str] = []
    for v in table.mean.index:
        cells = [str(table.n[v])] + [_cell(table, v, m, exps[m.name]) for m in metrics]
        cells += [rank_text(table, v, block) or "--"] + ([str(table.failed[v]), str(table.diverged[v])] * counts)
        rows.append((latex_escape(v), cells))
    footer = []
    if len(table.mean.index) > 1 and any(omnibus_text(table, m) != "–" for m in metrics):
        footer = [("ANOVA $p$", [""] + [latex_escape(omnibus_text(table, m)) for m in metrics]
                   + [""] * (1 + 2 * counts))]
    text = caption(table, block) + ("" if counts else " No run failed or diverged.")
    return Grid(text, f"tab:{table.slug}-{block.lower()}", "Variant", headers, rows, footer,
                short=f"{table.title} - {block}, continued.")


def comparison_grid(table: GroupTable, metrics: list[Metric]) -> Grid | None:
    """The difference against the baseline, one section per metric; None for a lone variant."""
    found = comparison_rows(table, metrics)
    if table.baseline is None or not found:
        return None
    rows: list[Row | str] = []
    previous = None
    for m, c, exp in found:
        if m.name != previous:
            flat = metric_header(m, exp).replace(r"\begin{tabular}[b]{@{}c@{}}", "").replace(r"\end{tabular}", "")
            rows.append(flat.replace(r"\\{}[", " ["))
            previous = m.name
        d, low, high = delta(c, exp)
        d = rf"$\mathbf{{{d}}}$" if significant(table, m, c) else f"${d}$"
        rows.append((latex_escape(c.variant), [str(c.n), d, f"$[{low}, {high}]$" if low else "--",
                                               latex_escape(p_text(c.p_t_holm)), latex_escape(p_text(c.p_wilcoxon_holm)),
                                               latex_escape(seeds_text(c))]))
    note = f"{table.title}: difference against {table.baseline}, {family_note(table)}"
    slug = re.sub(r"[^A-Za-z0-9]+", "-", table.baseline)
    return Grid(note, f"tab:{table.slug}-vs-{slug}", "Variant",
                ["$n$", r"$\Delta$", r"95\,\% CI", "$p_t$", "$p_W$", "$n_{80}$"], rows,
                short=f"{table.title}: difference against {table.baseline}, continued.")


def to_latex(table: GroupTable, metrics: list[Metric]) -> str:
    """One booktabs table per block (split to fit the page), then the comparison table. Needs booktabs."""
    grids = [block_grid(table, block, ms) for block, ms in blocks_of(metrics)]
    grids.append(comparison_grid(table, metrics))
    return "\n".join(render(g) for g in grids if g is not None)
