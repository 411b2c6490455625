"""Ranking variants across datasets (or any other column): one value per variant and dataset (the mean
over seeds of its cell), ranked within each dataset.

Following Demšar (2006, "Statistical comparisons of classifiers over multiple data sets", JMLR 7):

- ranks per dataset, 1 = best, ties share the average rank; the **mean rank** R_j of each variant;
- **Friedman's test** of "all variants rank equally" (`scipy.stats.friedmanchisquare` on the per-dataset
  means; chi-square approximation), and Iman and Davenport's F form of it, less conservative:
  F = (N - 1) chi2 / (N (k - 1) - chi2) on (k - 1, (k - 1)(N - 1)) degrees of freedom;
- the **Nemenyi critical difference** CD = q_alpha sqrt(k (k + 1) / (6 N)), q_alpha the studentised-range
  quantile over sqrt(2) (`scipy.stats.studentized_range`): two variants whose mean ranks differ by more
  differ significantly; the pairwise Nemenyi p-values come from scikit-posthocs
  (`posthoc_nemenyi_friedman`), which the critical-difference diagram also takes;
- **Holm against the best** (Demšar §3.2.2): z = (R_j - R_best) / sqrt(k (k + 1) / (6 N)), two-sided normal
  p, Holm over the k - 1 comparisons: more powerful than Nemenyi for "which variants tie with the best".

Post-hoc results are declared only where Friedman's test rejects (with two variants: directly). autorank is
not used: it picks the tests itself from normality and variance checks, where the report states one family.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats

from lossbench.report.stats import ALPHA, holm


@dataclass(frozen=True)
class Ranking:
    """Mean ranks and tests of k variants over N datasets (complete blocks only)."""

    means: pd.DataFrame  # dataset x variant: the value ranked
    ranks: pd.DataFrame  # dataset x variant: 1 = best
    mean_ranks: pd.Series  # variant -> mean rank, best first
    friedman_chi2: float
    friedman_p: float
    iman_davenport_f: float
    iman_davenport_p: float
    q_alpha: float
    critical_difference: float
    nemenyi: pd.DataFrame  # pairwise Nemenyi p-values
    p_holm_vs_best: pd.Series  # variant -> Holm-adjusted p against the best mean rank (NaN for the best)
    dropped: list[str] = field(default_factory=list)  # variants without a value on every dataset
    alpha: float = ALPHA

    @property
    def best(self) -> str:
        return str(self.mean_ranks.index[0])

    @property
    def rejects(self) -> bool:
        """Post-hoc differences may be declared: Friedman rejects, or there are two variants."""
        return len(self.mean_ranks) == 2 or (math.isfinite(self.friedman_p) and self.friedman_p < self.alpha)

    def tied_with_best(self) -> list[str]:
        """Variants within the critical difference of the best mean rank (all of them when Friedman does
        not reject), best first."""
        gap = self.mean_ranks - self.mean_ranks.iloc[0]
        return [str(v) for v in self.mean_ranks.index if not self.rejects or gap[v] <= self.critical_difference]

    def significance(self) -> pd.DataFrame:
        """The pairwise p-values the diagram draws from: Nemenyi's, or all 1 when Friedman does not reject."""
        return self.nemenyi if self.rejects else self.nemenyi.map(lambda _: 1.0)


def nemenyi_cd(k: int, n: int, alpha: float = ALPHA) -> tuple[float, float]:
    """(q_alpha, CD) of the Nemenyi test for k variants over n datasets."""
    q = float(stats.studentized_range.ppf(1 - alpha, k, np.inf)) / math.sqrt(2)
    return q, q * math.sqrt(k * (k + 1) / (6 * n))


def _friedman(matrix: np.ndarray) -> tuple[float, float, float, float]:
    """(chi2, p, F, p_F) of Friedman's test; NaN where undefined (k < 3, N < 2); chi2 0 when all tie."""
    n, k = matrix.shape
    if k < 3 or n < 2:
        return (math.nan,) * 4
    if np.all(matrix == matrix[:, :1]):
        return 0.0, 1.0, 0.0, 1.0
    result = stats.friedmanchisquare(*matrix.T)
    chi2 = float(result.statistic)
    denominator = n * (k - 1) - chi2
    f = (n - 1) * chi2 / denominator if denominator > 0 else math.inf
    p_f = float(stats.f.sf(f, k - 1, (k - 1) * (n - 1))) if math.isfinite(f) else 0.0
    return chi2, float(result.pvalue), f, p_f


def rank_across(means: pd.DataFrame, higher_is_better: bool, alpha: float = ALPHA) -> Ranking:
    """Rank the variants (columns) over the datasets (rows) of `means`; variants without a value on every
    dataset are dropped and named."""
    import scikit_posthocs  # statsmodels and seaborn come with it: imported only for a ranking

    complete = [v for v in means.columns if means[v].notna().all()]
    dropped = [str(v) for v in means.columns if v not in complete]
    means = means[complete]
    n, k = means.shape
    sign = -1.0 if higher_is_better else 1.0
    ranks = pd.DataFrame(stats.rankdata(sign * means.to_numpy(dtype=float), axis=1), index=means.index,
                         columns=means.columns)
    mean_ranks = ranks.mean().sort_values(kind="stable")
    chi2, p, f, p_f = _friedman(means.to_numpy(dtype=float))
    q, cd = nemenyi_cd(k, n, alpha) if k >= 2 and n >= 1 else (math.nan, math.nan)
    nemenyi = (scikit_posthocs.posthoc_nemenyi_friedman(means.to_numpy(dtype=float)) if k >= 2 and n >= 2
               else pd.DataFrame(np.ones((k, k))))
    nemenyi.index = nemenyi.columns = means.columns
    nemenyi = nemenyi.loc[mean_ranks.index, mean_ranks.index]
    se = math.sqrt(k * (k + 1) / (6 * n)) if n else math.nan
    others = [v for v in mean_ranks.index[1:]]
    z = [(mean_ranks[v] - mean_ranks.iloc[0]) / se for v in others]
    adjusted = holm([float(2 * stats.norm.sf(abs(x))) for x in z])
    p_holm = pd.Series([math.nan, *adjusted], index=mean_ranks.index, dtype=float)
    return Ranking(means, ranks, mean_ranks, chi2, p, f, p_f, q, cd, nemenyi, p_holm, dropped, alpha)
