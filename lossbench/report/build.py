"""`lossbench report`: tables (per task, group and format), figures, `index.md` and the self-contained
`index.html` (html.py) from a results folder.

Reads only Parquet rows (`load_runs`, `load_history`). Runs of different tasks get separate tables with
their task's own metrics (catalogue.py).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from lossbench import LossbenchError
from lossbench.report.aggregate import GroupTable, aggregate, sweep_table
from lossbench.report.catalogue import check_metric_names, columns_of, metrics_of, task_targets
from lossbench.report.formats import FORMAT_ALIASES, sweep_markdown, to_csv, to_markdown
from lossbench.report.latex import to_latex
from lossbench.report.page import Sources, Sweep
from lossbench.report.tuning import to_markdown as tuning_markdown
from lossbench.report.tuning import tuning_tables
from lossbench.results import load_history, load_runs
from lossbench.schema import BLOCKS
from lossbench.statuses import RunStatus
from lossbench.store import check_writable
from lossbench.tasks.registry import task_class

WRITERS = {"md": (to_markdown, "md"), "tex": (to_latex, "tex"), "csv": (to_csv, "csv")}


@dataclass
class Report:
    """What `build_report` wrote: the group tables, with --x the metric-vs-config table (markdown), with
    --across the rankings (markdown, as index.md shows them), and the HTML page where asked for."""

    tables: list[GroupTable]
    sweep: str | None = None
    rankings: str | None = None
    html: Path | None = None


def build_report(
    results_dir: Path,
    out: Path,
    group_by: list[str],
    metric_names: list[str] | None = None,
    formats: list[str] | None = None,
    table: str = "all",
    x: str | None = None,
    split: str | None = None,
    baseline: str | None = None,
    across: str | None = None,
) -> Report:
    """Write tables (per task, group and format), figures, `index.md` and `index.html` under `out`; raise
    LossbenchError (one line) on bad arguments or when there is nothing to report. Every variant is
    compared with `baseline` (default: `ce`, where a group has it), paired by seed. With `across` (a
    column, e.g. dataset) the variants are also ranked over that column's groups (across.py)."""
    results_dir, out = Path(results_dir), Path(out)  # callers pass config strings too (test_lm: cfg.results_dir)
    formats = formats or ["md", "tex", "csv", "html"]
    bad = [f for f in formats if f not in FORMAT_ALIASES]
    if bad:
        raise LossbenchError(f"unknown format '{bad[0]}'; choose from: markdown (md), latex (tex), csv, html")
    chosen = list(dict.fromkeys(FORMAT_ALIASES[f] for f in formats))
    if table != "all" and table.capitalize() not in BLOCKS:
        raise LossbenchError(f"unknown table '{table}'; choose one of: all, performance, interpretability, sustainability")
    if split and not x:
        raise LossbenchError(f"--split {split}: needs --x (it splits the lines of the metric-vs-config table)")
    if out.exists() and not out.is_dir():
        raise LossbenchError(f"--out {out}: exists and is not a folder; name a folder for the report")
    check_writable(out, "--out")
    runs = load_runs(results_dir)
    if runs.empty:
        raise LossbenchError(f"no result rows under {results_dir / 'runs'}")
    if across:
        if across not in runs.columns:
            raise LossbenchError(f"--across {across}: not a column of the results (e.g. dataset, backbone, optim)")
        group_by = [*group_by, across] if across not in group_by else group_by
    runs["task_target"] = task_targets(runs)
    tasks = {target: task_class(target) for target in sorted(runs["task_target"].unique())}
    if metric_names:
        check_metric_names(metric_names, list(tasks.values()))
    block = None if table == "all" else table.capitalize()
    tables: list[GroupTable] = []
    for target, task_runs in runs.groupby("task_target", sort=True):
        metrics = metrics_of(tasks[target], metric_names, block)
        if metrics and task_runs.status.eq(RunStatus.COMPLETED).any():
            tables += aggregate(task_runs, group_by, metrics, tasks[target], baseline or "ce")
    variants = {v for t in tables for v in t.mean.index}
    if baseline is not None and baseline not in variants and variants:
        raise LossbenchError(f"--baseline {baseline}: no completed runs of that variant; choose one of: "
                             f"{', '.join(sorted(variants))}")
    if not tables:
        first = next(iter(tasks.values()))
        aggregate(runs, group_by, metrics_of(first), first)  # raises: no completed runs (with the status counts)
    from lossbench.report.curves import sweep_figure  # matplotlib only when figures are made
    from lossbench.report.figures import group_figures
    from lossbench.report.palette import Palette, report_order

    palette = Palette.of(report_order(tables, {t.task: t.task.report.headline for t in tables}))
    history = load_history(results_dir)  # read once, shared by every group's curves
    (out / "tables").mkdir(parents=True, exist_ok=True)
    index = [f"# lossbench report\n\nFrom `{results_dir}`: {len(runs)} runs "
             f"({', '.join(f'{v} {k}' for k, v in runs.status.value_counts().items())}).\n"]
    if "html" in chosen:
        index.append("The same report as one page (tables, figures, the runs behind every number): "
                     "[index.html](index.html)\n")
    figures = []
    for t in tables:
        index.append(f"\n## {t.title}\n")
        for fmt in (f for f in chosen if f in WRITERS):
            writer, ext = WRITERS[fmt]
            path = out / "tables" / f"{t.slug}_{table}.{ext}"
            path.write_text(writer(t, t.metrics))
            index.append(f"- table ({fmt}): [{path.relative_to(out)}]({path.relative_to(out)})")
        if "md" in chosen:
            index.append("\n" + to_markdown(t, t.metrics))
        figures.append(group_figures(t, history, out / "figures", palette))
        index += figure_lines(figures[-1], out)
    rankings, views, swept = None, [], None
    if across:
        from lossbench.report.across import across_report

        lines, views = across_report(tables, across, metric_names, baseline or "ce", palette, out)
        rankings = "\n".join(lines) + "\n"
        index += [f"\n# Ranking across {across}\n", *lines]
    sweep = None
    if x:
        first = next(iter(tasks.values()))
        metric = columns_of(first)[metric_names[0] if metric_names else first.report.metrics[0]]
        stats = sweep_table(runs, x, metric, split)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{metric.name}-vs-{x}")
        sweep = sweep_markdown(stats, x, metric)
        (out / "tables" / f"{slug}.md").write_text(sweep)
        stats.reset_index().to_csv(out / "tables" / f"{slug}.csv", index=False)
        index += [f"\n## {metric.title} vs {x}\n", sweep]
        swept = Sweep(x, metric, stats, sweep_figure(stats, x, metric, out / "figures" / slug))
        for ext, path in swept.paths.items():
            index.append(f"- figure ({ext}): [{path.relative_to(out)}]({path.relative_to(out)})")
    tuned_tables = tuning_tables(results_dir)
    for protocol, tuned in tuned_tables:
        path = out / "tables" / f"tuning_{protocol['protocol']}.csv"
        tuned.to_csv(path, index=False)
        index += [f"\n## Tuning (protocol {protocol['protocol']})\n", tuning_markdown(protocol, tuned),
                  f"- table (csv): [{path.relative_to(out)}]({path.relative_to(out)})"]
    html = None
    if "html" in chosen:
        from lossbench.report.html import write_html

        html = write_html(Sources(results_dir, runs, tables, figures, history, palette, views, swept, tuned_tables),
                          out)
    (out / "index.md").write_text("\n".join(index) + "\n")
    return Report(tables, sweep, rankings, html)


def figure_lines(figures: list, out: Path) -> list[str]:
    """index.md lines of figures: links and the PNG where drawn (with its note), else why not."""
    lines = []
    for f in figures:
        if not f.paths:
            lines.append(f"- {f.name}: {f.note}")
            continue
        links = ", ".join(f"[{ext}]({p.relative_to(out)})" for ext, p in f.paths.items())
        lines.append(f"- {f.name}: {links}" + (f" ({f.note})" if f.note else ""))
        if "png" in f.paths:
            lines.append(f"\n  ![{f.name}]({f.paths['png'].relative_to(out)})\n")
    return lines
