"""The loss contract: a criterion maps (logits (B, K), target (B,), step) to a scalar.

A criterion is one class plus one `conf/loss/criterion/<name>.yaml`. It declares its `name` (the row's
`criterion` column and the report label) and its float64 `reference`: the paper's formula in numpy,
written without lossbench code, which the generic tests (tests/test_criteria.py) check every criterion
against, so adding a criterion needs no edit of a test file. A class that leaves either out fails when
it is defined (`contract.require`), with a message saying what to add.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from lossbench import SettingError
from lossbench.contract import require
from lossbench.ranges import NonNegativeFloat


class Criterion(nn.Module):
    """Base class; `step` is the global optimisation step (dynamical losses use it, others ignore it).

    `name` is the criterion's label in result rows and reports (`focal`, `dce`, ...). Subclasses implement
    `forward` and `reference`; an intermediate class shared by several criteria says `abstract=True`.
    """

    name: ClassVar[str]

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            require(cls, Criterion, ("name",), ("reference",), "criterion", "lossbench/losses/base.py")

    @classmethod
    def label(cls, params: Mapping[str, Any]) -> str:
        """The label of this criterion with these configured parameters (its `name` unless a
        parameter makes it a different, separately named loss)."""
        return cls.name

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        raise NotImplementedError

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """The batch loss in float64 from the paper's formula (numpy only, no lossbench or torch code):
        the oracle of the test suite. Reads the criterion's current settings."""
        raise NotImplementedError


def log_softmax64(z: np.ndarray) -> np.ndarray:
    """log softmax of float64 logits (B, K), row by row: z - max - log sum exp(z - max). For references."""
    z = np.asarray(z, dtype=np.float64)
    shifted = z - z.max(axis=1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))


def target_prob64(z: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(log p_y, p_y) per sample of float64 logits (B, K) and integer targets (B,). For references."""
    logp = log_softmax64(z)[np.arange(len(y)), np.asarray(y)]
    return logp, np.exp(logp)


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

    name = "aux_z_loss"  # a wrapper: rows and reports name the criterion it wraps

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

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        z = np.asarray(logits, dtype=np.float64)
        m = z.max(axis=1)
        lse = m + np.log(np.exp(z - m[:, None]).sum(axis=1))
        return self.criterion.reference(z, target, step) + self.coefficient * float(np.mean(lse ** 2))
