"""Minkowski (L_p) distances through torch.cdist's direct path: O(M*V) memory forward and backward.

Manhattan is p = 1, Chebyshev p = inf (the true max, not a softmax-weighted mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossbench.distances.base import Distance

_DIRECT = "donot_use_mm_for_euclid_dist"  # exact path (matters only for p = 2)


class MinkowskiDistance(Distance):
    """(sum_k |x_k - w_k|^p)^(1/p) for p > 0 (scipy 'minkowski'; p < 1 is not a metric)."""

    def __init__(self, p: float = 1.5) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"minkowski needs p > 0, got {p}")
        self.p = p

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return torch.cdist(x, w, p=self.p, compute_mode=_DIRECT)


class ManhattanDistance(MinkowskiDistance):
    """sum_k |x_k - w_k| (scipy 'cityblock')."""

    def __init__(self) -> None:
        super().__init__(p=1.0)


class ChebyshevDistance(MinkowskiDistance):
    """max_k |x_k - w_k| (scipy 'chebyshev'); the gradient flows to the arg-max coordinate."""

    def __init__(self) -> None:
        super().__init__(p=float("inf"))
