"""Figures of the harmonic-loss paper's toy experiments from saved runs (`save_model=true`, set by
experiment=harmonic_toy(_small) and mnist_prototypes):

- `embeddings_seed<S>.png`: the 2-D PCA of each model's token embeddings, one panel per dataset x
  (backbone, head), annotated with its top-2 explained variance and crystal metric (the paper's Fig. 2-4 style):
  the tokens the paper's figures plot (equivalence: the 40 numbers coloured by class, as its `emb[:40]` coloured
  by k % 5; family tree: the people), every token elsewhere;
- `prototypes.png`: the prototypes (or linear weights) of single-layer pixel models as images, one row per run
  (the paper's Fig. 5);
- `verdict.md`: per dataset x backbone, CE against the harmonic head paired by seed (the runs of one seed share
  data, split and initial backbone): grokked runs, grokking / fit epoch and delay, crystal metric, EV and final
  accuracies, with the mean paired difference, its 95 % CI (paired t) and p. `lossbench report` keeps these runs
  apart (their data and split seeds follow the seed, so each seed is its own cell), hence this table.

    python scripts/toy_figures.py results --out figures/toy [--seed 0]
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from hydra.utils import instantiate
from scipy import stats

from lossbench.data.crystal import explained_variance_ratio, top2
from lossbench.results import load_runs
from lossbench.store import model_path

log = logging.getLogger("toy_figures")


def state(results: Path, run_id: str) -> dict[str, torch.Tensor] | None:
    """The saved weights of a run, or None (run without save_model=true)."""
    path = model_path(results, run_id)
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def head_weight(weights: dict[str, torch.Tensor]) -> np.ndarray:
    """The head's (V, N) prototypes or linear weights."""
    key = "head.weight" if "head.weight" in weights else "head.linear.weight"
    return weights[key].double().numpy()


def plotted_tokens(config_json: str, vocab: int) -> tuple[np.ndarray, np.ndarray]:
    """(token ids the paper's figures plot, their colours: the class where the dataset has classes, else the id)."""
    dataset = instantiate(json.loads(config_json)["dataset"])
    tokens = getattr(dataset, "figure_tokens", np.arange(vocab))
    classes = getattr(dataset, "classes", None)
    return tokens, (tokens % classes if classes else tokens)


def embeddings_figure(runs, results: Path, seed: int, out: Path) -> Path | None:
    """One panel per dataset (rows) x backbone/head (columns): the 2-D PCA of the embedding table."""
    runs = runs[(runs.seed == seed) & runs.crystal_metric.notna()]
    if runs.empty:
        return None
    datasets, variants = sorted(runs.dataset.unique()), sorted({(b, h) for b, h in zip(runs.backbone, runs.loss)})
    fig, axes = plt.subplots(len(datasets), len(variants), figsize=(3 * len(variants), 3 * len(datasets)),
                             squeeze=False)
    for i, dataset in enumerate(datasets):
        for j, (backbone, loss) in enumerate(variants):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            row = runs[(runs.dataset == dataset) & (runs.backbone == backbone) & (runs.loss == loss)]
            weights = state(results, row.run_id.iloc[0]) if len(row) else None
            if weights is None:
                ax.set_axis_off()
                continue
            table = weights["backbone.embed.weight"].double().numpy()
            tokens, colours = plotted_tokens(row.config_json.iloc[0], len(table))
            table = table[tokens]
            xy = top2(table)
            ax.scatter(xy[:, 0], xy[:, 1], s=12, c=colours, cmap="viridis")
            for k, (x, y) in zip(tokens, xy):
                ax.annotate(str(k), (x, y), fontsize=5)
            ev = explained_variance_ratio(table)[:2].sum()
            ax.set_title(f"{dataset}\n{backbone} {loss}\nEV {ev:.2f}  crystal {row.crystal_metric.iloc[0]:.3g}",
                         fontsize=7)
    fig.tight_layout()
    path = out / f"embeddings_seed{seed}.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def prototypes_figure(runs, results: Path, out: Path) -> Path | None:
    """The head weights of pixel models as images: one row per (dataset, loss, seed)."""
    pixel_runs = runs[runs.backbone == "pixels"].sort_values(["dataset", "loss", "seed"])
    rows = [(r, state(results, r.run_id)) for r in pixel_runs.itertuples()]
    rows = [(r, w) for r, w in rows if w is not None]
    if not rows:
        return None
    classes = max(head_weight(w).shape[0] for _, w in rows)
    fig, axes = plt.subplots(len(rows), classes, figsize=(1.1 * classes, 1.3 * len(rows)), squeeze=False)
    for i, (run, weights) in enumerate(rows):
        protos = head_weight(weights)
        side = math.isqrt(protos.shape[1])
        for c in range(classes):
            ax = axes[i][c]
            ax.set_xticks([])
            ax.set_yticks([])
            if c < len(protos) and side * side == protos.shape[1]:
                ax.imshow(protos[c].reshape(side, side), cmap="gray")
            if c == 0:
                ax.set_ylabel(f"{run.dataset}\n{run.loss}\nseed {run.seed}\nacc {run.test_acc:.3f}", fontsize=6)
    fig.tight_layout()
    path = out / "prototypes.png"
    fig.savefig(path, dpi=150)
    plt.close(fig)
    return path


def paired(ce, harmonic) -> tuple[int, float, float, float, float] | None:
    """(pairs, mean difference harmonic - CE, 95 % CI low, high, paired t-test p) over the seeds both have a
    value for; None below two pairs."""
    both = np.array([(ce[s], harmonic[s]) for s in ce.index.intersection(harmonic.index)
                     if np.isfinite(ce[s]) and np.isfinite(harmonic[s])], dtype=float).reshape(-1, 2)
    if len(both) < 2:
        return None
    diff = both[:, 1] - both[:, 0]
    half = stats.t.ppf(0.975, len(diff) - 1) * diff.std(ddof=1) / np.sqrt(len(diff))
    p = float(stats.ttest_rel(both[:, 1], both[:, 0]).pvalue) if diff.std() > 0 else float(diff.mean() == 0)
    return len(diff), float(diff.mean()) + 0.0, float(diff.mean() - half) + 0.0, float(diff.mean() + half) + 0.0, p


def verdict_table(runs) -> str | None:
    """The CE-vs-harmonic table of the toy grid (module docstring), markdown."""
    runs = runs[runs.crystal_metric.notna() & runs.loss.isin(["ce", "harmonic"])]
    if runs.empty:
        return None

    def mean(values, fmt: str) -> str:
        values = values.dropna()
        return format(float(values.mean()) + 0.0, fmt) if len(values) else "–"  # + 0.0: no "-0"

    def compared(ce, harmonic, column: str, fmt: str) -> str:
        text = f"{mean(ce[column], fmt)} / {mean(harmonic[column], fmt)}"
        found = paired(ce[column], harmonic[column])
        if found is None:
            return text
        n, diff, low, high, p = found
        pairs = f", {n} pairs" if n < min(len(ce), len(harmonic)) else ""
        return f"{text} (Δ {diff:{fmt}}, CI [{low:{fmt}}, {high:{fmt}}], p = {p:.2g}{pairs})"

    header = ("| dataset | model | grokked CE / H | grokking epoch CE / H | fit epoch CE / H | delay CE / H | "
              "crystal metric CE / H | EV CE / H | test acc CE / H | train acc CE / H |")
    lines = [header, "|---" * 10 + "|"]
    for (dataset, backbone), cell in runs.groupby(["dataset", "backbone"], sort=True):
        ce = cell[cell.loss == "ce"].set_index("seed")
        harmonic = cell[cell.loss == "harmonic"].set_index("seed")
        grokked = (f"{ce.grokking_epoch.notna().sum()}/{len(ce)} / "
                   f"{harmonic.grokking_epoch.notna().sum()}/{len(harmonic)}")
        lines.append(" | ".join([
            f"| {dataset}", backbone.removeprefix("toy_"), grokked,
            compared(ce, harmonic, "grokking_epoch", ".0f"), compared(ce, harmonic, "fit_epoch", ".0f"),
            compared(ce, harmonic, "grokking_delay", ".0f"), compared(ce, harmonic, "crystal_metric", ".3g"),
            compared(ce, harmonic, "embedding_pc2_ev", ".2f"),
            f"{mean(ce.test_acc, '.3f')} / {mean(harmonic.test_acc, '.3f')}",
            f"{mean(ce.train_acc, '.3f')} / {mean(harmonic.train_acc, '.3f')} |"]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    runs = load_runs(args.results)
    if runs.empty:
        log.error("no runs under %s", args.results)
        return 2
    runs = runs[runs.status == "completed"].copy()
    args.out.mkdir(parents=True, exist_ok=True)
    if "crystal_metric" not in runs:
        runs["crystal_metric"] = np.nan
    written = [p for p in (embeddings_figure(runs, args.results, args.seed, args.out),
                           prototypes_figure(runs, args.results, args.out)) if p is not None]
    table = verdict_table(runs)
    if table is not None:
        (args.out / "verdict.md").write_text(table)
        written.append(args.out / "verdict.md")
    if not written:
        log.error("no saved models under %s/models (run with save_model=true)", args.results)
        return 2
    for path in written:
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
