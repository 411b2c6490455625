"""Learning-rate schedule: linear warm-up, then constant or cosine decay to min_lr_ratio * lr, optionally
times gamma at epoch milestones (step decay)."""

from __future__ import annotations

import math
from typing import Annotated

from annotated_types import Interval
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR

from lossbench import SettingError
from lossbench.ranges import PositiveInt, Probability


class WarmupCosine(LambdaLR):
    """Per-step multiplier: t/warmup during warm-up; afterwards 1, or a cosine from 1 to min_lr_ratio;
    times gamma^(milestones passed) when `milestones` (epochs) are given.

    The milestones are torch's StepLR / MultiStepLR stepped once per epoch (StepLR(30, 0.1) over 100
    epochs = milestones [30, 60, 90]), the schedules of the Rethinking reference code (docs/research/reference-code.md §2.1).
    The trainer steps a schedule once per optimizer step, so `epochs` (normally `${trainer.epochs}`) says
    how many steps an epoch is: total_steps // epochs.
    """

    def __init__(
        self,
        optimizer: Optimizer,
        total_steps: PositiveInt,
        warmup_fraction: Annotated[float, Interval(ge=0, lt=1)] = 0.0,
        cosine: bool = False,
        min_lr_ratio: Probability = 0.0,
        milestones: list[PositiveInt] | None = None,
        gamma: Annotated[float, Interval(gt=0, le=1)] = 0.1,
        epochs: PositiveInt | None = None,
    ) -> None:
        if not 0.0 <= warmup_fraction < 1.0:
            raise SettingError(f"warmup_fraction must be in [0, 1), got {warmup_fraction}")
        if milestones and epochs is None:
            raise SettingError(f"optim.scheduler.milestones={list(milestones)} are epochs: set optim.scheduler.epochs "
                               "(normally ${trainer.epochs})")
        warmup = round(warmup_fraction * total_steps)
        per_epoch = max(1, total_steps // epochs) if epochs else 1
        marks = sorted(milestones or [])

        def decay(step: int) -> float:
            epoch = step // per_epoch
            return gamma ** sum(1 for m in marks if epoch >= m)

        def shape(step: int) -> float:
            if step < warmup:
                return (step + 1) / warmup
            if not cosine:
                return 1.0
            progress = min(1.0, (step - warmup) / max(1, total_steps - warmup))
            return min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * progress))

        super().__init__(optimizer, lambda step: shape(step) * decay(step))
