"""The Rethinking reference code's "Chebyshev" (`chebyshev_standard`, docs/research/reference-code.md §1.2):

    u_k = |x_k - w_k| / (std_k |x - w| + eps),   d = sum_k softmax(u)_k u_k,   eps = 1e-4,

a softmax-weighted mean of the standardised coordinate differences, not a maximum: it is scale-free (d is the
same for x - w and 10 (x - w)) and is bounded by max_k u_k. A reference variant, off by default, for
`experiment=paper_vision_reference`; `chebyshev` is the true L-infinity distance and `chebyshev_smooth` a
log-sum-exp relaxation of it. The standard deviation is the unbiased one (torch's default, as in the
reference), computed as sqrt(var + 1e-24) so that its gradient stays finite where x = w. Block-wise
(PairwiseReduce): no (M, V, N) tensor.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossbench.distances.base import Distance
from lossbench.distances.numerics import pairwise_reduce
from lossbench.ranges import PositiveFloat


class ChebyshevReferenceDistance(Distance):
    """sum_k softmax(u)_k u_k over the standardised differences u (module docstring)."""

    name = "chebyshev_reference"
    reproduces = "vision/models/distlayers.py chebyshev_standard"
    term_flops = 9  # subtract, |.|, mean/variance (3), divide, exp, softmax normalise, multiply-add

    def __init__(self, eps: PositiveFloat = 1e-4) -> None:
        super().__init__()
        self.eps = eps

    def _term(self, x: Tensor, w: Tensor) -> Tensor:
        a = (x - w).abs()
        u = a / (torch.sqrt(a.var(dim=-1, keepdim=True) + 1e-24) + self.eps)
        return (torch.softmax(u, dim=-1) * u).sum(-1)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return pairwise_reduce(x, w, self._term)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        a = np.abs(x[:, None, :] - w[None, :, :])
        u = a / (a.std(axis=-1, ddof=1, keepdims=True) + self.eps)
        weights = np.exp(u - u.max(axis=-1, keepdims=True))
        return (weights / weights.sum(axis=-1, keepdims=True) * u).sum(-1)
