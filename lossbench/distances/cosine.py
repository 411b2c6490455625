"""Cosine distance 1 - cos(x, w).

1 - cos(x, w) = ||x/|x| - w/|w| ||^2 / 2, so it reuses the refined squared-Euclidean identity and
keeps precision near 0 (aligned vectors), where 1 - x.w/(|x||w|) itself would cancel.
"""

from __future__ import annotations

import numpy as np
import torch.nn.functional as F
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import squared_euclidean
from lossbench.ranges import PositiveFloat


class CosineDistance(Distance):
    """1 - cosine similarity, in [0, 2]; `eps` floors the norms, so a zero vector is at distance 1."""

    name = "cosine"
    term_flops = 2  # a multiply-add per term (matrix product of normalised vectors)

    def __init__(self, eps: PositiveFloat = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        xn, wn = F.normalize(x, dim=1, eps=self.eps), F.normalize(w, dim=1, eps=self.eps)
        # 1 - cos = |xn - wn|^2 / 2 only for unit vectors; a floored zero vector has cos = 0
        sq = squared_euclidean(xn, wn)
        return (0.5 * (sq + (1.0 - xn.pow(2).sum(1, keepdim=True)) + (1.0 - wn.pow(2).sum(1)))).clamp_min(0.0)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "cosine")
