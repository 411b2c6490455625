"""Euclidean distance ||x - w||_2 and its square, via the matrix-product identity.

O(M*V) memory, never (M, V, N); entries where the identity cancels are recomputed exactly
(see `squared_euclidean`), so d(x, x) = 0 and small distances keep their relative precision.
"""

from __future__ import annotations

from torch import Tensor

from lossbench.distances.base import Distance, safe_sqrt, squared_euclidean


class EuclideanDistance(Distance):
    """d(x, w) = ||x - w||_2; the gradient at d = 0 is taken as 0."""

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return safe_sqrt(squared_euclidean(x, w))


class SquaredEuclideanDistance(Distance):
    """d(x, w) = ||x - w||_2^2 (scipy 'sqeuclidean'); HarMax with exponent n on it equals 2n on Euclidean."""

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return squared_euclidean(x, w)
