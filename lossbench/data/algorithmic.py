"""The algorithmic datasets of "Harmonic Loss Trains Interpretable AI Models" (Baek et al. 2025,
arXiv 2502.01628; their code: KindXiaoming/grow-crystals `src/utils/dataset.py`, `driver.py`), generated offline.

Every example is a short sequence of token ids and a label that is itself a token of the same vocabulary, so a
model with tied embeddings predicts a token by its embedding (the paper's weight-tied toy models). Each dataset
also says how "crystallised" a learned embedding table is (`structure`, the paper's crystal metrics,
`src/utils/crystal_metric.py`; the row's `crystal_metric`, lower = more structured unless noted):

| dataset | examples | structure |
|---|---|---|
| modular_addition (p = 31) | (a, b) -> (a + b) mod p, `num` pairs drawn with replacement | circularity: std / mean of the distances to the centroid of the top-2-PC embedding, min-max scaled (0 = a circle) |
| equivalence (p = 40) | (a, b) -> token p if a = b (mod 5) else token p + 1: the training driver's task, the paper's figures | of the p number tokens: mean within-class / mean cross-class distance (0 = classes collapsed to points) |
| mod_classification (p = 100) | x -> x mod 5 (one token; the code's older loader) | as equivalence |
| permutation (S4) | (a, b) -> a o b, all 24 x 24 pairs | 4-fold rotational symmetry of the top-2-PC embedding, 1 / (1 + mean nearest-neighbour distance to its rotations); **higher** = more symmetric |
| family_tree (p = 127) | (person, relation) -> person in a binary family tree: parent, grandparent, sibling | 1 - mean over generations of the first PC's share of that generation's top-2-PC points (0 = every generation on a line) |
| lattice (p = 5) | three points (a, b, c) of a 5 x 5 grid -> b + c - a (in-context parallelogram) | mean side-length deviation of the grid's parallelograms (0 = a perfect lattice) |
| greater_than (p = 30) | (a, b) -> "greater" if a > b else "not greater" (two extra tokens) | coefficient of variation of the gaps between consecutive numbers 0 .. p-1 (0 = evenly spaced) |

`figure_tokens` are the tokens the paper's embedding figures plot (equivalence: the p numbers; family tree: the
people; otherwise every token); the embedding EV is measured on them.

Splits as the paper's `split_dataset`: floor((1 - `holdout_fraction`) * N) seeded examples train (800 of 1000,
460 of S4's 576), the rest is held out. `val_fraction` of the held-out examples validate and the rest test;
`val_fraction=0` is the paper's split (all held out = test) with no validation split: the engine's per-epoch
"validation" then reads the training examples, so nothing can select on test data. `data_seed` draws the
examples, `split_seed` the split (the paper uses the run's seed for both: `${seed}`).

The paper draws examples **with replacement**, so many held-out inputs also occur in training (seed 0, the
paper's split: 65 % of the test inputs of modular_addition, 46 % of equivalence, 100 % of mod_classification,
88 % of family_tree, 66 % of greater_than, 10 % of lattice, 0 % of permutation, which enumerates its pairs).
`distinct=true` draws different examples only (up to `num`), so held-out accuracy measures generalisation.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Annotated, ClassVar

import numpy as np
import torch
from annotated_types import Ge, Interval

from lossbench import SettingError
from lossbench.data.base import Splits
from lossbench.data.crystal import (
    circularity,
    class_ratio,
    gap_cv,
    generation_linearity,
    parallelogram_deviation,
    rotational_symmetry,
)
from lossbench.ranges import NonNegativeInt, OpenFraction, PositiveInt

Examples = tuple[np.ndarray, np.ndarray]  # (N, T) input token ids, (N,) label token ids
ValFraction = Annotated[float, Interval(ge=0, lt=1)]  # [0, 1): the held-out share that validates


class AlgorithmicDataset:
    """Shared generation, split and structure plumbing; subclasses say what the examples are (their `p`
    defaults to the paper's)."""

    kind = "labels"
    default_p: ClassVar[int]

    def __init__(self, p: Annotated[int, Ge(2)] | None = None, num: PositiveInt = 1000,
                 holdout_fraction: OpenFraction = 0.2, data_seed: NonNegativeInt = 0,
                 split_seed: NonNegativeInt = 0, distinct: bool = False, val_fraction: ValFraction = 0.5) -> None:
        self.p = self.default_p if p is None else p
        if self.p < 2:
            raise SettingError(f"dataset.p must be >= 2, got {self.p}")
        if not 0 <= val_fraction < 1:
            raise SettingError(f"dataset.val_fraction must be in [0, 1), got {val_fraction}")
        self.num, self.holdout_fraction, self.val_fraction = num, holdout_fraction, val_fraction
        self.data_seed, self.split_seed, self.distinct = data_seed, split_seed, distinct

    def distinct_examples(self, rng: np.random.Generator, draws: int = 50) -> Examples:
        """Up to `num` different examples (fewer when the task has fewer), in the order first drawn, so no
        held-out input was seen in training. The paper's code draws with replacement (`distinct=false`)."""
        rows: dict[tuple[int, ...], int] = {}
        for _ in range(draws):
            x, y = self.examples(rng)
            for xi, yi in zip(map(tuple, x.tolist()), y.tolist()):
                rows.setdefault(xi, yi)
            if len(rows) >= self.num:
                break
        chosen = list(rows.items())[: self.num]
        return np.array([k for k, _ in chosen]), np.array([v for _, v in chosen])

    @property
    def vocab_size(self) -> int:
        return self.p

    @property
    def figure_tokens(self) -> np.ndarray:
        """The tokens the paper's embedding figures plot (module docstring): every token unless a dataset says."""
        return np.arange(self.vocab_size)

    def examples(self, rng: np.random.Generator) -> Examples:
        raise NotImplementedError

    def structure(self, embedding: np.ndarray) -> float:
        """The dataset's crystal metric of an embedding table (vocab_size, d)."""
        raise NotImplementedError

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def split(self, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(train, validation, test) indices of n examples (module docstring); validation is the training
        indices when `val_fraction` is 0."""
        order = np.random.default_rng(self.split_seed).permutation(n)
        n_train = int(n * (1 - self.holdout_fraction) + 1e-9)  # the paper's int(num * train_ratio)
        train, held = order[:n_train], order[n_train:]
        if self.val_fraction == 0:
            return train, train, held
        n_val = max(1, round(self.val_fraction * len(held)))
        return train, held[:n_val], held[n_val:]

    def load(self) -> Splits:
        rng = np.random.default_rng(self.data_seed)
        x, y = self.distinct_examples(rng) if self.distinct else self.examples(rng)
        x_t, y_t = torch.as_tensor(x, dtype=torch.long), torch.as_tensor(y, dtype=torch.long)
        train, val, test = (torch.as_tensor(i) for i in self.split(len(y)))
        return Splits(x_t[train], y_t[train], x_t[val], y_t[val], x_t[test], y_t[test], num_classes=self.vocab_size,
                      vocab_size=self.vocab_size, structure=self.structure, figure_tokens=self.figure_tokens)


class ModularAddition(AlgorithmicDataset):
    """(a, b) -> (a + b) mod p; the paper's "circle" (p = 31)."""

    default_p = 31

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 2))
        return x, (x[:, 0] + x[:, 1]) % self.p

    def structure(self, embedding: np.ndarray) -> float:
        return circularity(embedding)


class ModClassification(AlgorithmicDataset):
    """x -> x mod `classes` (one token), p = 100: grow-crystals' `mod_classification_dataset`, the older loader."""

    default_p = 100

    def __init__(self, p: Annotated[int, Ge(2)] | None = None, classes: Annotated[int, Ge(2)] = 5, num: PositiveInt = 1000,
                 holdout_fraction: OpenFraction = 0.2, data_seed: NonNegativeInt = 0, split_seed: NonNegativeInt = 0,
                 distinct: bool = False, val_fraction: ValFraction = 0.5) -> None:
        super().__init__(p, num, holdout_fraction, data_seed, split_seed, distinct, val_fraction)
        self.classes = classes

    @property
    def figure_tokens(self) -> np.ndarray:
        return np.arange(self.p)

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 1))
        return x, x[:, 0] % self.classes

    def structure(self, embedding: np.ndarray) -> float:
        return class_ratio(embedding[: self.p], self.classes)


class Equivalence(ModClassification):
    """(a, b) -> token p if a = b (mod `classes`) else token p + 1, p = 40: grow-crystals' `mod_equiv_dataset`,
    what its training driver (`driver.py`, since 2025-01-23) trains and the paper's figures plot (`emb[:40]`)."""

    default_p = 40

    @property
    def vocab_size(self) -> int:
        return self.p + 2

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 2))
        return x, np.where((x[:, 0] - x[:, 1]) % self.classes == 0, self.p, self.p + 1)


class Permutation(AlgorithmicDataset):
    """(a, b) -> a o b in the symmetric group S_p (ids in lexicographic order), all (p!)^2 pairs; `num` is
    not used. (a o b)(i) = a(b(i))."""

    default_p = 4

    @cached_property
    def perms(self) -> list[tuple[int, ...]]:
        return list(itertools.permutations(range(self.p)))

    @property
    def vocab_size(self) -> int:
        return len(self.perms)

    def examples(self, rng: np.random.Generator) -> Examples:
        perms = self.perms
        index = {perm: i for i, perm in enumerate(perms)}
        pairs = np.array(list(itertools.product(range(len(perms)), repeat=2)))
        labels = np.array([index[tuple(perms[a][k] for k in perms[b])] for a, b in pairs])
        return pairs, labels

    def structure(self, embedding: np.ndarray) -> float:
        return rotational_symmetry(embedding, self.p)


class FamilyTree(AlgorithmicDataset):
    """People 1 .. p-1 in a complete binary tree (i's parent is i // 2); facts (person, relation) -> person for
    the relations parent (token p), grandparent (p + 1) and sibling (p + 2); `num` facts drawn with replacement.
    As in the paper's code, person p-1's sibling is p (when p-1 is even), the parent relation's token."""

    default_p = 127

    @property
    def vocab_size(self) -> int:
        return self.p + 3

    def facts(self) -> np.ndarray:
        rows = []
        for i in range(1, self.p):
            if i >= 2:
                rows.append((i, self.p, i // 2))
            if i >= 4:
                rows.append((i, self.p + 1, i // 4))
            if i > 1:
                rows.append((i, self.p + 2, i + 1 if i % 2 == 0 else i - 1))
        return np.array(rows)

    def examples(self, rng: np.random.Generator) -> Examples:
        facts = self.facts()
        chosen = facts[rng.integers(0, len(facts), size=self.num)]
        return chosen[:, :2], chosen[:, 2]

    @property
    def figure_tokens(self) -> np.ndarray:
        return np.arange(1, self.p)  # the people

    def generation(self, person: int) -> int:
        return int(np.floor(np.log2(person)))

    def structure(self, embedding: np.ndarray) -> float:
        people = np.arange(1, self.p)
        return generation_linearity(embedding[people], [self.generation(i) for i in people])


class Lattice(AlgorithmicDataset):
    """In-context parallelogram completion on a p x p grid (point (i, j) is token i * p + j): three points
    (a, b, c) -> b + c - a, drawn uniformly among the triples whose answer lies on the grid."""

    default_p = 5

    @property
    def vocab_size(self) -> int:
        return self.p * self.p

    def examples(self, rng: np.random.Generator) -> Examples:
        kept: list[np.ndarray] = []
        while sum(len(k) for k in kept) < self.num:
            pts = rng.integers(0, self.p, size=(5 * self.num, 3, 2))
            target = pts[:, 1] + pts[:, 2] - pts[:, 0]
            kept.append(np.concatenate([pts, target[:, None]], axis=1)[((target >= 0) & (target < self.p)).all(1)])
        quads = np.concatenate(kept)[: self.num]
        ids = quads[..., 0] * self.p + quads[..., 1]
        return ids[:, :3], ids[:, 3]

    def structure(self, embedding: np.ndarray) -> float:
        return parallelogram_deviation(embedding, self.p)


class GreaterThan(AlgorithmicDataset):
    """(a, b) -> token p + 1 if a > b else token p, with a, b in 0 .. p-1."""

    default_p = 30

    @property
    def vocab_size(self) -> int:
        return self.p + 2

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 2))
        return x, np.where(x[:, 0] > x[:, 1], self.p + 1, self.p)

    def structure(self, embedding: np.ndarray) -> float:
        return gap_cv(embedding[: self.p])
