"""Algorithmic tasks (token sequences -> a token), measured as "Harmonic Loss Trains Interpretable AI Models"
(Baek et al. 2025) measures them: classification, plus

- **grokking** from the learning curves: `grokking_epoch` = the first evaluation of a run of `window` (20)
  consecutive evaluations with test accuracy above 0.9 — the paper's `find_consecutive_elements`
  (`notebooks/final_figures.ipynb`), so a run that groks and later forgets still has the epoch it grokked at;
  `fit_epoch` = the same on the training accuracy, at the paper's threshold 0.9 too (`fit_epoch_99`: above 0.99);
  `grokking_delay` = grokking_epoch - fit_epoch, the paper's grokking plot (null when either never happens).
  Epochs count from 1 (the first evaluation, after one epoch, is epoch 1); the paper's index counts from 0, so
  its epochs are these minus 1 (delays are the same). Needs test accuracy at every evaluation
  (`trainer.eval_test_each_epoch=true`);
- **embedding geometry** of the token embedding table (`model.backbone.embed`): `embedding_pc2_ev` (explained
  variance of the top two principal components of the tokens the paper's figures plot, its "EV") and
  `crystal_metric`, the dataset's structure score (lossbench/data/algorithmic.py says what it measures).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lossbench.data.base import Splits
from lossbench.data.crystal import explained_variance_ratio
from lossbench.schema import column
from lossbench.tasks.base import ReportView
from lossbench.tasks.classification import Classification

ALGORITHMIC = {c.name: c for c in [  # the harmonic-loss paper's measures, computed below and in data/crystal.py
    column("grokking_epoch", "float", "first epoch (from 1; the paper's index + 1) of 20 consecutive evaluations "
           "with test accuracy > 0.9 (the harmonic-loss paper's grokking epoch); null if never",
           label="Grokking epoch", block="Performance", higher_is_better=False, fmt=".0f"),
    column("fit_epoch", "float", "first epoch (from 1) of 20 consecutive evaluations with train accuracy > 0.9 "
           "(the paper's threshold); null if never", label="Fit epoch", fmt=".0f"),
    column("grokking_delay", "float", "grokking_epoch - fit_epoch: how long generalisation lags memorisation",
           label="Grokking delay", block="Performance", higher_is_better=False, fmt=".0f"),
    column("fit_epoch_99", "float", "first epoch (from 1) of 20 consecutive evaluations with train accuracy > "
           "0.99; null if never", label="Fit epoch (0.99)", fmt=".0f"),
    column("embedding_pc2_ev", "float", "explained variance of the top two PCs of the token embeddings the "
           "paper's figures plot (equivalence: the numbers; family tree: the people; else all)",
           label="Emb. PC2 EV", block="Interpretability", higher_is_better=True),
    column("crystal_metric", "float", "the dataset's structure score of the token embedding table "
           "(lossbench/data/crystal.py; lower = more structured, except permutation: higher)",
           label="Crystal metric", block="Interpretability"),
]}

GROKKING = tuple(ALGORITHMIC[n] for n in ("grokking_epoch", "fit_epoch", "grokking_delay", "fit_epoch_99"))


def first_sustained(values: Sequence[float], threshold: float, window: int = 20) -> int | None:
    """Index of the first of `window` consecutive values all above `threshold`; None if there is none."""
    run = 0
    for i, value in enumerate(values):
        run = run + 1 if value > threshold else 0
        if run == window:
            return i - window + 1
    return None


def grokking(history: Sequence[dict[str, Any]], window: int = 20) -> dict[str, float | None]:
    """grokking_epoch, fit_epoch, grokking_delay and fit_epoch_99 from a run's evaluation history (module
    docstring)."""
    epochs = [row["epoch"] for row in history]

    def first(split: str, threshold: float) -> float | None:
        index = first_sustained([row.get(f"{split}_acc", float("nan")) for row in history], threshold, window)
        return epochs[index] if index is not None else None

    grok, fit = first("test", 0.9), first("train", 0.9)
    return {"grokking_epoch": grok, "fit_epoch": fit,
            "grokking_delay": grok - fit if grok is not None and fit is not None else None,
            "fit_epoch_99": first("train", 0.99)}


class AlgorithmicClassification(Classification):
    """Classification with the harmonic-loss paper's grokking and embedding-structure measurements."""

    name = "algorithmic"
    columns = (*Classification.columns, *ALGORITHMIC.values())
    report = ReportView(
        metrics=("test_acc", "grokking_epoch", "grokking_delay", "embedding_pc2_ev", "crystal_metric", "grad_norm_cv",
                 "energy_kwh", "flops"),
        radar=("test_acc", "test_f1", "embedding_pc2_ev", "pca90", "emissions_kg", "time_per_epoch_s"),
        headline="test_acc",
        curve_x="epoch",
    )

    @torch.no_grad()
    def probe(self, model: nn.Module, splits: Splits, samples: int, batch_size: int) -> dict[str, Any]:
        """The classification probes, plus the embedding table's PC2 EV and crystal metric."""
        columns = super().probe(model, splits, samples, batch_size)
        embed = getattr(model.backbone, "embed", None)
        if embed is None:
            return columns
        table = embed.weight.detach().double().cpu().numpy()
        plotted = table if splits.figure_tokens is None else table[splits.figure_tokens]
        columns["embedding_pc2_ev"] = float(explained_variance_ratio(plotted)[:2].sum())
        columns["crystal_metric"] = splits.structure(table) if splits.structure is not None else None
        return columns

    def from_history(self, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Grokking epochs from the learning curves (null without test accuracy at every evaluation)."""
        if not history or "test_acc" not in history[0]:
            return {c.name: None for c in GROKKING}
        return grokking(history)

