"""LDR-KL loss (Zhu, Ying & Yang, ICML 2023): label-distributionally robust loss with a KL penalty.

L = lam * log( (1/K) sum_k exp((c 1[k != y] + z_k - z_y) / lam) ). c = 0 gives lam * CE(z / lam) - lam log K;
lam -> 0 the Crammer-Singer hinge with margin c. `normalize` applies the official code's logit transform
(softplus, then division by the row mean), which makes the loss scale-invariant.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, wide
from lossbench.ranges import NonNegativeFloat, PositiveFloat


class LDRKLLoss(Criterion):
    """lam > 0 (temperature of the worst-case label distribution), margin c >= 0."""

    name = "ldr_kl"

    def __init__(self, lam: PositiveFloat = 10.0, margin: NonNegativeFloat = 0.1, normalize: bool = True) -> None:
        super().__init__()
        if lam <= 0:
            raise SettingError(f"ldr_kl lam must be > 0, got {lam}")
        self.lam, self.margin, self.normalize = lam, margin, normalize

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        z = wide(logits)
        if self.normalize:
            z = F.softplus(z)
            z = z / z.mean(1, keepdim=True)
        shifted = z - z.gather(1, target[:, None]) + self.margin
        shifted = shifted.scatter(1, target[:, None], 0.0)  # no margin on the target itself
        k = z.shape[1]
        return (self.lam * (torch.logsumexp(shifted / self.lam, 1) - math.log(k))).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """max over label distributions q of sum_k q_k (c 1[k != y] + z_k - z_y) - lam KL(q || 1/K), in closed
        form lam log((1/K) sum_k exp((c 1[k != y] + z_k - z_y) / lam)) (Zhu, Ying & Yang 2023); with
        `normalize`, z = softplus(z) / its row mean first (the official code). Mean over the batch."""
        z = np.asarray(logits, dtype=np.float64)
        if self.normalize:
            z = np.logaddexp(0.0, z)
            z = z / z.mean(axis=1, keepdims=True)
        wrong = ~np.eye(z.shape[1], dtype=bool)[target]
        a = (self.margin * wrong + z - z[np.arange(len(target)), target][:, None]) / self.lam
        top = a.max(axis=1, keepdims=True)
        return float(np.mean(self.lam * (top[:, 0] + np.log(np.exp(a - top).mean(axis=1)))))
