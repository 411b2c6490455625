"""The algorithmic datasets of "Harmonic Loss Trains Interpretable AI Models" (Baek et al. 2025,
arXiv 2502.01628; their code: KindXiaoming/grow-crystals `src/utils/dataset.py`, `driver.py`), generated offline.

Every example is a short sequence of token ids and a label that is itself a token of the same vocabulary, so a
model with tied embeddings predicts a token by its embedding (the paper's weight-tied toy models). Each dataset
also says how "crystallised" a learned embedding table is (`structure`, the paper's crystal metrics,
`src/utils/crystal_metric.py`; the row's `crystal_metric`, lower = more structured unless noted):

| dataset | examples | structure |
|---|---|---|
| modular_addition (p = 31) | (a, b) -> (a + b) mod p, `num` pairs drawn with replacement | circularity: std / mean of the distances to the centroid of the top-2-PC embedding, min-max scaled (0 = a circle) |
| equivalence (p = 100) | x -> x mod 5 (one token) | mean within-class / mean cross-class distance (0 = classes collapsed to points) |
| permutation (S4) | (a, b) -> a o b, all 24 x 24 pairs | 4-fold rotational symmetry of the top-2-PC embedding, 1 / (1 + mean nearest-neighbour distance to its rotations); **higher** = more symmetric |
| family_tree (p = 127) | (person, relation) -> person in a binary family tree: parent, grandparent, sibling | 1 - mean over generations of the first PC's share of that generation's top-2-PC points (0 = every generation on a line) |
| lattice (p = 5) | three points (a, b, c) of a 5 x 5 grid -> b + c - a (in-context parallelogram) | mean side-length deviation of the grid's parallelograms (0 = a perfect lattice) |
| greater_than (p = 30) | (a, b) -> "greater" if a > b else "not greater" (two extra tokens) | coefficient of variation of the gaps between consecutive numbers 0 .. p-1 (0 = evenly spaced) |

Splits: `holdout_fraction` (0.2, the paper's 80/20) of the examples are held out and halved into validation and
test (the paper has no validation split; its 800 training examples are kept). `data_seed` draws the examples
(the paper draws them with the run's seed: `dataset.data_seed=${seed}`), `split_seed` the split.

The paper draws examples **with replacement**, so many held-out inputs also occur in training (seed 0: 55 % of
the test inputs of modular_addition, 100 % of equivalence, 90 % of family_tree, 58 % of greater_than, 13 % of
lattice, 0 % of permutation, which enumerates its pairs). `distinct=true` draws different examples only (up to
`num`; equivalence has 100 in all), so held-out accuracy measures generalisation.
"""

from __future__ import annotations

import itertools
from functools import cached_property
from typing import Annotated, ClassVar

import numpy as np
import torch
from annotated_types import Ge

from lossbench import SettingError
from lossbench.data.base import Splits, carve_validation
from lossbench.ranges import NonNegativeInt, OpenFraction, PositiveInt

Examples = tuple[np.ndarray, np.ndarray]  # (N, T) input token ids, (N,) label token ids


def top2(embedding: np.ndarray) -> np.ndarray:
    """Coordinates on the first two principal components (centred, unscaled; sklearn's PCA would agree)."""
    centred = embedding - embedding.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def explained_variance_ratio(points: np.ndarray) -> np.ndarray:
    """Explained-variance ratio of every principal component of the rows of `points`."""
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return singular**2 / max(float((singular**2).sum()), 1e-300)


def _unit_box(points: np.ndarray) -> np.ndarray:
    """Min-max scale each coordinate to [0, 1] (the paper's normalisation before its 2-D metrics)."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (points - low) / np.where(high > low, high - low, 1.0)


class AlgorithmicDataset:
    """Shared generation, split and structure plumbing; subclasses say what the examples are (their `p`
    defaults to the paper's)."""

    kind = "labels"
    default_p: ClassVar[int]

    def __init__(self, p: Annotated[int, Ge(2)] | None = None, num: PositiveInt = 1000,
                 holdout_fraction: OpenFraction = 0.2, data_seed: NonNegativeInt = 0,
                 split_seed: NonNegativeInt = 0, distinct: bool = False) -> None:
        self.p = self.default_p if p is None else p
        if self.p < 2:
            raise SettingError(f"dataset.p must be >= 2, got {self.p}")
        self.num, self.holdout_fraction = num, holdout_fraction
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

    def examples(self, rng: np.random.Generator) -> Examples:
        raise NotImplementedError

    def structure(self, embedding: np.ndarray) -> float:
        """The dataset's crystal metric of an embedding table (vocab_size, d)."""
        raise NotImplementedError

    def check(self) -> None:
        """Nothing to check: the data is generated."""

    def load(self) -> Splits:
        rng = np.random.default_rng(self.data_seed)
        x, y = self.distinct_examples(rng) if self.distinct else self.examples(rng)
        x_t, y_t = torch.as_tensor(x, dtype=torch.long), torch.as_tensor(y, dtype=torch.long)
        x_tr, y_tr, held_x, held_y = carve_validation(x_t, y_t, self.holdout_fraction, self.split_seed)
        x_val, y_val, x_te, y_te = carve_validation(held_x, held_y, 0.5, self.split_seed + 1)
        return Splits(x_tr, y_tr, x_val, y_val, x_te, y_te, num_classes=self.vocab_size, vocab_size=self.vocab_size,
                      structure=self.structure)


class ModularAddition(AlgorithmicDataset):
    """(a, b) -> (a + b) mod p; the paper's "circle" (p = 31)."""

    default_p = 31

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 2))
        return x, (x[:, 0] + x[:, 1]) % self.p

    def structure(self, embedding: np.ndarray) -> float:
        points = _unit_box(top2(embedding))
        radii = np.linalg.norm(points - points.mean(axis=0), axis=1)
        return float(radii.std() / radii.mean())


class Equivalence(AlgorithmicDataset):
    """x -> x mod `classes` (one token); the paper's "equivalence classes" (p = 100, 5 classes)."""

    default_p = 100

    def __init__(self, p: Annotated[int, Ge(2)] | None = None, classes: Annotated[int, Ge(2)] = 5, num: PositiveInt = 1000,
                 holdout_fraction: OpenFraction = 0.2, data_seed: NonNegativeInt = 0,
                 split_seed: NonNegativeInt = 0, distinct: bool = False) -> None:
        super().__init__(p, num, holdout_fraction, data_seed, split_seed, distinct)
        self.classes = classes

    def examples(self, rng: np.random.Generator) -> Examples:
        x = rng.integers(0, self.p, size=(self.num, 1))
        return x, x[:, 0] % self.classes

    def structure(self, embedding: np.ndarray) -> float:
        dist = np.linalg.norm(embedding[:, None] - embedding[None], axis=-1)
        ids = np.arange(len(embedding))
        same = ids[:, None] % self.classes == ids[None] % self.classes
        cross = dist[~same].mean()
        within = dist[same]
        within = within[within < cross]  # the paper drops within-class outliers farther than the cross mean
        return float(within.mean() / cross)


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
        points = _unit_box(top2(embedding))
        points = points - points.mean(axis=0)
        gaps = []
        for angle in np.linspace(0, 2 * np.pi, self.p, endpoint=False)[1:]:
            c, s = np.cos(angle), np.sin(angle)
            rotated = points @ np.array([[c, -s], [s, c]]).T
            gaps.append(np.linalg.norm(points[:, None] - rotated[None], axis=-1).min(axis=1).mean())
        return float(1.0 / (1.0 + np.mean(gaps)))


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

    def generation(self, person: int) -> int:
        return int(np.floor(np.log2(person)))

    def structure(self, embedding: np.ndarray) -> float:
        people = np.arange(1, self.p)
        points = top2(embedding[people])
        shares = []
        for level in sorted({self.generation(i) for i in people}):
            members = points[[self.generation(i) == level for i in people]]
            if len(members) >= 5:
                shares.append(explained_variance_ratio(members)[0])
        return float(1.0 - np.mean(shares))


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
        deviations = []
        grid = [(i, j) for i in range(self.p) for j in range(self.p)]
        for a, b, c in itertools.combinations(grid, 3):
            d = (b[0] + c[0] - a[0], b[1] + c[1] - a[1])
            if not (0 <= d[0] < self.p and 0 <= d[1] < self.p):
                continue
            if a[0] == b[0] == c[0] or a[1] == b[1] == c[1]:  # collinear along a grid line
                continue
            ea, eb, ec, ed = (embedding[q[0] * self.p + q[1]] for q in (a, b, c, d))
            ab, cd = np.linalg.norm(eb - ea), np.linalg.norm(ed - ec)
            ac, bd = np.linalg.norm(ec - ea), np.linalg.norm(eb - ed)
            bc, ad = np.linalg.norm(ec - eb), np.linalg.norm(ed - ea)
            deviations.append(np.hypot(ab - cd, ac - bd) / np.sqrt((ab**2 + bc**2 + cd**2 + ad**2) / 2))
        return float(np.mean(deviations))


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
        gaps = np.linalg.norm(np.diff(embedding[: self.p], axis=0), axis=1)
        return float(gaps.std() / gaps.mean())

