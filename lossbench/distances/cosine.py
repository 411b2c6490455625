"""Cosine distance 1 - cos(x, w) = 1 - x.w / (||x|| ||w||), in [0, 2]."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from lossbench.distances.base import Distance


class CosineDistance(Distance):
    """1 - cosine similarity; `eps` floors the norms so zero vectors give distance 1, not NaN."""

    def __init__(self, eps: float = 1e-8) -> None:
        super().__init__()
        self.eps = eps

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        xn = F.normalize(x, dim=1, eps=self.eps)
        wn = F.normalize(w, dim=1, eps=self.eps)
        return (1.0 - xn @ wn.T).clamp_min(0.0)
