"""Algorithmic tasks (token sequences -> a token), measured as "Harmonic Loss Trains Interpretable AI Models"
(Baek et al. 2025) measures them: classification, plus

- **grokking** from the learning curves: `grokking_epoch` = the first evaluation of a run of `window` (20)
  consecutive evaluations with test accuracy above `threshold` (0.9) — the paper's `find_consecutive_elements`,
  so a run that groks and later forgets still has the epoch it grokked at; `fit_epoch` = the same on the
  training accuracy with threshold 0.99; `grokking_delay` = their difference (null when either never happens).
  Needs test accuracy at every evaluation (`trainer.eval_test_each_epoch=true`);
- **embedding geometry** of the token embedding table (`model.backbone.embed`): `embedding_pc2_ev` (explained
  variance of its top two principal components, the paper's "EV") and `crystal_metric`, the dataset's
  structure score (lossbench/data/algorithmic.py says what it measures for each dataset).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from lossbench.data.algorithmic import explained_variance_ratio
from lossbench.data.base import Splits
from lossbench.schema import column
from lossbench.tasks.base import ReportView
from lossbench.tasks.classification import Classification

ALGORITHMIC = {c.name: c for c in [  # the harmonic-loss paper's measures, computed below and in data/algorithmic.py
    column("grokking_epoch", "float", "first epoch of 20 consecutive evaluations with test accuracy > 0.9 (the "
           "harmonic-loss paper's grokking epoch); null if never", label="Grokking epoch", block="Performance",
           higher_is_better=False, fmt=".0f"),
    column("fit_epoch", "float", "first epoch of 20 consecutive evaluations with train accuracy > 0.99; null if "
           "never", label="Fit epoch", fmt=".0f"),
    column("grokking_delay", "float", "grokking_epoch - fit_epoch: how long generalisation lags memorisation",
           label="Grokking delay", block="Performance", higher_is_better=False, fmt=".0f"),
    column("embedding_pc2_ev", "float", "explained variance of the top two PCs of the token embedding table",
           label="Emb. PC2 EV", block="Interpretability", higher_is_better=True),
    column("crystal_metric", "float", "the dataset's structure score of the token embedding table "
           "(lossbench/data/algorithmic.py; lower = more structured, except permutation: higher)",
           label="Crystal metric", block="Interpretability"),
]}

GROKKING = tuple(ALGORITHMIC[n] for n in ("grokking_epoch", "fit_epoch", "grokking_delay"))


def first_sustained(values: Sequence[float], threshold: float, window: int = 20) -> int | None:
    """Index of the first of `window` consecutive values all above `threshold`; None if there is none."""
    run = 0
    for i, value in enumerate(values):
        run = run + 1 if value > threshold else 0
        if run == window:
            return i - window + 1
    return None


def grokking(history: Sequence[dict[str, Any]], window: int = 20) -> dict[str, float | None]:
    """grokking_epoch, fit_epoch and grokking_delay from a run's evaluation history (module docstring)."""
    epochs = [row["epoch"] for row in history]
    test = first_sustained([row.get("test_acc", float("nan")) for row in history], 0.9, window)
    train = first_sustained([row["train_acc"] for row in history], 0.99, window)
    grok = epochs[test] if test is not None else None
    fit = epochs[train] if train is not None else None
    return {"grokking_epoch": grok, "fit_epoch": fit,
            "grokking_delay": grok - fit if grok is not None and fit is not None else None}


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
        columns["embedding_pc2_ev"] = float(explained_variance_ratio(table)[:2].sum())
        columns["crystal_metric"] = splits.structure(table) if splits.structure is not None else None
        return columns

    def from_history(self, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Grokking epochs from the learning curves (null without test accuracy at every evaluation)."""
        if not history or "test_acc" not in history[0]:
            return {c.name: None for c in GROKKING[:3]}
        return grokking(history)

