"""Correlation distance: the cosine distance of mean-centred vectors (1 - Pearson correlation)."""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.distances.cosine import CosineDistance


class CorrelationDistance(CosineDistance):
    """1 - Pearson correlation of x and w across features (scipy 'correlation')."""

    name = "correlation"
    term_flops = 2  # a multiply-add per term

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return super().pairwise(x - x.mean(1, keepdim=True), w - w.mean(1, keepdim=True))

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "correlation")
