"""Minkowski (L_p) distances in O(M*V) memory forward and backward: fused Triton kernels on CUDA
(kernels.py); on CPU torch.cdist for p = 1 and p = inf (it has fast special kernels for both) and
block-wise torch (PairwiseReduce) for any other p, about 2x faster than cdist's general-p path.

Manhattan is p = 1, Chebyshev p = inf (the true max, not a softmax-weighted mean).
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from lossbench.distances import kernels
from lossbench.distances.base import Distance, pairwise_reduce, safe_power


def l1(x: Tensor, w: Tensor) -> Tensor:
    """sum_k |x_k - w_k| for all pairs, (M, V): the fused kernel on CUDA, torch.cdist elsewhere."""
    return kernels.fused_reduce(x, w, kernels.POWER, 1.0) if kernels.available(x) else torch.cdist(x, w, p=1.0)


def linf(x: Tensor, w: Tensor) -> Tensor:
    """max_k |x_k - w_k| for all pairs, (M, V): the fused kernel (arg-max kept) on CUDA, torch.cdist elsewhere."""
    return kernels.fused_reduce(x, w, kernels.MAX) if kernels.available(x) else torch.cdist(x, w, p=math.inf)


class MinkowskiDistance(Distance):
    """(sum_k |x_k - w_k|^p)^(1/p) for p > 0 (scipy 'minkowski'; p < 1 is not a metric, p = inf is the max)."""

    def __init__(self, p: float = 1.5) -> None:
        super().__init__()
        if p <= 0:
            raise ValueError(f"minkowski needs p > 0, got {p}")
        self.p = p

    def _power_sum(self, x: Tensor, w: Tensor) -> Tensor:
        # d|u|^p/du = p|u|^(p-1) sign(u) is 0 at u = 0 for p >= 1 but inf * 0 for p < 1: only then guard
        # (the guard costs 1.7x on CPU)
        a = (x - w).abs()
        return (a.pow(self.p) if self.p >= 1 else safe_power(a, self.p)).sum(-1)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        if self.p == 1.0:
            return l1(x, w)
        if math.isinf(self.p):
            return linf(x, w)
        if kernels.available(x):
            s = kernels.fused_reduce(x, w, kernels.POWER, self.p)
        else:
            s = pairwise_reduce(x, w, self._power_sum)
        return safe_power(s, 1.0 / self.p)


class ManhattanDistance(MinkowskiDistance):
    """sum_k |x_k - w_k| (scipy 'cityblock')."""

    def __init__(self) -> None:
        super().__init__(p=1.0)


class ChebyshevDistance(MinkowskiDistance):
    """max_k |x_k - w_k| (scipy 'chebyshev'); the gradient flows to the arg-max coordinate."""

    def __init__(self) -> None:
        super().__init__(p=math.inf)
