"""MNIST-1D (Greydanus & Kobak 2020): 1-D signals generated offline from 10 digit templates.

Generating 5000 signals takes about 1.5 s on a 2-core CPU (plus 1.2 s to import the generator), which
every run of a sweep would pay again: the arrays are cached per generator setting, in memory and on disk
(`$LOSSBENCH_CACHE_DIR`, default `~/.cache/lossbench`), written atomically and regenerated when unreadable.
"""

from __future__ import annotations

import functools
import logging
import os
import tempfile
from importlib import metadata
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from annotated_types import Ge

from lossbench.data.base import Splits, carve_validation
from lossbench.ranges import NonNegativeInt, OpenFraction

log = logging.getLogger(__name__)
ARRAYS = ("x", "y", "x_test", "y_test")


def cache_dir() -> Path:
    """Where generated datasets are cached."""
    return Path(os.environ.get("LOSSBENCH_CACHE_DIR", "~/.cache/lossbench")).expanduser()


@functools.lru_cache(maxsize=4)
def generate(num_samples: int, seed: int, train_split: float) -> dict[str, np.ndarray]:
    """`mnist1d.data.make_dataset` with these settings (numpy's global RNG left as found), cached."""
    path = cache_dir() / f"mnist1d-{metadata.version('mnist1d')}-{num_samples}-{seed}-{train_split!r}.npz"
    try:
        with np.load(path) as cached:
            return {k: cached[k] for k in ARRAYS}
    except (OSError, ValueError, KeyError):
        pass
    from mnist1d.data import get_dataset_args, make_dataset

    args = get_dataset_args()
    args.num_samples, args.seed, args.train_split = num_samples, seed, train_split
    state = np.random.get_state()  # make_dataset seeds numpy's global RNG; leave it as we found it
    try:
        raw = make_dataset(args)
    finally:
        np.random.set_state(state)
    arrays = {k: np.asarray(raw[k]) for k in ARRAYS}
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".part")
        with os.fdopen(fd, "wb") as handle:
            np.savez(handle, **arrays)
        os.replace(tmp, path)
    except OSError as exc:  # a cache is optional
        log.debug("mnist1d cache not written (%s)", exc)
    return arrays


class MNIST1D:
    """Generates the dataset with `mnist1d.data.make_dataset` (no download), then splits it."""

    kind = "labels"

    def __init__(
        self,
        num_samples: Annotated[int, Ge(10)] = 5000,
        generator_seed: NonNegativeInt = 42,
        test_fraction: OpenFraction = 0.2,
        val_fraction: OpenFraction = 0.1,
        split_seed: NonNegativeInt = 0,
    ) -> None:
        self.num_samples, self.generator_seed = num_samples, generator_seed
        self.test_fraction, self.val_fraction, self.split_seed = test_fraction, val_fraction, split_seed

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        raw = generate(self.num_samples, self.generator_seed, 1 - self.test_fraction)
        x = torch.as_tensor(raw["x"], dtype=torch.float32)
        y = torch.as_tensor(raw["y"], dtype=torch.long)
        x_tr, y_tr, x_val, y_val = carve_validation(x, y, self.val_fraction, self.split_seed)
        x_te = torch.as_tensor(raw["x_test"], dtype=torch.float32)
        y_te = torch.as_tensor(raw["y_test"], dtype=torch.long)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=10)
