"""Pure metric functions: accuracy, macro-F1, gradient-norm statistics and stability, parameter norms."""

from __future__ import annotations

import math
from collections.abc import Iterable

import numpy as np
import torch
from numpy.lib.stride_tricks import sliding_window_view
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


def grad_stability(norms: Iterable[float], clip: float | None, factor: float, window: int) -> dict[str, float]:
    """Gradient-spike count and clip rate of a run's per-step gradient norms (taken before clipping).

    A spike is a step whose norm exceeds `factor` x the median of the previous `window` norms (the
    first step has no history and is never a spike). The clip rate is the fraction of steps whose
    norm exceeds `clip` (NaN when training does not clip).
    """
    a = np.asarray(list(norms), dtype=np.float64)
    median = np.empty(max(0, len(a) - 1))  # median[i - 1]: of the norms before step i
    for i in range(1, min(window, len(a))):
        median[i - 1] = np.median(a[:i])
    if len(a) > window:
        median[window - 1 :] = np.median(sliding_window_view(a[:-1], window), axis=1)
    spikes = int((a[1:] > factor * median).sum())
    clip_rate = float((a > clip).mean()) if clip is not None and len(a) else math.nan
    return {"grad_spikes": spikes, "grad_clip_rate": clip_rate}


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
    """Number of parameters of `module` (trainable or not)."""
    return sum(p.numel() for p in module.parameters())
