"""Acceptance on human labels: the default path finds every labelled landmarks68 face, NME ≤ 0.06 each.

Four faces are a regression test, not a statistic (the statistics are in docs/reports). breakingbad's
labelled face is turned, in a frame with another person; einstein is a small grey archive photo; dlib's
HOG detector misses both, the default detector (YuNet) must not.
"""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.core.detection import DEFAULT_FACE_DETECTOR
from ml.core.imageio import load_image
from ml.core.landmarks import DEFAULT_LANDMARK_MODEL, detect_faces_with_landmarks
from ml.core.metrics import box_iou, normalized_mean_error

pytestmark = pytest.mark.data

MAX_NME = 0.06


@pytest.fixture(scope="module")
def annotations(data_dir: Path) -> dict[str, np.ndarray]:
    path = data_dir / "landmarks68" / "landmarks.json"
    if not path.is_file():
        pytest.skip(f"{path} is absent (landmarks68 annotations not in the data directory)")
    faces = json.loads(path.read_text())["faces"]
    return {Path(name).stem: np.asarray(points, dtype=np.float64) for name, points in faces.items()}


# einstein (a 40-px-eye-to-mouth, rolled, grey archive face) measures NME 0.072 on the default path. Its head
# is rolled 21° but YuNet's five points read 0.2° and an eye-to-mouth distance 17 % too long, and dlib's
# result swings between 0.06 and 0.09 with a few pixels of box placement; no landmark model here reaches 0.06
# on it (docs/reports/landmarks-evaluation.md: FaceMesh 0.11, the human-label yolo-pose68 0.11). General
# fixes tried and rejected on the val/London sets: levelling the eyes before dlib (levelling by dlib's own
# first pass gave 0.0755), and, in docs/reports/dlib-box-calibration.md (fitted on landmarks300w train), the
# HOG-box rule refitted (einstein 0.090), the box side taken from YuNet's box (val 0.02695 → 0.02692 but
# breakingbad 0.064) and a second pass framed by dlib's own landmarks (einstein 0.062, breakingbad 0.067,
# val 0.0279). docs/reports/landmarks-einstein.md (scripts/dlib_einstein_study.py): about half the excess is
# YuNet's frame (from the human labels' frame dlib gives 0.062), the rest the image (jaw 0.11 and brows 0.09;
# resamplings of the photo move it between 0.067 and 0.081); box-jitter sets of 1–9 boxes (0.073–0.092) and
# contrast normalisation (best 0.061, with a worse val) do not meet the adoption rule. The face is found; its
# landmarks miss the issue-11 bar. strict: a pass means the documentation is out of date.
KNOWN_ABOVE_BAR = {"einstein": "default-path NME 0.072 > 0.06 (docs/reports/landmarks-einstein.md)"}


def _subject_match(name: str, data_dir: Path, annotations) -> tuple:
    truth = annotations[name]
    image = load_image(data_dir / "landmarks68" / "images" / f"{name}.jpg")
    faces = detect_faces_with_landmarks(image)
    extent = (*truth.min(axis=0), *truth.max(axis=0))
    best = max(faces, key=lambda face: box_iou(face.box, extent), default=None)
    return best, truth, extent


@pytest.mark.parametrize("name", ["breakingbad", "einstein", "lenna", "takeo"])
def test_the_default_detector_finds_the_labelled_face(name, data_dir, annotations):
    best, _, extent = _subject_match(name, data_dir, annotations)
    assert best is not None and box_iou(best.box, extent) > 0.3, f"{name}: the labelled face was not found"
    assert best.detector == DEFAULT_FACE_DETECTOR


@pytest.mark.parametrize(
    "name",
    [
        pytest.param(name, marks=pytest.mark.xfail(reason=KNOWN_ABOVE_BAR[name], strict=True))
        if name in KNOWN_ABOVE_BAR
        else name
        for name in ("breakingbad", "einstein", "lenna", "takeo")
    ],
)
def test_the_default_path_places_the_landmarks_within_the_bar(name, data_dir, annotations):
    best, truth, _ = _subject_match(name, data_dir, annotations)
    assert best is not None
    nme = normalized_mean_error(best.landmarks, truth)
    print(f"\n{DEFAULT_LANDMARK_MODEL} + {best.detector} NME {name}: {nme:.4f}")
    assert nme <= MAX_NME
