"""The distance contract (docs/design.md): `pairwise(x, w) -> d`, smaller = closer, d >= 0, d(x, x) = 0.

A metric is one class in the file named after it plus one `conf/distance/<name>.yaml`. It declares
its `name` (the row's `distance` column and the report label) and its float64 `reference`: an
independent oracle (scipy or a numpy transcription of the formula) that the test suite checks every
metric against, so adding a metric needs no edit of a test file, and its `term_flops` (the FLOP count
of one term: cost/flops.py). A class that leaves one out fails when it is defined (`contract.require`).
Shared numerics: `numerics.py`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import torch
from torch import Tensor, nn

from lossbench.contract import require


class Distance(nn.Module):
    """Base class: subclasses implement `pairwise` and `reference`; half precision computes in float32.

    `setup(in_features)` is called once by the head before training; metrics with learnable
    parameters (Mahalanobis) create them there, so they are part of the model and reach the optimizer.
    """

    name: ClassVar[str]
    # False where d(x, x) > 0 by design (a smooth max sits t*log(N) above the true max)
    zero_on_diagonal: ClassVar[bool] = True
    # FLOPs per (row, prototype, feature) term of the forward pass: each add, multiply, subtract,
    # absolute value, power, comparison or division counts 1 (cost/flops.py uses it)
    term_flops: ClassVar[int]
    # set on the reference code's variants (docs/distances-and-losses.md, "The Rethinking reference code's variants"): the layer of
    # that code the class reproduces, formula differences included; None for the formulas the papers state
    reproduces: ClassVar[str | None] = None
    # the harmonic exponent on d that the Rethinking paper's convention gives this metric (loss.head.n=rethinking):
    # its layers raise the distance they compute to n = 1, and its Euclidean layer computes d^2
    rethinking_n: ClassVar[float] = 1.0

    def __init_subclass__(cls, abstract: bool = False, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not abstract:
            require(cls, Distance, ("name",), ("term_flops", "reference", "pairwise"), "distance",
                    "lossbench/distances/base.py")

    def setup(self, in_features: int) -> None:
        """Create parameters that depend on the feature dimension (none by default)."""

    def pairwise(self, x: Tensor, w: Tensor) -> Tensor:
        """Distances between every row of x (M, N) and every row of w (V, N); returns (M, V)."""
        raise NotImplementedError

    def reference(self, x: np.ndarray, w: np.ndarray) -> np.ndarray:
        """The same distances in float64 without lossbench code (scipy, or numpy from the formula):
        the oracle of the test suite. Reads the metric's current parameters."""
        raise NotImplementedError

    def flops(self, m: int, v: int, n: int) -> int:
        """Forward FLOPs of `pairwise` on (m, n) rows and (v, n) prototypes: term_flops x m x v x n."""
        return self.term_flops * m * v * n

    def forward(self, x: Tensor, w: Tensor) -> Tensor:
        """pairwise(x, w) in float32 at least, outside any autocast region (so a bf16 language model's
        distance head keeps float32 matrix products and the cancellation refinement works)."""
        if x.dtype in (torch.float16, torch.bfloat16) or w.dtype in (torch.float16, torch.bfloat16):
            x, w = x.float(), w.float()
        with torch.autocast(x.device.type, enabled=False):
            return self.pairwise(x, w)
