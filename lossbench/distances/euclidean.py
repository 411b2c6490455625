"""Euclidean distance ||x - w||_2 via the matrix-product identity ||x||^2 + ||w||^2 - 2 x.w.

O(M*V) memory, never (M, V, N). The identity loses relative precision where d is tiny compared
with ||x|| and ||w|| (cancellation); the squared value is clamped at 0 so d is always real.
"""

from __future__ import annotations

from torch import Tensor

from lossbench.distances.base import Distance, safe_sqrt


class EuclideanDistance(Distance):
    """d(x, w) = ||x - w||_2; gradient at d = 0 is taken as 0."""

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        sq = x.pow(2).sum(1, keepdim=True) + w.pow(2).sum(1) - 2.0 * (x @ w.T)  # (M, V)
        return safe_sqrt(sq.clamp_min(0.0))
