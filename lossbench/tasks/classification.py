"""Classification: one label per input; accuracy, macro-F1 and NLL; probes on penultimate features."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lossbench.data.base import Splits
from lossbench.metrics import accuracy, macro_f1
from lossbench.probes import COLUMNS as PROBES
from lossbench.probes import probe_all
from lossbench.schema import column
from lossbench.tasks.base import ReportView, Task

# the scores `evaluate` computes, per split (train_/val_/test_); lm.py and algorithmic.py share them
ACC = column("acc", "float", "accuracy (token accuracy for language models)", label="acc.", per_split=True,
             block="Performance", higher_is_better=True, fmt=".4f")
F1 = column("f1", "float", "macro-F1 (sklearn average='macro', zero_division=0)", label="F1", per_split=True,
            block="Performance", higher_is_better=True, fmt=".4f")
NLL = column("nll", "float", "mean NLL of softmax(logits): the HarMax NLL for harmonic heads", label="NLL",
             per_split=True, block="Performance", higher_is_better=False)
ENERGY_PER_POINT = column("energy_per_point_kwh", "float", "energy per test-accuracy point: energy_kwh / "
                          "(100 test_acc)", unit="kWh", label="Energy / acc. pt", block="Sustainability",
                          higher_is_better=False, fmt=".3g", energy_derived=True)  # written by `extras`


def argmax_scores(outputs: Iterable[tuple[Tensor, Tensor]]) -> tuple[Tensor, Tensor, float]:
    """(arg-max predictions, targets, mean NLL of softmax(output)) over all batches of a split."""
    preds, targets, nll_sum = [], [], 0.0
    for logits, target in outputs:
        nll_sum += F.cross_entropy(logits, target, reduction="sum").item()
        preds.append(logits.argmax(1))
        targets.append(target)
    target = torch.cat(targets)
    return torch.cat(preds), target, nll_sum / target.numel()


class Classification(Task):
    """One label per input: accuracy and macro-F1 of arg-max predictions, NLL of softmax(logits); the
    checkpoint with the best validation accuracy is kept. Probes on the penultimate features of test
    inputs (PC2 EV, PCA-90 %, effective rank, NC1, prototype geometry; probes.py)."""

    name = "classification"
    data_kind = "labels"
    score_columns = (ACC, F1, NLL)
    train_score = ACC
    selection, selection_higher_is_better = "acc", True
    columns = (*(PROBES[n] for n in ("pc2_ev", "pca90", "effective_rank", "nc1", "proto_alignment",
                                     "proto_norm_mean", "proto_norm_std")), ENERGY_PER_POINT)
    report = ReportView(
        metrics=("test_acc", "val_acc", "test_f1", "grad_norm_cv", "pc2_ev", "pca90", "proto_alignment", "nc1",
                 "energy_kwh", "emissions_kg", "flops", "cpu_time_s", "time_per_epoch_s", "s_per_epoch_per_gflop",
                 "energy_per_point_kwh"),
        radar=("test_acc", "test_f1", "pc2_ev", "pca90", "emissions_kg", "time_per_epoch_s"),
        headline="test_acc",
        curve_x="epoch",
    )

    def train_score_sum(self, output: Tensor, target: Tensor) -> Tensor:
        return output.detach().argmax(1).eq(target).sum()

    def evaluate(self, outputs: Iterable[tuple[Tensor, Tensor]], num_classes: int) -> dict[str, float]:
        pred, target, nll = argmax_scores(outputs)
        return {"acc": accuracy(pred, target), "f1": macro_f1(pred, target, num_classes), "nll": nll}

    @torch.no_grad()
    def probe(self, model: nn.Module, splits: Splits, samples: int, batch_size: int) -> dict[str, Any]:
        """Probes on the penultimate features of the first `samples` test inputs."""
        model.eval()
        x, y = splits.x_test[:samples], splits.y_test[:samples]
        features = torch.cat([model.features(xb) for xb in x.split(batch_size)])
        return probe_all(features.float().cpu(), y.cpu(), model.head.prototypes.detach().float().cpu())

    def extras(self, columns: dict[str, Any]) -> dict[str, Any]:
        """Energy per test-accuracy point (the Rethinking paper's efficiency axis)."""
        energy, acc = columns.get("energy_kwh"), columns.get("test_acc")
        return {"energy_per_point_kwh": energy / (100.0 * acc) if energy is not None and acc else None}
