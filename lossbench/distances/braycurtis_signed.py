"""Bray-Curtis as the Rethinking reference code computes it (`bray_curtis_standard`, docs/research/reference-code.md §1.2):

    d = sum_k |x_k - w_k| / max(|sum_k (x_k + w_k)| + eps, 10 eps),   eps = 1e-3.

A reference variant, off by default: it exists so that `experiment=paper_vision_reference` can reproduce the
published setup. It is not the Bray-Curtis dissimilarity (`braycurtis`, scipy): the denominator is the absolute
value of the *signed* sum, not the sum of absolute values. Since |sum (x + w)| <= sum |x + w| it is never
below scipy's value, and on signed features (a backbone's output) it is far above it wherever x and w cancel:
HarMax probabilities from the two formulas have been seen to differ by up to 260x, with the arg-max agreeing
13.5 % of the time. On non-negative features the two agree (up to eps). O(M V) memory: the numerator is an
L1 distance (fused kernel on CUDA), the denominator |sum x + sum w|.
"""

from __future__ import annotations

import numpy as np
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import l1
from lossbench.ranges import PositiveFloat


class BrayCurtisSignedDistance(Distance):
    """The reference code's Bray-Curtis: L1 distance over |sum (x + w)|, floored at 10 eps."""

    name = "braycurtis_signed"
    reproduces = "vision/models/distlayers.py bray_curtis_standard"
    term_flops = 4  # the L1 reduction (3) and the sums of x + w (1)

    def __init__(self, eps: PositiveFloat = 1e-3) -> None:
        super().__init__()
        self.eps = eps

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        den = (x.sum(-1)[:, None] + w.sum(-1)[None, :]).abs() + self.eps
        return l1(x, w) / den.clamp_min(10 * self.eps)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        diff = x[:, None, :] - w[None, :, :]
        total = x[:, None, :] + w[None, :, :]
        return np.abs(diff).sum(-1) / np.maximum(np.abs(total.sum(-1)) + self.eps, 10 * self.eps)
