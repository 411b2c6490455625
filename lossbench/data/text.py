"""Token streams for language modelling: char-level text (built in, or any UTF-8 file) and
nanoGPT-format GPT-2 token files (OpenWebText).

Training draws random contiguous windows x = t[i : i+T], y = t[i+1 : i+T+1] from the training
stream (nanoGPT's `get_batch`), so a 9-billion-token memory-mapped file never has to fit in memory.
Validation and test use fixed, non-overlapping windows from the start of their streams, so every
run of a sweep is scored on the same tokens.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated

import numpy as np
import torch
from annotated_types import Ge
from torch import Tensor

from lossbench import LossbenchError
from lossbench.data.base import Splits
from lossbench.ranges import PositiveInt


@dataclass
class TokenSplits(Splits):
    """Splits of a token stream. x/y hold fixed evaluation windows of shape (n, T) for every split
    (train included, for train perplexity); `train_tokens` is the whole training stream, kept on the
    host (it may be a memory map) and sampled by `train_loader`."""

    train_tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    block_size: int = 0

    @property
    def n_train(self) -> int:
        return max(1, (len(self.train_tokens) - 1) // self.block_size)

    def train_loader(self, batch_size: int, generator: torch.Generator) -> WindowLoader:
        return WindowLoader(self.train_tokens, self.block_size, batch_size, generator, self.x_val.device)

    def sizes(self) -> dict[str, int]:
        """Token counts: the training stream, and the evaluated validation / test targets."""
        return {"n_train": len(self.train_tokens) - 1, "n_val": self.y_val.numel(), "n_test": self.y_test.numel()}


class WindowLoader:
    """Batches of `batch_size` random windows of length T; one pass ("epoch") draws as many windows
    as the stream holds, so epoch-based settings keep their usual meaning."""

    def __init__(self, tokens: np.ndarray, block_size: int, batch_size: int, generator: torch.Generator,
                 device: torch.device) -> None:
        self.tokens, self.block_size, self.batch_size = tokens, block_size, batch_size
        self.generator, self.device = generator, device
        self.offsets = torch.arange(block_size + 1)

    def __len__(self) -> int:
        return max(1, -(-((len(self.tokens) - 1) // self.block_size) // self.batch_size))

    def __iter__(self) -> Iterator[tuple[Tensor, Tensor]]:
        high = len(self.tokens) - self.block_size  # last start whose target window fits, + 1
        for _ in range(len(self)):
            starts = torch.randint(high, (self.batch_size,), generator=self.generator)
            chunk = torch.from_numpy(self.tokens[(starts[:, None] + self.offsets).numpy()].astype(np.int64))
            chunk = chunk.to(self.device, non_blocking=True)
            yield chunk[:, :-1], chunk[:, 1:]


def eval_windows(tokens: np.ndarray, block_size: int, count: int, name: str) -> tuple[Tensor, Tensor]:
    """The first `count` non-overlapping windows of a stream as (x, y), each (count, T)."""
    available = (len(tokens) - 1) // block_size
    if available < 1:
        raise LossbenchError(f"{name} has {len(tokens)} tokens: too few for one window of block_size={block_size}")
    count = min(count, available)
    chunk = np.asarray(tokens[: count * block_size + 1]).astype(np.int64)
    x = torch.from_numpy(chunk[:-1].reshape(count, block_size).copy())
    y = torch.from_numpy(chunk[1:].reshape(count, block_size).copy())
    return x, y


def token_splits(train: np.ndarray, val: np.ndarray, test: np.ndarray, vocab_size: int, block_size: int,
                 windows: int, name: str) -> TokenSplits:
    """TokenSplits from three streams, with `windows` evaluation windows per split."""
    if block_size < 1 or windows < 1:
        raise LossbenchError(f"{name}: block_size and eval_windows must be >= 1, got {block_size}, {windows}")
    if len(train) <= block_size:
        raise LossbenchError(f"{name}: the training stream ({len(train)} tokens) is shorter than block_size={block_size}")
    x_tr, y_tr = eval_windows(train, block_size, windows, f"{name} train")
    x_val, y_val = eval_windows(val, block_size, windows, f"{name} validation")
    x_te, y_te = eval_windows(test, block_size, windows, f"{name} test")
    return TokenSplits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=vocab_size, vocab_size=vocab_size,
                       train_tokens=train, block_size=block_size)


class CharText:
    """Character-level language modelling on one text: the vocabulary is its sorted set of
    characters; the first 90 % trains, the next 5 % validates, the last 5 % tests."""

    kind = "tokens"

    def __init__(self, block_size: PositiveInt = 128, eval_windows: PositiveInt = 64) -> None:
        self.block_size, self.eval_windows = block_size, eval_windows

    @property
    def label(self) -> str:
        """How error messages name this corpus."""
        return type(self).__name__

    def text(self) -> str:
        raise NotImplementedError

    def check(self) -> None:
        """Cheap checks before anything is written: the text reads and decodes, has at least 2 distinct
        characters, and each 5 % split holds at least one window of block_size + 1 characters."""
        self.validate(self.text())

    def validate(self, text: str) -> None:
        """Raise LossbenchError (one line) when `text` cannot be modelled with these settings."""
        name = self.label
        if len(set(text)) < 2:
            raise LossbenchError(f"{name}: the text needs at least 2 distinct characters, it has {len(set(text))}")
        smallest = min(int(0.95 * len(text)) - int(0.9 * len(text)), len(text) - int(0.95 * len(text)))
        if smallest < self.block_size + 1:
            raise LossbenchError(
                f"{name}: {len(text)} characters are too few for dataset.block_size={self.block_size}: the 5 % "
                f"validation and test splits need block_size + 1 = {self.block_size + 1} characters each, they get "
                f"{smallest}; use a text of at least {20 * (self.block_size + 2)} characters or a smaller block_size")

    def load(self) -> TokenSplits:
        text = self.text()
        self.validate(text)
        chars = sorted(set(text))
        lookup = np.zeros(max(map(ord, chars)) + 1, dtype=np.int64)
        lookup[[ord(c) for c in chars]] = np.arange(len(chars))
        ids = lookup[np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)]
        a, b = int(0.9 * len(ids)), int(0.95 * len(ids))
        return token_splits(ids[:a], ids[a:b], ids[b:], len(chars), self.block_size, self.eval_windows,
                            type(self).__name__)


class BuiltinText(CharText):
    """The English help text that ships with CPython (`pydoc_data.topics`, ~465 K characters,
    103 distinct): a language-modelling corpus that needs no download."""

    def text(self) -> str:
        from pydoc_data.topics import topics

        return "".join(topics[k] for k in sorted(topics))


class TextFile(CharText):
    """Any UTF-8 text file, modelled character by character."""

    def __init__(self, path: str, block_size: PositiveInt = 128, eval_windows: PositiveInt = 64) -> None:
        super().__init__(block_size, eval_windows)
        self.path = Path(path).expanduser()

    @property
    def label(self) -> str:
        return f"dataset.path={self.path}"

    def text(self) -> str:
        """The file's text; one-line errors for a missing, unreadable, undecodable or binary file."""
        if not self.path.is_file():
            raise LossbenchError(f"text file not found: {self.path} (set dataset.path to a UTF-8 text file)")
        try:
            text = self.path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise LossbenchError(f"dataset.path={self.path} is not UTF-8 text ({exc.reason} at byte {exc.start})") from None
        except OSError as exc:
            raise LossbenchError(f"dataset.path={self.path} cannot be read ({exc.strerror})") from None
        if "\x00" in text:
            raise LossbenchError(f"dataset.path={self.path} looks binary (it contains NUL bytes), not text")
        return text


class OpenWebText:
    """nanoGPT-format GPT-2 tokens: `train.bin` and `val.bin` (uint16 token ids) under `root`,
    memory-mapped. Validation windows come from the first half of val.bin, test windows from the
    second half. Build the files with scripts/prepare_openwebtext.py on a machine with internet."""

    kind = "tokens"

    def __init__(self, root: str, block_size: PositiveInt = 1024, eval_windows: PositiveInt = 200,
                 vocab_size: Annotated[int, Ge(2)] = 50304) -> None:
        self.root, self.block_size = Path(root).expanduser(), block_size
        self.eval_windows, self.vocab_size = eval_windows, vocab_size

    def check(self) -> None:
        missing = [p for p in (self.root / "train.bin", self.root / "val.bin") if not p.is_file()]
        if missing:
            raise LossbenchError(
                f"OpenWebText not found: expected {missing[0]} (and train.bin / val.bin beside it). Build them on "
                f"a machine with internet with `python scripts/prepare_openwebtext.py --out {self.root}`, "
                f"then point data_dir at that folder"
            )
        tokens = {p.name: p.stat().st_size // 2 for p in (self.root / "train.bin", self.root / "val.bin")}
        if tokens["train.bin"] <= self.block_size or tokens["val.bin"] // 2 <= self.block_size:
            raise LossbenchError(f"openwebtext: train.bin ({tokens['train.bin']} tokens) and each half of val.bin "
                                 f"({tokens['val.bin']} tokens) need more than dataset.block_size={self.block_size}")

    def load(self) -> TokenSplits:
        self.check()
        train = np.memmap(self.root / "train.bin", dtype=np.uint16, mode="r")
        val = np.memmap(self.root / "val.bin", dtype=np.uint16, mode="r")
        half = len(val) // 2
        return token_splits(train, val[:half], val[half:], self.vocab_size, self.block_size, self.eval_windows,
                            "openwebtext")
