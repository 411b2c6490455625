"""Squared error to the one-hot target, on softmax probabilities or on raw logits (Hui & Belkin 2021)."""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from lossbench.losses.base import Criterion, log_softmax64, wide


class ProbabilityMSE(Criterion):
    """sum_k (p_k - e_{y,k})^2 per sample (a sum over classes, the Brier score), mean over the batch."""

    name = "mse_prob"

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        p = wide(logits).softmax(1)
        return (p - F.one_hot(target, p.shape[1])).pow(2).sum(1).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """The Brier score sum_k (p_k - e_{y,k})^2 of the softmax, mean over the batch."""
        p = np.exp(log_softmax64(logits))
        return float(np.mean(((p - np.eye(p.shape[1])[target]) ** 2).sum(axis=1)))


class LogitMSE(Criterion):
    """mean_k (z_k - e_{y,k})^2 per sample (torch's F.mse_loss against the one-hot target)."""

    name = "mse_logit"

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        z = wide(logits)
        return F.mse_loss(z, F.one_hot(target, z.shape[1]).to(z.dtype))

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """mean over samples and classes of (z_k - e_{y,k})^2."""
        z = np.asarray(logits, dtype=np.float64)
        return float(np.mean((z - np.eye(z.shape[1])[target]) ** 2))
