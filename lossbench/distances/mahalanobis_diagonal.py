"""Diagonal Mahalanobis distance: a learnable positive scale per feature, initialised to 1 (Euclidean)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from lossbench.distances.base import Distance
from lossbench.distances.numerics import safe_sqrt, squared_euclidean


class DiagonalMahalanobisDistance(Distance):
    """d = sqrt(sum_k s_k^2 (x_k - w_k)^2) with learnable per-feature scales s = exp(log_scale), init 1."""

    name = "mahalanobis_diagonal"
    term_flops = 2  # a multiply-add per term (after scaling)

    def __init__(self) -> None:
        super().__init__()
        self.log_scale: nn.Parameter | None = None

    def setup(self, in_features: int) -> None:
        self.log_scale = nn.Parameter(torch.zeros(in_features))

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        if self.log_scale is None:
            raise RuntimeError("DiagonalMahalanobisDistance.setup(in_features) must be called before use")
        scale = self.log_scale.exp()
        return safe_sqrt(squared_euclidean(x * scale, w * scale))

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        scale = np.exp(self.log_scale.detach().double().cpu().numpy())
        return cdist(x, w, "mahalanobis", VI=np.diag(scale**2))
