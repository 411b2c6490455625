"""MNIST-1D (Greydanus & Kobak 2020): 1-D signals generated offline from 10 digit templates."""

from __future__ import annotations

import numpy as np
import torch

from lossbench.data.base import Splits, carve_validation


class MNIST1D:
    """Generates the dataset with `mnist1d.data.make_dataset` (no download), then splits it."""

    kind = "labels"

    def __init__(
        self,
        num_samples: int = 5000,
        generator_seed: int = 42,
        test_fraction: float = 0.2,
        val_fraction: float = 0.1,
        split_seed: int = 0,
    ) -> None:
        self.num_samples, self.generator_seed = num_samples, generator_seed
        self.test_fraction, self.val_fraction, self.split_seed = test_fraction, val_fraction, split_seed

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        from mnist1d.data import get_dataset_args, make_dataset

        args = get_dataset_args()
        args.num_samples, args.seed, args.train_split = self.num_samples, self.generator_seed, 1 - self.test_fraction
        state = np.random.get_state()  # make_dataset seeds numpy's global RNG; leave it as we found it
        try:
            raw = make_dataset(args)
        finally:
            np.random.set_state(state)
        x = torch.as_tensor(raw["x"], dtype=torch.float32)
        y = torch.as_tensor(raw["y"], dtype=torch.long)
        x_tr, y_tr, x_val, y_val = carve_validation(x, y, self.val_fraction, self.split_seed)
        x_te = torch.as_tensor(raw["x_test"], dtype=torch.float32)
        y_te = torch.as_tensor(raw["y_test"], dtype=torch.long)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=10)
