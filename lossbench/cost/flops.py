"""Forward + backward FLOPs of a whole training run, independent of the machine and its load.

`torch.utils.flop_counter.FlopCounterMode` counts one training step (forward, loss, backward) per
distinct batch shape; the count is multiplied by the number of micro-batches of that shape. Like
FlopCounterMode, it counts the operations that dominate (matrix products, convolutions, attention), not
elementwise ones. A distance head's work is mostly elementwise or hidden in kernels FlopCounterMode does
not see (torch.cdist, block-wise reductions, Triton), so every distance declares its own formula
(`Distance.flops`: forward FLOPs for (M, V, N)); the counter replaces whatever it saw inside the distance
module by that formula, with backward = 2 x forward (the usual convention; exact for matrix products).
"""

from __future__ import annotations

import copy
from collections.abc import Mapping

import torch
from torch import Tensor, nn
from torch.utils.flop_counter import FlopCounterMode

from lossbench.losses.base import Criterion
from lossbench.tasks.base import Task

BACKWARD_FACTOR = 2  # backward FLOPs per forward FLOP of a distance


def step_flops(model: nn.Module, criterion: Criterion, task: Task, inputs: Tensor, target: Tensor) -> int:
    """FLOPs of one forward + backward of `model` on one micro-batch (on a copy: the model is untouched)."""
    model = copy.deepcopy(model).train()
    distances = {name: m for name, m in model.named_modules() if hasattr(m, "flops") and callable(m.flops)}
    shapes: dict[str, tuple[int, int, int]] = {}

    def record(name: str):  # noqa: ANN202 - a forward hook factory
        def hook(module: nn.Module, args: tuple, output: Tensor) -> None:
            x, w = args[0], args[1]
            shapes[name] = (x.shape[0], w.shape[0], x.shape[1])
        return hook

    handles = [m.register_forward_hook(record(name)) for name, m in distances.items()]
    try:
        with FlopCounterMode(display=False) as counter:
            criterion(model(inputs).float(), target, 0).backward()
    finally:
        for handle in handles:
            handle.remove()
    counts = counter.get_flop_counts()
    total = counter.get_total_flops()
    root = type(model).__name__
    for name, module in distances.items():
        if name in shapes:
            seen = sum(counts.get(f"{root}.{name}", {}).values())
            total += (1 + BACKWARD_FACTOR) * module.flops(*shapes[name]) - seen
    return int(total)


def training_flops(model: nn.Module, criterion: Criterion, task: Task,
                   examples: Mapping[tuple[int, ...], tuple[Tensor, Tensor]], counts: Mapping[tuple[int, ...], int]) -> int:
    """Sum over distinct input shapes of (FLOPs of one step on that shape) x (micro-batches of that shape)."""
    with torch.random.fork_rng(devices=[]):  # dropout in the counted step must not move the run's RNG
        return sum(step_flops(model, criterion, task, *examples[shape]) * counts[shape] for shape in counts)
