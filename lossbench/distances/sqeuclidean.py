"""Squared Euclidean distance ||x - w||_2^2 via the refined matrix-product identity."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import squared_euclidean


class SquaredEuclideanDistance(Distance):
    """d(x, w) = ||x - w||_2^2 (scipy 'sqeuclidean'); HarMax with exponent n on it equals 2n on Euclidean."""

    name = "sqeuclidean"
    term_flops = 2  # a multiply-add per term

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return squared_euclidean(x, w)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "sqeuclidean")
