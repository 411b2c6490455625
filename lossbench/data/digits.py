"""scikit-learn's 8x8 handwritten digits (UCI optdigits test set), shipped with scikit-learn."""

from __future__ import annotations

import torch

from lossbench.data.base import Splits, carve_validation
from lossbench.ranges import NonNegativeInt, OpenFraction


class Digits:
    """1797 images as (1, 8, 8) tensors scaled to [0, 1]; seeded test and validation splits."""

    kind = "labels"

    def __init__(self, test_fraction: OpenFraction = 0.2, val_fraction: OpenFraction = 0.1,
                 split_seed: NonNegativeInt = 0) -> None:
        self.test_fraction, self.val_fraction, self.split_seed = test_fraction, val_fraction, split_seed

    def check(self) -> None:
        """Nothing to check: the data ships with scikit-learn."""

    def load(self) -> Splits:
        from sklearn.datasets import load_digits

        raw = load_digits()
        x = torch.as_tensor(raw.data, dtype=torch.float32).reshape(-1, 1, 8, 8) / 16.0
        y = torch.as_tensor(raw.target, dtype=torch.long)
        x_rest, y_rest, x_te, y_te = carve_validation(x, y, self.test_fraction, self.split_seed)
        x_tr, y_tr, x_val, y_val = carve_validation(x_rest, y_rest, self.val_fraction, self.split_seed + 1)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=10)
