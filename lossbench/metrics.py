"""Pure metric functions: accuracy, macro-F1, gradient-norm statistics, parameter norms."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch
from torch import Tensor, nn


def accuracy(pred: Tensor, target: Tensor) -> float:
    """Fraction of predictions equal to the target."""
    return pred.eq(target).float().mean().item()


def macro_f1(pred: Tensor, target: Tensor, num_classes: int) -> float:
    """Unweighted mean of per-class F1 = 2TP / (2TP + FP + FN) over classes present in target or pred.

    Matches sklearn.metrics.f1_score(average="macro", zero_division=0).
    """
    idx = target * num_classes + pred
    confusion = torch.bincount(idx, minlength=num_classes * num_classes).reshape(num_classes, num_classes)
    tp = confusion.diagonal().double()
    support, predicted = confusion.sum(1).double(), confusion.sum(0).double()  # rows: true, cols: predicted
    present = (support + predicted) > 0
    f1 = 2 * tp / (support + predicted).clamp_min(1)
    return f1[present].mean().item() if present.any() else 0.0


def summarize(values: Iterable[float], prefix: str) -> dict[str, float]:
    """mean, std (population), max and coefficient of variation (std / mean) of a series."""
    t = torch.as_tensor(list(values), dtype=torch.float64)
    if t.numel() == 0:
        return {f"{prefix}_{k}": math.nan for k in ("mean", "std", "max", "cv")}
    mean, std = t.mean().item(), t.std(unbiased=False).item()
    return {
        f"{prefix}_mean": mean,
        f"{prefix}_std": std,
        f"{prefix}_max": t.max().item(),
        f"{prefix}_cv": std / mean if mean > 0 else math.nan,
    }


def grad_norm(grads: list[Tensor]) -> Tensor:
    """Global L2 norm of a list of gradients on one device (a 0-dim tensor; no host sync).

    One fused per-tensor norm (torch._foreach_norm), then the norm of those norms: the same value as
    torch.nn.utils.get_total_norm at about half its per-step cost on small models.
    """
    return torch.linalg.vector_norm(torch.stack(torch._foreach_norm(grads)))


def param_norm(module: nn.Module) -> float:
    """Global L2 norm of all parameters of a module."""
    norms = [p.detach().norm(2) for p in module.parameters()]
    return torch.linalg.vector_norm(torch.stack(norms)).item() if norms else 0.0


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())
