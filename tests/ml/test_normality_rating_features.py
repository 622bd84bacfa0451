"""The 1–7 rating keeps the normalizer weights its regressor's features were extracted with when S is
scored with other weights (a study's own autoencoder version: two normalizations per job), and is withheld
when those weights are not at hand."""

from pathlib import Path

import numpy as np
import pytest

from ml.normality import models
from ml.registry import file_sha256

FAST = {"projection_steps": 1, "adapt_steps": 2, "candidates": 1, "fit_pixels": "observed-face"}


@pytest.fixture(scope="module")
def two_weights(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """The shipped autoencoder (the rating's) and a copy with its decoder nudged (S's, as a study's own
    autoencoder version would be)."""
    import torch

    from ml.normality.autoencoder import load_autoencoder, save_autoencoder

    rating_weights = models.autoencoder_weights_path()
    model, metadata = load_autoencoder(rating_weights)
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in model.decoder.parameters():
            parameter.add_(0.05 * parameter.abs().mean() * torch.randn(parameter.shape, generator=generator))
    score_weights = tmp_path_factory.mktemp("weights") / "autoencoder-128-other.pt"
    save_autoencoder(model, score_weights, metadata)
    return rating_weights, score_weights


def _regressor_fitted_on(weights: Path, folder: Path) -> Path:
    import joblib

    regressor = joblib.load(models.regressor_path())
    regressor["normalizer_settings"] = {
        **regressor["normalizer_settings"],
        "weights_sha256": file_sha256(weights),
    }
    path = folder / "regressor.joblib"
    joblib.dump(regressor, path)
    return path


def test_the_rating_comes_from_its_regressors_weights_and_s_from_the_analysis_weights(
    london_photo, two_weights, tmp_path
):
    from ml.normality.analysis import analyze_normality

    rating_weights, score_weights = two_weights
    regressor = _regressor_fitted_on(rating_weights, tmp_path)
    # The rating's weights are the shipped file: found without being named.
    both = analyze_normality(london_photo, weights=score_weights, regressor_weights=regressor, **FAST)
    # The rating is the one the rating's own weights give in a job of their own; S is the other weights'.
    alone = analyze_normality(
        london_photo,
        weights=rating_weights,
        regressor_weights=regressor,
        rating_weights=rating_weights,
        **FAST,
    )
    s_only = analyze_normality(london_photo, weights=score_weights, rating=False, **FAST)
    assert both.data["rating"] is not None
    assert both.data["rating"]["value"] == pytest.approx(alone.data["rating"]["value"])
    assert both.data["features"] == pytest.approx(alone.data["features"])
    assert both.data["rating"]["features_normalizer"]["weights_sha256"] == file_sha256(rating_weights)
    assert alone.data["rating"]["features_normalizer"]["weights_sha256"] == file_sha256(rating_weights)
    assert both.data["score"] == pytest.approx(s_only.data["score"])
    assert both.data["score"] != pytest.approx(alone.data["score"])
    assert both.data["model"]["weights_sha256"] == file_sha256(score_weights)
    assert np.array_equal(both.normalized, s_only.normalized)


def test_no_rating_when_the_weights_its_features_came_from_are_not_installed(
    london_photo, two_weights, tmp_path
):
    from ml.normality.analysis import analyze_normality

    rating_weights, score_weights = two_weights
    regressor = _regressor_fitted_on(rating_weights, tmp_path)
    result = analyze_normality(
        london_photo, weights=score_weights, regressor_weights=regressor, rating_weights=score_weights, **FAST
    )
    assert result.data["rating"] is None and result.data["regressor"] is None
    assert any(file_sha256(rating_weights)[:12] in note for note in result.data["notes"])
    assert result.data["score"] == pytest.approx(
        analyze_normality(london_photo, weights=score_weights, rating=False, **FAST).data["score"]
    )
