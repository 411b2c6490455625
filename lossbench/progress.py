"""The training loop's progress bar (rich), shown on an interactive terminal only."""

from __future__ import annotations

from collections.abc import Callable


class progress_bar:
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
