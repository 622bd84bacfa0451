"""Landmark accuracy on the human-annotated landmarks68 faces (NME, outer-eye-corner normalisation).

Four faces are a regression test, not a statistic. breakingbad's annotated face is turned and scores
about 0.24 with dlib HOG, below the default 0.5 acceptance threshold (another face in the frame scores
about 0.5), so its landmarks are measured from the best-overlapping detection of a permissive detector.
einstein (grey archive photo) is not found by HOG at all and is left out.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.core.detection import FaceDetector
from ml.core.imageio import load_image
from ml.core.landmarks import detect_faces_with_landmarks
from ml.core.metrics import box_iou, normalized_mean_error
from ml.registry import registry

pytestmark = pytest.mark.data

MAX_NME = 0.06


@pytest.fixture(scope="module")
def annotations(data_dir: Path) -> dict[str, np.ndarray]:
    path = data_dir / "landmarks68" / "landmarks.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (landmarks68 annotations not in the data directory)")
    faces = json.loads(path.read_text())["faces"]
    return {Path(name).stem: np.asarray(points, dtype=np.float64) for name, points in faces.items()}


def _image(data_dir: Path, name: str) -> np.ndarray:
    return load_image(data_dir / "landmarks68" / "images" / f"{name}.jpg")


@pytest.mark.parametrize("name", ["takeo", "lenna"])
def test_default_pipeline_finds_the_face_and_its_landmarks(name, data_dir, annotations):
    truth = annotations[name]
    faces = detect_faces_with_landmarks(_image(data_dir, name))
    assert len(faces) == 1, f"{name}: expected one face, found {len(faces)}"
    nme = normalized_mean_error(faces[0].landmarks, truth)
    print(
        f"\nNME (outer eye corners) {name}: {nme:.4f} "
        f"(detector {faces[0].detector}, score {faces[0].score:.2f})"
    )
    assert nme <= MAX_NME


def test_turned_face_in_a_busy_frame(data_dir, annotations):
    truth = annotations["breakingbad"]
    image = _image(data_dir, "breakingbad")
    truth_box = (*truth.min(axis=0), *truth.max(axis=0))
    detections = FaceDetector(min_score=0.0, upsample=1).detect(image)
    best = max(detections, key=lambda face: box_iou(face.box, truth_box))
    assert box_iou(best.box, truth_box) > 0.3, "the annotated face was not detected even permissively"
    landmarks = registry.load("dlib-68").predict(image, best.box)
    nme = normalized_mean_error(landmarks, truth)
    print(
        f"\nNME (outer eye corners) breakingbad: {nme:.4f} "
        f"(dlib score {best.score:.2f}, below the default 0.5)"
    )
    assert nme <= MAX_NME
