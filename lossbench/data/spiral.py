"""The C-arm 2-D spiral ("Swiss roll") of the dynamical-loss papers.

Generator of the official notebook (miguel-rg/dynamical-loss-functions, `make_dataset`): for class j,
r = linspace(0, 1, N), theta = linspace(2*pi*j/C, 2*pi*j/C + revolutions*pi, N) + noise * randn(N),
x = (r cos theta, r sin theta). Train, validation and test are draws with seeds s, s+1, s+2.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
from annotated_types import Ge
from torch import Tensor

from lossbench.data.base import Splits
from lossbench.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt


def make_spiral(
    points_per_class: int, num_classes: int, revolutions: float, noise: float, seed: int
) -> tuple[Tensor, Tensor]:
    """One draw of the spiral: (x of shape (C*N, 2), integer labels)."""
    rng = np.random.RandomState(seed)
    r = np.linspace(0.0, 1.0, points_per_class)
    xs, ys = [], []
    for j in range(num_classes):
        start = 2 * np.pi * j / num_classes
        theta = np.linspace(start, start + revolutions * np.pi, points_per_class)
        theta = theta + noise * rng.randn(points_per_class)
        xs.append(np.stack([r * np.cos(theta), r * np.sin(theta)], axis=1))
        ys.append(np.full(points_per_class, j))
    return torch.as_tensor(np.concatenate(xs), dtype=torch.float32), torch.as_tensor(np.concatenate(ys))


class Spiral:
    """Spiral classification with independent train / validation / test draws."""

    kind = "labels"

    def __init__(
        self,
        points_per_class: PositiveInt = 100,
        num_classes: Annotated[int, Ge(2)] = 3,
        revolutions: PositiveFloat = 4.0,
        noise: NonNegativeFloat = 0.2,
        generator_seed: NonNegativeInt = 0,
    ) -> None:
        self.args = (points_per_class, num_classes, revolutions, noise)
        self.num_classes, self.generator_seed = num_classes, generator_seed

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        train, val, test = (make_spiral(*self.args, seed=self.generator_seed + k) for k in range(3))
        return Splits(*train, *val, *test, num_classes=self.num_classes)
