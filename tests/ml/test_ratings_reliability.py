"""Inter-rater reliability (ml.ratings): published reference values; London against the libraries."""

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from ml.cli import main
from ml.ratings.reliability import (
    alpha_ordinal,
    complete_block,
    icc,
    item_summaries,
    rater_summaries,
    ratings_frame,
    reliability,
    repeat_pairs,
    split_half,
)

# Shrout & Fleiss (1979), Table 2: 6 targets rated by 4 judges; they report ICC(2,1) = .29, ICC(2,4) = .62.
SHROUT_FLEISS = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8], [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
# Krippendorff (2011), "Computing Krippendorff's alpha-reliability", 4 observers × 12 units with gaps;
# he reports alpha 0.815 with the ordinal metric.
KRIPPENDORFF = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
LONDON_NOTE = "London raters rated attractiveness, not normality"


def _shrout_fleiss() -> pd.DataFrame:
    return ratings_frame(
        [
            (f"target{t}", f"judge{j}", value)
            for t, row in enumerate(SHROUT_FLEISS)
            for j, value in enumerate(row)
        ]
    )


def test_icc_matches_shrout_and_fleiss():
    result = icc(_shrout_fleiss())
    assert round(result.icc2_1, 2) == 0.29
    assert round(result.icc2_k, 2) == 0.62
    assert result.icc2_1_ci[0] < result.icc2_1 < result.icc2_1_ci[1]
    assert (result.items, result.raters) == (6, 4)


def test_alpha_ordinal_matches_krippendorff_example():
    rows = [
        (f"unit{u}", f"observer{o}", value)
        for o, row in enumerate(KRIPPENDORFF)
        for u, value in enumerate(row)
        if value is not None
    ]
    assert round(alpha_ordinal(ratings_frame(rows), scale=range(1, 6)), 3) == 0.815


def test_complete_block_drops_the_raters_with_most_gaps():
    frame = _shrout_fleiss()
    partial = ratings_frame([*frame.itertuples(index=False), ("target9", "latecomer", 4.0)])
    block = complete_block(partial)
    assert set(block["rater"]) == {f"judge{j}" for j in range(4)}
    assert icc(partial).icc2_1 == pytest.approx(icc(frame).icc2_1)


def test_repeats_are_kept_out_of_the_panel_figures_and_feed_test_retest():
    frame = _shrout_fleiss()
    repeated = ratings_frame(
        [*frame.itertuples(index=False), ("target0", "judge0", 1.0), ("target1", "judge0", 6.0)]
    )
    assert icc(repeated).icc2_1 == pytest.approx(icc(frame).icc2_1)
    pairs = repeat_pairs(repeated)
    assert sorted(pairs["first"]) == [6.0, 9.0] and sorted(pairs["second"]) == [1.0, 6.0]
    judge0 = next(summary for summary in rater_summaries(repeated) if summary.rater == "judge0")
    assert judge0.retest_pairs == 2 and judge0.retest_mean_abs_diff == pytest.approx(4.0)


def test_item_summaries_give_the_t_interval():
    summary = item_summaries(_shrout_fleiss())[0]
    values = np.array(SHROUT_FLEISS[0], dtype=float)
    low, high = stats.t.interval(0.95, 3, loc=values.mean(), scale=stats.sem(values))
    assert (summary.n, summary.mean) == (4, pytest.approx(values.mean()))
    assert (summary.ci_low, summary.ci_high) == (pytest.approx(low), pytest.approx(high))


def test_rater_flags_straight_liner_and_failed_attention_checks():
    rows = [(f"p{i}", f"r{j}", (i + j) % 7 + 1) for i in range(10) for j in range(4)]
    rows += [(f"p{i}", "flat", 4) for i in range(10)]
    attention = pd.DataFrame({"rater": ["flat", "r0"], "expected": [3, 3], "rating": [5, 3]})
    summaries = {summary.rater: summary for summary in rater_summaries(ratings_frame(rows), attention)}
    assert "gave the same rating to every photo" in summaries["flat"].flags
    assert any("attention" in flag for flag in summaries["flat"].flags)
    assert summaries["r0"].attention_checks == 1 and summaries["r0"].attention_failed == 0


def test_leave_one_out_correlation_is_against_the_other_raters_mean():
    frame = _shrout_fleiss()
    matrix = np.array(SHROUT_FLEISS, dtype=float)
    expected = stats.pearsonr(matrix[:, 0], np.delete(matrix, 0, axis=1).mean(axis=1))[0]
    judge0 = next(summary for summary in rater_summaries(frame) if summary.rater == "judge0")
    assert judge0.leave_one_out_r == pytest.approx(expected)


def test_too_few_ratings_give_reasons_not_numbers():
    report = reliability(ratings_frame([("a", "r1", 3), ("b", "r1", 4)]))
    assert report.icc is None and report.alpha_ordinal is None and report.split_half is None
    assert len(report.problems) == 3


# London Face Research Lab set: 51 faces × 2,513 raters (a complete matrix). They rated attractiveness.


@pytest.fixture(scope="module")
def london(data_dir: Path) -> pd.DataFrame:
    table = pd.read_csv(data_dir / "london" / "ratings.csv", dtype={"face": str, "rater": str})
    return ratings_frame(table.rename(columns={"face": "item"}))


@pytest.mark.data
@pytest.mark.filterwarnings("ignore:.*inplace keyword.*")
def test_london_figures_match_the_reference_libraries(london: pd.DataFrame):
    import krippendorff
    import pingouin

    report = reliability(london, repeats=20)
    reference = pingouin.intraclass_corr(data=london, targets="item", raters="rater", ratings="rating")
    reference = reference.set_index("Type")
    assert report.icc.icc2_1 == pytest.approx(reference.loc["ICC(A,1)", "ICC"], abs=1e-12), LONDON_NOTE
    assert report.icc.icc2_k == pytest.approx(reference.loc["ICC(A,k)", "ICC"], abs=1e-12)
    # pingouin prints its CIs rounded to 2 decimals; ours are the same numbers unrounded.
    assert np.round(report.icc.icc2_1_ci, 2).tolist() == list(reference.loc["ICC(A,1)", "CI95"])
    assert np.round(report.icc.icc2_k_ci, 2).tolist() == list(reference.loc["ICC(A,k)", "CI95"])
    matrix = london.pivot(index="rater", columns="item", values="rating").to_numpy(float)
    assert report.alpha_ordinal == pytest.approx(
        krippendorff.alpha(reliability_data=matrix, level_of_measurement="ordinal", value_domain=range(1, 8))
    )
    # The mean Spearman-Brown split-half reliability estimates Cronbach's alpha of the raters.
    wide = london.pivot(index="item", columns="rater", values="rating")
    cronbach = pingouin.cronbach_alpha(data=wide)[0]
    assert report.split_half.spearman_brown == pytest.approx(cronbach, abs=5e-4)
    assert (report.n_items, report.n_raters, report.n_ratings) == (51, 2513, 128_163)


@pytest.mark.data
def test_london_split_half_equals_a_direct_computation_for_one_split(london: pd.DataFrame):
    ours = split_half(london, repeats=1, seed=7)
    wide = london.pivot(index="rater", columns="item", values="rating")
    order = np.random.default_rng(7).permutation(len(wide))
    first = wide.iloc[np.sort(order[: len(wide) // 2])].mean(axis=0)
    second = wide.iloc[np.sort(order[len(wide) // 2 :])].mean(axis=0)
    r = stats.pearsonr(first, second)[0]
    assert ours.r == pytest.approx(r) and ours.spearman_brown == pytest.approx(2 * r / (1 + r))


@pytest.mark.data
def test_cli_prints_exactly_the_documented_keys(data_dir: Path, capsys):
    ratings = data_dir / "london" / "ratings.csv"
    status = main(
        [
            "ratings",
            "reliability",
            str(ratings),
            "--item",
            "face",
            "--rater",
            "rater",
            "--rating",
            "rating",
            "--repeats",
            "5",
            "--json",
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert status == 0
    assert list(document) == [
        "n_items",
        "n_raters",
        "n_ratings",
        "icc2_1",
        "icc2_1_ci",
        "icc2_k",
        "icc2_k_ci",
        "alpha_ordinal",
        "split_half",
        "spearman_brown",
    ]
    assert document["icc2_1_ci"][0] < document["icc2_1"] < document["icc2_1_ci"][1]


def test_cli_names_a_missing_column(tmp_path: Path, capsys):
    path = tmp_path / "ratings.csv"
    path.write_text("photo,who,score\na,r1,3\n")
    assert main(["ratings", "reliability", str(path), "--json"]) == 2
    assert "--item" in capsys.readouterr().err
