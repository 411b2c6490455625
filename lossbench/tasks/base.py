"""The Task protocol: everything task-specific, so that the engine, the run and the report never ask
which task they serve.

A task owns: mapping a batch to (inputs, targets); the running training score; the evaluation
scores of a split; the checkpoint-selection score and its direction; the interpretability probes;
extra summary columns (from the row or the learning curves); its report metrics, radar axes, headline metric and learning-curve axis; and
the kind of dataset it accepts. Adding a task is one class (subclass `Task`) plus one
`conf/task/<name>.yaml` whose `task._target_` names it; the report finds the class again through the
`task._target_` stored in every row's config.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from torch import Tensor, nn

from lossbench.data.base import Dataset, Splits
from lossbench.schema import Column


@dataclass(frozen=True)
class ReportView:
    """How a task's runs are reported: the table's metrics (summary column names, in order), the six
    radar axes, the headline metric (Pareto y axis, learning curve) and the learning curve's x axis."""

    metrics: tuple[str, ...]
    radar: tuple[str, ...]
    headline: str
    curve_x: str


class Task:
    """Base class of every task. Class attributes declare; methods compute.

    - `data_kind`: the `kind` of datasets this task accepts (see `lossbench.data.base.Dataset`);
    - `score_columns`: what `evaluate` returns, written per split (`val_acc`, ...);
    - `train_score`: the score accumulated during training (`train_acc` in the history);
    - `selection`, `selection_higher_is_better`: the validation score that picks the checkpoint;
    - `selection_derived`: scores that are a function of the selection score (perplexity of NLL): their
      validation values were chosen too, so the report shows them unranked as well;
    - `columns`: the task's own summary columns (`probe` and `extras` write them);
    - `report`: its report view.
    """

    name: ClassVar[str]
    data_kind: ClassVar[str]
    score_columns: ClassVar[tuple[Column, ...]]
    train_score: ClassVar[Column]
    selection: ClassVar[str]
    selection_higher_is_better: ClassVar[bool]
    selection_derived: ClassVar[tuple[str, ...]] = ()
    columns: ClassVar[tuple[Column, ...]] = ()
    report: ClassVar[ReportView]

    def accepts(self, dataset: Dataset) -> bool:
        """Whether this task can train on `dataset`."""
        return getattr(dataset, "kind", None) == self.data_kind

    def batch(self, x: Tensor, y: Tensor) -> tuple[Tensor, Tensor]:
        """(model inputs, targets aligned with the rows of the model's output)."""
        return x, y

    def train_score_sum(self, output: Tensor, target: Tensor) -> Tensor:
        """Sum over the batch of the training score (a 0-dim tensor: no host sync per step)."""
        raise NotImplementedError

    def evaluate(self, outputs: Iterable[tuple[Tensor, Tensor]], num_classes: int) -> dict[str, float]:
        """The scores of one split from its (model output, target) batches, keyed as `score_columns`."""
        raise NotImplementedError

    def probe(self, model: nn.Module, splits: Splits, samples: int, batch_size: int) -> dict[str, Any]:
        """Interpretability probes of the trained model (none by default)."""
        return {}

    def extras(self, columns: dict[str, Any]) -> dict[str, Any]:
        """Columns derived from the finished row (per-unit costs, ...; none by default)."""
        return {}

    def from_history(self, history: Sequence[dict[str, Any]]) -> dict[str, Any]:
        """Columns derived from the run's evaluation history (learning-curve events; none by default)."""
        return {}
