"""Cross-entropy / negative log-likelihood: mean over the batch of logsumexp(z) - z_y.

On HarMax logits -n log(d + eps) this is the harmonic loss n log d_y + log sum_j d_j^-n. With
label smoothing eps (Szegedy et al. 2016) the target is (1 - eps) e_y + eps / K.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

import numpy as np
import torch.nn.functional as F
from annotated_types import Interval
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, log_softmax64, wide


class CrossEntropy(Criterion):
    """Softmax cross-entropy on logits (torch's fused log-softmax + NLL), optional label smoothing."""

    name = "ce"

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> str:
        """`ce`, or `ce_ls` when label smoothing is on (whichever yaml set it)."""
        return "ce_ls" if params.get("label_smoothing", 0.0) else "ce"

    def __init__(self, label_smoothing: Annotated[float, Interval(ge=0, lt=1)] = 0.0) -> None:
        super().__init__()
        if not 0.0 <= label_smoothing < 1.0:
            raise SettingError(f"label_smoothing must be in [0, 1), got {label_smoothing}")
        self.label_smoothing = label_smoothing

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return F.cross_entropy(wide(logits), target, label_smoothing=self.label_smoothing)

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """-(1 - eps) log p_y - (eps / K) sum_k log p_k (Szegedy et al. 2016), mean over the batch."""
        logp = log_softmax64(logits)
        eps = self.label_smoothing
        return float(np.mean(-(1 - eps) * logp[np.arange(len(target)), target] - eps * logp.mean(axis=1)))
