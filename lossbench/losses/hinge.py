"""Multi-class hinge losses with margin m: Crammer-Singer max_{j!=y} and Weston-Watkins sum_{j!=y}
of max(0, m + z_j - z_y)."""

from __future__ import annotations

from torch import Tensor

from lossbench.losses.base import Criterion, wide
from lossbench.ranges import NonNegativeFloat


def _margins(logits: Tensor, target: Tensor, margin: float) -> Tensor:
    """max(0, m + z_j - z_y) for j != y (0 at j = y), shape (B, K)."""
    z = wide(logits)
    violations = (margin + z - z.gather(1, target[:, None])).clamp_min(0.0)
    return violations.scatter(1, target[:, None], 0.0)


class CrammerSingerHinge(Criterion):
    """max over wrong classes of the margin violation (Crammer & Singer 2001)."""

    name = "hinge_cs"

    def __init__(self, margin: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return _margins(logits, target, self.margin).amax(1).mean()


class WestonWatkinsHinge(Criterion):
    """Sum over wrong classes of the margin violations (Weston & Watkins 1999); torch's
    F.multi_margin_loss is this divided by K."""

    name = "hinge_ww"

    def __init__(self, margin: NonNegativeFloat = 1.0) -> None:
        super().__init__()
        self.margin = margin

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return _margins(logits, target, self.margin).sum(1).mean()


