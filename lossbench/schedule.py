"""Learning-rate schedule: linear warm-up, then constant or cosine decay to min_lr_ratio * lr."""

from __future__ import annotations

import math
from typing import Annotated

from annotated_types import Interval
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lossbench import SettingError
from lossbench.ranges import PositiveInt, Probability


class WarmupCosine(LambdaLR):
    """Per-step multiplier: t/warmup during warm-up; afterwards 1, or a cosine from 1 to min_lr_ratio."""

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: PositiveInt,
        warmup_fraction: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
        cosine: bool = False,
        min_lr_ratio: Probability = 0.0,
    ) -> None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise SettingError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        warmup = round(warmup_fraction * total_steps)

        def factor(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not cosine:
                return 1.0
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

        super().__init__(optimizer, factor)
