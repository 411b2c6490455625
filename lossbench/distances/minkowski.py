"""Minkowski (L_p) distances: fused Triton kernels on CUDA (kernels.py), torch.cdist's direct path
elsewhere; O(M*V) memory forward and backward on both.

Manhattan is p = 1, Chebyshev p = inf (the true max, not a softmax-weighted mean).
"""

from __future__ import annotations

import torch
from torch import Tensor

from lossbench.distances import kernels
from lossbench.distances.base import Distance

_DIRECT = "donot_use_mm_for_euclid_dist"  # exact path (matters only for p = 2)


def l1(x: Tensor, w: Tensor) -> Tensor:
    """sum_k |x_k - w_k| for all pairs, (M, V): the fused kernel on CUDA, torch.cdist elsewhere."""
    return kernels.fused_reduce(x, w, kernels.POWER, 1.0) if kernels.available(x) else torch.cdist(x, w, p=1.0)


class MinkowskiDistance(Distance):
    """(sum_k |x_k - w_k|^p)^(1/p) for p > 0 (scipy 'minkowski'; p < 1 is not a metric)."""

    def __init__(self, p: float = 1.5) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"minkowski needs p > 0, got {p}")
        self.p = p

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        if kernels.available(x):
            return self.fused(x, w)
        return torch.cdist(x, w, p=self.p, compute_mode=_DIRECT)

    def fused(self, x: Tensor, w: Tensor) -> Tensor:
        """The Triton path: S = sum |x - w|^p, then S^(1/p) (gradient 0 at S = 0, a subgradient)."""
        s = kernels.fused_reduce(x, w, kernels.POWER, self.p)
        positive = s > 0
        return torch.where(positive, torch.where(positive, s, torch.ones_like(s)).pow(1.0 / self.p), torch.zeros_like(s))


class ManhattanDistance(MinkowskiDistance):
    """sum_k |x_k - w_k| (scipy 'cityblock')."""

    def __init__(self) -> None:
        super().__init__(p=1.0)

    def fused(self, x: Tensor, w: Tensor) -> Tensor:
        return kernels.fused_reduce(x, w, kernels.POWER, 1.0)


class ChebyshevDistance(MinkowskiDistance):
    """max_k |x_k - w_k| (scipy 'chebyshev'); the gradient flows to the arg-max coordinate."""

    def __init__(self) -> None:
        super().__init__(p=float("inf"))

    def fused(self, x: Tensor, w: Tensor) -> Tensor:
        return kernels.fused_reduce(x, w, kernels.MAX)
