"""Facet's yolo-pose68 detector: registry contract, CLI JSON, and accuracy on landmarks68 (with weights)."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.core.landmarks import ModelFileMissingError
from ml.landmarks.yolo_pose import (
    YoloPoseLandmarkDetector,
    landmarks68_nme,
    yolo_pose68_weights,
)
from ml.registry import registry

MAX_NME = 0.08


def test_yolo_pose68_is_registered_and_trained_only_with_weights():
    spec = registry.spec("yolo-pose68")
    assert spec.task == "landmarks"
    assert spec.trained is yolo_pose68_weights().is_file()
    assert "MEBeauty" in spec.licence and "300-W" in spec.licence


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ModelFileMissingError, match="campaign"):
        YoloPoseLandmarkDetector(weights=tmp_path / "absent.pt")


@pytest.fixture(scope="module")
def detector() -> YoloPoseLandmarkDetector:
    if not yolo_pose68_weights().is_file():
        pytest.skip(f"{yolo_pose68_weights()} is absent (train it with a landmark campaign)")
    return registry.load("yolo-pose68")


def test_detect_returns_the_dlib_contract(detector, make_landmarks):
    image = np.full((320, 320, 3), 128, dtype=np.uint8)
    faces = detector.detect(image)
    for face in faces:  # a flat grey image may or may not give detections; their shape must hold
        assert face.landmarks.shape == (68, 2) and face.detector == "yolo-pose68"
    with pytest.raises(ValueError):
        detector.detect(np.zeros((10, 10), dtype=np.uint8))


def _documented_as_failing() -> bool:
    return registry.spec("yolo-pose68").metrics.get("acceptance", {}).get("passed") is False


@pytest.mark.data
@pytest.mark.xfail(
    _documented_as_failing(),
    reason="the shipped weights are documented (model card, MODEL_CARD.md) as failing NME ≤ 0.08",
    strict=True,  # weights that pass while the card says they fail are an inconsistency too
)
def test_nme_on_the_landmarks68_faces_it_detects(detector, data_dir: Path):
    if not (data_dir / "landmarks68" / "landmarks.json").is_file():
        pytest.skip("landmarks68 annotations are not in the data directory")
    results = landmarks68_nme(detector, data_dir)
    print("\n" + json.dumps(results, indent=1))
    detected = {name: row["nme"] for name, row in results.items() if row["detected"]}
    assert detected, f"yolo-pose68 detected none of the landmarks68 faces: {results}"
    assert all(nme <= MAX_NME for nme in detected.values()), detected


@pytest.mark.data
def test_cli_json_matches_the_dlib_document(detector, data_dir: Path, capsys):
    from ml.cli import main

    image = data_dir / "landmarks68" / "images" / "takeo.jpg"
    if not image.is_file():
        pytest.skip("landmarks68 images are not in the data directory")
    documents = {}
    for model in ("dlib-68", "yolo-pose68"):
        assert main(["landmarks", "detect", str(image), "--json", "--model", model]) in (0, None)
        documents[model] = json.loads(capsys.readouterr().out)
    dlib, yolo = documents["dlib-68"], documents["yolo-pose68"]
    assert yolo.keys() == dlib.keys()
    assert yolo["model"]["name"] == "yolo-pose68" and yolo["image"] == dlib["image"]
    assert yolo["faces"], "no face found on takeo"
    face = yolo["faces"][0]
    assert face.keys() == dlib["faces"][0].keys()
    assert face["detector"] == "yolo-pose68" and len(face["landmarks"]) == 68
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert yolo["quality"].keys() == dlib["quality"].keys()
