"""Forehead-and-eye crop from 68 landmarks (Kim et al. 2023, Table 1 corrected)."""

from __future__ import annotations

import numpy as np
import pytest

from ml.wrinkles.crop import forehead_eye_crop


def _landmarks(left: float = 100.0, right: float = 300.0, between_eyes_y: float = 250.0) -> np.ndarray:
    points = np.full((68, 2), 200.0)
    points[0] = (left, 260.0)
    points[16] = (right, 260.0)
    points[27] = (200.0, between_eyes_y)
    return points


def test_square_follows_the_corrected_table_1() -> None:
    crop = forehead_eye_crop(_landmarks())
    width = 200.0
    assert (crop.x1, crop.x2) == (100.0, 300.0)
    assert crop.y1 == pytest.approx(250.0 - 0.66 * width)
    assert crop.y2 == pytest.approx(crop.y1 + width)
    assert crop.size == 640


def test_points_round_trip_and_corners_map_to_the_crop_corners() -> None:
    crop = forehead_eye_crop(_landmarks())
    corners = np.array([[crop.x1, crop.y1], [crop.x2, crop.y2]])
    np.testing.assert_allclose(crop.to_crop(corners), [[0, 0], [640, 640]])
    points = np.array([[123.4, 200.5], [250.0, 300.0]])
    np.testing.assert_allclose(crop.to_photo(crop.to_crop(points)), points)


def test_crop_pads_outside_the_photo_and_maps_masks_back() -> None:
    image = np.full((300, 400, 3), 200, dtype=np.uint8)
    image[100:110, 150:250] = 10
    crop = forehead_eye_crop(_landmarks(between_eyes_y=100.0))  # the square starts above the photo
    assert crop.y1 < 0
    cropped = crop.crop_image(image)
    valid = crop.valid_mask(image.shape)
    assert cropped.shape == (640, 640, 3)
    assert not valid[0].any() and valid[-1].all()
    first_valid_row = int(np.argmax(valid[:, 320]))
    assert first_valid_row > 0 and (cropped[: first_valid_row - 1] == 0).all()
    dark = cropped[..., 0] < 100
    back = crop.mask_to_photo(dark, image.shape)
    assert back.shape == (300, 400) and back.dtype == bool
    assert back[101:109, 152:248].all() and not back[:95].any() and not back[170:].any()


def test_bad_landmarks_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        forehead_eye_crop(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="not right of"):
        forehead_eye_crop(_landmarks(left=300.0, right=100.0))


def test_the_face_square_holds_the_whole_face_and_the_forehead_above_the_brows() -> None:
    from ml.wrinkles.crop import FACE_TOP_ABOVE_BROWS, face_crop

    points = _landmarks()
    crop = face_crop(points, size=512)
    assert crop.x2 - crop.x1 == pytest.approx(crop.y2 - crop.y1) and crop.size == 512
    inside = crop.to_crop(points)
    assert (inside >= 0).all() and (inside <= 512).all()  # every landmark, chin included
    jaw_width = points[16, 0] - points[0, 0]
    assert crop.y1 <= points[17:27, 1].min() - FACE_TOP_ABOVE_BROWS * jaw_width + 1e-6
    with pytest.raises(ValueError, match="not right of"):
        face_crop(_landmarks(left=300.0, right=100.0))
