"""Canberra distance sum_k |x_k - w_k| / (|x_k| + |w_k|) (scipy 'canberra').

Terms with |x_k| + |w_k| = 0 count 0, as in scipy. A fused Triton kernel on CUDA (kernels.py),
block-wise torch elsewhere (PairwiseReduce).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import fused, pairwise_reduce


def _canberra(x: Tensor, w: Tensor) -> Tensor:
    den = x.abs() + w.abs()
    safe = torch.where(den > 0, den, torch.ones_like(den))
    return torch.where(den > 0, (x - w).abs() / safe, torch.zeros_like(den)).sum(-1)


class CanberraDistance(Distance):
    """Weighted L1 where each coordinate's weight is 1 / (|x_k| + |w_k|); each term lies in [0, 1]."""

    name = "canberra"
    term_flops = 7  # subtract, 3 absolute values, add, divide, add

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        kernels = fused(x)
        if kernels:
            return kernels.fused_reduce(x, w, kernels.CANBERRA)
        return pairwise_reduce(x, w, _canberra)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.spatial.distance import cdist

        return cdist(x, w, "canberra")
