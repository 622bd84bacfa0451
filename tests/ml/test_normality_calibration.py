"""Calibration of the rating regressor on human ratings: person-level splits, the feature cache, the CLI."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.cli import main
from ml.model_names import NORMALITY_AUTOENCODER
from ml.normality import calibration
from ml.normality.calibration import FeatureCache, Sample, calibrate, features_for_contents, group_holdout
from ml.registry import registry


def _samples(persons: int = 14, per_person: int = 2, seed: int = 0) -> list[Sample]:
    rng = np.random.default_rng(seed)
    samples = []
    for person in range(persons):
        target = 1 + 6 * rng.random()
        for _ in range(per_person):
            features = np.array([target, target**2, 0.0, rng.normal(), rng.normal()]) + rng.normal(0, 0.05, 5)
            samples.append(Sample(item=f"p{person}", group=f"p{person}", features=features, target=target))
    return samples


def test_group_holdout_never_splits_a_person():
    groups = [f"p{index // 2}" for index in range(40)]
    fit, test = group_holdout(groups, 0.5, seed=3)
    assert {groups[i] for i in np.flatnonzero(fit)}.isdisjoint({groups[i] for i in np.flatnonzero(test)})
    assert test.sum() == 20


def test_calibrate_reports_cross_validation_and_held_out_persons():
    result = calibrate(_samples(), regressors=["linear", "ridge"], trials=3, holdout=0.5)
    assert result.chosen.name in {"linear", "ridge"}
    assert result.test["groups"] == 7 and result.test["samples"] == 14
    assert result.test["pearson_r"] > 0.9 and result.test["mae"] < result.test["mae_of_fit_mean"]
    assert result.fit_groups == 7 and result.fit_samples == 14
    assert len(set(result.test_predictions["item"])) == 7  # both photos of each held-out person


def test_feature_cache_is_keyed_by_content_and_setting(tmp_path: Path, monkeypatch):
    calls = []

    def fake_features(image, normalizer, candidates, fit_pixels):
        calls.append(image.shape)
        return {"d_xperc": 0.1, "d_xstr": 0.2, "d_xpsnr": 20.0, "d_braycurtis": 0.3, "d_correlation": 0.4}

    monkeypatch.setattr(calibration, "photo_features", fake_features)
    image = tmp_path / "a.png"
    Image.new("RGB", (64, 64), (10, 20, 30)).save(image)
    sources = [("a", image.read_bytes), ("again", image.read_bytes)]
    first = features_for_contents(sources, None, 1, FeatureCache(tmp_path / "cache", {"k": 1}))
    assert len(calls) == 1 and first["a"] == first["again"]
    features_for_contents(sources, None, 1, FeatureCache(tmp_path / "cache", {"k": 1}))
    assert len(calls) == 1  # read back from features.jsonl
    features_for_contents(sources, None, 1, FeatureCache(tmp_path / "cache", {"k": 2}))
    assert len(calls) == 2  # another normalizer setting is another feature
    monkeypatch.setattr("ml.normality.preprocess.ALIGNMENT_VERSION", -1)
    features_for_contents(sources, None, 1, FeatureCache(tmp_path / "cache", {"k": 1}))
    assert len(calls) == 3  # features of another alignment are never reused


def test_fit_regressor_cli_on_images_and_a_long_ratings_csv(tmp_path: Path, monkeypatch, capsys):
    """Items are file names without extension; the rating is the raters' mean; persons are never split."""
    monkeypatch.setattr(
        calibration,
        "photo_features",
        lambda image, normalizer, candidates, fit_pixels: dict(
            zip(
                calibration.FEATURE_NAMES,
                [float(image.mean()), float(image[..., 0].mean()), 1.0, 0.5, 0.2],
                strict=True,
            )
        ),
    )
    folder = tmp_path / "photos"
    folder.mkdir()
    rows = ["photo_id,rater,score"]
    for index in range(16):
        Image.new("RGB", (64, 64), (index * 12, 100, 90)).save(folder / f"{index:03d}.png")
        for rater in range(3):
            rows.append(f"{index:03d},r{rater},{1 + (index * 6 / 15) + (rater - 1) * 0.2:.2f}")
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("\n".join(rows) + "\n")
    out = tmp_path / "regressor.joblib"
    status = main(
        [
            "normality",
            "fit-regressor",
            "--images",
            str(folder),
            "--ratings",
            str(ratings),
            "--item",
            "photo_id",
            "--rating",
            "score",
            "--rater",
            "rater",
            "--holdout",
            "0.25",
            "--trials",
            "2",
            "--regressors",
            "linear",
            "ridge",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--candidates",
            "1",
            "--out",
            str(out),
        ]
    )
    document = json.loads(capsys.readouterr().out)
    assert status == 0 and out.is_file()
    assert document["items"] == 16 and document["test"]["groups"] == 4
    assert document["split_half_ceiling"]["raters"] == 3
    assert document["normalizer_settings"]["candidates"] == 1

    import joblib

    saved = joblib.load(out)
    assert saved["normalizer_settings"]["candidates"] == 1 and saved["metrics"]["items"] == 16
    # The normalizer weights the features came from, so that the analysis uses the same.
    expected = registry.describe(NORMALITY_AUTOENCODER)["weights_sha256"]
    assert saved["normalizer_settings"]["weights_sha256"] == expected


def test_fit_regressor_cli_explains_missing_inputs(tmp_path: Path, capsys):
    assert main(["normality", "fit-regressor", "--images", str(tmp_path)]) == 2
    assert "--ratings" in capsys.readouterr().err
    ratings = tmp_path / "r.csv"
    ratings.write_text("face,rating\n001,3\n")
    assert (
        main(
            [
                "normality",
                "fit-regressor",
                "--images",
                str(tmp_path),
                "--ratings",
                str(ratings),
                "--item",
                "photo",
            ]
        )
        == 2
    )
    assert "photo" in capsys.readouterr().err


@pytest.mark.data
@pytest.mark.slow
def test_score_uses_a_regressor_fitted_that_way(data_dir: Path, tmp_path: Path, capsys):
    from ml.normality.calibration import regressor_document

    result = calibrate(_samples(), regressors=["ridge"], trials=1)
    path = tmp_path / "r.joblib"
    import joblib

    settings = {"candidates": 1, "projection_steps": 3, "adapt_steps": 25}
    joblib.dump(
        regressor_document(result, trained_on="test ratings", normalizer_settings=settings, metrics={}), path
    )
    face = data_dir / "fasseg" / "frontal" / "train" / "images" / "1.jpg"
    assert main(["normality", "score", str(face), "--regressor", str(path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert 1 <= document["rating"]["value"] <= 7 and document["rating"]["trained_on"] == "test ratings"
    assert document["metric"]["candidates"] == 1
