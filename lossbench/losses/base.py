"""The loss contract (DESIGN.md): a criterion maps (logits (B, K), target (B,), step) to a scalar."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from lossbench import SettingError
from lossbench.ranges import NonNegativeFloat


class Criterion(nn.Module):
    """Base class; `step` is the global optimisation step (dynamical losses use it, others ignore it).

    `name` is the criterion's label in result rows and reports (`focal`, `dce`, ...).
    """

    name: ClassVar[str]

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> str:
        """The label of this criterion with these configured parameters (its `name` unless a
        parameter makes it a different, separately named loss)."""
        return cls.name

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        raise NotImplementedError


def wide(logits: Tensor) -> Tensor:
    """Half-precision logits as float32; float32 and float64 unchanged (losses accumulate in fp32+)."""
    return logits.float() if logits.dtype in (torch.float16, torch.bfloat16) else logits


def nll(logits: Tensor, target: Tensor) -> Tensor:
    """Per-sample negative log-likelihood lse(z) - z_y, shape (B,)."""
    z = wide(logits)
    return torch.logsumexp(z, 1) - z.gather(1, target[:, None]).squeeze(1)


class AuxZLoss(Criterion):
    """criterion + coefficient * mean(logsumexp(z)^2): the PaLM / ST-MoE auxiliary z-loss, an add-on
    that keeps logits normalised (not the spherical Z-loss of de Brebisson & Vincent)."""

    def __init__(self, criterion: Criterion, coefficient: NonNegativeFloat = 0.0) -> None:
        super().__init__()
        if coefficient < 0:
            raise SettingError(f"z_loss coefficient must be >= 0, got {coefficient}")
        self.criterion, self.coefficient = criterion, coefficient

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        loss = self.criterion(logits, target, step)
        if self.coefficient == 0:
            return loss
        return loss + self.coefficient * torch.logsumexp(wide(logits), 1).pow(2).mean()
