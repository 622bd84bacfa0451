"""Rating regression: torch ELU MLP, regressor factory, TPE search and the split-half ceiling."""

import numpy as np
import pytest

from ml.normality import regression


def linear_data(n: int = 80, noise: float = 0.1, seed: int = 0):
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(n, 5))
    targets = features @ np.array([1.0, -0.5, 0.3, 0.0, 0.2]) + 4 + noise * rng.normal(size=n)
    return features, targets


def test_mlp_fits_and_is_deterministic():
    features, targets = linear_data()
    first = regression.make_regressor("mlp", {"epochs": 300}).fit(features, targets).predict(features)
    second = regression.make_regressor("mlp", {"epochs": 300}).fit(features, targets).predict(features)
    np.testing.assert_array_equal(first, second)
    r, mae = regression.pearson_and_mae(first, targets)
    assert r > 0.95 and mae < 0.3
    hidden = regression.make_regressor("mlp")[-1]
    assert hidden.hidden_units == 6


@pytest.mark.parametrize("name", regression.REGRESSOR_NAMES)
def test_every_regressor_fits(name):
    features, targets = linear_data()
    predicted = regression.make_regressor(name).fit(features, targets).predict(features)
    assert regression.pearson_and_mae(predicted, targets)[0] > 0.8


def test_tpe_search_reports_cross_validated_r_and_mae():
    pytest.importorskip("optuna", reason="optuna is not installed in this environment")
    features, targets = linear_data(60)
    report = regression.tune_and_evaluate("ridge", features, targets, trials=5)
    assert report.pearson_r > 0.9 and report.mae < 0.3 and "alpha" in report.params and report.trials == 5


def test_split_half_ceiling_tracks_rater_agreement():
    rng = np.random.default_rng(0)
    truth = rng.normal(5, 1.5, size=200)
    agreeing = {f"f{i}": list(t + rng.normal(0, 0.3, size=20)) for i, t in enumerate(truth)}
    noisy = {f"f{i}": list(t + rng.normal(0, 5.0, size=20)) for i, t in enumerate(truth)}
    good, bad = regression.split_half_ceiling(agreeing, 20), regression.split_half_ceiling(noisy, 20)
    assert good.split_half_r > 0.95 and bad.split_half_r < good.split_half_r
    assert bad.spearman_brown_r == pytest.approx(
        np.mean([regression.spearman_brown(bad.split_half_r)]), abs=0.02
    )
    assert regression.spearman_brown(0.5) == pytest.approx(2 / 3)
    assert good.faces == 200 and good.median_raters == 20


def test_rescale_and_bad_names():
    np.testing.assert_allclose(regression.rescale_to_normality_scale([1, 5.5, 10]), [1, 4, 7])
    with pytest.raises(ValueError, match="Unknown regressor"):
        regression.make_regressor("forest")


def test_fit_regressor_chooses_by_mae_or_by_r_within_a_mae_bar():
    from ml.cli import CommandError
    from ml.normality.cli import _chosen_regressor
    from ml.normality.regression import RegressorReport

    reports = [
        RegressorReport(name="svr", params={}, pearson_r=0.18, mae=0.689, trials=1),
        RegressorReport(name="lasso", params={}, pearson_r=0.27, mae=0.690, trials=1),
        RegressorReport(name="mlp", params={}, pearson_r=0.30, mae=0.700, trials=1),
    ]
    assert _chosen_regressor(reports, None).name == "svr"
    assert _chosen_regressor(reports, 0.693).name == "lasso"
    with pytest.raises(CommandError, match="0.6"):
        _chosen_regressor(reports, 0.6)
