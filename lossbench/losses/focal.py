"""Softmax focal loss (Lin et al. 2017): -(1 - p_y)^gamma log p_y, computed from the log-probability."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, nll, target_prob64
from lossbench.ranges import NonNegativeFloat


class FocalLoss(Criterion):
    """gamma = 0 is cross-entropy; larger gamma down-weights well-classified samples."""

    name = "focal"

    def __init__(self, gamma: NonNegativeFloat = 2.0) -> None:
        super().__init__()
        if gamma < 0:
            raise SettingError(f"focal gamma must be >= 0, got {gamma}")
        self.gamma = gamma

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        n = nll(logits, target)
        return ((-(-n).expm1()).pow(self.gamma) * n).mean()  # (1 - p_y) = -expm1(-nll)

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """-(1 - p_y)^gamma log p_y (Lin et al. 2017, eq. 5 without alpha), mean over the batch."""
        logp, p = target_prob64(logits, target)
        return float(np.mean(-((1 - p) ** self.gamma) * logp))
