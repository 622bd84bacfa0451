"""Inter-rater reliability of 1–7 (or any ordinal) ratings in long form: one row per item, rater, rating.

The statistics come from well-kept libraries, not hand-written formulas:

* ICC(2,1) and ICC(2,k) — two-way random effects, absolute agreement, single rater and mean of k raters
  (Shrout & Fleiss 1979; McGraw & Wong 1996 "A,1"/"A,k") — with 95 % CIs, from
  ``pingouin.intraclass_corr`` (unrounded). ICC needs a complete items × raters block: with an
  incomplete design the largest complete block is chosen greedily (raters or items with the most
  missing cells are dropped first) and the numbers of items and raters used are reported.
* Krippendorff's α with the ordinal metric, from ``krippendorff.alpha``; it uses every rating
  (missing cells allowed).
* Split-half: raters are split at random into two halves, each item's mean is taken per half and the
  two are correlated across items (Pearson, ``scipy.stats.pearsonr``), then corrected to the full
  panel with Spearman–Brown ``2r / (1 + r)``; mean over ``repeats`` random splits.

A rater's first rating of an item enters these statistics; later ratings of the same item are repeats,
used for the rater's test–retest figures only.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

COLUMNS = ("item", "rater", "rating")
DEFAULT_SCALE = tuple(range(1, 8))

# Raters whose figures fall outside these bounds are flagged (the coordinator decides to exclude).
MIN_LEAVE_ONE_OUT_R = 0.2
MAX_RETEST_MEAN_ABS_DIFF = 1.5
MIN_RATINGS_FOR_FLAGS = 5


def ratings_frame(rows: Iterable[Sequence[Any]] | pd.DataFrame) -> pd.DataFrame:
    """Long ratings as a frame with string ``item``/``rater`` and float ``rating``, in input order.

    Rows lacking a number are refused with a message naming the first bad row.
    """
    frame = rows.copy() if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=COLUMNS)
    missing = [column for column in COLUMNS if column not in frame.columns]
    if missing:
        raise ValueError(f"Ratings lack the column(s) {', '.join(missing)}.")
    frame = frame[list(COLUMNS)].reset_index(drop=True)
    frame["item"] = frame["item"].astype(str).str.strip()
    frame["rater"] = frame["rater"].astype(str).str.strip()
    values = pd.to_numeric(frame["rating"], errors="coerce")
    bad = values.isna() | frame["item"].eq("") | frame["rater"].eq("")
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        raise ValueError(f"Row {row + 1} of the ratings has no item, no rater or no numeric rating.")
    frame["rating"] = values.astype(float)
    return frame


def first_ratings(frame: pd.DataFrame) -> pd.DataFrame:
    """Each rater's first rating of each item (later ones are repeats for test–retest)."""
    return frame.drop_duplicates(subset=["item", "rater"], keep="first").reset_index(drop=True)


def repeat_pairs(frame: pd.DataFrame) -> pd.DataFrame:
    """``rater, item, first, second``: a rater's first and second rating of the same item."""
    ordered = frame.assign(_order=frame.groupby(["rater", "item"]).cumcount())
    first = ordered[ordered["_order"] == 0].set_index(["rater", "item"])["rating"]
    second = ordered[ordered["_order"] == 1].set_index(["rater", "item"])["rating"]
    pairs = pd.concat({"first": first, "second": second}, axis=1, join="inner").reset_index()
    return pairs


# Per item --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ItemSummary:
    item: str
    n: int
    mean: float
    sd: float | None
    ci_low: float | None
    ci_high: float | None


def item_summaries(frame: pd.DataFrame, confidence: float = 0.95) -> list[ItemSummary]:
    """Per item: n, mean, SD (n − 1) and the t-based confidence interval of the mean."""
    summaries = []
    for item, values in first_ratings(frame).groupby("item", sort=True)["rating"]:
        array = values.to_numpy(dtype=float)
        n, mean = len(array), float(array.mean())
        if n < 2:
            summaries.append(ItemSummary(str(item), n, mean, None, None, None))
            continue
        sd = float(array.std(ddof=1))
        half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
        summaries.append(ItemSummary(str(item), n, mean, sd, mean - half, mean + half))
    return summaries


# ICC -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class IccResult:
    icc2_1: float
    icc2_1_ci: tuple[float, float]
    icc2_k: float
    icc2_k_ci: tuple[float, float]
    items: int
    raters: int


def complete_block(frame: pd.DataFrame) -> pd.DataFrame:
    """The ratings of the largest complete items × raters block found greedily (first ratings only)."""
    first = first_ratings(frame)
    present = first.pivot(index="item", columns="rater", values="rating").notna()
    while not present.empty and not present.to_numpy().all():
        item_missing = 1 - present.mean(axis=1)
        rater_missing = 1 - present.mean(axis=0)
        if rater_missing.max() >= item_missing.max():
            present = present.drop(columns=rater_missing.idxmax())
        else:
            present = present.drop(index=item_missing.idxmax())
    keep_items, keep_raters = set(present.index), set(present.columns)
    return first[first["item"].isin(keep_items) & first["rater"].isin(keep_raters)].reset_index(drop=True)


@contextlib.contextmanager
def _unrounded_pingouin() -> Iterator[Any]:
    import pingouin

    previous = pingouin.options.get("round.column.CI95")
    pingouin.options["round.column.CI95"] = None
    try:
        with warnings.catch_warnings():
            # pingouin 0.7 calls pandas APIs that pandas 3.1 deprecates; the results are unaffected.
            warnings.filterwarnings("ignore", message=".*inplace keyword.*")
            yield pingouin
    finally:
        pingouin.options["round.column.CI95"] = previous


def icc(frame: pd.DataFrame) -> IccResult:
    """ICC(2,1) and ICC(2,k) with 95 % CIs (pingouin) on the largest complete block."""
    block = complete_block(frame)
    items, raters = block["item"].nunique(), block["rater"].nunique()
    if items < 3 or raters < 2:
        raise ValueError(
            f"ICC needs at least 3 items rated by the same 2 or more raters; the largest complete block "
            f"has {items} item(s) and {raters} rater(s)."
        )
    with _unrounded_pingouin() as pingouin, np.errstate(all="ignore"):
        table = pingouin.intraclass_corr(data=block, targets="item", raters="rater", ratings="rating")
    rows = table.set_index("Type")
    single, average = rows.loc["ICC(A,1)"], rows.loc["ICC(A,k)"]
    figures = [single["ICC"], average["ICC"], *single["CI95"], *average["CI95"]]
    if not np.all(np.isfinite(np.asarray(figures, dtype=float))):
        raise ValueError("ICC is undefined: the ratings leave no residual variance (raters agree exactly).")
    if not -1 <= single["ICC"] <= 1 or not -1 <= average["ICC"] <= 1:
        # Happens with very few items when the photos differ less than the raters' noise.
        raise ValueError(
            f"ICC is not interpretable yet ({items} items × {raters} raters): the photos do not differ "
            "beyond the raters' disagreement."
        )
    return IccResult(
        icc2_1=float(single["ICC"]),
        icc2_1_ci=(float(single["CI95"][0]), float(single["CI95"][1])),
        icc2_k=float(average["ICC"]),
        icc2_k_ci=(float(average["CI95"][0]), float(average["CI95"][1])),
        items=int(items),
        raters=int(raters),
    )


# Krippendorff's alpha ----------------------------------------------------------------------------------


def reliability_matrix(frame: pd.DataFrame) -> np.ndarray:
    """Raters × items matrix of first ratings, NaN where a rater did not rate an item."""
    return first_ratings(frame).pivot(index="rater", columns="item", values="rating").to_numpy(dtype=float)


def alpha_ordinal(frame: pd.DataFrame, scale: Sequence[float] = DEFAULT_SCALE) -> float:
    """Krippendorff's α, ordinal metric, over the scale's values (``krippendorff.alpha``)."""
    import krippendorff

    matrix = reliability_matrix(frame)
    observed = set(np.unique(matrix[~np.isnan(matrix)]).tolist())
    domain = sorted(set(scale) | observed)
    if (~np.isnan(matrix)).sum(axis=0).max(initial=0) < 2:
        raise ValueError("Krippendorff's alpha needs at least one item rated by 2 or more raters.")
    return float(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=domain)
    )


# Split-half ------------------------------------------------------------------------------------------


def spearman_brown(r: float, factor: float = 2.0) -> float:
    """Reliability of a panel ``factor`` times as large: ``factor·r / (1 + (factor − 1)·r)``."""
    return factor * r / (1 + (factor - 1) * r)


@dataclass(frozen=True)
class SplitHalf:
    r: float
    r_sd: float
    spearman_brown: float
    spearman_brown_sd: float
    repeats: int
    raters: int


def split_half(frame: pd.DataFrame, repeats: int = 100, seed: int = 0) -> SplitHalf:
    """Mean over random rater splits of the half-panel correlation of item means, and Spearman–Brown."""
    matrix = reliability_matrix(frame)
    raters = matrix.shape[0]
    if raters < 2 or matrix.shape[1] < 3:
        raise ValueError("Split-half reliability needs at least 2 raters and 3 items.")
    rng = np.random.default_rng(seed)
    present = ~np.isnan(matrix)
    filled = np.where(present, matrix, 0.0)
    correlations = []
    for _ in range(repeats):
        in_first = np.zeros(raters, dtype=bool)
        in_first[rng.permutation(raters)[: raters // 2]] = True
        halves = []
        for mask in (in_first, ~in_first):
            counts = present[mask].sum(axis=0)
            with np.errstate(invalid="ignore", divide="ignore"):
                halves.append(filled[mask].sum(axis=0) / counts)
        usable = ~np.isnan(halves[0]) & ~np.isnan(halves[1])
        if usable.sum() < 3 or np.std(halves[0][usable]) == 0 or np.std(halves[1][usable]) == 0:
            continue
        correlations.append(float(stats.pearsonr(halves[0][usable], halves[1][usable])[0]))
    if not correlations:
        raise ValueError("No random split left 3 items rated (with some spread) in both halves.")
    raw = np.asarray(correlations)
    mean_r = float(raw.mean())
    if mean_r <= 0:
        raise ValueError(
            f"The two halves of the raters do not agree (mean split-half r {mean_r:.2f}): no Spearman–Brown "
            "reliability can be given."
        )
    return SplitHalf(
        r=mean_r,
        r_sd=float(raw.std()),
        # Corrected from the mean r (correcting each split first is unstable when some r are near −1).
        spearman_brown=spearman_brown(mean_r),
        spearman_brown_sd=float(raw.std()) * 2 / (1 + mean_r) ** 2,
        repeats=len(raw),
        raters=int(raters),
    )


# Per rater -------------------------------------------------------------------------------------------


@dataclass
class RaterSummary:
    rater: str
    n: int
    mean: float
    sd: float | None
    leave_one_out_r: float | None
    retest_pairs: int = 0
    retest_r: float | None = None
    retest_mean_abs_diff: float | None = None
    attention_checks: int = 0
    attention_failed: int = 0
    flags: list[str] = field(default_factory=list)


def _pearson_or_none(first: np.ndarray, second: np.ndarray) -> float | None:
    if len(first) < 3 or np.std(first) == 0 or np.std(second) == 0:
        return None
    return float(stats.pearsonr(first, second)[0])


def rater_summaries(frame: pd.DataFrame, attention: pd.DataFrame | None = None) -> list[RaterSummary]:
    """Per rater: n, mean, SD, correlation with the leave-one-out mean of the others, test–retest, attention
    checks, and flags.

    ``attention`` holds ``rater, expected, rating`` rows of attention-check answers (optional).
    """
    first = first_ratings(frame)
    totals = first.groupby("item")["rating"].agg(["sum", "count"])
    joined = first.join(totals, on="item")
    others = joined["count"] - 1
    joined["loo_mean"] = np.where(
        others > 0, (joined["sum"] - joined["rating"]) / others.clip(lower=1), np.nan
    )
    pairs = repeat_pairs(frame)
    summaries = []
    for rater, rows in joined.groupby("rater", sort=True):
        values = rows["rating"].to_numpy(dtype=float)
        usable = rows.dropna(subset=["loo_mean"])
        summary = RaterSummary(
            rater=str(rater),
            n=len(values),
            mean=float(values.mean()),
            sd=float(values.std(ddof=1)) if len(values) > 1 else None,
            leave_one_out_r=_pearson_or_none(
                usable["rating"].to_numpy(dtype=float), usable["loo_mean"].to_numpy(dtype=float)
            ),
        )
        own_pairs = pairs[pairs["rater"] == rater]
        if len(own_pairs):
            summary.retest_pairs = len(own_pairs)
            firsts, seconds = own_pairs["first"].to_numpy(float), own_pairs["second"].to_numpy(float)
            summary.retest_r = _pearson_or_none(firsts, seconds)
            summary.retest_mean_abs_diff = float(np.mean(np.abs(firsts - seconds)))
        summaries.append(summary)
    by_rater = {summary.rater: summary for summary in summaries}
    if attention is not None and len(attention):
        for rater, rows in attention.groupby(attention["rater"].astype(str)):
            summary = by_rater.get(rater)
            if summary is None:
                continue
            summary.attention_checks = len(rows)
            summary.attention_failed = int(
                (rows["rating"].astype(float) != rows["expected"].astype(float)).sum()
            )
    for summary in summaries:
        summary.flags = rater_flags(summary)
    return summaries


def rater_flags(summary: RaterSummary) -> list[str]:
    """Plain-language reasons to look at a rater (empty when none)."""
    flags = []
    if summary.attention_failed:
        flags.append(f"failed {summary.attention_failed} of {summary.attention_checks} attention checks")
    if summary.n >= MIN_RATINGS_FOR_FLAGS and (summary.sd is not None and summary.sd == 0):
        flags.append("gave the same rating to every photo")
    elif (
        summary.n >= MIN_RATINGS_FOR_FLAGS
        and summary.leave_one_out_r is not None
        and summary.leave_one_out_r < MIN_LEAVE_ONE_OUT_R
    ):
        flags.append(
            f"agrees little with the other raters (r = {summary.leave_one_out_r:.2f} with their mean, "
            f"below {MIN_LEAVE_ONE_OUT_R})"
        )
    if (
        summary.retest_pairs >= 3
        and summary.retest_mean_abs_diff is not None
        and summary.retest_mean_abs_diff > MAX_RETEST_MEAN_ABS_DIFF
    ):
        flags.append(
            f"inconsistent on repeated photos (mean difference {summary.retest_mean_abs_diff:.1f} points, "
            f"above {MAX_RETEST_MEAN_ABS_DIFF})"
        )
    return flags


# The whole report ------------------------------------------------------------------------------------


@dataclass
class ReliabilityReport:
    n_items: int
    n_raters: int
    n_ratings: int
    icc: IccResult | None
    alpha_ordinal: float | None
    split_half: SplitHalf | None
    problems: list[str] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        """The keys of ``python -m ml ratings reliability --json`` (None: cannot be computed)."""
        return {
            "n_items": self.n_items,
            "n_raters": self.n_raters,
            "n_ratings": self.n_ratings,
            "icc2_1": self.icc.icc2_1 if self.icc else None,
            "icc2_1_ci": list(self.icc.icc2_1_ci) if self.icc else None,
            "icc2_k": self.icc.icc2_k if self.icc else None,
            "icc2_k_ci": list(self.icc.icc2_k_ci) if self.icc else None,
            "alpha_ordinal": self.alpha_ordinal,
            "split_half": self.split_half.r if self.split_half else None,
            "spearman_brown": self.split_half.spearman_brown if self.split_half else None,
        }

    def details(self) -> dict[str, Any]:
        return {
            **self.summary(),
            "icc_block": {"items": self.icc.items, "raters": self.icc.raters} if self.icc else None,
            "split_half_detail": asdict(self.split_half) if self.split_half else None,
            "problems": self.problems,
        }


def reliability(
    frame: pd.DataFrame, scale: Sequence[float] = DEFAULT_SCALE, repeats: int = 100, seed: int = 0
) -> ReliabilityReport:
    """Every panel-level figure; a figure that the data cannot support is None with the reason in
    ``problems`` (so a survey's live page shows what it can while ratings come in)."""
    first = first_ratings(frame)
    report = ReliabilityReport(
        n_items=int(first["item"].nunique()),
        n_raters=int(first["rater"].nunique()),
        n_ratings=len(frame),
        icc=None,
        alpha_ordinal=None,
        split_half=None,
    )
    for name, compute in (
        ("icc", lambda: icc(first)),
        ("alpha_ordinal", lambda: alpha_ordinal(first, scale)),
        ("split_half", lambda: split_half(first, repeats=repeats, seed=seed)),
    ):
        try:
            setattr(report, name, compute())
        except ValueError as error:
            report.problems.append(str(error))
    return report


def panel_size_reliability(
    frame: pd.DataFrame, sizes: Sequence[int], draws: int = 20, repeats: int = 50, seed: int = 0
) -> list[dict[str, float]]:
    """What a smaller panel would give: split-half, Spearman–Brown and ICC(2,k) of ``draws`` random panels
    of each size (mean and SD), e.g. to plan how many raters a study needs."""
    first = first_ratings(frame)
    raters = first["rater"].unique()
    rng = np.random.default_rng(seed)
    rows = []
    for size in sizes:
        if not 2 <= size <= len(raters):
            raise ValueError(f"A panel of {size} raters cannot be drawn from {len(raters)}.")
        figures: dict[str, list[float]] = {"split_half": [], "spearman_brown": [], "icc2_k": []}
        for draw in range(draws):
            panel = first[first["rater"].isin(set(rng.choice(raters, size, replace=False)))]
            half = split_half(panel, repeats=repeats, seed=seed + draw)
            figures["split_half"].append(half.r)
            figures["spearman_brown"].append(half.spearman_brown)
            figures["icc2_k"].append(icc(panel).icc2_k)
        row: dict[str, float] = {"raters": size, "draws": draws}
        for name, values in figures.items():
            row[name], row[f"{name}_sd"] = float(np.mean(values)), float(np.std(values))
        rows.append(row)
    return rows
