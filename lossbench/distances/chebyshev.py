"""Chebyshev (L-infinity) distance: Minkowski with p = inf, the true max (not a softmax-weighted mean)."""

from __future__ import annotations

import math

import numpy as np

from lossbench.distances.minkowski import MinkowskiDistance


class ChebyshevDistance(MinkowskiDistance):
    """max_k |x_k - w_k| (scipy 'chebyshev'); the gradient flows to the arg-max coordinate."""

    name = "chebyshev"
    term_flops = 3  # subtract, absolute value, compare

    def __init__(self) -> None:
        super().__init__(p=math.inf)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "chebyshev")
