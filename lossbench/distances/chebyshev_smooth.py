"""Smooth Chebyshev distance: a log-sum-exp relaxation of max_k |x_k - w_k|.

d = t * log sum_k exp(|x_k - w_k| / t), which lies in [max, max + t log N] and tends to the true
max as the temperature t -> 0. Computed block-wise (PairwiseReduce): no (M, V, N) tensor.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossbench import SettingError
from lossbench.distances.base import Distance
from lossbench.distances.numerics import pairwise_reduce
from lossbench.ranges import PositiveFloat


class ChebyshevSmoothDistance(Distance):
    """t * logsumexp(|x - w| / t) over features; differentiable everywhere except x_k = w_k."""

    name = "chebyshev_smooth"
    term_flops = 5  # subtract, absolute value, divide, exp, add
    zero_on_diagonal = False  # d(x, x) = t log N

    def __init__(self, temperature: PositiveFloat = 0.1) -> None:
        super().__init__()
        if temperature <= 0:
            raise SettingError(f"chebyshev_smooth needs temperature > 0, got {temperature}")
        self.temperature = temperature

    def _term(self, x: Tensor, w: Tensor) -> Tensor:
        return self.temperature * torch.logsumexp((x - w).abs() / self.temperature, dim=-1)

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        return pairwise_reduce(x, w, self._term)

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.special import logsumexp

        t = self.temperature
        return t * logsumexp(np.abs(x[:, None, :] - w[None, :, :]) / t, axis=-1)
