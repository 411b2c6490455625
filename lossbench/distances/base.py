"""The distance contract (DESIGN.md): `pairwise(x, w) -> d`, smaller = closer, d >= 0, d(x, x) = 0."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Distance(nn.Module):
    """Base class: subclasses implement `pairwise`; half-precision inputs are computed in float32."""

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        """Distances between every row of x (M, N) and every row of w (V, N); returns (M, V)."""
        raise NotImplementedError

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        if x.dtype in (torch.float16, torch.bfloat16) or w.dtype in (torch.float16, torch.bfloat16):
            x, w = x.float(), w.float()
        return self.pairwise(x, w)


def safe_sqrt(sq: Tensor) -> Tensor:
    """sqrt with gradient 0 (a subgradient) instead of inf where sq == 0."""
    positive = sq > 0
    return torch.where(positive, torch.sqrt(torch.where(positive, sq, torch.ones_like(sq))), torch.zeros_like(sq))
