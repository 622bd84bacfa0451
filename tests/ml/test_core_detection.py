"""Face detectors behind one interface: YuNet (default), dlib HOG and MMOD, Haar; boxes in input pixels."""

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.core.detection import (
    DEFAULT_FACE_DETECTOR,
    DlibHogDetector,
    DlibMmodDetector,
    FaceDetection,
    HaarCascadeDetector,
    YuNetDetector,
    confident_score_of,
    resize_image,
)
from ml.core.imageio import load_image
from ml.core.metrics import box_iou
from ml.registry import file_sha256, registry


@pytest.fixture(scope="module")
def yunet() -> YuNetDetector:
    return YuNetDetector().load()


def _truth(data_dir: Path) -> dict[str, np.ndarray]:
    path = data_dir / "landmarks68" / "landmarks.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent")
    return {
        Path(name).stem: np.asarray(points) for name, points in json.loads(path.read_text())["faces"].items()
    }


def _best_iou(faces: list[FaceDetection], points: np.ndarray) -> float:
    extent = (*points.min(axis=0), *points.max(axis=0))
    return max((box_iou(face.box, extent) for face in faces), default=0.0)


def test_yunet_is_the_registered_default_and_ships_its_weights():
    assert DEFAULT_FACE_DETECTOR == "yunet"
    spec = registry.spec("yunet")
    assert spec.task == "face-detection" and "Apache-2.0" in spec.licence
    card = (Path(spec.weights_path).parent / "MODEL_CARD.md").read_text()
    assert file_sha256(Path(spec.weights_path)) in card
    assert set(registry.names("face-detection")) >= {
        "yunet",
        "dlib-hog",
        "dlib-mmod",
        "opencv-haar",
        "blazeface",
    }


def test_a_blank_image_has_no_face_and_bad_input_is_refused(yunet):
    assert yunet.detect(np.full((480, 640, 3), 127, np.uint8)) == []
    with pytest.raises(ValueError, match="RGB uint8"):
        yunet.detect(np.zeros((10, 10), np.uint8))


def test_confident_scores_are_per_detector():
    assert confident_score_of("yunet") == 0.75
    assert confident_score_of("dlib-hog") == 0.5
    assert confident_score_of("nope") is None


@pytest.mark.parametrize(("scale", "max_spread"), [(0.16, 20.0), (0.3, 1.0), (0.45, 1.0), (0.7, 45.0)])
def test_resize_image_keeps_the_aspect_and_averages_large_reductions(scale, max_spread):
    image = np.zeros((3000, 4000, 3), np.uint8)
    image[:, ::2] = 255  # one-pixel stripes: an aliasing trap for plain subsampling
    small = resize_image(image, scale)
    assert small.shape == (round(3000 * scale), round(4000 * scale), 3)
    # the stripes average to grey instead of aliasing to black or white (at 0.3 and 0.45 exactly, through
    # the 2:1 area step; above 0.5 an output pixel covers under two stripes)
    assert 100 < small.mean() < 155
    assert small.std() <= max_spread


@pytest.mark.data
def test_resize_image_stays_close_to_an_area_average_on_a_photo(data_dir):
    photo = load_image(data_dir / "landmarks68" / "images" / "lenna.jpg")
    large = cv2.resize(photo, None, fx=6, fy=6, interpolation=cv2.INTER_CUBIC)
    for scale in (0.1, 0.3, 0.45, 0.7):
        reduced = resize_image(large, scale)
        reference = cv2.resize(large, reduced.shape[1::-1], interpolation=cv2.INTER_AREA)
        assert np.abs(reduced.astype(np.int16) - reference).mean() < 1.0, scale


@pytest.mark.data
def test_yunet_finds_every_labelled_landmarks68_face(yunet, data_dir):
    for name, points in _truth(data_dir).items():
        faces = yunet.detect(load_image(data_dir / "landmarks68" / "images" / f"{name}.jpg"))
        assert _best_iou(faces, points) > 0.4, f"{name}: the labelled face was not found"
        best = max(faces, key=lambda face: box_iou(face.box, (*points.min(axis=0), *points.max(axis=0))))
        assert best.points is not None and best.points.shape == (5, 2)
        # the subject's right eye is on the image's left, the eyes above the mouth corners
        assert best.points[0, 0] < best.points[1, 0] and best.points[:2, 1].max() < best.points[3:, 1].min()


@pytest.mark.data
def test_yunet_boxes_follow_the_image_scale(yunet, data_dir):
    image = load_image(data_dir / "landmarks68" / "images" / "lenna.jpg")
    small = yunet.detect(image)[0]
    large = yunet.detect(cv2.resize(image, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC))[0]
    np.testing.assert_allclose(np.asarray(large.box) / 3, small.box, atol=6)
    np.testing.assert_allclose(large.points / 3, small.points, atol=4)


@pytest.mark.data
def test_yunet_finds_faces_in_tight_mebeauty_crops(yunet, data_dir):
    crops = sorted((data_dir / "mebeauty" / "crops").rglob("*.jpg"))[::97][:20]
    if not crops:
        pytest.skip("no MEBeauty crops in the data directory")
    missed = [path.name for path in crops if not yunet.detect(load_image(path))]
    assert missed == [], f"no face in {len(missed)} of {len(crops)} 224-px crops: {missed}"


@pytest.mark.data
@pytest.mark.parametrize("detector", [DlibHogDetector, HaarCascadeDetector, DlibMmodDetector])
def test_other_detectors_find_a_frontal_face_in_input_pixels(detector, data_dir):
    points = _truth(data_dir)["lenna"]
    image = load_image(data_dir / "landmarks68" / "images" / "lenna.jpg")
    faces = detector().detect(image)
    assert _best_iou(faces, points) > 0.3
    for face in faces:
        assert (
            0 <= face.box[0] < face.box[2] <= image.shape[1]
            and 0 <= face.box[1] < face.box[3] <= image.shape[0]
        )
        assert face.detector == detector.name
