"""Spherical Z-loss (de Brebisson & Vincent 2016): (1/a) softplus(a (b - z_y)) on standardised logits.

z = (o - mean(o)) / std(o) over the K outputs (population std, eps-floored); invariant to shifts and
positive scalings of the logits. max z_y = sqrt(K - 1), so b should scale with sqrt(K).
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, wide
from lossbench.ranges import PositiveFloat


class SphericalZLoss(Criterion):
    """a > 0 sets the sharpness, b the location (no universal default: sweep them)."""

    name = "zloss_spherical"

    def __init__(self, a: PositiveFloat = 1.0, b: float = 1.0, eps: PositiveFloat = 1e-8) -> None:
        super().__init__()
        if a <= 0:
            raise SettingError(f"zloss_spherical a must be > 0, got {a}")
        self.a, self.b, self.eps = a, b, eps

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        o = wide(logits)
        z = (o - o.mean(1, keepdim=True)) / (o.std(1, unbiased=False, keepdim=True) + self.eps)
        z_y = z.gather(1, target[:, None]).squeeze(1)
        return (F.softplus(self.a * (self.b - z_y)) / self.a).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """(1/a) log(1 + exp(a (b - z_y))), z = (o - mu) / (sigma + eps) with the population std
        (de Brebisson & Vincent 2016), mean over the batch."""
        o = np.asarray(logits, dtype=np.float64)
        mu = o.mean(axis=1, keepdims=True)
        sigma = np.sqrt((o ** 2).mean(axis=1, keepdims=True) - mu ** 2)
        z_y = ((o - mu) / (sigma + self.eps))[np.arange(len(target)), target]
        return float(np.mean(np.logaddexp(0.0, self.a * (self.b - z_y)) / self.a))
