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
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lossbench import SettingError
from lossbench.data.base import Splits, TensorLoader
from lossbench.losses.base import Criterion
from lossbench.metrics import grad_norm, param_norm, summarize
from lossbench.ranges import NonNegativeFloat, NonNegativeInt, PositiveFloat, PositiveInt
from lossbench.tasks.base import Task

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What training produced: history rows, every optimizer step's gradient norm, and the outcome."""

    history: list[dict[str, Any]] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    best_epoch: float = 0.0
    epochs: float = 0.0
    steps: int = 0
    samples: int = 0  # training targets seen: examples, or tokens for language models
    status: Literal["completed", "diverged"] = "completed"
    train_time_s: float = 0.0
    # micro-batches per distinct input shape, and one example of each (what FLOP counting needs)
    shape_counts: Counter[tuple[int, ...]] = field(default_factory=Counter)
    shape_examples: dict[tuple[int, ...], tuple[Tensor, Tensor]] = field(default_factory=dict)
    resumed_from_step: int | None = None  # the step a resumed run continued from (None: one go)


class BatchStream:
    """Pass after pass over a loader (each pass reshuffles), across evaluation points, with image
    batches in channels_last when asked, and where it stands: the generator's state when the current
    pass began and the batches taken since. `load_state_dict` replays to that point, so the batches
    (and any augmentation draws) after a resume are those an uninterrupted run would have taken."""

    def __init__(self, loader: Iterable[tuple[Tensor, Tensor]], generator: torch.Generator,
                 channels_last: bool = False) -> None:
        self.loader, self.generator, self.channels_last = loader, generator, channels_last
        self._iterator: Iterator[tuple[Tensor, Tensor]] | None = None
        self._pass_state, self._taken = generator.get_state(), 0

    def _start_pass(self) -> None:
        self._pass_state, self._taken = self.generator.get_state(), 0
        self._iterator = iter(self.loader)

    def __next__(self) -> tuple[Tensor, Tensor]:
        if self._iterator is None:
            self._start_pass()
        try:
            x, y = next(self._iterator)
        except StopIteration:
            self._start_pass()
            x, y = next(self._iterator)
        self._taken += 1
        return (x.contiguous(memory_format=torch.channels_last) if self.channels_last and x.dim() == 4 else x), y

    def state_dict(self) -> dict[str, Any]:
        return {"pass_state": self._pass_state.clone(), "taken": self._taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["pass_state"])
        self._start_pass()
        for _ in range(state["taken"]):
            next(self._iterator)
        self._taken = state["taken"]


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

    def autocast(self, device: torch.device) -> torch.autocast:
        """bfloat16 autocast for `precision=bf16` on CUDA; disabled elsewhere."""
        enabled = self.precision == "bf16" and device.type == "cuda"
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
        `at_checkpoint(state)` receives the loop's state every `checkpoint_every` evaluation points, at most
        once per `checkpoint_interval_s` seconds (never at the last point); `resume=state` continues from one
        (module docstring).
        """
        loader = self.loader(data, generator)
        per_epoch = self.steps_per_epoch(len(loader))
        total = self.total_steps(len(loader))
        every = self.eval_every if self.steps is not None else self.eval_every * per_epoch
        device = data.x_val.device
        if self.precision == "bf16" and device.type != "cuda":
            log.info("precision=bf16 applies on CUDA only; training in float32 on %s", device.type)
        batches = BatchStream(loader, generator, self.channels_last)
        if self.channels_last:
            model.to(memory_format=torch.channels_last)  # 4-D weights only; others are untouched
        forward = torch.compile(model) if self.compile else model
        params = [p for p in model.parameters() if p.requires_grad]
        head = getattr(model, "head", model)
        result = FitResult()
        sign = 1.0 if task.selection_higher_is_better else -1.0
        best_score, best_state = -math.inf, None
        last_save = time.monotonic()
        if resume is not None:
            result, best_score, best_state = self._restore(resume, model, criterion, optimizer, scheduler, batches,
                                                           device)
            log.info("resuming at step %d of %d (%d evaluation points done)", result.steps, total, len(result.history))
        while result.steps < total:
            n = min(every - result.steps % every, total - result.steps)
            t0 = time.perf_counter()
            loss_sum, score_sum, seen, norms = self._train_steps(model, forward, criterion, optimizer, scheduler,
                                                                 batches, params, n, result, device, task)
            elapsed = time.perf_counter() - t0
            result.train_time_s += elapsed
            result.grad_norms += norms
            result.samples += seen
            result.epochs = result.steps / per_epoch
            row: dict[str, Any] = {
                "epoch": result.epochs,
                "step": result.steps,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": loss_sum / seen,
                f"train_{task.train_score.name}": score_sum / seen,
                **summarize(norms, "grad_norm"),
                "head_param_norm": param_norm(head),
                "model_param_norm": param_norm(model),
                "epoch_time_s": elapsed * per_epoch / n,
                "samples_per_s": seen / elapsed if elapsed > 0 else math.nan,
            }
            if not math.isfinite(row["train_loss"]):
                result.history.append(row)
                result.status = "diverged"
                log.warning("step %d: training loss is %s; stopping (status=diverged)", result.steps, row["train_loss"])
                break
            if at_evaluation is not None:
                at_evaluation()
            t1 = time.perf_counter()
            row.update(_prefixed("val", self.evaluate(model, criterion, data.x_val, data.y_val, data.num_classes, task)))
            if self.eval_test_each_epoch:
                row.update(_prefixed("test", self.evaluate(model, criterion, data.x_test, data.y_test, data.num_classes, task)))
            row["eval_time_s"] = time.perf_counter() - t1
            result.history.append(row)
            selected = f"val_{task.selection}"
            if sign * row[selected] > best_score:
                best_score, result.best_epoch = sign * row[selected], result.epochs
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log.info(
                "step %*d/%d  epoch %.4g  loss %.4f  val_loss %.4f  %s %.4f  grad %.3g  (%.2fs)",
                len(str(total)), result.steps, total, result.epochs, row["train_loss"], row["val_loss"],
                selected, row[selected], row["grad_norm_mean"], elapsed,
            )
            if (at_checkpoint is not None and self.checkpoint_every and result.steps < total
                    and len(result.history) % self.checkpoint_every == 0
                    and time.monotonic() - last_save >= self.checkpoint_interval_s):
                last_save = time.monotonic()
                at_checkpoint({
                    "model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict(),
                    "criterion": criterion.state_dict() if isinstance(criterion, nn.Module) else None,
                    "stream": batches.state_dict(), "rng": torch.get_rng_state(),
                    "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else None,
                    "result": result, "best_score": best_score, "best_state": best_state,
                })
        if best_state is not None and self.checkpoint == "best_val":
            model.load_state_dict(best_state)
        elif result.history:
            result.best_epoch = result.history[-1]["epoch"]
        return result

    @staticmethod
    def _restore(state: dict[str, Any], model: nn.Module, criterion: Criterion, optimizer: Optimizer,
                 scheduler: LRScheduler, batches: BatchStream,
                 device: torch.device) -> tuple[FitResult, float, dict[str, Tensor] | None]:
        """Put a checkpointed state back (read onto the CPU): (result so far, best validation score, its
        weights)."""
        model.load_state_dict(state["model"])
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if state["criterion"] is not None and isinstance(criterion, nn.Module):
            criterion.load_state_dict(state["criterion"])
        batches.load_state_dict(state["stream"])
        torch.set_rng_state(state["rng"])
        if state["cuda_rng"] is not None:
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        result: FitResult = state["result"]
        result.resumed_from_step = result.steps
        result.shape_examples = {k: (x.to(device), y.to(device)) for k, (x, y) in result.shape_examples.items()}
        return result, state["best_score"], state["best_state"]

    def _train_steps(
        self,
        model: nn.Module,
        forward: Callable[[Tensor], Tensor],
        criterion: Criterion,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        batches: BatchStream,
        params: list[Tensor],
        n_steps: int,
        result: FitResult,
        device: torch.device,
        task: Task,
    ) -> tuple[float, float, int, list[float]]:
        """`n_steps` optimizer steps of `forward` (the model, or its compiled form): (summed target-weighted
        loss, summed training score, targets seen, grad norms)."""
        model.train()
        penalties = [m.training_penalty for m in model.modules() if hasattr(m, "training_penalty")]
        losses, scores, norms, sizes = [], [], [], []  # per-step 0-dim tensors: no host sync per step
        with _progress_bar(self.progress, n_steps) as advance:
            for _ in range(n_steps):
                optimizer.zero_grad(set_to_none=True)
                for _ in range(self.grad_accum):
                    inputs, target = task.batch(*next(batches))
                    shape = tuple(inputs.shape)
                    result.shape_counts[shape] += 1
                    result.shape_examples.setdefault(shape, (inputs, target))
                    with self.autocast(device):
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
                scheduler.step()
                result.steps += 1
                norms.append(norm)
                advance()
        weights = torch.tensor(sizes, dtype=torch.float64, device=device)
        loss_sum = float(torch.stack(losses).double() @ weights)
        return loss_sum, float(torch.stack(scores).sum()), sum(sizes), torch.stack(norms).tolist()

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


class _progress_bar:
    """A transient rich progress bar over one epoch's batches; a no-op when disabled."""

    def __init__(self, enabled: bool, total: int) -> None:
        self.enabled, self.total, self._progress = enabled and total > 1, total, None

    def __enter__(self) -> Callable[[], None]:
        if not self.enabled:
            return lambda: None
        from rich.progress import Progress

        self._progress = Progress(transient=True)
        self._progress.start()
        task = self._progress.add_task("train", total=self.total)
        return lambda: self._progress.advance(task)

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.stop()
