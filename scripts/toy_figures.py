"""Figures of the harmonic-loss paper's toy experiments from saved runs (`save_model=true`, set by
experiment=harmonic_toy(_small) and mnist_prototypes):

- `embeddings_seed<S>.png`: the 2-D PCA of each model's token embedding table, one panel per dataset x
  (backbone, head), annotated with its top-2 explained variance and crystal metric (the paper's Fig. 2-4 style);
- `prototypes.png`: the prototypes (or linear weights) of single-layer pixel models as images, one row per run
  (the paper's Fig. 5).

    python scripts/toy_figures.py results --out figures/toy [--seed 0]
"""

from __future__ import annotations

import argparse
import logging
import math
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from lossbench.data.algorithmic import explained_variance_ratio, top2  # noqa: E402
from lossbench.results import load_runs  # noqa: E402
from lossbench.store import model_path  # noqa: E402

log = logging.getLogger("toy_figures")


def state(results: Path, run_id: str) -> dict[str, torch.Tensor] | None:
    """The saved weights of a run, or None (run without save_model=true)."""
    path = model_path(results, run_id)
    return torch.load(path, map_location="cpu", weights_only=True) if path.exists() else None


def head_weight(weights: dict[str, torch.Tensor]) -> np.ndarray:
    """The head's (V, N) prototypes or linear weights."""
    key = "head.weight" if "head.weight" in weights else "head.linear.weight"
    return weights[key].double().numpy()


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
            xy = top2(table)
            ax.scatter(xy[:, 0], xy[:, 1], s=12, c=np.arange(len(xy)), cmap="viridis")
            for k, (x, y) in enumerate(xy):
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
    if not written:
        log.error("no saved models under %s/models (run with save_model=true)", args.results)
        return 2
    for path in written:
        log.info("wrote %s", path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
