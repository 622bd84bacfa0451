"""``python -m ml normality``: clear failures without weights, the ceiling command and real-data ceiling."""

import json

import numpy as np
import pytest

from ml.cli import main


def test_score_without_trained_normalizer_fails_with_instructions(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACET_WEIGHTS_DIR", str(tmp_path / "weights"))
    photo = tmp_path / "face.png"
    photo.write_bytes(b"not used: the weights check comes first")
    status = main(["normality", "score", str(photo), "--json"])
    captured = capsys.readouterr()
    assert status == 2 and captured.out == ""
    assert "No trained normalizer" in captured.err and "train-normalizer" in captured.err


def test_score_with_stylegan2_without_weights_names_the_variable(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FACET_WEIGHTS_DIR", str(tmp_path / "weights"))
    monkeypatch.delenv("FACET_STYLEGAN2_WEIGHTS", raising=False)
    assert main(["normality", "score", str(tmp_path / "x.png"), "--model", "stylegan2"]) == 2
    assert "FACET_STYLEGAN2_WEIGHTS" in capsys.readouterr().err


def test_ceiling_command_on_a_small_ratings_file(tmp_path, capsys):
    rng = np.random.default_rng(0)
    lines = ["image,rater,rating"]
    for face in range(30):
        truth = rng.uniform(2, 9)
        lines += [f"f{face}.jpg,r{rater},{truth + rng.normal(0, 0.5):.2f}" for rater in range(10)]
    ratings = tmp_path / "ratings.csv"
    ratings.write_text("\n".join(lines) + "\n")
    assert main(["normality", "ceiling", "--ratings", str(ratings), "--repeats", "5", "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["faces"] == 30 and document["repeats"] == 5
    assert 0.8 < document["split_half_r"] < document["spearman_brown_r"] <= 1
    assert "ATTRACTIVENESS" in document["note"]


def test_mebeauty_ceiling_on_real_ratings():
    from ml.config import data_dir_or_none
    from ml.normality.regression import read_ratings, split_half_ceiling

    data = data_dir_or_none()
    if data is None or not (data / "mebeauty" / "ratings.csv").is_file():
        pytest.skip("the face data directory (FACET_DATA_DIR) with mebeauty/ratings.csv is absent")
    ceiling = split_half_ceiling(read_ratings(data / "mebeauty" / "ratings.csv"), repeats=3)
    assert ceiling.faces == 1859 and ceiling.median_raters == 25
    assert 0.6 < ceiling.split_half_r < ceiling.spearman_brown_r < 0.95


def _features_csv(path, rows=40, adapt_steps=(5,), weights_sha256=None):
    from ml.normality.features import FEATURE_NAMES

    rng = np.random.default_rng(0)
    header = ["image", "attractiveness_1_10", *FEATURE_NAMES, "perceptual_metric", "candidates"]
    weights_column = ["weights_sha256"] if weights_sha256 else []
    lines = [",".join([*header, "projection_steps", "adapt_steps", *weights_column])]
    for index in range(rows):
        values = rng.normal(size=len(FEATURE_NAMES))
        rating = 5.5 + 1.5 * values[0] + rng.normal(0, 0.2)
        adapt = adapt_steps[index % len(adapt_steps)]
        row = [f"f{index}.jpg", f"{rating:.3f}", *map(str, values), "ssim-fallback", "2", "10", str(adapt)]
        lines.append(",".join([*row, *([weights_sha256] if weights_sha256 else [])]))
    path.write_text("\n".join(lines) + "\n")


def test_fit_regressor_keeps_the_extraction_settings_for_score(tmp_path, capsys, monkeypatch):
    import joblib

    monkeypatch.setenv("FACET_DATA_DIR", str(tmp_path / "no-data"))
    features = tmp_path / "features.csv"
    _features_csv(features)
    out = tmp_path / "regressor.joblib"
    status = main(
        [
            "normality",
            "fit-regressor",
            "--features",
            str(features),
            "--regressors",
            "linear",
            "ridge",
            "--trials",
            "2",
            "--out",
            str(out),
        ]
    )
    assert status in (0, None)
    document = json.loads(capsys.readouterr().out)
    assert document["normalizer_settings"] == {
        "candidates": 2,
        "projection_steps": 10,
        "adapt_steps": 5,
        "fit_pixels": "all",  # features written before fit pixels existed were fitted on every pixel
    }
    assert {report["name"] for report in document["cross_validation"]} == {"linear", "ridge"}
    assert all(report["pearson_r"] > 0.8 for report in document["cross_validation"])
    saved = joblib.load(out)
    assert saved["candidates"] == 2 and saved["normalizer_settings"]["projection_steps"] == 10
    assert "rescaled to 1-7" in saved["trained_on"]


def test_fit_regressor_records_the_normalizer_weights_its_features_came_from(tmp_path, capsys, monkeypatch):
    import joblib

    monkeypatch.setenv("FACET_DATA_DIR", str(tmp_path / "no-data"))
    features = tmp_path / "features.csv"
    _features_csv(features, weights_sha256="ab" * 32)
    out = tmp_path / "regressor.joblib"
    command = ["normality", "fit-regressor", "--features", str(features), "--regressors", "linear"]
    assert main([*command, "--trials", "1", "--out", str(out)]) in (0, None)
    assert json.loads(capsys.readouterr().out)["normalizer_settings"]["weights_sha256"] == "ab" * 32
    # The analysis computes the rating's features with these weights (or gives no rating).
    assert joblib.load(out)["normalizer_settings"]["weights_sha256"] == "ab" * 32


def test_fit_regressor_refuses_features_from_mixed_settings(tmp_path, capsys):
    features = tmp_path / "features.csv"
    _features_csv(features, adapt_steps=(5, 50))
    status = main(
        [
            "normality",
            "fit-regressor",
            "--features",
            str(features),
            "--regressors",
            "linear",
            "--trials",
            "1",
            "--out",
            str(tmp_path / "r.joblib"),
        ]
    )
    assert status == 2 and "mix adapt_steps" in capsys.readouterr().err


def test_framing_pairs_are_a_seeded_sample_of_one_split_with_originals(tmp_path):
    from ml.normality.cli import _crop_pairs

    rows = ["image,original,split,sex,ethnicity,mean_score,n_raters,sd"]
    for index in range(40):
        split = "train" if index % 4 else "val"
        original = "" if index % 10 == 1 else f"originals/{index}.jpg"
        rows.append(f"crops/{index}.jpg,{original},{split},f,x,5,10,1")
    (tmp_path / "mebeauty").mkdir()
    (tmp_path / "mebeauty" / "images.csv").write_text("\n".join(rows) + "\n")

    first = _crop_pairs(tmp_path, "train", 0, 5, None)
    assert [row["image"] for row in first] == [f"crops/{i}.jpg" for i in (2, 3, 5, 6, 7)]
    sample = _crop_pairs(tmp_path, "train", 0, 8, 0)
    assert len(sample) == 8 and sample == _crop_pairs(tmp_path, "train", 0, 8, 0)
    assert all(row["split"] == "train" and row["original"] for row in sample)
    assert sample != _crop_pairs(tmp_path, "train", 0, 8, 1)


def test_framing_agreement_icc_is_high_for_agreeing_framings_and_low_for_unrelated_ones():
    from ml.normality.cli import _agreement_icc

    rng = np.random.default_rng(0)
    truth = rng.normal(0, 1, 60)

    def pairs(noise: float) -> list[dict]:
        other = truth + rng.normal(0, noise, truth.size)
        return [
            {"image": str(i), "crop": {"raw": float(a)}, "original": {"raw": float(b)}}
            for i, (a, b) in enumerate(zip(truth, other, strict=True))
        ]

    close, unrelated = _agreement_icc(pairs(0.1), "raw"), _agreement_icc(pairs(3.0), "raw")
    assert close["icc"] > 0.95 and close["pairs"] == 60
    assert unrelated["icc"] < 0.3 and unrelated["ci95"][0] < unrelated["icc"] < unrelated["ci95"][1]
    assert _agreement_icc(pairs(0.1)[:2], "raw") is None


def test_train_normalizer_continues_from_given_weights(data_dir, tmp_path, capsys):
    import torch

    from ml.normality.autoencoder import load_autoencoder
    from ml.normality.models import autoencoder_weights_path

    shipped = autoencoder_weights_path()
    if not (data_dir / "mebeauty" / "images.csv").is_file() or not shipped.is_file():
        pytest.skip("needs the MEBeauty photos (FACET_DATA_DIR) and the shipped autoencoder weights")
    out = tmp_path / "continued.pt"
    arguments = ["normality", "train-normalizer", "--data", str(data_dir), "--max-images", "4"]
    arguments += ["--steps", "2", "--batch-size", "2", "--learning-rate", "0", "--init-weights", str(shipped)]
    assert main([*arguments, "--out", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)["initialised_from"] == shipped.name
    continued, start = load_autoencoder(out)[0], load_autoencoder(shipped)[0]
    # With a zero learning rate the continued decoder is the shipped one: training started from it.
    for mine, theirs in zip(continued.decoder.parameters(), start.decoder.parameters(), strict=True):
        assert torch.equal(mine, theirs)


def test_extract_features_records_the_weights_they_were_extracted_with(data_dir, tmp_path):
    import csv

    from ml.normality.autoencoder import load_autoencoder, save_autoencoder
    from ml.normality.models import autoencoder_weights_path
    from ml.registry import file_sha256

    shipped = autoencoder_weights_path()
    if not (data_dir / "mebeauty" / "images.csv").is_file() or not shipped.is_file():
        pytest.skip("needs the MEBeauty photos (FACET_DATA_DIR) and the shipped autoencoder weights")
    other = tmp_path / "other.pt"
    model, metadata = load_autoencoder(shipped)
    save_autoencoder(model, other, {**metadata, "note": "a copy"})  # same weights, another SHA-256
    out = tmp_path / "features.csv"
    arguments = [
        "normality",
        "extract-features",
        "--data",
        str(data_dir),
        "--limit",
        "1",
        "--candidates",
        "1",
    ]
    arguments += ["--steps", "1", "--adapt-steps", "1", "--weights", str(other), "--out", str(out)]
    assert main(arguments) in (0, None)
    with out.open(newline="") as handle:
        assert [row["weights_sha256"] for row in csv.DictReader(handle)] == [file_sha256(other)]
    assert main([*arguments[:-4], "--weights", str(tmp_path / "missing.pt"), "--out", str(out)]) == 2


def test_train_normalizer_refuses_an_exclusion_without_the_faces_it_excludes(capsys):
    listing = "docs/reports/normality-age-similar-faces.json"
    assert main(["normality", "train-normalizer", "--exclude-age-similar", listing]) == 2
    assert "needs --add-300w" in capsys.readouterr().err


def test_reports_record_the_adaptation_steps_that_ran():
    from ml.model_names import NORMALITY_AUTOENCODER, NORMALITY_INPAINTING, NORMALITY_STYLEGAN2
    from ml.normality.analysis import normalizer_adapt_steps
    from ml.normality.projection import HAYAJNEH_ADAPT_STEPS
    from ml.normality.settings import DEFAULT_ADAPT_STEPS

    assert normalizer_adapt_steps(NORMALITY_INPAINTING, None) is None
    assert normalizer_adapt_steps(NORMALITY_INPAINTING, 5) is None
    assert normalizer_adapt_steps(NORMALITY_AUTOENCODER, None) == DEFAULT_ADAPT_STEPS
    assert normalizer_adapt_steps(NORMALITY_AUTOENCODER, 15) == 15
    assert normalizer_adapt_steps(NORMALITY_STYLEGAN2, None) == HAYAJNEH_ADAPT_STEPS
