"""Self-adjusting Dice loss (Li et al., ACL 2020), target-only form on the target probability p_y:

1 - (2 (1 - p)^alpha p + gamma) / ((1 - p)^alpha p + 1 + gamma). alpha down-weights easy samples
(as in focal loss), gamma smooths. This per-sample form is the paper's; the official code's
batch-coupled all-class variant is not implemented.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, nll, target_prob64
from lossbench.ranges import NonNegativeFloat, PositiveFloat


class SelfAdjustingDiceLoss(Criterion):
    """alpha >= 0, gamma > 0."""

    name = "dice"

    def __init__(self, alpha: NonNegativeFloat = 0.01, gamma: PositiveFloat = 1.0) -> None:
        super().__init__()
        if alpha < 0 or gamma <= 0:
            raise SettingError(f"dice needs alpha >= 0 and gamma > 0, got alpha={alpha}, gamma={gamma}")
        self.alpha, self.gamma = alpha, gamma

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        n = nll(logits, target)
        p = (-n).exp()
        x = (-(-n).expm1()).pow(self.alpha) * p  # (1 - p)^alpha p
        return (1.0 - (2.0 * x + self.gamma) / (x + 1.0 + self.gamma)).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """1 - (2 (1 - p_y)^alpha p_y + gamma) / ((1 - p_y)^alpha p_y + 1 + gamma) (Li et al. 2020, the
        per-sample form with y = 1 for the target class), mean over the batch."""
        _, p = target_prob64(logits, target)
        x = (1 - p) ** self.alpha * p
        return float(np.mean(1 - (2 * x + self.gamma) / (x + 1 + self.gamma)))
