"""``python -m ml zones ...`` commands."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.cli import main
from ml.zones.atlas import ZONE_ABBREVIATIONS


def test_ssm_without_weights_says_it_is_not_trained(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FACET_WEIGHTS_DIR", str(tmp_path / "weights"))
    from ml.registry import registry

    registry.unload("zones-hrnet")
    photo = tmp_path / "photo.png"
    Image.fromarray(np.full((40, 40, 3), 200, dtype=np.uint8)).save(photo)
    status = main(["zones", "predict", str(photo), "--out", str(tmp_path / "out"), "--model", "ssm"])
    error = capsys.readouterr().err
    assert status == 2
    assert "has not been trained" in error and "python -m ml zones train" in error


def test_predict_without_a_face_fails_clearly(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    photo = tmp_path / "blank.png"
    Image.fromarray(np.full((60, 60, 3), 30, dtype=np.uint8)).save(photo)
    assert main(["zones", "predict", str(photo), "--out", str(tmp_path / "out")]) == 2
    assert "No face" in capsys.readouterr().err


def test_landmark_predict_writes_masks_and_areas(
    tmp_path: Path, face_photo_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "out"
    assert main(["zones", "predict", str(face_photo_path), "--out", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["model"]["name"] == "zones-landmark"
    assert [z["abbreviation"] for z in result["zones"]] == list(ZONE_ABBREVIATIONS)
    assert sum(z["area_px"] > 0 for z in result["zones"]) == 33
    for code in ZONE_ABBREVIATIONS:
        mask = np.asarray(Image.open(out / "zones" / f"{code}.png"))
        assert set(np.unique(mask)) <= {0, 255}
        assert int((mask > 0).sum()) == result["zones"][ZONE_ABBREVIATIONS.index(code)]["area_px"]
    for part in ("skin", "hair", "eyes", "nose", "mouth"):
        assert (out / "parts" / f"{part}.png").is_file()
    assert not np.asarray(Image.open(out / "parts" / "hair.png")).any()
    overview = np.asarray(Image.open(out / "overview.png"))
    assert overview.shape[:2] == (result["image"]["height"], result["image"]["width"])
