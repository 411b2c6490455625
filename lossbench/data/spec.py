"""What a model needs to know about a dataset, and the checks every dataset's data must pass before a run.

`DataSpec` is the shape of a dataset without its tensors: the preflight builds the model and runs one tiny
forward pass from it, so a backbone that cannot take the data (a CNN too deep for 8 x 8 digits, a window
longer than a GPT's context) is refused before anything is written. A dataset that can say its spec
without loading (`spec()`: torchvision datasets, image folders) is not loaded by the preflight; one that
cannot is loaded once per preflight (offline datasets load in well under a second, digits in two).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from lossbench import LossbenchError


@dataclass(frozen=True)
class DataSpec:
    """Input shape of one example, classes, vocabulary (token datasets), and two example inputs and targets
    for a dry forward pass."""

    input_shape: tuple[int, ...]
    num_classes: int
    vocab_size: int | None
    sample_x: Tensor
    sample_y: Tensor

    @classmethod
    def of(cls, splits: object) -> DataSpec:
        """The spec of loaded splits (data/base.py Splits), with their first two training examples."""
        x, y = splits.x_train[:2], splits.y_train[:2]  # type: ignore[attr-defined]
        return cls(tuple(x.shape[1:]), splits.num_classes, splits.vocab_size, x, y)  # type: ignore[attr-defined]

    @classmethod
    def images(cls, channels: int, size: int, num_classes: int) -> DataSpec:
        """The spec of a dataset of (channels, size, size) float images."""
        return cls((channels, size, size), num_classes, None, torch.zeros(2, channels, size, size),
                   torch.zeros(2, dtype=torch.long))


def check_splits(splits: object, name: str, kind: str) -> None:
    """Every split holds examples, and a labelled dataset has at least two classes (one LossbenchError line)."""
    sizes = splits.sizes()  # type: ignore[attr-defined]
    empty = [split for split, n in sizes.items() if n == 0]
    if empty:
        which = ", ".join(s[2:] for s in empty)
        counts = ", ".join(f"{k[2:]} {v}" for k, v in sizes.items())
        raise LossbenchError(f"dataset={name}: empty split ({which}): {counts} examples; change its fractions or sizes")
    if kind == "labels" and splits.num_classes < 2:  # type: ignore[attr-defined]
        raise LossbenchError(f"dataset={name}: {splits.num_classes} class; a classifier needs at least two")  # type: ignore[attr-defined]
