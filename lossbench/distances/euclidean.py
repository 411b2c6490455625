"""Euclidean distance ||x - w||_2 via the matrix-product identity.

O(M*V) memory, never (M, V, N); entries where the identity cancels are recomputed exactly
(see `numerics.squared_euclidean`), so d(x, x) = 0 and small distances keep their relative precision.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import safe_sqrt, squared_euclidean


class EuclideanDistance(Distance):
    """d(x, w) = ||x - w||_2; the gradient at d = 0 is taken as 0."""

    name = "euclidean"
    rethinking_n = 2.0  # the reference layer's (d^2)^-1
    term_flops = 2  # a multiply-add per term (the matrix product)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return safe_sqrt(squared_euclidean(x, w))

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "euclidean")
