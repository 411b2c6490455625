"""The single training loop. Tensors and modules only: no files, no Hydra, no result rows, no task names.

Every optimizer step records the global gradient L2 norm before any clipping. Every evaluation
point scores the validation split (and, for the learning curves only, test); the checkpoint with
the best validation score of the task (its `selection`) is restored at the end, so test data never
influences model selection. Every task shares this loop: the task maps a batch to (inputs, targets)
and scores the outputs.

Every `checkpoint_every` evaluation points, once `checkpoint_interval_s` seconds have passed since the
last save, the loop hands its whole state (model, optimizer, scheduler, criterion, RNG states, where the
batch stream stands, the result so far) to a callback, and
`fit(resume=state)` continues from such a state: the resumed run takes the same batches and random
draws as an uninterrupted one, so on CPU its metrics are the same bit for bit (tests/test_resume.py).
Where the state is kept is the caller's business (run.py: the results folder).
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lossbench import SettingError
from lossbench.data.base import Splits, TensorLoader
from lossbench.data.stream import BatchStream
from lossbench.losses.base import Criterion
from lossbench.metrics import grad_norm, param_norm, summarize
from lossbench.progress import progress_bar
from lossbench.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lossbench.statuses import RunStatus
from lossbench.tasks.base import Task
from lossbench.train_state import (  # FitResult here too: checkpoints pickled it as engine's
    FitResult,
    TrainState,
)

log = logging.getLogger(__name__)


class Trainer:
    """Minibatch (or full-batch) training for `epochs`, or for exactly `steps` optimizer steps;
    evaluation every `eval_every` epochs (every `eval_every` steps when `steps` is set) and at the
    end. The weights kept are those of the task's best validation score (`checkpoint=best_val`) or
    the final ones (`last`); test never decides.

    One optimizer step averages the gradients of `grad_accum` consecutive minibatches (the mean of
    their mean losses). `precision=bf16` runs forward passes under bfloat16 autocast on CUDA (the
    loss itself in float32); on other devices it trains in float32 and says so. `channels_last` keeps
    image batches and convolution weights in NHWC (what cuDNN's bf16 convolutions run fastest on);
    `compile` trains through `torch.compile(model)` (evaluation stays eager: no recompilation for the
    evaluation batch size or mode). Both change speed, not the function computed. A module of the model with
    a `training_penalty()` method adds that term to the training objective (not to the logged loss).
    """

    def __init__(
        self,
        epochs: PositiveInt = 20,
        batch_size: PositiveInt | Literal["full"] = 128,
        eval_batch_size: PositiveInt = 1024,
        grad_clip: PositiveFloat | None = None,
        eval_test_each_epoch: bool = True,
        progress: bool | Literal["auto"] = "auto",
        steps: PositiveInt | None = None,
        eval_every: PositiveInt = 1,
        checkpoint: Literal["best_val", "last"] = "best_val",
        grad_accum: PositiveInt = 1,
        precision: Literal["fp32", "bf16"] = "fp32",
        spike_factor: PositiveFloat = 5.0,
        spike_window: PositiveInt = 100,
        channels_last: bool = False,
        compile: bool = False,
        checkpoint_every: NonNegativeInt = 1,
        checkpoint_interval_s: NonNegativeFloat = 30.0,
    ) -> None:
        if min(epochs, eval_batch_size, eval_every, grad_accum, spike_window) < 1 or (steps is not None and steps < 1):
            raise SettingError("trainer.epochs, eval_batch_size, eval_every, grad_accum, spike_window and steps must be >= 1")
        if batch_size != "full" and batch_size < 1:
            raise SettingError(f"trainer.batch_size must be >= 1 or 'full', got {batch_size}")
        if grad_clip is not None and grad_clip <= 0:
            raise SettingError(f"trainer.grad_clip must be > 0 or null, got {grad_clip}")
        self.epochs, self.batch_size, self.eval_batch_size = epochs, batch_size, eval_batch_size
        self.grad_clip, self.eval_test_each_epoch = grad_clip, eval_test_each_epoch
        self.steps, self.eval_every, self.checkpoint = steps, eval_every, checkpoint
        self.grad_accum, self.precision = grad_accum, precision
        self.spike_factor, self.spike_window = spike_factor, spike_window
        self.channels_last, self.compile = channels_last, compile
        self.checkpoint_every, self.checkpoint_interval_s = checkpoint_every, checkpoint_interval_s
        self.progress = sys.stderr.isatty() if progress == "auto" else bool(progress)

    def batch(self, n_train: int) -> int:
        """Minibatch size; `full` = full-batch gradient descent."""
        return n_train if self.batch_size == "full" else min(self.batch_size, n_train)

    def steps_per_epoch(self, batches: int) -> int:
        """Optimizer steps per pass over `batches` minibatches."""
        return max(1, batches // self.grad_accum)

    def total_steps(self, batches: int) -> int:
        """`steps` when step-based, else epochs x steps per epoch (`batches` minibatches per epoch)."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(batches)

    def loader(self, data: Splits, generator: torch.Generator) -> Iterable[tuple[Tensor, Tensor]]:
        """The training batches of one epoch (minibatches, or random windows of a token stream)."""
        return data.train_loader(self.batch(data.n_train), generator)

    def planned_steps(self, data: Splits) -> int:
        """Optimizer steps `fit` will take on `data` (what a learning-rate schedule spans)."""
        return self.total_steps(len(self.loader(data, torch.Generator())))

    def effective_precision(self, device: torch.device) -> str:
        """The precision training runs in on `device`: bf16 only under CUDA autocast, else fp32."""
        return "bf16" if self.precision == "bf16" and device.type == "cuda" else "fp32"

    def autocast(self, device: torch.device) -> torch.autocast:
        """bfloat16 autocast for `precision=bf16` on CUDA; disabled elsewhere."""
        enabled = self.effective_precision(device) == "bf16"
        return torch.autocast(device.type, dtype=torch.bfloat16, enabled=enabled)

    def fit(
        self,
        model: nn.Module,
        criterion: Criterion,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        data: Splits,
        generator: torch.Generator,
        task: Task,
        at_evaluation: Callable[[], None] | None = None,
        resume: dict[str, Any] | None = None,
        at_checkpoint: Callable[[dict[str, Any]], None] | None = None,
    ) -> FitResult:
        """Train, evaluating on validation at every evaluation point; restore the selected weights.

        `at_evaluation`, if given, is called at every evaluation point (the run re-balances its threads there).
        `at_checkpoint(state)` receives `TrainState.state_dict()` every `checkpoint_every` evaluation points, at
        most once per `checkpoint_interval_s` seconds (never at the last point); `resume=state` continues from
        one (module docstring).
        """
        loader = self.loader(data, generator)
        per_epoch = self.steps_per_epoch(len(loader))
        total = self.total_steps(len(loader))
        every = self.eval_every if self.steps is not None else self.eval_every * per_epoch
        device = data.x_val.device
        if self.effective_precision(device) != self.precision:
            log.info("precision=%s applies on CUDA only; training in float32 on %s", self.precision, device.type)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # 4-D weights only; others are untouched
        forward = torch.compile(model) if self.compile else model
        state = TrainState(model, optimizer, scheduler, criterion, BatchStream(loader, generator, self.channels_last),
                           device)
        if resume is not None:
            state.load_state_dict(resume)
            log.info("resuming at step %d of %d (%d evaluation points done)", state.result.steps, total,
                     len(state.result.history))
        sign = 1.0 if task.selection_higher_is_better else -1.0
        selected = f"val_{task.selection}"
        last_save = time.monotonic()
        result = state.result
        while result.steps < total:
            n = min(every - result.steps % every, total - result.steps)
            row = self._train_steps(state, forward, n, task, per_epoch)
            if not math.isfinite(row["train_loss"]):
                result.history.append(row)
                result.status = RunStatus.DIVERGED
                log.warning("step %d: training loss is %s; stopping (status=diverged)", result.steps, row["train_loss"])
                break
            if at_evaluation is not None:
                at_evaluation()
            row.update(self._evaluation_point(model, criterion, data, task))
            result.history.append(row)
            state.keep_if_best(sign * row[selected])
            log.info(
                "step %*d/%d  epoch %.4g  loss %.4f  val_loss %.4f  %s %.4f  grad %.3g  (%.2fs)",
                len(str(total)), result.steps, total, result.epochs, row["train_loss"], row["val_loss"],
                selected, row[selected], row["grad_norm_mean"], row["epoch_time_s"] * n / per_epoch,
            )
            if (at_checkpoint is not None and self.checkpoint_every and result.steps < total
                    and len(result.history) % self.checkpoint_every == 0
                    and time.monotonic() - last_save >= self.checkpoint_interval_s):
                last_save = time.monotonic()
                at_checkpoint(state.state_dict())
        if state.best_weights is not None and self.checkpoint == "best_val":
            model.load_state_dict(state.best_weights)
        elif result.history:
            result.best_epoch = result.history[-1]["epoch"]
        return result

    def _evaluation_point(self, model: nn.Module, criterion: Criterion, data: Splits, task: Task) -> dict[str, float]:
        """val_ (and, for the learning curves only, test_) loss and scores, and the time they took."""
        t0 = time.perf_counter()
        row = _prefixed("val", self.evaluate(model, criterion, data.x_val, data.y_val, data.num_classes, task))
        if self.eval_test_each_epoch:
            row.update(_prefixed("test", self.evaluate(model, criterion, data.x_test, data.y_test, data.num_classes,
                                                       task)))
        row["eval_time_s"] = time.perf_counter() - t0
        return row

    def _train_steps(self, state: TrainState, forward: Callable[[Tensor], Tensor], n_steps: int, task: Task,
                     per_epoch: int) -> dict[str, Any]:
        """`n_steps` optimizer steps of `forward` (the model, or its compiled form); returns the training part
        of the evaluation point's history row."""
        model, criterion, optimizer, result = state.model, state.criterion, state.optimizer, state.result
        params = [p for p in model.parameters() if p.requires_grad]
        model.train()
        penalties = [m.training_penalty for m in model.modules() if hasattr(m, "training_penalty")]
        losses, scores, norms, sizes = [], [], [], []  # per-step 0-dim tensors: no host sync per step
        t0 = time.perf_counter()
        with progress_bar(self.progress, n_steps) as advance:
            for _ in range(n_steps):
                optimizer.zero_grad(set_to_none=True)
                for _ in range(self.grad_accum):
                    inputs, target = task.batch(*next(state.batches))
                    shape = tuple(inputs.shape)
                    result.shape_counts[shape] += 1
                    result.shape_examples.setdefault(shape, (inputs, target))
                    with self.autocast(state.device):
                        output = forward(inputs)
                    loss = criterion(output.float(), target, result.steps)
                    objective = loss + sum(penalty() for penalty in penalties)  # the model's own terms
                    (objective / self.grad_accum).backward()
                    losses.append(loss.detach())
                    scores.append(task.train_score_sum(output, target))
                    sizes.append(target.shape[0])
                norm = grad_norm([p.grad for p in params if p.grad is not None])  # before clipping
                if self.grad_clip is not None:
                    torch.nn.utils.clip_grads_with_norm_(params, self.grad_clip, norm)
                optimizer.step()
                state.scheduler.step()
                result.steps += 1
                norms.append(norm)
                advance()
        weights = torch.tensor(sizes, dtype=torch.float64, device=state.device)
        loss_sum = float(torch.stack(losses).double() @ weights)
        score_sum, seen, step_norms = float(torch.stack(scores).sum()), sum(sizes), torch.stack(norms).tolist()
        elapsed = time.perf_counter() - t0
        result.train_time_s += elapsed
        result.grad_norms += step_norms
        result.samples += seen
        result.epochs = result.steps / per_epoch
        return {
            "epoch": result.epochs,
            "step": result.steps,
            "lr": optimizer.param_groups[0]["lr"],
            "train_loss": loss_sum / seen,
            f"train_{task.train_score.name}": score_sum / seen,
            **summarize(step_norms, "grad_norm"),
            "head_param_norm": param_norm(getattr(model, "head", model)),
            "model_param_norm": param_norm(model),
            "epoch_time_s": elapsed * per_epoch / n_steps,
            "samples_per_s": seen / elapsed if elapsed > 0 else math.nan,
        }

    @torch.no_grad()
    def evaluate(
        self, model: nn.Module, criterion: Criterion, x: Tensor, y: Tensor, num_classes: int, task: Task
    ) -> dict[str, float]:
        """The criterion (target-weighted mean) and the task's scores on (x, y)."""
        model.eval()
        totals = {"loss": 0.0, "targets": 0}

        def outputs() -> Iterator[tuple[Tensor, Tensor]]:
            for xb, yb in TensorLoader(x, y, self.eval_batch_size):
                inputs, target = task.batch(xb, yb)
                with self.autocast(x.device):
                    output = model(inputs).float()
                totals["loss"] += criterion(output, target).item() * target.shape[0]
                totals["targets"] += target.shape[0]
                yield output, target

        scores = task.evaluate(outputs(), num_classes)
        return {"loss": totals["loss"] / totals["targets"], **scores}


def _prefixed(prefix: str, metrics: dict[str, float]) -> dict[str, float]:
    return {f"{prefix}_{k}": v for k, v in metrics.items()}
