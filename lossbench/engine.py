"""The single training loop. Tensors and modules only: no files, no Hydra, no result rows.

Every step records the global gradient L2 norm before any clipping. Every epoch evaluates on the
validation split (and, for the learning curves only, on test); the checkpoint with the best
validation accuracy is restored at the end, so test data never influences model selection.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import torch
from torch import Tensor, nn
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler

from lossbench.data.base import Splits, TensorLoader
from lossbench.losses.base import Criterion
from lossbench.metrics import accuracy, grad_norm, macro_f1, param_norm, summarize

log = logging.getLogger(__name__)


@dataclass
class FitResult:
    """What training produced: per-epoch history rows, every step's gradient norm, and the outcome."""

    history: list[dict[str, Any]] = field(default_factory=list)
    grad_norms: list[float] = field(default_factory=list)
    best_epoch: int = 0
    epochs: int = 0
    steps: int = 0
    samples: int = 0
    status: Literal["completed", "diverged"] = "completed"
    train_time_s: float = 0.0


class Trainer:
    """Minibatch (or full-batch) training for `epochs`, or for exactly `steps` optimizer steps;
    evaluation every `eval_every` epochs and at the end. The weights kept are those of the best
    validation accuracy (`checkpoint=best_val`) or the final ones (`last`); test never decides."""

    def __init__(
        self,
        epochs: int = 20,
        batch_size: int | Literal["full"] = 128,
        eval_batch_size: int = 1024,
        grad_clip: float | None = None,
        eval_test_each_epoch: bool = True,
        progress: bool | Literal["auto"] = "auto",
        steps: int | None = None,
        eval_every: int = 1,
        checkpoint: Literal["best_val", "last"] = "best_val",
    ) -> None:
        if epochs < 1 or eval_batch_size < 1 or eval_every < 1 or (steps is not None and steps < 1):
            raise ValueError("trainer.epochs, eval_batch_size, eval_every and steps must be >= 1")
        if batch_size != "full" and batch_size < 1:
            raise ValueError(f"trainer.batch_size must be >= 1 or 'full', got {batch_size}")
        self.epochs, self.batch_size, self.eval_batch_size = epochs, batch_size, eval_batch_size
        self.grad_clip, self.eval_test_each_epoch = grad_clip, eval_test_each_epoch
        self.steps, self.eval_every, self.checkpoint = steps, eval_every, checkpoint
        self.progress = sys.stderr.isatty() if progress == "auto" else bool(progress)

    def batch(self, n_train: int) -> int:
        """Minibatch size; `full` = full-batch gradient descent."""
        return n_train if self.batch_size == "full" else min(self.batch_size, n_train)

    def steps_per_epoch(self, n_train: int) -> int:
        return -(-n_train // self.batch(n_train))

    def total_steps(self, n_train: int) -> int:
        """`steps` when step-based, else epochs x steps per epoch."""
        return self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(n_train)

    def fit(
        self,
        model: nn.Module,
        criterion: Criterion,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        data: Splits,
        generator: torch.Generator,
    ) -> FitResult:
        """Train for `epochs`, restore the best-validation-accuracy weights, return the record."""
        n_train = len(data.y_train)
        loader = TensorLoader(data.x_train, data.y_train, self.batch(n_train), True, generator, data.augment)
        total = self.total_steps(n_train)
        epochs = -(-total // len(loader))
        params = [p for p in model.parameters() if p.requires_grad]
        head = getattr(model, "head", model)
        result = FitResult()
        best_acc, best_state = -math.inf, None
        window = _Window()  # training statistics since the last evaluation
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            window.add(*self._train_epoch(model, criterion, optimizer, scheduler, loader, params, result, total))
            window.time += time.perf_counter() - t0
            if epoch % self.eval_every and result.steps < total:
                continue
            result.train_time_s += window.time
            result.grad_norms += window.norms
            result.epochs, result.samples = epoch, result.samples + window.seen
            row: dict[str, Any] = {
                "epoch": epoch,
                "step": result.steps,
                "lr": optimizer.param_groups[0]["lr"],
                "train_loss": window.loss_sum / window.seen,
                "train_acc": window.correct / window.seen,
                **summarize(window.norms, "grad_norm"),
                "head_param_norm": param_norm(head),
                "model_param_norm": param_norm(model),
                "epoch_time_s": window.time / window.epochs,
                "samples_per_s": window.seen / window.time if window.time > 0 else math.nan,
            }
            window = _Window()
            if not math.isfinite(row["train_loss"]):
                result.history.append(row)
                result.status = "diverged"
                log.warning("epoch %d: training loss is %s; stopping (status=diverged)", epoch, row["train_loss"])
                break
            t1 = time.perf_counter()
            row.update(_prefixed("val", self.evaluate(model, criterion, data.x_val, data.y_val, data.num_classes)))
            if self.eval_test_each_epoch:
                row.update(_prefixed("test", self.evaluate(model, criterion, data.x_test, data.y_test, data.num_classes)))
            row["eval_time_s"] = time.perf_counter() - t1
            result.history.append(row)
            if row["val_acc"] > best_acc:
                best_acc, result.best_epoch = row["val_acc"], epoch
                best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            log.info(
                "epoch %*d/%d  loss %.4f  acc %.4f  val_loss %.4f  val_acc %.4f  grad %.3g  (%.2fs)",
                len(str(epochs)), epoch, epochs, row["train_loss"], row["train_acc"],
                row["val_loss"], row["val_acc"], row["grad_norm_mean"], row["epoch_time_s"],
            )
        if best_state is not None and self.checkpoint == "best_val":
            model.load_state_dict(best_state)
        elif result.history:
            result.best_epoch = result.history[-1]["epoch"]
        return result

    def _train_epoch(
        self,
        model: nn.Module,
        criterion: Criterion,
        optimizer: Optimizer,
        scheduler: LRScheduler,
        loader: TensorLoader,
        params: list[Tensor],
        result: FitResult,
        total: int,
    ) -> tuple[float, int, int, list[float]]:
        model.train()
        losses, corrects, norms, sizes = [], [], [], []  # per-step 0-dim tensors: no host sync per step
        with _progress_bar(self.progress, len(loader)) as advance:
            for xb, yb in loader:
                if result.steps >= total:
                    break
                logits = model(xb)
                loss = criterion(logits, yb, result.steps)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                norm = grad_norm([p.grad for p in params if p.grad is not None])  # before clipping
                if self.grad_clip is not None:
                    torch.nn.utils.clip_grads_with_norm_(params, self.grad_clip, norm)
                optimizer.step()
                scheduler.step()
                result.steps += 1
                losses.append(loss.detach())
                corrects.append(logits.detach().argmax(1).eq(yb).sum())
                norms.append(norm)
                sizes.append(len(yb))
                advance()
        weights = torch.tensor(sizes, dtype=torch.float64, device=loader.y.device)
        loss_sum = float(torch.stack(losses).double() @ weights)
        return loss_sum, int(torch.stack(corrects).sum()), sum(sizes), torch.stack(norms).tolist()

    @torch.no_grad()
    def evaluate(self, model: nn.Module, criterion: Criterion, x: Tensor, y: Tensor, num_classes: int) -> dict[str, float]:
        """Loss (batch-size weighted mean), accuracy and macro-F1 of the model on (x, y)."""
        model.eval()
        loss_sum, preds = 0.0, []
        for xb, yb in TensorLoader(x, y, self.eval_batch_size):
            logits = model(xb)
            loss_sum += criterion(logits, yb).item() * len(yb)
            preds.append(logits.argmax(1))
        pred = torch.cat(preds)
        return {"loss": loss_sum / len(y), "acc": accuracy(pred, y), "f1": macro_f1(pred, y, num_classes)}


@dataclass
class _Window:
    """Training statistics accumulated over the epochs between two evaluations."""

    loss_sum: float = 0.0
    correct: int = 0
    seen: int = 0
    norms: list[float] = field(default_factory=list)
    epochs: int = 0
    time: float = 0.0

    def add(self, loss_sum: float, correct: int, seen: int, norms: list[float]) -> None:
        self.loss_sum += loss_sum
        self.correct += correct
        self.seen += seen
        self.norms += norms
        self.epochs += 1


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
