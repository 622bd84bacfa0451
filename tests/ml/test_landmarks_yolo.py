"""Facet's yolo-pose68 on face crops: crop geometry, training crops, decoding, registry and CLI contract."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from ml.core.detection import FaceDetection
from ml.core.face_crop import extract_crop
from ml.core.landmarks import ModelFileMissingError
from ml.landmarks.human_sets import LabelledFace
from ml.landmarks.yolo_pose import (
    CROP_SHIFT_DOWN,
    CROP_SIDE,
    YoloPoseLandmarker,
    crop_roi,
    decode_best_face,
    landmarks_roi,
    yolo_pose68_weights,
)
from ml.registry import registry


def _detection(angle_degrees: float = 0.0) -> FaceDetection:
    angle = np.radians(angle_degrees)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    # eyes 60 px apart, mouth 70 px below the eyes, centred on (300, 200) before rotation
    local = np.array([[-30.0, -35.0], [30.0, -35.0], [0.0, 0.0], [-25.0, 35.0], [25.0, 35.0]])
    points = local @ rotation.T + [300.0, 200.0]
    return FaceDetection(box=(200.0, 100.0, 400.0, 300.0), score=0.9, detector="yunet", points=points)


def test_yolo_pose68_is_registered_and_trained_only_with_weights():
    spec = registry.spec("yolo-pose68")
    assert spec.task == "landmarks"
    assert spec.trained is yolo_pose68_weights().is_file()
    assert "300-W" in spec.licence and "MEBeauty" in spec.licence


def test_missing_weights_are_a_clear_error(tmp_path):
    with pytest.raises(ModelFileMissingError, match="campaign human-300w"):
        YoloPoseLandmarker(weights=tmp_path / "absent.pt")


@pytest.mark.parametrize("angle", [0.0, 20.0, -35.0])
def test_the_crop_is_eye_aligned_and_scaled_by_the_eye_to_mouth_distance(angle):
    roi = crop_roi(_detection(angle))
    assert roi.angle == pytest.approx(np.radians(angle))
    assert roi.side == pytest.approx(CROP_SIDE * 70.0)
    down = np.array([-np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    np.testing.assert_allclose(
        roi.centre, np.array([300.0, 200.0]) + CROP_SHIFT_DOWN * 70.0 * down, atol=1e-9
    )


def test_a_label_crop_uses_the_same_frame_as_a_detector_crop():
    # 68 points whose eyes and mouth corners sit where the detection's five points are
    points = np.zeros((68, 2)) + [300.0, 200.0]
    points[36:42] = [270.0, 165.0]
    points[42:48] = [330.0, 165.0]
    points[48], points[54] = [275.0, 235.0], [325.0, 235.0]
    from_labels, from_detection = landmarks_roi(points), crop_roi(_detection())
    assert from_labels.side == pytest.approx(from_detection.side)
    np.testing.assert_allclose(from_labels.centre, from_detection.centre, atol=1e-9)


def test_training_crops_carry_the_labels_into_crop_pixels(tmp_path):
    from PIL import Image

    from ml.landmarks.crop_dataset import human_crops

    image = np.zeros((400, 600, 3), np.uint8)
    points = np.column_stack([np.linspace(240, 360, 68), np.linspace(150, 260, 68)])
    points[36], points[45] = [260.0, 170.0], [340.0, 170.0]
    for x, y in points.astype(int):
        image[y - 1 : y + 2, x - 1 : x + 2] = 255
    path = tmp_path / "face.png"
    Image.fromarray(image).save(path)

    class NoFace:
        def detect(self, image):
            return []

    records = human_crops(
        [LabelledFace(path, "face", points)], "train", tmp_path / "crops", NoFace(), crop_size=128
    )
    record = records[0]
    assert record.split == "train" and (record.width, record.height) == (128, 128)
    crop = np.asarray(Image.open(record.path))
    keypoints = record.instances[0].keypoints
    inside = (keypoints >= 1).all(axis=1) & (keypoints < 126).all(axis=1)
    values = [crop[int(round(y)), int(round(x))].max() for x, y in keypoints[inside]]
    assert np.mean(np.asarray(values) > 100) > 0.9  # the white dots are where the labels say


def test_decoding_picks_the_best_scoring_anchor():
    table = torch.zeros(1, 4 + 1 + 68 * 3, 5)
    table[0, 4] = torch.tensor([0.1, 0.2, 0.95, 0.3, 0.0])
    table[0, :4, 2] = torch.tensor([100.0, 120.0, 80.0, 90.0])
    table[0, 5::3, 2] = torch.arange(68, dtype=torch.float32)
    table[0, 6::3, 2] = 7.0
    points, score, box = decode_best_face((table, None), 256)
    assert score == pytest.approx(0.95)
    np.testing.assert_allclose(points[:, 0], np.arange(68))
    np.testing.assert_allclose(points[:, 1], 7.0)
    np.testing.assert_allclose(box, [60.0, 75.0, 140.0, 165.0])


def test_extract_crop_of_a_label_roi_keeps_the_face_centred():
    image = np.zeros((300, 300, 3), np.uint8)
    image[140:161, 140:161] = 200
    roi = landmarks_roi(np.column_stack([np.linspace(120, 180, 68), np.linspace(120, 180, 68)]))
    crop, _ = extract_crop(image, roi, 64)
    assert crop.shape == (64, 64, 3)


@pytest.fixture(scope="module")
def detector():
    if not yolo_pose68_weights().is_file():
        pytest.skip(f"{yolo_pose68_weights()} is absent (train it with a landmark campaign)")
    return registry.load("yolo-pose68")


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
    face = yolo["faces"][0]
    assert face.keys() == dlib["faces"][0].keys()
    crop_model = registry.spec("yolo-pose68").details.get("inference", {}).get("input") == "crop"
    # A crop model runs on the default face detector's faces; a whole-photo model finds faces itself.
    assert face["detector"] == ("yunet" if crop_model else "yolo-pose68") and len(face["landmarks"]) == 68
    assert set(face["pose"]) == {"yaw", "pitch", "roll"}
    assert yolo["quality"].keys() == dlib["quality"].keys()


@pytest.mark.data
def test_the_shipped_model_meets_its_documented_landmarks68_figures(detector, data_dir: Path):
    """The model card's landmarks68 figures are what the shipped weights measure (card and file agree)."""
    from ml.landmarks.yolo_pose import landmarks68_nme

    if not (data_dir / "landmarks68" / "landmarks.json").is_file():
        pytest.skip("landmarks68 annotations are not in the data directory")
    documented = registry.spec("yolo-pose68").metrics["landmarks68"]
    measured = landmarks68_nme(detector, data_dir)
    print("\n" + json.dumps(measured, indent=1))
    for name, row in measured.items():
        assert row["detected"] == documented[name]["detected"], name
        if row["detected"]:
            assert row["nme"] == pytest.approx(documented[name]["nme"], abs=0.005), name
