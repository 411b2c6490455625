"""Learnable Mahalanobis distance d = ||L (x - w)||_2, i.e. (x - w)^T M (x - w) with M = L^T L >= 0.

L is a parameter of the model (created in `setup`), initialised to the identity so training starts
from the Euclidean distance. Computed as the Euclidean distance between L x and L w (refined
matrix-product identity): O(M*V + (M+V)*N) memory, never (M, V, N).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lossbench.distances.base import Distance, safe_sqrt, squared_euclidean


class MahalanobisDistance(Distance):
    """Full metric: L lower-triangular (Cholesky factor of M), N x N; or, with `rank`, M = I + U^T U
    with U of shape (rank, N) initialised to 0 (a low-rank correction that stays positive definite)."""

    def __init__(self, rank: int | None = None) -> None:
        super().__init__()
        if rank is not None and rank < 1:
            raise ValueError(f"mahalanobis rank must be >= 1 or null (full), got {rank}")
        self.rank = rank
        self.factor: nn.Parameter | None = None

    def setup(self, in_features: int) -> None:
        init = torch.eye(in_features) if self.rank is None else torch.zeros(self.rank, in_features)
        self.factor = nn.Parameter(init)

    def transform(self, x: Tensor) -> Tensor:
        """Map x (.., N) to coordinates where the metric is Euclidean: L x, or [x, U x] for low rank."""
        if self.factor is None:
            raise RuntimeError("MahalanobisDistance.setup(in_features) must be called before use")
        if self.rank is None:
            return x @ torch.tril(self.factor).T
        return torch.cat([x, x @ self.factor.T], dim=-1)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return safe_sqrt(squared_euclidean(self.transform(x), self.transform(w)))


class DiagonalMahalanobisDistance(Distance):
    """d = sqrt(sum_k s_k^2 (x_k - w_k)^2) with learnable per-feature scales s = exp(log_scale), init 1."""

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
