"""Learnable Mahalanobis distance d = ||L (x - w)||_2, i.e. (x - w)^T M (x - w) with M = L^T L >= 0.

L is a parameter of the model (created in `setup`), initialised to the identity so training starts
from the Euclidean distance. Computed as the Euclidean distance between L x and L w (refined
matrix-product identity): O(M*V + (M+V)*N) memory, never (M, V, N).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from lossbench import SettingError
from lossbench.distances.base import Distance
from lossbench.distances.numerics import safe_sqrt, squared_euclidean
from lossbench.ranges import PositiveInt


class MahalanobisDistance(Distance):
    """Full metric: L lower-triangular (Cholesky factor of M), N x N; or, with `rank`, M = I + U^T U
    with U of shape (rank, N) initialised to 0 (a low-rank correction that stays positive definite)."""

    name = "mahalanobis"
    term_flops = 2  # a multiply-add per term, plus the transform (flops)

    def __init__(self, rank: PositiveInt | None = None) -> None:
        super().__init__()
        if rank is not None and rank < 1:
            raise SettingError(f"mahalanobis rank must be >= 1 or null (full), got {rank}")
        self.rank = rank
        self.factor: nn.Parameter | None = None

    def setup(self, in_features: int) -> None:
        init = torch.eye(in_features) if self.rank is None else torch.zeros(self.rank, in_features)
        self.factor = nn.Parameter(init)

    def flops(self, m: int, v: int, n: int) -> int:
        """The distance of the transformed vectors plus the transform of rows and prototypes (2 x n x k per
        vector, k = n for the full factor, rank for the low-rank one)."""
        k = n if self.rank is None else self.rank
        return self.term_flops * m * v * (n if self.rank is None else n + k) + 2 * (m + v) * n * k

    def transform(self, x: Tensor) -> Tensor:
        """Map x (.., N) to coordinates where the metric is Euclidean: L x, or [x, U x] for low rank."""
        if self.factor is None:
            raise RuntimeError("MahalanobisDistance.setup(in_features) must be called before use")
        if self.rank is None:
            return x @ torch.tril(self.factor).T
        return torch.cat([x, x @ self.factor.T], dim=-1)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return safe_sqrt(squared_euclidean(self.transform(x), self.transform(w)))

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        factor = self.factor.detach().double().cpu().numpy()
        vi = np.tril(factor).T @ np.tril(factor) if self.rank is None else np.eye(x.shape[1]) + factor.T @ factor
        return cdist(x, w, "mahalanobis", VI=vi)
