"""Manhattan (city-block, L1) distance: Minkowski with p = 1 (fused kernel on CUDA, cdist on CPU)."""

from __future__ import annotations

import numpy as np

from lossbench.distances.minkowski import MinkowskiDistance


class ManhattanDistance(MinkowskiDistance):
    """sum_k |x_k - w_k| (scipy 'cityblock')."""

    name = "manhattan"
    term_flops = 3  # subtract, absolute value, add

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "cityblock")
