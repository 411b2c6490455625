"""The training batches as one stream across evaluation points, resumable to the batch."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor


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
        """Where the stream stands: the generator state at the start of this pass and the batches taken."""
        return {"pass_state": self._pass_state.clone(), "taken": self._taken}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Replay to a saved position: the next batch is the one after it."""
        self.generator.set_state(state["pass_state"])
        self._start_pass()
        for _ in range(state["taken"]):
            next(self._iterator)
        self._taken = state["taken"]
