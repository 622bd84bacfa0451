"""The settings a normality analysis runs with: explicit > the regressor's fitted settings > defaults."""

from ml.normality.settings import (
    DEFAULT_ADAPT_STEPS,
    DEFAULT_PROJECTION_STEPS,
    NormalizationSettings,
    analysis_settings,
)

FITTED = {"candidates": 5, "normalizer_settings": {"candidates": 5, "projection_steps": 7, "adapt_steps": 4}}


def test_without_a_regressor_one_candidate_and_the_defaults():
    assert analysis_settings(None) == NormalizationSettings(1, DEFAULT_PROJECTION_STEPS, DEFAULT_ADAPT_STEPS)


def test_the_regressor_fitted_settings_are_used():
    assert analysis_settings(FITTED) == NormalizationSettings(5, 7, 4)


def test_explicit_step_counts_win_and_zero_adaptation_is_kept():
    assert analysis_settings(FITTED, projection_steps=20, adapt_steps=0) == NormalizationSettings(5, 20, 0)


def test_a_regressor_without_recorded_settings_gets_the_defaults():
    settings = analysis_settings({"candidates": 2})
    assert settings == NormalizationSettings(2, DEFAULT_PROJECTION_STEPS, DEFAULT_ADAPT_STEPS)
