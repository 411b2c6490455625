"""The dataset interface, the in-memory data contract shared by every dataset, and the one batch
iterator over it."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from typing import ClassVar, Protocol

import numpy as np
import torch
from torch import Tensor

from lossbench import SettingError


class Dataset(Protocol):
    """What every `conf/dataset/<name>.yaml` instantiates to.

    `kind` names what it yields (`labels`: one class per input; `tokens`: a token stream); a task
    accepts datasets of its `data_kind`. `check()` is cheap and runs in preflight before anything is
    written (files present, settings valid); `load()` builds the splits.
    """

    kind: ClassVar[str]

    def check(self) -> None:
        """Raise LossbenchError with one line (e.g. where the files must go) if the data cannot load."""

    def load(self) -> Splits:
        """Train / validation / test tensors."""


@dataclass
class Splits:
    """Train / validation / test tensors of one dataset, plus what a backbone needs to know."""

    x_train: Tensor
    y_train: Tensor
    x_val: Tensor
    y_val: Tensor
    x_test: Tensor
    y_test: Tensor
    num_classes: int
    vocab_size: int | None = None  # token datasets (modadd): size of the input vocabulary
    augment: Callable[[Tensor, torch.Generator], Tensor] | None = None
    # algorithmic datasets: the crystal metric of a learned (vocab_size, d) embedding table (data/algorithmic.py)
    structure: Callable[[np.ndarray], float] | None = None
    figure_tokens: np.ndarray | None = None  # algorithmic datasets: the tokens the embedding EV is measured on

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(self.x_train.shape[1:])

    @property
    def n_train(self) -> int:
        """Training examples one pass of `train_loader` visits (what `batch_size=full` means)."""
        return len(self.y_train)

    def train_loader(self, batch_size: int, generator: torch.Generator) -> TensorLoader:
        """Shuffled minibatches of the training split, augmented when the dataset says so."""
        return TensorLoader(self.x_train, self.y_train, batch_size, True, generator, self.augment)

    def to(self, device: torch.device) -> Splits:
        moved = {k: v.to(device) for k, v in vars(self).items() if isinstance(v, Tensor)}
        return replace(self, **moved)

    def sizes(self) -> dict[str, int]:
        return {"n_train": len(self.y_train), "n_val": len(self.y_val), "n_test": len(self.y_test)}


def carve_validation(x: Tensor, y: Tensor, fraction: float, seed: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split a seeded random `fraction` of (x, y) off as validation; returns (x_tr, y_tr, x_val, y_val)."""
    if not 0.0 < fraction < 1.0:
        raise SettingError(f"val_fraction must be in (0, 1), got {fraction}")
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    n_val = max(1, round(fraction * len(y)))
    val, train = perm[:n_val], perm[n_val:]
    return x[train], y[train], x[val], y[val]


class TensorLoader:
    """Batches over tensors already on the device: seeded shuffling, optional batch augmentation.

    Keeping data on the device (airbench style) means the input pipeline costs nearly nothing, so
    time and energy measure the model and the loss, not data loading.
    """

    def __init__(
        self,
        x: Tensor,
        y: Tensor,
        batch_size: int,
        shuffle: bool = False,
        generator: torch.Generator | None = None,
        augment: Callable[[Tensor, torch.Generator], Tensor] | None = None,
    ) -> None:
        self.x, self.y = x, y
        self.batch_size = min(batch_size, len(y)) if batch_size > 0 else len(y)
        self.shuffle, self.generator, self.augment = shuffle, generator, augment

    def __len__(self) -> int:
        return -(-len(self.y) // self.batch_size)

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        n = len(self.y)
        order = torch.randperm(n, generator=self.generator).to(self.y.device) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            idx = slice(start, start + self.batch_size) if order is None else order[start : start + self.batch_size]
            xb = self.x[idx]
            if self.augment is not None:
                xb = self.augment(xb, self.generator)
            yield xb, self.y[idx]
