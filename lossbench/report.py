"""`lossbench report`: three-way tables (performance / interpretability / sustainability) and figures.

Reads only Parquet rows (`load_runs`, `load_history`); rounding happens here and nowhere else.
Only `completed` runs enter the numbers; failed and diverged runs are counted next to each row.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from lossbench import LossbenchError
from lossbench.store import load_history, load_runs

log = logging.getLogger(__name__)
BLOCKS = ("Performance", "Interpretability", "Sustainability")


@dataclass(frozen=True)
class Metric:
    """A reported column: where it sits, which way is better (None: no agreed direction, so it is
    shown but neither bolded nor ranked), how it is printed."""

    name: str
    label: str
    block: str
    higher_is_better: bool | None
    digits: str = ".3f"


CLASSIFICATION_METRICS = [
    Metric("test_acc", "Test acc.", "Performance", True, ".4f"),
    Metric("val_acc", "Val. acc.", "Performance", True, ".4f"),
    Metric("test_f1", "Macro-F1", "Performance", True, ".4f"),
    Metric("grad_norm_cv", "Grad-norm CV", "Performance", False),
    Metric("pc2_ev", "PC2 EV", "Interpretability", True),
    Metric("pca90", "PCA-90%", "Interpretability", False, ".1f"),
    Metric("proto_alignment", "Proto. align.", "Interpretability", True),
    Metric("nc1", "NC1", "Interpretability", False),
    Metric("energy_kwh", "Energy kWh", "Sustainability", False, ".3g"),
    Metric("emissions_kg", "kg CO2eq", "Sustainability", False, ".3g"),
    Metric("duration_s", "Duration s", "Sustainability", False, ".1f"),
    Metric("time_per_epoch_s", "s / epoch", "Sustainability", False, ".3g"),
    Metric("energy_per_point_kwh", "kWh / acc. pt", "Sustainability", False, ".3g"),
]
# Language models (Rethinking paper, Fig. 2): perplexity of the unmodified NLL, gradient stability,
# representation structure of hidden states and prototypes, energy per token. A higher PC5 EV counts
# as more structure (as PC2 EV does for vision). Effective rank has no agreed direction (high: rich,
# uncollapsed features; low: compact ones) and moves opposite to PC5 EV, so it is shown, not ranked.
LM_METRICS = [
    Metric("val_ppl", "Val. PPL", "Performance", False, ".2f"),
    Metric("train_ppl", "Train PPL", "Performance", False, ".2f"),
    Metric("grad_norm_cv", "Grad-norm CV", "Performance", False),
    Metric("grad_spikes", "Grad spikes", "Performance", False, ".1f"),
    Metric("grad_clip_rate", "Clip rate", "Performance", False),
    Metric("effective_rank", "Eff. rank", "Interpretability", None, ".1f"),
    Metric("pc5_ev", "PC5 EV", "Interpretability", True),
    Metric("proto_effective_rank", "Proto. eff. rank", "Interpretability", None, ".1f"),
    Metric("proto_pc5_ev", "Proto. PC5 EV", "Interpretability", True),
    Metric("energy_kwh", "Energy kWh", "Sustainability", False, ".3g"),
    Metric("emissions_kg", "kg CO2eq", "Sustainability", False, ".3g"),
    Metric("tokens_per_s", "Tokens / s", "Sustainability", True, ".0f"),
    Metric("energy_per_mtok_kwh", "kWh / Mtok", "Sustainability", False, ".3g"),
]
METRICS = {m.name: m for m in CLASSIFICATION_METRICS + LM_METRICS}


@dataclass(frozen=True)
class TaskView:
    """How one task is reported: its metrics, radar axes (the paper's six), and the headline metric
    of its Pareto plot and learning curve (history column, and the x axis of the curve)."""

    metrics: tuple[str, ...]
    radar: tuple[str, ...]
    headline: str
    curve_x: str


TASKS = {
    "classification": TaskView(tuple(m.name for m in CLASSIFICATION_METRICS),
                               ("test_acc", "test_f1", "pc2_ev", "pca90", "emissions_kg", "time_per_epoch_s"),
                               "test_acc", "epoch"),
    "lm": TaskView(tuple(m.name for m in LM_METRICS),
                   ("val_ppl", "train_ppl", "grad_norm_cv", "effective_rank", "pc5_ev", "emissions_kg"),
                   "val_ppl", "step"),
}


@dataclass
class GroupTable:
    """One (dataset, backbone, ...) group: per-variant mean, std, seed count, failure counts, ranks."""

    task: str
    metrics: list[Metric]
    key: dict[str, str]
    mean: pd.DataFrame  # index: variant; columns: metrics
    std: pd.DataFrame
    n: pd.Series
    failed: pd.Series
    diverged: pd.Series
    ranks: pd.DataFrame  # index: variant; columns: blocks

    @property
    def slug(self) -> str:
        return "_".join(re.sub(r"[^A-Za-z0-9.-]+", "-", str(v)) for v in self.key.values()) or "all"

    @property
    def title(self) -> str:
        return ", ".join(f"{k}={v}" for k, v in self.key.items()) or "all runs"


def variant_of(runs: pd.DataFrame) -> pd.Series:
    """`ce`, `harmonic/cosine` for heads with a distance, `harmonic/cosine+focal` for a non-default criterion."""
    label = runs["loss"].where(runs["distance"].fillna("none").eq("none"), runs["loss"] + "/" + runs["distance"])
    if "criterion" not in runs:
        return label
    criterion = runs["criterion"].fillna("ce")
    return label.where(criterion.eq("ce") | criterion.eq(runs["loss"]), label + "+" + criterion)


def select_metrics(names: list[str] | None) -> list[Metric]:
    if not names:
        return list(METRICS.values())
    unknown = [n for n in names if n not in METRICS]
    if unknown:
        raise LossbenchError(f"unknown metric '{unknown[0]}'; choose from: {', '.join(METRICS)}")
    return [METRICS[n] for n in names]


def aggregate(runs: pd.DataFrame, group_by: list[str], metrics: list[Metric], task: str = "classification") -> list[GroupTable]:
    """Mean and sample std over seeds of every metric, per group and variant (completed runs only)."""
    missing = [c for c in group_by if c not in runs.columns]
    if missing:
        raise LossbenchError(f"cannot group by '{missing[0]}'; columns include: dataset, backbone, optim, experiment")
    runs = runs.assign(variant=variant_of(runs))
    if "energy_kwh" in runs and "test_acc" in runs:
        runs["energy_per_point_kwh"] = runs["energy_kwh"] / (100.0 * runs["test_acc"])
    done = runs[runs.status == "completed"]
    if done.empty:
        counts = runs.status.value_counts().to_dict()
        raise LossbenchError(f"no completed runs to report ({', '.join(f'{v} {k}' for k, v in counts.items()) or 'none'})")
    names = [m.name for m in metrics]
    for name in names:
        done = done.assign(**{name: pd.to_numeric(done[name], errors="coerce")}) if name in done else done.assign(**{name: np.nan})
    tables = []
    for key, group in done.groupby(group_by, sort=True) if group_by else [((), done)]:
        key = key if isinstance(key, tuple) else (key,)
        everything = runs.loc[(runs[group_by] == pd.Series(key, index=group_by)).all(axis=1)] if group_by else runs
        by_variant = group.groupby("variant")
        mean, std = by_variant[names].mean(), by_variant[names].std(ddof=1)
        status = everything.groupby("variant").status.value_counts().unstack(fill_value=0)
        n = by_variant.size()
        failed = status.get("failed", pd.Series(0, index=status.index)).reindex(n.index, fill_value=0)
        diverged = status.get("diverged", pd.Series(0, index=status.index)).reindex(n.index, fill_value=0)
        tables.append(GroupTable(task, metrics, dict(zip(group_by, map(str, key))), mean, std, n, failed, diverged,
                                 _block_ranks(mean, metrics)))
    return tables


def _block_ranks(mean: pd.DataFrame, metrics: list[Metric]) -> pd.DataFrame:
    """Rank of each variant per block: mean over the block's metrics of its per-metric rank (1 = best)."""
    ranks = {}
    for block in BLOCKS:
        cols = [m for m in metrics if m.block == block and m.higher_is_better is not None and mean[m.name].notna().any()]
        if cols:
            per_metric = pd.concat([mean[m.name].rank(ascending=not m.higher_is_better, method="min") for m in cols], axis=1)
            ranks[block] = per_metric.mean(axis=1).rank(method="min")
    return pd.DataFrame(ranks, index=mean.index)


def best_variants(table: GroupTable, metric: Metric) -> set[str]:
    """Variants whose mean is the best of the column (direction-aware; ties all count)."""
    col = table.mean[metric.name].dropna()
    if col.empty or metric.higher_is_better is None:
        return set()
    best = col.max() if metric.higher_is_better else col.min()
    return set(col.index[np.isclose(col, best, rtol=1e-12, atol=0)])


def _cell(table: GroupTable, variant: str, metric: Metric, latex: bool) -> str:
    mean, std = table.mean.at[variant, metric.name], table.std.at[variant, metric.name]
    if pd.isna(mean):
        return "–"
    number = _latex_number if latex else (lambda v: f"{v:{metric.digits}}")
    text = number(mean) if not latex else number(f"{mean:{metric.digits}}")
    if not pd.isna(std):
        text += (r" \pm " + number(f"{std:{metric.digits}}")) if latex else f" ± {std:{metric.digits}}"
    if variant in best_variants(table, metric):
        text = rf"\mathbf{{{text}}}" if latex else f"**{text}**"
    return f"${text}$" if latex else text


def _latex_number(text: str) -> str:
    """1.84e-06 -> 1.84\\times10^{-6} (math mode)."""
    mantissa, e, exponent = text.partition("e")
    return rf"{mantissa}\times10^{{{int(exponent)}}}" if e else text


def to_markdown(table: GroupTable, metrics: list[Metric]) -> str:
    blocks = [b for b in BLOCKS if any(m.block == b for m in metrics)]
    header = ["variant", "n"] + [m.label for m in metrics] + [f"rank {b[:4].lower()}." for b in blocks] + ["failed", "diverged"]
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
        "Variant & $n$ & " + " & ".join(latex_escape(m.label) for m in metrics) + r" & Failed & Diverged \\",
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


@dataclass
class Report:
    """What `build_report` wrote: the group tables and, with --x, the metric-vs-config table (markdown)."""

    tables: list[GroupTable]
    sweep: str | None = None


def task_metrics(task: str, names: list[str] | None, table: str) -> list[Metric]:
    """Columns of one task's tables: its own metrics (or those of `names` that are its own), cut to
    one block unless table=all."""
    own = [METRICS[n] for n in TASKS[task].metrics]
    chosen = [m for m in select_metrics(names) if m in own] if names else own
    if table == "all":
        return chosen
    block = table.capitalize()
    return [m for m in chosen if m.block == block] or [m for m in own if m.block == block]


def build_report(
    results_dir: Path,
    out: Path,
    group_by: list[str],
    metric_names: list[str] | None = None,
    formats: list[str] | None = None,
    table: str = "all",
    x: str | None = None,
    split: str | None = None,
) -> Report:
    """Write tables (per task, group and format), figures and `index.md` under `out`.

    Classification and language-model runs get separate tables with their own metrics.
    """
    formats = formats or ["md", "tex", "csv"]
    bad = [f for f in formats if f not in FORMAT_ALIASES]
    if bad:
        raise LossbenchError(f"unknown format '{bad[0]}'; choose from: markdown (md), latex (tex), csv")
    if table != "all" and table.capitalize() not in BLOCKS:
        raise LossbenchError(f"unknown table '{table}'; choose one of: all, performance, interpretability, sustainability")
    chosen = select_metrics(metric_names)
    runs = load_runs(results_dir)
    if runs.empty:
        raise LossbenchError(f"no result rows under {results_dir / 'runs'}")
    runs["task"] = runs["task"].fillna("classification") if "task" in runs else "classification"
    tables = []
    for task, task_runs in runs.groupby("task", sort=True):
        metrics = task_metrics(str(task), metric_names, table)
        if metrics and task_runs.status.eq("completed").any():
            tables += aggregate(task_runs, group_by, metrics, str(task))
    if not tables:
        aggregate(runs, group_by, chosen)  # raises: no completed runs (with the status counts)
    from lossbench.figures import group_figures  # matplotlib only when figures are made

    history = load_history(results_dir)  # read once, shared by every group's curves
    (out / "tables").mkdir(parents=True, exist_ok=True)
    index = [f"# lossbench report\n\nFrom `{results_dir}`: {len(runs)} runs "
             f"({', '.join(f'{v} {k}' for k, v in runs.status.value_counts().items())}).\n"]
    for t in tables:
        index.append(f"\n## {t.title}\n")
        for fmt in dict.fromkeys(FORMAT_ALIASES[f] for f in formats):
            writer, ext = WRITERS[fmt]
            path = out / "tables" / f"{t.slug}_{table}.{ext}"
            path.write_text(writer(t, t.metrics))
            index.append(f"- table ({fmt}): [{path.relative_to(out)}]({path.relative_to(out)})")
        if "md" in formats or "markdown" in formats:
            index.append("\n" + to_markdown(t, t.metrics))
        for name, path in group_figures(t, runs, history, out / "figures").items():
            index.append(f"- {name}: [{path.relative_to(out)}]({path.relative_to(out)})")
            if path.suffix == ".png":
                index.append(f"\n  ![{name}]({path.relative_to(out)})\n")
    sweep = None
    if x:
        from lossbench.figures import sweep_figure

        metric = chosen[0]
        stats = sweep_table(runs, x, metric, split)
        slug = re.sub(r"[^A-Za-z0-9]+", "-", f"{metric.name}-vs-{x}")
        sweep = sweep_markdown(stats, x, metric)
        (out / "tables" / f"{slug}.md").write_text(sweep)
        stats.reset_index().to_csv(out / "tables" / f"{slug}.csv", index=False)
        index += [f"\n## {metric.label} vs {x}\n", sweep]
        for ext, path in sweep_figure(stats, x, metric, out / "figures" / slug).items():
            index.append(f"- figure ({ext}): [{path.relative_to(out)}]({path.relative_to(out)})")
    (out / "index.md").write_text("\n".join(index) + "\n")
    return Report(tables, sweep)


def config_value(config_json: str, path: str) -> str:
    """A dotted config path (e.g. backbone.widths) read from a row's stored config, as text."""
    node = json.loads(config_json)
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise LossbenchError(f"config has no '{path}' (stopped at '{part}')")
        node = node[part]
    return json.dumps(node) if isinstance(node, (list, dict)) else str(node)


def sweep_table(runs: pd.DataFrame, x: str, metric: Metric, split: str | None = None) -> pd.DataFrame:
    """`metric` over the values of config path `x`, per variant (optionally split by another config
    path): rows = variant, columns = x values, cells = (mean, std, n) over seeds, completed runs only."""
    done = runs[runs.status == "completed"].copy()
    if done.empty:
        raise LossbenchError("no completed runs to report")
    done["variant"] = variant_of(done)
    if split:
        done["variant"] += " " + split.rsplit(".", 1)[-1] + "=" + done.config_json.map(lambda c: config_value(c, split))
    done["x"] = done.config_json.map(lambda c: config_value(c, x))
    stats = done.groupby(["variant", "x"])[metric.name].agg(["mean", "std", "count"])
    order = sorted(stats.index.get_level_values("x").unique(), key=_numeric_key)
    return stats.reindex(pd.MultiIndex.from_product([stats.index.levels[0], order], names=["variant", "x"]))


def _numeric_key(text: str) -> tuple[float, str]:
    numbers = re.findall(r"-?\d+(?:\.\d+)?", text)
    return (float(numbers[0]) if numbers else math.inf, text)


def sweep_markdown(stats: pd.DataFrame, x: str, metric: Metric) -> str:
    xs = list(dict.fromkeys(stats.index.get_level_values("x")))
    lines = [f"**{metric.label} vs {x}** — mean ± std over seeds (n)", "",
             "| variant | " + " | ".join(xs) + " |", "|" + "---|" * (len(xs) + 1)]
    for variant in dict.fromkeys(stats.index.get_level_values("variant")):
        cells = []
        for value in xs:
            m, s, n = stats.loc[(variant, value)]
            cells.append("–" if pd.isna(m) else f"{m:{metric.digits}} ± {0 if pd.isna(s) else s:{metric.digits}} ({int(n)})")
        lines.append(f"| {variant} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def group_runs(runs: pd.DataFrame, table: GroupTable) -> pd.DataFrame:
    """The completed rows of one group, with their variant."""
    runs = runs.assign(variant=variant_of(runs))
    mask = runs.status.eq("completed")
    for k, v in table.key.items():
        mask &= runs[k].astype(str).eq(v)
    return runs[mask]


def pareto_front(points: pd.DataFrame, x: str, y: str) -> pd.DataFrame:
    """Points not dominated when minimising x and maximising y, sorted by x."""
    ordered = points.sort_values([x, y], ascending=[True, False])
    best, keep = -math.inf, []
    for idx, row in ordered.iterrows():
        if row[y] > best:
            keep.append(idx)
            best = row[y]
    return ordered.loc[keep]
