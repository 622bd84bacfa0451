"""The analysis's fit pixels on a real photo: a tight crop's padding is reported and left out, S does not
depend on whether a rating is asked, and a card's range is shown only for the fit pixels it was measured
with."""

import numpy as np
import pytest

from ml.normality import models


@pytest.fixture(scope="module")
def tight_crop(london_photo: np.ndarray) -> np.ndarray:
    """The photo cut at its landmarks' extent: the frame runs through the forehead and the cheeks."""
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks

    landmarks = subject_landmarks(detect_faces_with_landmarks(london_photo))
    (left, top), (right, bottom) = landmarks.min(axis=0).astype(int), landmarks.max(axis=0).astype(int)
    return np.ascontiguousarray(london_photo[top:bottom, left:right])


def test_s_of_a_tight_crop_leaves_out_the_padding_whether_or_not_a_rating_is_asked(tight_crop, tmp_path):
    import joblib

    from ml.normality.analysis import analyze_normality, regressor_fit_pixels

    fast = {"projection_steps": 1, "adapt_steps": 2, "candidates": 1, "fit_pixels": "observed-face"}
    scored = analyze_normality(tight_crop, rating=False, **fast)
    assert scored.data["observed"]["fit_pixels"] == "observed-face"
    assert scored.data["observed"]["crop_fraction"] < 0.5  # the quad left the photo: mostly padding
    # The clinician is told that S of a tight framing may not compare with a loosely framed photo's.
    assert scored.data["observed"]["face_fraction"] < 0.95 and scored.data["observed"]["tight_framing"]
    assert any("tight framing" in note for note in scored.data["notes"])
    assert scored.fit_mask is not None and not scored.region_mask[~scored.fit_mask].any()
    assert not scored.heatmap[~scored.fit_mask].any()
    # The shipped regressor's features were fitted on the analysis' own fit pixels: the rating shares
    # S's candidates (one normalization per job).
    assert regressor_fit_pixels(joblib.load(models.regressor_path())) == "observed-face"
    shared = analyze_normality(tight_crop, rating=True, **fast)
    assert shared.data["rating"] is not None
    assert shared.data["score"] == pytest.approx(scored.data["score"])
    assert shared.data["features"] == pytest.approx(scored.data["features"])
    # A regressor fitted on every pixel gets candidates fitted on every pixel; S keeps its own fit.
    regressor = joblib.load(models.regressor_path())
    regressor["normalizer_settings"] = {**regressor["normalizer_settings"], "fit_pixels": "all"}
    joblib.dump(regressor, tmp_path / "every-pixel.joblib")
    rated = analyze_normality(
        tight_crop, rating=True, regressor_weights=tmp_path / "every-pixel.joblib", **fast
    )
    assert rated.data["rating"] is not None
    assert rated.data["score"] == pytest.approx(scored.data["score"])
    assert rated.data["features"] != pytest.approx(scored.data["features"])
    every_pixel = analyze_normality(tight_crop, rating=False, **{**fast, "fit_pixels": "all"})
    assert every_pixel.fit_mask is None and every_pixel.data["score"] != pytest.approx(scored.data["score"])


def test_a_photo_with_the_whole_face_inside_gets_no_framing_note(london_photo):
    from ml.normality.analysis import analyze_normality

    result = analyze_normality(london_photo, rating=False, projection_steps=1, adapt_steps=2, candidates=1)
    assert result.data["observed"]["face_fraction"] == pytest.approx(1.0)
    assert not result.data["observed"]["tight_framing"]
    assert not any("tight framing" in note for note in result.data["notes"])


def test_a_cards_range_is_shown_only_for_the_fit_pixels_it_was_measured_with():
    from ml.normality.analysis import _reference_range

    description = {"details": {"reference": {"heatmap": "pse-ycbcr-eroded", "noise_floor": 0.3}}}
    assert _reference_range(description, "pse-ycbcr-eroded", "all") is not None  # recorded before: all
    assert _reference_range(description, "pse-ycbcr-eroded", "observed-face") is None
    description["details"]["reference"]["fit_pixels"] = "observed-face"
    assert _reference_range(description, "pse-ycbcr-eroded", "observed-face") is not None


def test_a_photo_rotated_with_black_corners_is_flagged_as_edited_and_the_original_is_not(london_photo):
    import cv2

    from ml.normality.analysis import analyze_normality

    fast = {"projection_steps": 1, "adapt_steps": 2, "candidates": 1, "rating": False}
    original = analyze_normality(london_photo, **fast).data
    assert original["observed"]["fill_fraction"] == 0 and not original["observed"]["edited_fill"]
    assert not any("black fill" in note for note in original["notes"])
    # A third-party face crop as MEBeauty's: the face cut out with a small margin, then turned by 25
    # degrees inside the same frame, which leaves black corners next to the cheeks.
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks

    landmarks = subject_landmarks(detect_faces_with_landmarks(london_photo))
    centre, side = landmarks.mean(axis=0), 1.2 * np.ptp(landmarks, axis=0).max()
    left, top = (centre - side / 2).astype(int)
    face = np.ascontiguousarray(london_photo[top : top + int(side), left : left + int(side)])
    turned = cv2.warpAffine(face, cv2.getRotationMatrix2D((side / 2, side / 2), 25, 1.0), face.shape[1::-1])
    edited = analyze_normality(turned, **fast).data
    assert edited["observed"]["fill_fraction"] > 0.02 and edited["observed"]["edited_fill"]
    assert any("black fill" in note for note in edited["notes"])


def test_mirror_average_fits_the_mirror_image_with_mirrored_weights_and_averages_on_the_same_pixels():
    from ml.normality.analysis import mirror_averaged

    face = np.zeros((8, 8, 3), np.uint8)
    face[:, :2] = 200  # a mark on the face's left side only
    weights = np.zeros((8, 8), np.float32)
    weights[:, :4] = 1.0
    seen = []

    def normalize(image: np.ndarray, fit: np.ndarray | None) -> np.ndarray:
        seen.append((image.copy(), None if fit is None else fit.copy()))
        return image

    averaged = mirror_averaged(normalize, face, weights, face)
    mirrored_image, mirrored_weights = seen[0]
    assert (mirrored_image[:, -2:] == 200).all() and (mirrored_weights[:, 4:] == 1).all()
    # A normalizer that copies its input gives back the face: the mirror's output is mirrored back.
    np.testing.assert_array_equal(averaged, face)
    # Normal faces that differ are averaged pixel by pixel.
    np.testing.assert_array_equal(mirror_averaged(normalize, face, None, np.zeros_like(face)), face // 2)
