"""What training has produced so far, and everything a resumed run needs to continue bit for bit.

`TrainState.state_dict()` is what a checkpoint holds (run.py writes it under `checkpoints/`):
model, optimizer, scheduler and criterion states, torch's CPU (and CUDA) RNG, where the batch stream
stands, the result so far (history, gradient norms, counters) and the best validation score with its
weights. `load_state_dict` puts all of it back, so a resumed run takes the same batches and random
draws as an uninterrupted one (tests/test_resume.py).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lossbench.data.stream import BatchStream
from lossbench.losses.base import Criterion
from lossbench.statuses import RunStatus


@dataclass
class FitResult:
    """What training produced: history rows, every optimizer step's gradient norm, and the outcome."""

    history: list[dict[str, Any]] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    best_epoch: float = 0.0
    epochs: float = 0.0
    steps: int = 0
    samples: int = 0  # training targets seen: examples, or tokens for language models
    status: RunStatus = RunStatus.COMPLETED  # or DIVERGED
    train_time_s: float = 0.0
    # micro-batches per distinct input shape, and one example of each (what FLOP counting needs)
    shape_counts: Counter[tuple[int, ...]] = field(default_factory=Counter)
    shape_examples: dict[tuple[int, ...], tuple[Tensor, Tensor]] = field(default_factory=dict)
    resumed_from_step: int | None = None  # the step a resumed run continued from (None: one go)


@dataclass
class TrainState:
    """The loop's whole state. `best_score` is the selection score signed so that larger is better."""

    model: nn.Module
    optimizer: Optimizer
    scheduler: LRScheduler
    criterion: Criterion
    batches: BatchStream
    device: torch.device
    result: FitResult = field(default_factory=FitResult)
    best_score: float = -math.inf
    best_weights: dict[str, Tensor] | None = None

    def keep_if_best(self, score: float) -> None:
        """Remember the current weights (a copy) when `score` beats every earlier evaluation point."""
        if score > self.best_score:
            self.best_score, self.result.best_epoch = score, self.result.epochs
            self.best_weights = {k: v.detach().clone() for k, v in self.model.state_dict().items()}

    def state_dict(self) -> dict[str, Any]:
        """The checkpoint: everything `load_state_dict` needs (key names are the checkpoint format)."""
        return {
            "model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "criterion": self.criterion.state_dict() if isinstance(self.criterion, nn.Module) else None,
            "stream": self.batches.state_dict(), "rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if self.device.type == "cuda" else None,
            "result": self.result, "best_score": self.best_score, "best_state": self.best_weights,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Put a checkpointed state back (read onto the CPU); the result records the step it resumes from."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state["criterion"] is not None and isinstance(self.criterion, nn.Module):
            self.criterion.load_state_dict(state["criterion"])
        self.batches.load_state_dict(state["stream"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.result = state["result"]
        self.result.resumed_from_step = self.result.steps
        self.result.shape_examples = {k: (x.to(self.device), y.to(self.device))
                                      for k, (x, y) in self.result.shape_examples.items()}
        self.best_score, self.best_weights = state["best_score"], state["best_state"]
