"""Paired statistics for report tables: every comparison is paired by seed.

Within one seed every variant starts from the same backbone initialisation and sees the same data order
(DESIGN.md), so the difference of two variants is measured on matched pairs. For each comparison:
mean difference, its 95 % confidence interval and p-value from the paired t-test
(`scipy.stats.ttest_rel`), the p-value of the exact Wilcoxon signed-rank test (`scipy.stats.wilcoxon`,
`method="exact"`), p-values corrected by Holm-Bonferroni across the comparisons of one group and metric,
and the number of seeds a paired t-test would need to detect the observed difference with 80 % power
(two-sided, alpha = 0.05; noncentral t from `scipy.stats.nct`).

Written here, because scipy.stats has no function for them: the Holm step-down adjustment (a
sort and a running maximum over p-values, no distribution) and the power search over n.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 10_000


@dataclass(frozen=True)
class Comparison:
    """`variant` minus `reference` on one metric, over `n` seeds present for both."""

    variant: str
    reference: str
    n: int
    mean_diff: float
    ci_low: float
    ci_high: float
    p_t: float
    p_wilcoxon: float
    seeds_needed: float  # NaN when undefined (no difference, or fewer than 2 pairs)
    p_t_holm: float = math.nan
    p_wilcoxon_holm: float = math.nan


def paired(values: pd.DataFrame, variant: str, reference: str) -> tuple[np.ndarray, np.ndarray]:
    """The metric of two variants on the seeds both have (`values`: index seed, columns variant)."""
    both = values[[variant, reference]].dropna()
    return both[variant].to_numpy(dtype=float), both[reference].to_numpy(dtype=float)


def compare(values: pd.DataFrame, variant: str, reference: str) -> Comparison:
    """Paired t-test, its 95 % CI, exact Wilcoxon signed-rank test and seeds needed for one pair."""
    a, b = paired(values, variant, reference)
    n = len(a)
    diff = a - b
    if n < 2:
        mean = float(diff.mean()) if n else math.nan
        return Comparison(variant, reference, n, mean, math.nan, math.nan, math.nan, math.nan, math.nan)
    if np.all(diff == diff[0]):  # no spread: the t statistic is undefined
        constant = float(diff[0])
        p = 1.0 if constant == 0 else 0.0
        return Comparison(variant, reference, n, constant, constant, constant, p, wilcoxon_p(diff), math.nan)
    result = stats.ttest_rel(a, b)
    ci = result.confidence_interval(1 - ALPHA)
    return Comparison(variant, reference, n, float(diff.mean()), float(ci.low), float(ci.high), float(result.pvalue),
                      wilcoxon_p(diff), seeds_needed(float(diff.mean()) / float(diff.std(ddof=1))))


def wilcoxon_p(diff: np.ndarray) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value (zero differences dropped); 1 when all are zero."""
    if not np.any(diff != 0):
        return 1.0
    return float(stats.wilcoxon(diff, method="exact").pvalue)


def seeds_needed(effect: float, alpha: float = ALPHA, power: float = POWER) -> float:
    """Smallest n with paired-t power >= `power` for standardised effect d = mean(diff) / sd(diff):
    power(n) = P(|T| > t_{1-alpha/2, n-1}) with T ~ noncentral t(n - 1, d sqrt(n))."""
    if not math.isfinite(effect) or effect == 0:
        return math.nan
    for n in range(2, MAX_SEEDS + 1):
        crit = stats.t.ppf(1 - alpha / 2, n - 1)
        nc = abs(effect) * math.sqrt(n)
        achieved = stats.nct.sf(crit, n - 1, nc) + stats.nct.cdf(-crit, n - 1, nc)
        if achieved >= power:
            return float(n)
    return math.inf


def holm(pvalues: list[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values (NaN stays NaN): sort ascending, multiply the i-th smallest by
    (m - i), take the running maximum, cap at 1."""
    order = sorted((i for i in range(len(pvalues)) if not math.isnan(pvalues[i])), key=lambda i: pvalues[i])
    m, adjusted, running = len(order), [math.nan] * len(pvalues), 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * pvalues[i]))
        adjusted[i] = running
    return adjusted


def with_holm(comparisons: list[Comparison]) -> list[Comparison]:
    """The comparisons with Holm-corrected p-values (t and Wilcoxon), corrected across this list."""
    t_adj = holm([c.p_t for c in comparisons])
    w_adj = holm([c.p_wilcoxon for c in comparisons])
    return [Comparison(**{**vars(c), "p_t_holm": t, "p_wilcoxon_holm": w}) for c, t, w in zip(comparisons, t_adj, w_adj)]


def against_baseline(values: pd.DataFrame, baseline: str) -> list[Comparison]:
    """Every other variant against `baseline`, Holm-corrected across them."""
    return with_holm([compare(values, v, baseline) for v in values.columns if v != baseline])


@dataclass(frozen=True)
class Standing:
    """Where each variant stands on one metric: the best mean, whether it is significantly better than
    every other variant (bold), the variants statistically tied with it, and significance ranks
    (1 + the number of variants significantly better; ties share a rank)."""

    best: str | None
    bold: bool
    tied: frozenset[str]
    ranks: dict[str, int]


def standing(values: pd.DataFrame, higher_is_better: bool) -> Standing:
    """Pairwise paired t-tests between all variants, Holm-corrected across the pairs of this metric."""
    variants = [v for v in values.columns if values[v].notna().any()]
    if not variants:
        return Standing(None, False, frozenset(), {})
    sign = 1.0 if higher_is_better else -1.0
    means = values[variants].mean()
    best = str((sign * means).idxmax())
    pairs = [(a, b) for i, a in enumerate(variants) for b in variants[i + 1:]]
    tests = with_holm([compare(values, a, b) for a, b in pairs])
    better: dict[str, set[str]] = {v: set() for v in variants}  # who is significantly better than v
    for (a, b), c in zip(pairs, tests):
        if c.p_t_holm < ALPHA:
            winner, loser = (a, b) if sign * c.mean_diff > 0 else (b, a)
            better[loser].add(winner)
    beaten_by_best = {v for v in variants if best in better[v]}
    tied = frozenset(v for v in variants if v != best and v not in beaten_by_best)
    bold = len(variants) > 1 and not tied
    return Standing(best, bold, tied, {v: 1 + len(better[v]) for v in variants})
