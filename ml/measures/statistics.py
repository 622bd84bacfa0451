"""Cohort statistics of pre→post changes: per measure n, mean and median change with 95 % bootstrap
confidence intervals, Wilcoxon signed-rank and paired t p-values, Cohen's dz and the matched-pairs
rank-biserial correlation; Holm or Benjamini–Hochberg adjustment across a family of measures (e.g. the
zones); Mann–Whitney U between arms. scipy computes the tests; the adjustments are checked against
statsmodels."""

from __future__ import annotations

import itertools
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

BOOTSTRAP_RESAMPLES = 2000
CONFIDENCE = 0.95
ADJUSTMENTS = {"holm": "Holm", "fdr_bh": "Benjamini–Hochberg"}


@dataclass
class ChangeSummary:
    """Statistics of the paired changes (post − pre) of one measure. A figure is None where too few
    pairs (or only zero changes) leave it undefined."""

    n: int
    mean_pre: float | None
    mean_post: float | None
    mean_change: float | None
    mean_change_ci: tuple[float, float] | None
    median_change: float | None
    median_change_ci: tuple[float, float] | None
    wilcoxon_p: float | None
    t_test_p: float | None
    cohen_dz: float | None
    rank_biserial: float | None
    adjusted_p: float | None = None

    def as_dict(self) -> dict:
        return asdict(self)


def bootstrap_cis(
    values: np.ndarray, seed: int, resamples: int = BOOTSTRAP_RESAMPLES
) -> tuple[tuple[float, float], tuple[float, float]] | None:
    """Percentile bootstrap 95 % intervals of the mean and of the median of ``values``, from the same
    resamples (None below 3 values)."""
    if len(values) < 3:
        return None
    rng = np.random.default_rng(seed)
    samples = values[rng.integers(0, len(values), size=(resamples, len(values)), dtype=np.int32)]
    tail = 100 * (1 - CONFIDENCE) / 2
    intervals = []
    for estimates in (samples.mean(axis=1), np.median(samples, axis=1)):
        low, high = np.percentile(estimates, [tail, 100 - tail])
        intervals.append((float(low), float(high)))
    return intervals[0], intervals[1]


def rank_biserial(changes: np.ndarray) -> float | None:
    """Matched-pairs rank-biserial correlation (Kerby 2014): (R⁺ − R⁻) / (R⁺ + R⁻) over the ranks of
    the non-zero |changes|; +1 = every pair increased."""
    nonzero = changes[changes != 0]
    if len(nonzero) == 0:
        return None
    ranks = stats.rankdata(np.abs(nonzero))
    positive, negative = ranks[nonzero > 0].sum(), ranks[nonzero < 0].sum()
    return float((positive - negative) / (positive + negative))


def paired_change(pre: Sequence[float], post: Sequence[float], seed: int = 0) -> ChangeSummary:
    """Statistics of the changes ``post − pre`` of paired values."""
    before = np.asarray(pre, dtype=np.float64)
    after = np.asarray(post, dtype=np.float64)
    if before.shape != after.shape:
        raise ValueError("pre and post need the same number of values.")
    changes = after - before
    n = len(changes)
    if n == 0:
        return ChangeSummary(0, None, None, None, None, None, None, None, None, None, None)
    sd = float(changes.std(ddof=1)) if n > 1 else 0.0
    intervals = bootstrap_cis(changes, seed)
    wilcoxon_p = t_test_p = None
    if n > 1 and np.any(changes != 0):
        wilcoxon_p = float(stats.wilcoxon(changes).pvalue)
        if sd > 0:
            t_test_p = float(stats.ttest_rel(after, before).pvalue)
    return ChangeSummary(
        n=n,
        mean_pre=float(before.mean()),
        mean_post=float(after.mean()),
        mean_change=float(changes.mean()),
        mean_change_ci=intervals[0] if intervals else None,
        median_change=float(np.median(changes)),
        median_change_ci=intervals[1] if intervals else None,
        wilcoxon_p=wilcoxon_p,
        t_test_p=t_test_p,
        cohen_dz=float(changes.mean() / sd) if sd > 0 else None,
        rank_biserial=rank_biserial(changes),
    )


def adjust(p_values: Sequence[float | None], method: str = "holm") -> list[float | None]:
    """Holm (``holm``) or Benjamini–Hochberg (``fdr_bh``) adjusted p-values; None stays None.

    Written out (and tested against ``statsmodels.stats.multitest.multipletests``) because that function
    runs a full garbage collection on every call, which costs a page hundreds of milliseconds.
    """
    if method not in ADJUSTMENTS:
        raise ValueError(f"Unknown adjustment {method!r}; use one of {', '.join(ADJUSTMENTS)}.")
    present = [index for index, value in enumerate(p_values) if value is not None]
    adjusted: list[float | None] = [None] * len(p_values)
    if not present:
        return adjusted
    values = np.array([p_values[index] for index in present], dtype=np.float64)
    count = len(values)
    order = np.argsort(values, kind="stable")
    ranked = values[order]
    if method == "holm":
        corrected = np.maximum.accumulate(ranked * (count - np.arange(count)))
    else:
        corrected = np.minimum.accumulate((ranked * count / np.arange(1, count + 1))[::-1])[::-1]
    corrected = np.minimum(corrected, 1.0)
    for rank, position in enumerate(order):
        adjusted[present[position]] = float(corrected[rank])
    return adjusted


def seed_for(key: str) -> int:
    """A stable seed per measure, so a page shows the same intervals on every load."""
    return zlib.crc32(key.encode())


def summarise(
    pairs_by_measure: Mapping[str, tuple[Sequence[float], Sequence[float]]], method: str = "holm"
) -> dict[str, ChangeSummary]:
    """:func:`paired_change` of each measure, with the Wilcoxon p-values adjusted across the measures
    (one family)."""
    summaries = {
        key: paired_change(pre, post, seed_for(key)) for key, (pre, post) in pairs_by_measure.items()
    }
    adjusted = adjust([summary.wilcoxon_p for summary in summaries.values()], method)
    for summary, value in zip(summaries.values(), adjusted, strict=True):
        summary.adjusted_p = value
    return summaries


@dataclass
class ArmComparison:
    """Mann–Whitney U test of the changes of two arms, with the rank-biserial effect size
    2U/(n₁n₂) − 1, U of the first arm: positive = the first arm's changes tend to be larger."""

    first: str
    second: str
    n_first: int
    n_second: int
    u: float | None
    p: float | None
    rank_biserial: float | None
    adjusted_p: float | None = None


def between_arms(changes_by_arm: Mapping[str, Sequence[float]], method: str = "holm") -> list[ArmComparison]:
    """Every pair of arms, Mann–Whitney U (two-sided) on their changes, p adjusted across the pairs."""
    comparisons = []
    for first, second in itertools.combinations(sorted(changes_by_arm), 2):
        a = np.asarray(changes_by_arm[first], dtype=np.float64)
        b = np.asarray(changes_by_arm[second], dtype=np.float64)
        if len(a) == 0 or len(b) == 0:
            comparisons.append(ArmComparison(first, second, len(a), len(b), None, None, None))
            continue
        test = stats.mannwhitneyu(a, b, alternative="two-sided")
        effect = 2 * float(test.statistic) / (len(a) * len(b)) - 1
        comparisons.append(
            ArmComparison(first, second, len(a), len(b), float(test.statistic), float(test.pvalue), effect)
        )
    for comparison, value in zip(comparisons, adjust([c.p for c in comparisons], method), strict=True):
        comparison.adjusted_p = value
    return comparisons
