"""Post-processing of the wrinkle mask: each step removes what it is meant to and keeps real lines."""

import cv2
import numpy as np
import pytest

from ml.wrinkles.analysis import WrinkleSegmentation, analysed_wrinkles, face_outline_mask
from ml.wrinkles.crop import face_crop
from ml.wrinkles.postprocess import (
    LineShapes,
    PostProcessing,
    analysed_region,
    eye_distance,
    refine_wrinkle_mask,
)
from ml.zones.landmark_model import FACE_PARTS, render_face_parts
from tests.ml.conftest import synthetic_landmarks

SHAPE = (600, 600)
LANDMARKS = synthetic_landmarks(image_shape=SHAPE)
UNIT = eye_distance(LANDMARKS)
LEFT_EYE = LANDMARKS[36:42].mean(axis=0)
EVERYWHERE = np.ones(SHAPE, dtype=bool)


def _draw(points: list[tuple[float, float]], thickness: int = 2) -> np.ndarray:
    canvas = np.zeros(SHAPE, dtype=np.uint8)
    cv2.polylines(canvas, [np.round(np.array(points)).astype(np.int32)], False, 1, thickness)
    return canvas.astype(bool)


def _glasses_rim() -> np.ndarray:
    """The lower half of a round lens rim around the left eye, 0.45 eye distances from its centre."""
    angles = np.radians(np.linspace(20, 160, 40))
    radius = 0.45 * UNIT
    return _draw([(LEFT_EYE[0] + radius * np.cos(a), LEFT_EYE[1] + radius * np.sin(a)) for a in angles])


def _crows_foot() -> np.ndarray:
    """A line running outwards from the left eye's outer corner, slightly downwards."""
    corner = LANDMARKS[36]
    return _draw(
        [
            (corner[0] - 0.12 * UNIT, corner[1] + 0.03 * UNIT),
            (corner[0] - 0.45 * UNIT, corner[1] + 0.15 * UNIT),
        ]
    )


def _forehead_line() -> np.ndarray:
    brow_top = LANDMARKS[17:27, 1].min()
    return _draw(
        [
            (LANDMARKS[39, 0] - 0.2 * UNIT, brow_top - 0.4 * UNIT),
            (LANDMARKS[42, 0] + 0.2 * UNIT, brow_top - 0.38 * UNIT),
        ]
    )


def _refine(mask: np.ndarray, **settings: float) -> np.ndarray:
    return refine_wrinkle_mask(mask, EVERYWHERE, LANDMARKS, PostProcessing(**settings))


def _kept_share(line: np.ndarray, refined: np.ndarray) -> float:
    return float((refined & line).sum() / line.sum())


def test_line_shapes_measure_direction_and_elongation() -> None:
    horizontal = _draw([(100, 100), (200, 100)], thickness=1)
    vertical = _draw([(300, 100), (300, 200)], thickness=1)
    shapes = LineShapes.of(horizontal | vertical)
    by_x = np.argsort(shapes.centres[:, 0])
    assert np.degrees(shapes.direction[by_x[0]]) == pytest.approx(0, abs=1)
    assert abs(np.degrees(shapes.direction[by_x[1]])) == pytest.approx(90, abs=1)
    assert shapes.major[by_x[0]] == pytest.approx(100, rel=0.05)
    assert shapes.major[by_x[0]] / shapes.minor[by_x[0]] > 50


def test_glasses_rim_around_the_eye_is_removed_and_a_crows_foot_kept() -> None:
    rim, foot = _glasses_rim(), _crows_foot()
    refined = _refine(rim | foot, eye_zone=0.9, tangential_angle=45.0)
    assert _kept_share(rim, refined) == 0.0
    assert _kept_share(foot, refined) == 1.0
    # Without the step both stay: the rule, not the drawing, removes the rim.
    assert _kept_share(rim, _refine(rim | foot)) == 1.0


def test_glasses_bridge_is_removed_and_a_vertical_frown_line_kept() -> None:
    bridge_row = (LANDMARKS[27, 1] + LANDMARKS[28, 1]) / 2
    bridge = _draw([(LANDMARKS[39, 0] + 5, bridge_row), (LANDMARKS[42, 0] - 5, bridge_row + 2)])
    frown = _draw(
        [
            (LANDMARKS[27, 0] - 0.1 * UNIT, bridge_row - 0.3 * UNIT),
            (LANDMARKS[27, 0] - 0.1 * UNIT, bridge_row - 0.06 * UNIT),
        ]
    )
    # The frown line is centred on the bridge too (below the brows, between the inner eye corners).
    assert LANDMARKS[17:27, 1].max() < np.nonzero(frown)[0].mean() < LANDMARKS[29, 1]
    refined = _refine(bridge | frown, bridge_angle=30.0)
    assert _kept_share(bridge, refined) == 0.0
    assert _kept_share(frown, refined) == 1.0


def test_blobs_and_specks_are_removed_and_a_long_line_kept() -> None:
    line = _forehead_line()
    blob = np.zeros(SHAPE, dtype=np.uint8)
    cv2.circle(blob, (300, 80), 8, 1, -1)
    speck = np.zeros(SHAPE, dtype=bool)
    speck[60:62, 420:423] = True
    refined = _refine(line | blob.astype(bool) | speck, min_length=0.15, min_elongation=3.0)
    assert _kept_share(line, refined) == 1.0
    assert not (refined & blob.astype(bool)).any()
    assert not (refined & speck).any()


def test_eye_and_outline_margins_leave_lid_margins_and_the_face_edge_out() -> None:
    parts = render_face_parts(LANDMARKS, SHAPE)
    outline = face_outline_mask(LANDMARKS, SHAPE)
    region = analysed_region(
        outline, LANDMARKS, PostProcessing(eye_margin=0.1, outline_margin=0.1), parts, outline
    )
    lid = _draw([tuple(LANDMARKS[41] + (0, 4)), tuple(LANDMARKS[40] + (0, 4))], thickness=1)
    jaw_edge = _draw([tuple(LANDMARKS[6] + (2, -4)), tuple(LANDMARKS[7] + (0, -4))], thickness=1)
    assert not (region & lid).any()
    assert not (region & jaw_edge).any()
    assert (region & _forehead_line()).sum() == _forehead_line().sum()


def _segmentation(mask: np.ndarray) -> WrinkleSegmentation:
    """A segmentation whose square, mapped back onto the photo, is ``mask``."""
    crop = face_crop(LANDMARKS)
    in_square = crop.crop_image(mask.astype(np.uint8), interpolation=cv2.INTER_NEAREST) > 0
    valid = np.ones((crop.size, crop.size), dtype=bool)
    return WrinkleSegmentation(crop, in_square, valid, in_square.astype(np.float32), SHAPE)


def test_the_analysis_applies_the_models_post_processing() -> None:
    rim, foot = _glasses_rim(), _crows_foot()
    segmentation = _segmentation(rim | foot)
    plain = analysed_wrinkles(segmentation, LANDMARKS, SHAPE + (3,), {})
    assert _kept_share(rim, plain.mask) > 0.9
    settings = PostProcessing(eye_zone=0.9, tangential_angle=45.0).as_dict()
    refined = analysed_wrinkles(segmentation, LANDMARKS, SHAPE + (3,), {"post_processing": settings})
    assert _kept_share(rim, refined.mask) == 0.0
    assert _kept_share(foot, refined.mask) > 0.9
    assert not (refined.mask & ~refined.whole).any()


def test_a_line_is_kept_only_where_the_model_is_sure_of_it_somewhere() -> None:
    sure, unsure = _forehead_line(), np.roll(_forehead_line(), -40, axis=0)
    probability = np.where(sure | unsure, 0.6, 0.0)
    rows, cols = np.nonzero(sure)
    probability[rows[0], cols[0]] = 0.97  # one confident pixel keeps the whole line, not only itself
    settings = PostProcessing(min_peak=0.8)
    refined = refine_wrinkle_mask(sure | unsure, EVERYWHERE, LANDMARKS, settings, probability)
    assert _kept_share(sure, refined) == 1.0
    assert _kept_share(unsure, refined) == 0.0
    with pytest.raises(ValueError, match="probabilities"):
        refine_wrinkle_mask(sure, EVERYWHERE, LANDMARKS, settings)


def test_mouth_margin_and_lower_nose_cut_keep_the_upper_nose() -> None:
    parts = render_face_parts(LANDMARKS, SHAPE)
    nose = parts == FACE_PARTS.index("nose")
    settings = PostProcessing(mouth_margin=0.1, nose_kept=0.5)
    region = analysed_region(EVERYWHERE, LANDMARKS, settings, parts, face_outline_mask(LANDMARKS, SHAPE))
    lip_edge = _draw([tuple(LANDMARKS[49] + (0, -3)), tuple(LANDMARKS[53] + (0, -3))], thickness=1)
    nostril_row = LANDMARKS[33, 1] - 0.05 * UNIT
    nostrils = _draw([(LANDMARKS[31, 0], nostril_row), (LANDMARKS[35, 0], nostril_row)], thickness=1) & nose
    bunny_row = LANDMARKS[27, 1] + 0.3 * (LANDMARKS[33, 1] - LANDMARKS[27, 1])
    bunny = (
        _draw([(LANDMARKS[28, 0] - 12, bunny_row), (LANDMARKS[28, 0] + 12, bunny_row)], thickness=1) & nose
    )
    assert nostrils.any() and bunny.any()
    assert not (region & lip_edge).any()
    assert not (region & nostrils).any()
    assert (region & bunny).sum() == bunny.sum()
