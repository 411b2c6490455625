"""Statistics of one report group, where seeds pair the variants.

Within one seed every variant starts from the same backbone initialisation and sees the same data order
(docs/design.md), so variants are compared on matched pairs. Per group and metric:

- **Omnibus**: a repeated-measures ANOVA over every variant with at least two seeds, the seeds as blocks
  (two-way, one value per variant and seed, on the seeds all of them have): F = MS_variant / MS_residual on
  (k - 1, (k - 1)(n - 1)) degrees of freedom. It is the omnibus test of the model the post-hoc paired t-tests
  assume (normal differences); Friedman's rank test (`scipy.stats.friedmanchisquare`, also computed, for the
  CSV) lost power at five seeds in a simulation (k = 5, one variant shifted by d = 1.4: rejected 30 % of the
  time against 46 %). No sphericity correction: with as many variants as seeds or more it cannot be
  estimated. With two variants there is a single comparison and no omnibus test.
- **Post-hoc**, two families, each Holm-corrected over its V - 1 paired t-tests (`scipy.stats.ttest_rel`):
  every variant against the best mean (bold and the tie mark) and every variant against the baseline (the
  difference table and the forest plot). A comparison is *declared* significant only when the omnibus test
  rejects first and its Holm-adjusted p is below alpha (the protected procedure of Demšar 2006, JMLR 7,
  §3.2.2). The V (V - 1) / 2 pairs are never all tested: Holm over hundreds of pairs leaves no power.
- Against the baseline also: the 95 % CI of the paired t-test, the exact Wilcoxon signed-rank p-value
  (`scipy.stats.wilcoxon(method="exact")`, Holm over the same family) and the seeds a paired t-test needs
  for 80 % power at the observed effect (computed only here, where it is shown).
- **Mean ranks**: each seed ranks the variants (1 = best, ties share the average rank); the mean over seeds
  is Friedman's mean rank.

Written here because scipy.stats has no function for them: Holm's step-down adjustment (a sort and a
running maximum) and the power search over n (a bounded, vectorised scan of the noncentral t).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
from scipy import stats

ALPHA = 0.05
POWER = 0.8
MAX_SEEDS = 100  # seeds_needed searches n = 2 .. MAX_SEEDS; beyond it the effect is reported as "> 100"


@dataclass(frozen=True)
class Comparison:
    """`variant` minus `reference` on one metric, over `n` seeds present for both."""

    variant: str
    reference: str
    n: int
    mean_diff: float
    ci_low: float = math.nan
    ci_high: float = math.nan
    p_t: float = math.nan
    p_wilcoxon: float = math.nan
    seeds_needed: float = math.nan  # NaN: undefined (no difference, < 2 pairs) or not computed; inf: > MAX_SEEDS
    p_t_holm: float = math.nan
    p_wilcoxon_holm: float = math.nan


@dataclass(frozen=True)
class Omnibus:
    """Repeated-measures ANOVA over `k` variants on `blocks` seeds (NaN where it is undefined), and
    Friedman's test on the same values (reported, not used for decisions)."""

    k: int
    blocks: int
    statistic: float = math.nan  # F
    p: float = math.nan
    friedman_chi2: float = math.nan
    friedman_p: float = math.nan

    @property
    def allows_posthoc(self) -> bool:
        """Post-hoc comparisons may be declared: the test rejects, or there are only two variants."""
        return self.k <= 2 or (math.isfinite(self.p) and self.p < ALPHA)


def compare(values: pd.DataFrame, variant: str, reference: str, full: bool = True) -> Comparison:
    """Paired t-test of one pair (`values`: index seed, columns variant); with `full` also its 95 % CI,
    the exact Wilcoxon signed-rank test and the seeds needed for 80 % power."""
    return compare_many(values, [variant], reference, full)[0]


def compare_many(values: pd.DataFrame, variants: list[str], reference: str, full: bool = True) -> list[Comparison]:
    """`compare` for several variants against one reference. Variants paired with the reference on the same
    seeds go through one vectorised `scipy.stats.ttest_rel(axis=0)` call (the same arithmetic as one call
    per pair), and likewise through `wilcoxon_many`."""
    ref = values[reference].to_numpy(dtype=float)
    matrix = values[variants].to_numpy(dtype=float).reshape(len(values), len(variants))
    paired = ~np.isnan(matrix) & ~np.isnan(ref)[:, None]
    by_seeds: dict[bytes, list[int]] = {}
    for j in range(len(variants)):
        by_seeds.setdefault(paired[:, j].tobytes(), []).append(j)
    found: dict[int, Comparison] = {}
    for columns in by_seeds.values():
        rows = paired[:, columns[0]]
        diff = matrix[rows][:, columns] - ref[rows][:, None]
        n = int(rows.sum())
        spread = np.array([n >= 2 and not np.all(diff[:, i] == diff[0, i]) for i in range(len(columns))], dtype=bool)
        for i in np.flatnonzero(~spread):
            j = columns[i]
            if n < 2:
                found[j] = Comparison(variants[j], reference, n, float(diff[:, i].mean()) if n else math.nan)
            else:  # no spread: the t statistic is undefined
                constant = float(diff[0, i])
                found[j] = Comparison(variants[j], reference, n, constant, constant, constant,
                                      1.0 if constant == 0 else 0.0, wilcoxon_p(diff[:, i]) if full else math.nan)
        if not spread.any():
            continue
        a = matrix[rows][:, columns][:, spread]
        result = stats.ttest_rel(a, np.repeat(ref[rows][:, None], a.shape[1], axis=1), axis=0)
        d = a - ref[rows][:, None]
        means = d.mean(axis=0)
        if full:
            ci = result.confidence_interval(1 - ALPHA)
            needed = seeds_needed_many(means / d.std(axis=0, ddof=1))
            signed_rank = wilcoxon_many(d)
        for k, i in enumerate(np.flatnonzero(spread)):
            j = columns[i]
            found[j] = (Comparison(variants[j], reference, n, float(means[k]), float(ci.low[k]), float(ci.high[k]),
                                   float(result.pvalue[k]), float(signed_rank[k]), float(needed[k])) if full else
                        Comparison(variants[j], reference, n, float(means[k]), p_t=float(result.pvalue[k])))
    return [found[j] for j in range(len(variants))]


def wilcoxon_p(diff: np.ndarray) -> float:
    """Exact two-sided Wilcoxon signed-rank p-value (zero differences dropped); 1 when all are zero."""
    if not np.any(diff != 0):
        return 1.0
    return float(stats.wilcoxon(diff, method="exact").pvalue)


def wilcoxon_many(diffs: np.ndarray) -> np.ndarray:
    """`wilcoxon_p` of each column: one vectorised scipy call for the columns without zeros or tied
    magnitudes (their exact null distribution is the same), one call each for the others."""
    if diffs.shape[1] == 0:
        return np.zeros(0)
    magnitude = np.sort(np.abs(diffs), axis=0)
    clean = np.all(diffs != 0, axis=0) & np.all(np.diff(magnitude, axis=0) != 0, axis=0)
    out = np.array([math.nan if c else wilcoxon_p(diffs[:, j]) for j, c in enumerate(clean)])
    if clean.any():
        out[clean] = stats.wilcoxon(diffs[:, clean], method="exact", axis=0).pvalue
    return out


def power(effect: float | np.ndarray, n: np.ndarray, alpha: float = ALPHA) -> np.ndarray:
    """Two-sided paired t-test power at standardised effect d for each n:
    P(T > t_crit) + P(T < -t_crit), T ~ noncentral t(n - 1, d sqrt(n)). The lower tail is taken as the
    upper tail at -d sqrt(n) (symmetry): scipy's nct.cdf returns NaN there for large noncentralities."""
    df = n - 1
    crit = stats.t.ppf(1 - alpha / 2, df)
    nc = np.abs(effect) * np.sqrt(n)
    return stats.nct.sf(crit, df, nc) + stats.nct.sf(crit, df, -nc)


def seeds_needed(effect: float, alpha: float = ALPHA, target: float = POWER) -> float:
    """Smallest n in 2 .. MAX_SEEDS with paired-t power >= `target` at d = mean(diff) / sd(diff); inf when
    even MAX_SEEDS falls short (shown as "> 100"), NaN for d = 0 or undefined. Power grows with n, so the
    first n of one vectorised scan is the answer."""
    return float(seeds_needed_many(np.array([effect]), alpha, target)[0])


def seeds_needed_many(effects: np.ndarray, alpha: float = ALPHA, target: float = POWER) -> np.ndarray:
    """`seeds_needed` of several effects at once: power grows with n, so a bisection over n = 2 .. MAX_SEEDS
    (seven evaluations of the noncentral t per effect) finds the first n that reaches `target`. |d| is
    capped at 1000 (already 2 seeds: at d = 20 the power at n = 2 is 0.97): scipy's nct returns NaN for
    noncentralities near 1e10, which float noise makes of near-constant differences."""
    raw = np.asarray(effects, dtype=float)
    out = np.full(raw.shape, np.nan)
    defined = np.isfinite(raw) & (raw != 0)
    d = np.minimum(np.abs(raw[defined]), 1e3)
    low, high = np.ones(d.shape, dtype=int), np.full(d.shape, MAX_SEEDS)  # power(low) < target <= power(high)
    reached = power(d, high, alpha) >= target
    while np.any(high[reached] - low[reached] > 1):
        mid = (low + high) // 2
        enough = power(d, np.maximum(mid, 2), alpha) >= target
        high, low = np.where(enough & reached, mid, high), np.where(~enough & reached, mid, low)
    out[defined] = np.where(reached, np.maximum(high, 2), np.inf)
    return out


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
    return [replace(c, p_t_holm=t, p_wilcoxon_holm=w) for c, t, w in zip(comparisons, t_adj, w_adj)]


def declared(c: Comparison, omnibus: Omnibus) -> bool:
    """Whether a post-hoc comparison is declared significant: omnibus first, then Holm p < alpha."""
    return omnibus.allows_posthoc and c.p_t_holm < ALPHA


def against_baseline(values: pd.DataFrame, baseline: str) -> list[Comparison]:
    """Every other variant against `baseline`, Holm-corrected across them (V - 1 comparisons)."""
    return with_holm(compare_many(values, [v for v in values.columns if v != baseline], baseline))


def compared_variants(values: pd.DataFrame) -> list[str]:
    """Variants with at least two seeds: those a paired test can compare."""
    return list(values.columns[values.count().to_numpy() >= 2])


def rm_anova(matrix: np.ndarray) -> tuple[float, float]:
    """(F, p) of the two-way repeated-measures ANOVA of `matrix` (rows: seeds, columns: variants); F is inf
    when the residual is zero and the variants differ, NaN when nothing varies."""
    n, k = matrix.shape
    grand = matrix.mean()
    ss_variant = n * float(((matrix.mean(axis=0) - grand) ** 2).sum())
    residual = matrix - matrix.mean(axis=1, keepdims=True) - matrix.mean(axis=0, keepdims=True) + grand
    ss_residual = float((residual ** 2).sum())
    scale = float(((matrix - grand) ** 2).sum())
    if ss_residual <= 1e-24 * scale or scale == 0:
        return (math.inf, 0.0) if ss_variant > 1e-24 * scale and scale > 0 else (math.nan, 1.0)
    df_variant, df_residual = k - 1, (k - 1) * (n - 1)
    f = (ss_variant / df_variant) / (ss_residual / df_residual)
    return f, float(stats.f.sf(f, df_variant, df_residual))


def omnibus_test(values: pd.DataFrame) -> Omnibus:
    """The omnibus tests over the variants with >= 2 seeds, on the seeds all of them have (complete blocks)."""
    variants = compared_variants(values)
    blocks = values[variants].dropna()
    test = Omnibus(len(variants), len(blocks))
    if len(variants) < 3 or len(blocks) < 2:
        return test
    matrix = blocks.to_numpy(dtype=float)
    f, p = rm_anova(matrix)
    if np.all(matrix == matrix[:, :1]):  # every seed ties every variant: nothing to rank
        return replace(test, statistic=f, p=p, friedman_chi2=0.0, friedman_p=1.0)
    chi2 = stats.friedmanchisquare(*matrix.T)
    return replace(test, statistic=f, p=p, friedman_chi2=float(chi2.statistic), friedman_p=float(chi2.pvalue))


def mean_ranks(values: pd.DataFrame, higher_is_better: bool) -> dict[str, float]:
    """Per seed, the rank of each variant with a value (1 = best, ties averaged); the mean over seeds."""
    variants = list(values.columns[values.notna().any().to_numpy()])
    sign = -1.0 if higher_is_better else 1.0
    ranks = values[variants].mul(sign).rank(axis=1, method="average")
    return {v: float(ranks[v].mean()) for v in variants}


@dataclass(frozen=True)
class Standing:
    """Where each variant stands on one ranked metric: the best mean; bold when every other compared variant
    is declared significantly worse than it; `tied`: the variants not declared worse; the comparisons of the
    vs-best family; mean ranks over seeds; the omnibus test. `variants`: how many have a value."""

    best: str | None
    bold: bool
    tied: frozenset[str]
    mean_ranks: dict[str, float]
    omnibus: Omnibus
    vs_best: tuple[Comparison, ...] = ()
    variants: int = 0


def standing(values: pd.DataFrame, higher_is_better: bool, omnibus: Omnibus | None = None) -> Standing:
    """Best mean, then every other variant against it (paired t, Holm over the V - 1), after the omnibus."""
    omnibus = omnibus or omnibus_test(values)
    variants = list(values.columns[values.notna().any().to_numpy()])
    if not variants:
        return Standing(None, False, frozenset(), {}, omnibus)
    sign = 1.0 if higher_is_better else -1.0
    best = str((sign * values[variants].mean()).idxmax())
    ranks = mean_ranks(values, higher_is_better)
    if len(variants) < 2:
        return Standing(best, False, frozenset(), ranks, omnibus, variants=1)
    tests = with_holm(compare_many(values, [v for v in variants if v != best], best, full=False))
    worse = {c.variant for c in tests if declared(c, omnibus) and sign * c.mean_diff < 0}
    tied = frozenset(v for v in variants if v != best and v not in worse)
    return Standing(best, not tied, tied, ranks, omnibus, tuple(tests), len(variants))
