"""Aggregates over datasets with interval estimates, after rliable (Agarwal et al. 2021, "Deep RL at the
edge of the statistical precipice"): the interquartile mean (IQM) of normalised scores and the probability
of improvement over the baseline, each with a 95 % stratified-bootstrap percentile interval.

- Scores are normalised per dataset to [0, 1] by the minimum and maximum over every run of every variant on
  that dataset, flipped when lower is better (1 = the best run on that dataset), so datasets of different
  difficulty weigh alike.
- IQM: the mean of the middle 50 % of all runs' normalised scores pooled over datasets
  (`scipy.stats.trim_mean(x, 0.25)`, as rliable's `aggregate_iqm`).
- Probability of improvement P(X > Y): per dataset, the probability that a run of X beats a run of Y, ties
  counting half (the Mann-Whitney U statistic over n m), averaged over datasets.
- Stratified bootstrap: every replicate resamples the runs (seeds) of each dataset with replacement,
  independently per dataset (and per variant), 2000 replicates from a fixed seed (the report is
  deterministic); the interval is the 2.5 and 97.5 percentiles.

rliable itself is not used: it requires arch < 8, whose releases fail to import with pandas 3 (a changed
`deprecate_kwarg`), and arch 8 rejects the arguments rliable passes it. The formulas above are rliable's.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

REPS = 2000
SEED = 0
TRIM = 0.25

Scores = dict[str, np.ndarray]  # dataset -> one value per run (seed)


@dataclass(frozen=True)
class Interval:
    """A point estimate with its 95 % stratified-bootstrap percentile interval."""

    value: float
    low: float
    high: float


def normalise(scores: dict[str, Scores], higher_is_better: bool) -> dict[str, Scores]:
    """variant -> dataset -> runs, min-max normalised per dataset over all variants' runs (1 = best)."""
    datasets = {d for by_dataset in scores.values() for d in by_dataset}
    out: dict[str, Scores] = {v: {} for v in scores}
    for d in datasets:
        pooled = np.concatenate([s[d] for s in scores.values() if d in s])
        lo, hi = float(pooled.min()), float(pooled.max())
        for v, s in scores.items():
            if d in s:
                unit = (s[d] - lo) / (hi - lo) if hi > lo else np.full_like(s[d], 0.5, dtype=float)
                out[v][d] = unit if higher_is_better else 1.0 - unit
    return out


def iqm(values: np.ndarray) -> np.ndarray:
    """Interquartile mean along the last axis."""
    return stats.trim_mean(values, TRIM, axis=-1)


def _resample(runs: np.ndarray, rng: np.random.Generator, reps: int) -> np.ndarray:
    """(reps, n): each replicate draws n of the runs with replacement."""
    return runs[rng.integers(0, len(runs), size=(reps, len(runs)))]


def iqm_interval(scores: Scores, reps: int = REPS, seed: int = SEED) -> Interval:
    """IQM of one variant's runs pooled over datasets, with its stratified-bootstrap interval."""
    rng = np.random.default_rng(seed)
    datasets = sorted(scores)
    point = float(iqm(np.concatenate([scores[d] for d in datasets])))
    boot = iqm(np.concatenate([_resample(scores[d], rng, reps) for d in datasets], axis=1))
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(point, float(low), float(high))


def _improvement(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """P(X > Y) + P(X = Y) / 2 over all pairs of the last axes: x (..., n), y (..., m)."""
    diff = x[..., :, None] - y[..., None, :]
    return (diff > 0).mean(axis=(-2, -1)) + 0.5 * (diff == 0).mean(axis=(-2, -1))


def improvement_interval(x: Scores, y: Scores, higher_is_better: bool, reps: int = REPS,
                         seed: int = SEED) -> Interval:
    """Probability that a run of X improves on a run of Y, averaged over the datasets both have."""
    rng = np.random.default_rng(seed)
    sign = 1.0 if higher_is_better else -1.0
    datasets = sorted(set(x) & set(y))
    if not datasets:
        return Interval(np.nan, np.nan, np.nan)
    point = float(np.mean([_improvement(sign * x[d], sign * y[d]) for d in datasets]))
    boot = np.mean([_improvement(sign * _resample(x[d], rng, reps), sign * _resample(y[d], rng, reps))
                    for d in datasets], axis=0)
    low, high = np.percentile(boot, [2.5, 97.5])
    return Interval(point, float(low), float(high))
