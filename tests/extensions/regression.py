"""A third task written outside lossbench: least-squares regression on generated data.

Used by tests/test_extending.py to show that a task, its dataset and its criterion need no edit of any
lossbench module: this file plus three yamls (conf/task, conf/dataset, conf/loss/criterion).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from lossbench.data.base import Splits
from lossbench.losses.base import Criterion
from lossbench.schema import Column
from lossbench.tasks.base import ReportView, Task

MSE = Column("mse", "float", "mean squared error", label="MSE", per_split=True, block="Performance",
             higher_is_better=False)
R2 = Column("r2", "float", "coefficient of determination 1 - SSE / SST", label="R2", per_split=True,
            block="Performance", higher_is_better=True)
TARGET_STD = Column("target_std", "float", "std of the test targets (a task's own summary column)")


class LinearData:
    """y = x . a + noise, x ~ N(0, I_8): 512 / 128 / 256 rows."""

    kind = "regression"

    def __init__(self, noise: float = 0.1, seed: int = 0) -> None:
        self.noise, self.seed = noise, seed

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        g = torch.Generator().manual_seed(self.seed)
        a = torch.randn(8, generator=g)
        x = torch.randn(896, 8, generator=g)
        y = x @ a + self.noise * torch.randn(896, generator=g)
        return Splits(x[:512], y[:512], x[512:640], y[512:640], x[640:], y[640:], num_classes=1)


class SquaredError(Criterion):
    """mean (f(x) - y)^2 for a one-output head."""

    name = "squared_error"

    def forward(self, output: Tensor, target: Tensor, step: int = 0) -> Tensor:
        return (output.squeeze(1) - target).pow(2).mean()

    def reference(self, output: np.ndarray, target: np.ndarray, step: int = 0) -> float:
        return float(np.mean((np.asarray(output, dtype=np.float64)[:, 0] - target) ** 2))


class Regression(Task):
    """Scalar regression: MSE and R2; the checkpoint with the lowest validation MSE is kept."""

    name = "regression"
    data_kind = "regression"
    score_columns = (MSE, R2)
    train_score = MSE
    selection, selection_higher_is_better = "mse", False
    columns = (TARGET_STD,)
    report = ReportView(metrics=("test_mse", "test_r2", "val_mse", "grad_norm_cv", "duration_s"),
                        radar=("test_mse", "test_r2", "grad_norm_cv", "duration_s"), headline="test_mse",
                        curve_x="epoch")

    def train_score_sum(self, output: Tensor, target: Tensor) -> Tensor:
        return (output.detach().squeeze(1) - target).pow(2).sum()

    def evaluate(self, outputs: Iterable[tuple[Tensor, Tensor]], num_classes: int) -> dict[str, float]:
        pred, target = map(torch.cat, zip(*((o.squeeze(1), t) for o, t in outputs)))
        sse = float((pred - target).pow(2).sum())
        sst = float((target - target.mean()).pow(2).sum())
        return {"mse": sse / len(target), "r2": 1.0 - sse / sst}

    def probe(self, model: Any, splits: Splits, samples: int, batch_size: int) -> dict[str, Any]:
        return {"target_std": float(splits.y_test.std())}
