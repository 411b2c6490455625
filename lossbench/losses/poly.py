"""Poly-1 loss (Leng et al., ICLR 2022): CE + epsilon (1 - p_y)."""

from __future__ import annotations

from typing import Annotated

import numpy as np
from annotated_types import Ge
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, nll, target_prob64


class Poly1Loss(Criterion):
    """epsilon = 0 is cross-entropy; the paper uses 2 on ImageNet, -1 for detection (epsilon >= -1)."""

    name = "poly1"

    def __init__(self, epsilon: Annotated[float, Ge(-1)] = 1.0) -> None:
        super().__init__()
        if epsilon < -1:
            raise SettingError(f"poly1 epsilon must be >= -1, got {epsilon}")
        self.epsilon = epsilon

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        n = nll(logits, target)
        return (n - self.epsilon * (-n).expm1()).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """-log p_y + epsilon (1 - p_y) (Leng et al. 2022, Poly-1), mean over the batch."""
        logp, p = target_prob64(logits, target)
        return float(np.mean(-logp + self.epsilon * (1 - p)))
