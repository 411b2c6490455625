"""Heads: the last layer, mapping features (M, N) to logits (M, V).

A head is a distance; a loss consumes logits (docs/design.md). `LinearHead` gives the usual W x + b.
`DistanceHead` gives HarMax logits -n * log(d(x, w_i) + eps) (Baek et al. 2025, arXiv 2502.01628):
softmax of them is d_i^-n / sum_j d_j^-n exactly, computed in log space so nothing under- or overflows.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

from lossbench import SettingError
from lossbench.distances.base import Distance
from lossbench.ranges import PositiveFloat


def prototype_parameter(in_features: int, num_classes: int) -> nn.Parameter:
    """(num_classes, in_features) prototypes drawn from U(-1/sqrt(N), 1/sqrt(N)): the scale of nn.Linear's
    default weight init, so a prototype head starts where a linear head would."""
    bound = 1.0 / math.sqrt(in_features)
    return nn.Parameter(torch.empty(num_classes, in_features).uniform_(-bound, bound))


class LinearHead(nn.Module):
    """logits = x W^T + b; the rows of W play the prototype role in interpretability probes."""

    name = "linear"

    def __init__(self, in_features: int, num_classes: int, bias: bool = True) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, num_classes, bias=bias)

    @property
    def prototypes(self) -> Tensor:
        return self.linear.weight

    def forward(self, x: Tensor) -> Tensor:
        return self.linear(x)


class DistanceHead(nn.Module):
    """Harmonic head: prototypes w_i (V, N) and logits -n * log(d(x, w_i) + eps).

    n is the harmonic exponent applied to d (not d^2), or "sqrt" for sqrt(in_features) (the scale
    the harmonic-loss GPT code suggests for wide features), or "rethinking" for the Rethinking paper's
    convention (the distance's `rethinking_n`: 1, Euclidean 2); eps keeps log finite at d = 0 and bounds
    the gradient there by n / eps.
    """

    name = "harmonic"

    def __init__(
        self, in_features: int, num_classes: int, distance: Distance,
        n: PositiveFloat | Literal["sqrt", "rethinking"] = 2.0,
        eps: PositiveFloat = 1e-6
    ) -> None:
        super().__init__()
        n = {"sqrt": math.sqrt(in_features), "rethinking": distance.rethinking_n}.get(n, n)  # type: ignore[call-overload]
        if n <= 0 or eps <= 0:
            raise SettingError(f"harmonic head needs n > 0 and eps > 0, got n={n}, eps={eps}")
        self.distance, self.n, self.eps = distance, n, eps
        distance.setup(in_features)
        self.weight = prototype_parameter(in_features, num_classes)

    @property
    def prototypes(self) -> Tensor:
        return self.weight

    def forward(self, x: Tensor) -> Tensor:
        return -self.n * torch.log(self.distance(x, self.weight) + self.eps)
