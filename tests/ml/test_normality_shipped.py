"""The shipped embedded normalizer and rating regressor score a real face offline (few steps, for speed)."""

import csv
import json
import math

import pytest

from ml.cli import main
from ml.config import data_dir_or_none
from ml.normality import models


def held_out_face():
    data = data_dir_or_none()
    if data is None or not (data / "mebeauty" / "images.csv").is_file():
        pytest.skip("the face data directory (FACET_DATA_DIR) with mebeauty/ is absent")
    with (data / "mebeauty" / "images.csv").open(newline="") as handle:
        row = next(row for row in csv.DictReader(handle) if row["split"] == "val")
    return data / "mebeauty" / row["image"]


def test_shipped_weights_score_a_held_out_face(capsys, monkeypatch, tmp_path):
    photo = held_out_face()
    monkeypatch.delenv("FACET_WEIGHTS_DIR", raising=False)
    monkeypatch.delenv("FACET_LPIPS_RANDOM_BACKBONE", raising=False)
    assert models.autoencoder_weights_path().is_file(), "shipped normalizer weights are missing"
    assert models.autoencoder_weights_path().stat().st_size <= 25 * 1024**2
    heatmap = tmp_path / "heat.png"
    status = main(
        [
            "normality",
            "score",
            str(photo),
            "--json",
            "--steps",
            "2",
            "--adapt-steps",
            "1",
            "--heatmap",
            str(heatmap),
        ]
    )
    assert status in (0, None)
    document = json.loads(capsys.readouterr().out)
    assert math.isfinite(document["score"]) and document["region"] == "mouth_nose"
    assert 1.0 <= document["rating"]["value"] <= 7.0
    assert "rescaled to 1-7" in document["rating"]["trained_on"]
    assert document["model"]["name"] == models.AUTOENCODER_MODEL and document["model"]["trained"]
    assert document["metric"]["perceptual"] == "ssim-fallback"
    assert heatmap.stat().st_size > 0
    assert "RESEARCH BASELINE" in document["model"]["limitations"]  # its limits travel with every score
