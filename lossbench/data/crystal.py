"""Crystal metrics of learned embedding tables: the structure scores of "Harmonic Loss Trains Interpretable AI
Models" (Baek et al. 2025; grow-crystals `src/utils/crystal_metric.py`), as pure functions of a (V, d) table.
Which dataset uses which, and on which tokens: lossbench/data/algorithmic.py."""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np


def top2(embedding: np.ndarray) -> np.ndarray:
    """Coordinates on the first two principal components (centred, unscaled; sklearn's PCA would agree)."""
    centred = embedding - embedding.mean(axis=0)
    _, _, vt = np.linalg.svd(centred, full_matrices=False)
    return centred @ vt[:2].T


def explained_variance_ratio(points: np.ndarray) -> np.ndarray:
    """Explained-variance ratio of every principal component of the rows of `points`."""
    singular = np.linalg.svd(points - points.mean(axis=0), compute_uv=False)
    return singular**2 / max(float((singular**2).sum()), 1e-300)


def unit_box(points: np.ndarray) -> np.ndarray:
    """Min-max scale each coordinate to [0, 1] (the paper's normalisation before its 2-D metrics)."""
    low, high = points.min(axis=0), points.max(axis=0)
    return (points - low) / np.where(high > low, high - low, 1.0)


def circularity(embedding: np.ndarray) -> float:
    """std / mean of the distances to the centroid of the min-max scaled top-2-PC points (0 = a circle)."""
    points = unit_box(top2(embedding))
    radii = np.linalg.norm(points - points.mean(axis=0), axis=1)
    return float(radii.std() / radii.mean())


def class_ratio(points: np.ndarray, classes: int) -> float:
    """Mean within-class / mean cross-class distance of rows whose class is index mod `classes`; within-class
    distances beyond the cross-class mean are dropped, as the paper does (0 = classes collapsed to points)."""
    dist = np.linalg.norm(points[:, None] - points[None], axis=-1)
    ids = np.arange(len(points))
    same = ids[:, None] % classes == ids[None] % classes
    cross = dist[~same].mean()
    within = dist[same]
    within = within[within < cross]
    return float(within.mean() / cross)


def rotational_symmetry(embedding: np.ndarray, folds: int) -> float:
    """1 / (1 + mean nearest-neighbour distance of the centred, min-max scaled top-2-PC points to their rotations
    by multiples of 2 pi / `folds`): 1 = symmetric, higher = more structured."""
    points = unit_box(top2(embedding))
    points = points - points.mean(axis=0)
    gaps = []
    for angle in np.linspace(0, 2 * np.pi, folds, endpoint=False)[1:]:
        c, s = np.cos(angle), np.sin(angle)
        rotated = points @ np.array([[c, -s], [s, c]]).T
        gaps.append(np.linalg.norm(points[:, None] - rotated[None], axis=-1).min(axis=1).mean())
    return float(1.0 / (1.0 + np.mean(gaps)))


def generation_linearity(embedding: np.ndarray, generations: Sequence[int]) -> float:
    """1 - mean over generations (of >= 5 members) of the first PC's share of that generation's top-2-PC points;
    row i belongs to generation generations[i] (0 = every generation on a line)."""
    points = top2(embedding)
    levels = np.asarray(generations)
    shares = [explained_variance_ratio(points[levels == level])[0] for level in sorted(set(levels.tolist()))
              if (levels == level).sum() >= 5]
    return float(1.0 - np.mean(shares))


def parallelogram_deviation(embedding: np.ndarray, p: int) -> float:
    """Mean side-length deviation of the parallelograms (a, b, c, b + c - a) of a p x p grid whose point (i, j) is
    row i * p + j, skipping triples on one grid line (0 = a perfect lattice)."""
    deviations = []
    grid = [(i, j) for i in range(p) for j in range(p)]
    for a, b, c in itertools.combinations(grid, 3):
        d = (b[0] + c[0] - a[0], b[1] + c[1] - a[1])
        if not (0 <= d[0] < p and 0 <= d[1] < p):
            continue
        if a[0] == b[0] == c[0] or a[1] == b[1] == c[1]:  # collinear along a grid line
            continue
        ea, eb, ec, ed = (embedding[q[0] * p + q[1]] for q in (a, b, c, d))
        ab, cd = np.linalg.norm(eb - ea), np.linalg.norm(ed - ec)
        ac, bd = np.linalg.norm(ec - ea), np.linalg.norm(eb - ed)
        bc, ad = np.linalg.norm(ec - eb), np.linalg.norm(ed - ea)
        deviations.append(np.hypot(ab - cd, ac - bd) / np.sqrt((ab**2 + bc**2 + cd**2 + ad**2) / 2))
    return float(np.mean(deviations))


def gap_cv(points: np.ndarray) -> float:
    """Coefficient of variation of the distances between consecutive rows (0 = evenly spaced)."""
    gaps = np.linalg.norm(np.diff(points, axis=0), axis=1)
    return float(gaps.std() / gaps.mean())
