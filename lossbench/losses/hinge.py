"""Multi-class hinge losses with margin m: Crammer-Singer max_{j!=y} and Weston-Watkins sum_{j!=y}
of max(0, m + z_j - z_y)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.losses.base import Criterion, wide
from lossbench.ranges import NonNegativeFloat


def _margins(logits: Tensor, target: Tensor, margin: float) -> Tensor:
    """max(0, m + z_j - z_y) for j != y (0 at j = y), shape (B, K)."""
    z = wide(logits)
    violations = (margin + z - z.gather(1, target[:, None])).clamp_min(0.0)
    return violations.scatter(1, target[:, None], 0.0)


class CrammerSingerHinge(Criterion):
    """max over wrong classes of the margin violation (Crammer & Singer 2001)."""

    name = "hinge_cs"

    def __init__(self, margin: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return _margins(logits, target, self.margin).amax(1).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """max(0, m + max_{j != y} z_j - z_y) (Crammer & Singer 2001), mean over the batch."""
        z = np.asarray(logits, dtype=np.float64)
        rows = np.arange(len(target))
        others = np.where(np.eye(z.shape[1], dtype=bool)[target], -np.inf, z)
        return float(np.mean(np.maximum(0.0, self.margin + others.max(axis=1) - z[rows, target])))


class WestonWatkinsHinge(Criterion):
    """Sum over wrong classes of the margin violations (Weston & Watkins 1999); torch's
    F.multi_margin_loss is this divided by K."""

    name = "hinge_ww"

    def __init__(self, margin: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return _margins(logits, target, self.margin).sum(1).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """sum_{j != y} max(0, m + z_j - z_y) (Weston & Watkins 1999), mean over the batch."""
        z = np.asarray(logits, dtype=np.float64)
        violation = np.maximum(0.0, self.margin + z - z[np.arange(len(target)), target][:, None])
        return float(np.mean(np.where(np.eye(z.shape[1], dtype=bool)[target], 0.0, violation).sum(axis=1)))


