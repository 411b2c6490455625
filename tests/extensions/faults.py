"""A backbone with a bug that shows only in the middle of training (its third training forward pass raises):
what the preflight's dry build cannot see, so the tests of failure isolation have a run that really fails
while it trains, found through LOSSBENCH_CONFIG_PATH like any extension."""

from __future__ import annotations

from torch import Tensor

from lossbench.models.mlp import MLP


class FailsMidTraining(MLP):
    """lossbench's MLP, raising RuntimeError on its `fail_at`-th forward pass in training mode."""

    def __init__(self, *args: object, fail_at: int = 3, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.fail_at, self.training_calls = fail_at, 0

    def forward(self, x: Tensor) -> Tensor:
        if self.training:
            self.training_calls += 1
            if self.training_calls == self.fail_at:
                raise RuntimeError(f"injected failure at training forward {self.fail_at}")
        return super().forward(x)



