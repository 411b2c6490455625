"""The loss contract (DESIGN.md): a criterion maps (logits (B, K), target (B,), step) to a scalar."""

from __future__ import annotations

from torch import Tensor, nn


class Criterion(nn.Module):
    """Base class; `step` is the global optimisation step (dynamical losses use it, others ignore it)."""

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        raise NotImplementedError
