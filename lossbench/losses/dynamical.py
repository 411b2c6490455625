"""Dynamical losses (Ruiz-Garcia et al., ICML 2021; Lavin Pallero & Ruiz-Garcia 2024): class weights
Gamma(t) that oscillate during training while the minima stay those of the static loss.

Gamma(t) (official notebooks, miguel-rg/dynamical-loss-functions, `c_fn`): one class at a time is
boosted, in order 0, 1, ..., C-1, 0, ...; within a period of T steps (tau = t mod T) the boosted class's
weight rises linearly from 1 to A at T/2 and back to 1; the others stay 1; then Gamma is renormalised
to sum to C. The notebook's periods last T + 1 steps (tau runs 0..T inclusive); here they last T.
Gamma never enters autograd.
"""

from __future__ import annotations

from typing import Annotated, Literal

import numpy as np
import torch
import torch.nn.functional as F
from annotated_types import Ge
from torch import Tensor

from lossbench import SettingError
from lossbench.losses.base import Criterion, log_softmax64, nll, wide
from lossbench.ranges import PositiveInt


def class_weights(step: int, num_classes: int, amplitude: float, period: int, start_mid_period: bool = False) -> Tensor:
    """Gamma(step): (C,) float64 weights summing to C."""
    t = step + (period // 2 if start_mid_period else 0)
    boosted, tau = (t // period) % num_classes, t % period
    rise = 2.0 * (amplitude - 1.0) * tau / period
    peak = 1.0 + rise if tau < period / 2 else 2.0 * amplitude - 1.0 - rise
    gamma = torch.ones(num_classes, dtype=torch.float64)
    gamma[boosted] = peak
    return gamma * num_classes / gamma.sum()


class _Dynamical(Criterion, abstract=True):
    def __init__(self, amplitude: float, period: int, static_last_period: bool, total_steps: int | None,
                 start_mid_period: bool) -> None:
        super().__init__()
        if amplitude < 1 or period < 2:
            raise SettingError(f"dynamical losses need amplitude >= 1 and period >= 2, got A={amplitude}, T={period}")
        if static_last_period and total_steps is None:
            raise SettingError("static_last_period needs total_steps (step-based training: set trainer.steps)")
        self.amplitude, self.period, self.start_mid_period = amplitude, period, start_mid_period
        self.static_from = total_steps - period if static_last_period and total_steps is not None else None

    def weights(self, step: int, num_classes: int, like: Tensor) -> Tensor:
        """Gamma(step) on the device of `like`; with static_last_period, A = 1 (the static loss) for the
        last `period` steps, the paper's evaluation protocol."""
        static = self.static_from is not None and step >= self.static_from
        gamma = class_weights(step, num_classes, 1.0 if static else self.amplitude, self.period, self.start_mid_period)
        return gamma.to(device=like.device, dtype=like.dtype)

    def reference_weights(self, step: int, num_classes: int) -> np.ndarray:
        """Gamma(t) in float64 numpy, transcribed from the notebook's triangle wave: class (t // T) mod C gets
        1 + 2 (A - 1) tau / T up to tau = T / 2 and 2A - 1 - 2 (A - 1) tau / T after it, the others 1, then
        C Gamma / sum(Gamma); A = 1 over the last period when static_last_period is set."""
        amplitude = 1.0 if self.static_from is not None and step >= self.static_from else self.amplitude
        t = step + (self.period // 2 if self.start_mid_period else 0)
        tau, boosted = t % self.period, (t // self.period) % num_classes
        gamma = np.ones(num_classes)
        gamma[boosted] = (1 + 2 * (amplitude - 1) * tau / self.period if 2 * tau < self.period
                          else 2 * amplitude - 1 - 2 * (amplitude - 1) * tau / self.period)
        return num_classes * gamma / gamma.sum()


class DynamicalCrossEntropy(_Dynamical):
    """DCE = mean over samples of Gamma_{y}(t) * (-log softmax(z)_y)."""

    name = "dce"

    def __init__(self, amplitude: Annotated[float, Ge(1)] = 70.0, period: Annotated[int, Ge(2)] = 5000,
                 static_last_period: bool = False, total_steps: PositiveInt | None = None,
                 start_mid_period: bool = False) -> None:
        super().__init__(amplitude, period, static_last_period, total_steps, start_mid_period)

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        n = nll(logits, target)
        return (self.weights(step, logits.shape[1], n)[target] * n).mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """-(1/N) sum_mu Gamma_{y_mu}(t) log softmax(z_mu)_{y_mu} (Ruiz-Garcia et al. 2021)."""
        logp = log_softmax64(logits)[np.arange(len(target)), target]
        return float(np.mean(-self.reference_weights(step, np.shape(logits)[1])[target] * logp))


class DynamicalMSE(_Dynamical):
    """DMSE on softmax probabilities. The paper's exact equations could not be checked (docs/research/losses.md
    section 1); two readings are offered: `weighting=sample` (DMSE1) weights each sample's squared
    error by its class's Gamma_y(t); `weighting=output` (DMSE2) weights each output unit k by Gamma_k(t)."""

    name = "dmse"

    def __init__(self, amplitude: Annotated[float, Ge(1)] = 70.0, period: Annotated[int, Ge(2)] = 5000,
                 static_last_period: bool = False, total_steps: PositiveInt | None = None, start_mid_period: bool = False,
                 weighting: Literal["sample", "output"] = "sample") -> None:
        super().__init__(amplitude, period, static_last_period, total_steps, start_mid_period)
        self.weighting = weighting

    def forward(self, logits: Tensor, target: Tensor, step: int = 0) -> Tensor:
        p = wide(logits).softmax(1)
        sq = (p - F.one_hot(target, p.shape[1])).pow(2)  # (B, K)
        gamma = self.weights(step, p.shape[1], p)
        weighted = sq.sum(1) * gamma[target] if self.weighting == "sample" else (sq * gamma).sum(1)
        return weighted.mean()

    def reference(self, logits: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        """DMSE1 (1/N) sum_mu Gamma_{y_mu}(t) sum_i (p_i - e_{y_mu,i})^2 (`sample`) or DMSE2
        (1/N) sum_mu sum_i Gamma_i(t) (p_i - e_{y_mu,i})^2 (`output`), p the softmax."""
        p = np.exp(log_softmax64(logits))
        gamma = self.reference_weights(step, p.shape[1])
        sq = (p - np.eye(p.shape[1])[target]) ** 2
        per_sample = sq.sum(axis=1) * gamma[target] if self.weighting == "sample" else (sq * gamma).sum(axis=1)
        return float(np.mean(per_sample))
