"""Comp-sum losses (Mao, Mohri & Zhong, ICML 2023): Phi_tau(u) with u = sum_{j!=y} exp(z_j - z_y).

Phi_tau(u) = ((1 + u)^(1 - tau) - 1) / (1 - tau); in the log domain, with 1 + u = exp(nll),
l_tau = expm1((1 - tau) nll) / (1 - tau), and nll at tau = 1. (Written with (tau - 1), as it sometimes is,
tau = 0 would give MAE; the published test values follow the form used here: docs/research/losses.md section 4.)
tau = 0: sum-exponential loss; tau = 1: cross-entropy; tau in (1, 2): generalised CE with q = tau - 1
(Zhang & Sabuncu 2018); tau = 2: MAE = 1 - p_y.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, nll
from lossbench.ranges import NonNegativeFloat


class CompSumLoss(Criterion):
    """The comp-sum family indexed by tau >= 0 (bounded, noise-robust members for tau > 1)."""

    name = "compsum"

    def __init__(self, tau: NonNegativeFloat = 1.7) -> None:
        super().__init__()
        if tau < 0:
            raise SettingError(f"compsum tau must be >= 0, got {tau}")
        self.tau = tau

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        n = nll(logits, target)
        if self.tau == 1.0:
            return n.mean()
        return (torch.expm1((1.0 - self.tau) * n) / (1.0 - self.tau)).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """Phi_tau(u), u = sum_{j != y} exp(z_j - z_y): log(1 + u) at tau = 1, else
        ((1 + u)^(1 - tau) - 1) / (1 - tau) (Mao, Mohri & Zhong 2023), mean over the batch."""
        z = np.asarray(logits, dtype=np.float64)
        u = np.exp(z - z[np.arange(len(target)), target][:, None]).sum(axis=1) - 1.0  # the j = y term is 1
        if self.tau == 1.0:
            return float(np.mean(np.log1p(u)))
        return float(np.mean(((1.0 + u) ** (1.0 - self.tau) - 1.0) / (1.0 - self.tau)))
