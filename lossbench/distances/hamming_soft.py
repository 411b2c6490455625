"""Soft Hamming distance: a differentiable relaxation of the fraction of coordinates whose signs differ.

d = mean_k |sigmoid(x_k / t) - sigmoid(w_k / t)|. As t -> 0 it tends to scipy's 'hamming' on the
sign patterns (x > 0) vs (w > 0); for t > 0 it is a relaxation, not the Hamming distance. It is an
L1 distance between squashed vectors, so an L1 reduction (the fused Manhattan kernel on CUDA,
torch.cdist elsewhere) computes it in O(M*V) memory.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from lossbench import SettingError
from lossbench.distances.base import Distance
from lossbench.distances.numerics import l1
from lossbench.ranges import PositiveFloat


class HammingSoftDistance(Distance):
    """mean over features of |sigmoid(x/t) - sigmoid(w/t)|, in [0, 1]."""

    name = "hamming_soft"
    term_flops = 3  # an L1 reduction of squashed inputs

    def __init__(self, temperature: PositiveFloat = 1.0) -> None:
        super().__init__()
        if temperature <= 0:
            raise SettingError(f"hamming_soft needs temperature > 0, got {temperature}")
        self.temperature = temperature

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        sx, sw = torch.sigmoid(x / self.temperature), torch.sigmoid(w / self.temperature)
        return l1(sx, sw) / x.shape[1]

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        from scipy.special import expit

        t = self.temperature
        return np.abs(expit(x[:, None, :] / t) - expit(w[None, :, :] / t)).mean(-1)
