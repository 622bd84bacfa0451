"""The analysis frame (:class:`ml.wrinkles.crop.AnalysisFrame`): figures counted in the model's square
are, in photo pixels, those of the masks' photo-sized maps, and sub-regions still never exceed the
whole."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.wrinkles.analysis import WrinkleLines, wrinkle_figures
from ml.wrinkles.crop import AnalysisFrame, ForeheadEyeCrop
from tests.ml.wrinkle_figure_checks import assert_sub_regions_add_up

# A 640-px square over 1920 photo pixels (3 photo pixels per square pixel), inside a 2400 × 2200 photo.
PHOTO_SHAPE = (2400, 2200)
CROP = ForeheadEyeCrop(x1=150.0, y1=300.0, x2=2070.0, y2=2220.0)
SIDE = 3.0


def _lines_in_square() -> np.ndarray:
    """Wrinkle-like lines of the square: horizontal, slanted, curved; 1 to 3 px wide."""
    canvas = np.zeros((CROP.size, CROP.size), dtype=np.uint8)
    cv2.line(canvas, (60, 100), (560, 110), 1, 2)
    cv2.line(canvas, (100, 300), (260, 420), 1, 1)
    cv2.line(canvas, (400, 250), (420, 520), 1, 3)
    cv2.ellipse(canvas, (320, 560), (150, 40), 0, 200, 340, 1, 2)
    return canvas.astype(bool)


def _region_in_square() -> np.ndarray:
    region = np.zeros((CROP.size, CROP.size), dtype=np.uint8)
    cv2.ellipse(region, (320, 330), (290, 300), 0, 0, 360, 1, -1)
    return region.astype(bool)


def test_the_frame_is_the_square_only_where_the_photo_is_finer() -> None:
    frame = AnalysisFrame.of(CROP, PHOTO_SHAPE)
    assert frame.crop is CROP and frame.shape == (640, 640) and frame.photo_px == pytest.approx(SIDE)
    small = ForeheadEyeCrop(x1=10.0, y1=20.0, x2=410.0, y2=420.0)  # 400 photo px onto 640: coarser photo
    photo = AnalysisFrame.of(small, (500, 450))
    assert photo.crop is None and photo.shape == (500, 450) and photo.photo_px == 1.0
    mask = np.random.default_rng(0).random((500, 450)) > 0.5
    assert photo.from_photo(mask) is mask and photo.to_photo(mask) is mask
    assert photo.box_to_photo([1, 2, 3, 4]) == [1.0, 2.0, 3.0, 4.0]


def test_figures_in_the_square_are_those_of_the_photo_sized_masks() -> None:
    frame = AnalysisFrame.of(CROP, PHOTO_SHAPE)
    in_square, region = _lines_in_square(), _region_in_square()
    on_photo, region_on_photo = frame.to_photo(in_square), frame.to_photo(region)
    reduced = wrinkle_figures(WrinkleLines.of(in_square, frame), region)
    full = wrinkle_figures(WrinkleLines.of(on_photo), region_on_photo)
    assert reduced == full
    assert reduced["count"] == 4
    assert reduced["area_px"] == pytest.approx((in_square & region).sum() * SIDE**2, rel=0.01)
    left = np.zeros_like(region)
    left[:, :300] = True
    assert wrinkle_figures(WrinkleLines.of(in_square, frame), region & left) == wrinkle_figures(
        WrinkleLines.of(on_photo), frame.to_photo(region & left)
    )


def test_pixel_weights_count_the_photo_pixels_of_each_square_pixel() -> None:
    frame = AnalysisFrame.of(ForeheadEyeCrop(x1=-100.3, y1=250.7, x2=1931.1, y2=2282.1), PHOTO_SHAPE)
    weights = frame.pixel_weights
    assert weights is not None and weights.shape == (640, 640)
    mask = np.random.default_rng(2).random((640, 640)) > 0.7
    assert frame.photo_area(mask) == int(frame.to_photo(mask).sum())
    # The square reaches past the photo's left edge: those square pixels stand for no photo pixel.
    assert (weights[:, :5] == 0).all() and weights.sum() == int(frame.to_photo(np.ones_like(mask)).sum())


def test_sub_regions_in_the_square_never_exceed_the_whole_and_add_up() -> None:
    rng = np.random.default_rng(1)
    lines = WrinkleLines.of(_lines_in_square(), AnalysisFrame.of(CROP, PHOTO_SHAPE))
    whole = _region_in_square()
    assert_sub_regions_add_up(lines, whole, rng)


def test_points_masks_and_boxes_map_between_the_square_and_the_photo() -> None:
    frame = AnalysisFrame.of(CROP, PHOTO_SHAPE)
    photo_points = np.array([[150.0, 300.0], [1110.0, 1260.0]])
    assert frame.points(photo_points) == pytest.approx(np.array([[0.0, 0.0], [320.0, 320.0]]))
    blob = np.zeros((640, 640), dtype=bool)
    blob[100:120, 200:260] = True
    on_photo = frame.to_photo(blob)
    ys, xs = np.nonzero(on_photo)
    # The photo box of the square's box [200, 100, 260, 120) is the mapped mask's box, to a photo pixel.
    box = frame.box_to_photo([200.0, 100.0, 260.0, 120.0])
    assert box == pytest.approx([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], abs=1.5)
    assert (frame.from_photo(on_photo) == blob).all()
    labels = np.where(on_photo, 3, 1).astype(np.uint8)
    assert (frame.from_photo(labels)[blob] == 3).all()
    stack = frame.from_photo(np.stack([on_photo, ~on_photo]))
    assert stack.shape == (2, 640, 640) and (stack[0] == blob).all()
