"""Bray-Curtis distance sum_k |x_k - w_k| / sum_k |x_k + w_k| (scipy 'braycurtis').

Both sums are L1 distances (|x + w| = |x - (-w)|), so two L1 reductions compute it in O(M*V)
memory: the fused Manhattan kernel on CUDA, torch.cdist elsewhere. Where the denominator vanishes
(x = -w) scipy returns NaN; here it is floored at `eps`, so x = w = 0 gives 0 and x = -w != 0 gives
a very large, finite distance.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import l1
from lossbench.ranges import PositiveFloat


class BrayCurtisDistance(Distance):
    """sum |x - w| / max(sum |x + w|, eps); in [0, 1] for non-negative inputs."""

    name = "braycurtis"
    term_flops = 6  # two L1 reductions of 3

    def __init__(self, eps: PositiveFloat = 1e-12) -> None:
        super().__init__()
        self.eps = eps

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return l1(x, w) / l1(x, -w).clamp_min(self.eps)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "braycurtis")
