"""analyze_landmarks: the JSON document, progress reports and a photo without a face."""

import json
from pathlib import Path

import numpy as np
import pytest

from ml.core.imageio import load_image
from ml.landmarks.analysis import analyze_landmarks


def test_blank_photo_reports_no_face_and_progress():
    steps = []
    result = analyze_landmarks(
        np.full((240, 320, 3), 128, np.uint8), progress=lambda f, m: steps.append((f, m))
    )
    assert result["faces"] == []
    assert result["quality"] == {
        "ok": False,
        "reasons": ["No face was found."],
        "measures": {"face_count": 0, "expected_yaw": 0.0},
    }
    assert result["image"] == {"width": 320, "height": 240}
    fractions = [fraction for fraction, _ in steps]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert all(isinstance(message, str) and message for _, message in steps)
    json.dumps(result)


@pytest.mark.data
def test_real_face_gives_one_face_with_pose_and_quality(face_photo_path: Path):
    result = analyze_landmarks(load_image(face_photo_path), expected_yaw=45.0)
    json.dumps(result)
    assert len(result["faces"]) == 1
    assert np.asarray(result["faces"][0]["landmarks"]).shape == (68, 2)
    # A frontal photo checked against the right-45° view fails on yaw only.
    assert not result["quality"]["ok"]
    assert any("this view expects 45°" in reason for reason in result["quality"]["reasons"])
    assert result["quality"]["measures"]["yaw_deviation"] < -30


def test_non_rgb_input_is_refused():
    with pytest.raises(ValueError, match="RGB uint8"):
        analyze_landmarks(np.zeros((10, 10), np.uint8))


@pytest.mark.data
@pytest.mark.parametrize("photo", ["landmarks68/images/lenna.jpg", "london/neutral/001.jpg"])
def test_a_12_megapixel_photo_gives_the_result_of_the_photo_as_stored(photo: str, data_dir: Path):
    """Every stage reads a 12-MP photo at the resolution it needs (reduced copies): the result must be the
    one of the same photo at its stored size, within resampling noise."""
    import cv2

    from ml.core.metrics import normalized_mean_error

    image = load_image(data_dir / photo)
    factor = (12_000_000 / (image.shape[0] * image.shape[1])) ** 0.5
    large = cv2.resize(image, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    stored, enlarged = analyze_landmarks(image), analyze_landmarks(large)
    assert len(stored["faces"]) == len(enlarged["faces"]) == 1
    scale = large.shape[1] / image.shape[1]
    landmarks = np.asarray(enlarged["faces"][0]["landmarks"]) / scale
    # measured 0.009 (lenna) and 0.004 (London 001); dlib's NME against human labels is 0.02–0.04
    assert normalized_mean_error(landmarks, np.asarray(stored["faces"][0]["landmarks"])) < 0.015
    for angle in ("yaw", "pitch", "roll"):
        assert abs(enlarged["faces"][0]["pose"][angle] - stored["faces"][0]["pose"][angle]) < 1.5
    measures = stored["quality"]["measures"], enlarged["quality"]["measures"]
    assert abs(measures[0]["brightness_mean"] - measures[1]["brightness_mean"]) < 2.0
    assert measures[0]["clipped_fraction"] == pytest.approx(measures[1]["clipped_fraction"], abs=0.01)
