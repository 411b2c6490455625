"""Modular addition (a + b) mod p, the grokking task (Power et al. 2022): inputs are token pairs."""

from __future__ import annotations

from typing import Annotated

import torch
from annotated_types import Ge

from lossbench import SettingError
from lossbench.data.base import Splits, carve_validation
from lossbench.ranges import NonNegativeInt, OpenFraction


class ModularAddition:
    """All p^2 pairs (a, b) with label (a + b) mod p; a seeded `train_fraction` trains, the rest tests."""

    kind = "labels"

    def __init__(self, p: Annotated[int, Ge(2)] = 59, train_fraction: OpenFraction = 0.5, val_fraction: OpenFraction = 0.1,
                 split_seed: NonNegativeInt = 0) -> None:
        if p < 2:
            raise SettingError(f"modadd needs p >= 2, got {p}")
        self.p, self.train_fraction, self.val_fraction, self.split_seed = p, train_fraction, val_fraction, split_seed

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        a, b = torch.meshgrid(torch.arange(self.p), torch.arange(self.p), indexing="ij")
        x = torch.stack([a.flatten(), b.flatten()], dim=1)  # (p^2, 2) token ids
        y = (x[:, 0] + x[:, 1]) % self.p
        x_te, y_te, x_rest, y_rest = carve_validation(x, y, self.train_fraction, self.split_seed)
        x_tr, y_tr, x_val, y_val = carve_validation(x_rest, y_rest, self.val_fraction, self.split_seed + 1)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=self.p, vocab_size=self.p)
