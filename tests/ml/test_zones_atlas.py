"""The 33-zone atlas and the landmark zone model, on synthetic faces built from the mean landmark shape."""

import numpy as np
import pytest

from ml.zones.atlas import IBUG_MIRROR, ZONE_ABBREVIATIONS, ZONE_INDEX, ZONES, zone
from ml.zones.geometry import DESIGNED_OVERLAPS, FaceGeometry
from ml.zones.landmark_model import FACE_PARTS, rasterize_shape, render_face_parts, render_zone_masks
from ml.zones.render import mean_shape

EXPECTED = [
    "LTA",
    "LPA",
    "LJA",
    "LOC",
    "LNF",
    "LSA",
    "LZA",
    "LAA",
    "LLI",
    "LMI",
    "LUL",
    "LBA",
    "FFA",
    "CGA",
    "NBA",
    "FPA",
    "FUL",
    "FLW",
    "LMS",
    "FCS",
    "ROC",
    "RNF",
    "RSA",
    "RZA",
    "RAA",
    "RLI",
    "RMI",
    "RUL",
    "RBA",
    "RTA",
    "RPA",
    "RJA",
    "UPA",
]
SHAPE = (480, 400)


@pytest.fixture(scope="module")
def mean_masks() -> np.ndarray:
    return render_zone_masks(mean_shape(), SHAPE)


@pytest.fixture(scope="module")
def mean_parts() -> np.ndarray:
    return render_face_parts(mean_shape(), SHAPE)


def test_atlas_has_the_33_abbreviations_in_order() -> None:
    assert list(ZONE_ABBREVIATIONS) == EXPECTED
    assert [z.number for z in ZONES] == list(range(1, 34))
    assert len({z.name for z in ZONES}) == 33
    assert zone("LNF").name == "left nasolabial fold" and zone("RNF").side == "right"
    assert zone("UPA").side == "midline"
    with pytest.raises(KeyError, match="Valid zones"):
        zone("XYZ")


def test_mirror_map_is_an_involution_pairing_sides() -> None:
    mirror = np.array(IBUG_MIRROR)
    assert len(mirror) == 68
    assert np.array_equal(mirror[mirror], np.arange(68))
    assert mirror[0] == 16 and mirror[36] == 45 and mirror[48] == 54 and mirror[30] == 30


def test_left_zones_are_on_the_image_right(mean_masks: np.ndarray) -> None:
    nose_x = mean_shape()[27:31, 0].mean()
    for code in ("LBA", "LUL", "LNF", "LZA", "LJA", "LTA"):
        xs = np.nonzero(mean_masks[ZONE_INDEX[code]])[1]
        assert xs.size and xs.mean() > nose_x + 20, code
        mirrored_xs = np.nonzero(mean_masks[ZONE_INDEX["R" + code[1:]]])[1]
        assert mirrored_xs.mean() < nose_x - 20, code


def test_every_zone_is_non_empty_and_symmetric(mean_masks: np.ndarray) -> None:
    areas = mean_masks.sum(axis=(1, 2))
    assert (areas > 150).all(), dict(zip(ZONE_ABBREVIATIONS, areas, strict=True))
    for code in ZONE_ABBREVIATIONS:
        if code[0] == "L" and code != "LMS":
            left, right = areas[ZONE_INDEX[code]], areas[ZONE_INDEX["R" + code[1:]]]
            assert abs(left - right) <= 0.06 * max(left, right), code


def test_zones_respect_face_parts(mean_masks: np.ndarray, mean_parts: np.ndarray) -> None:
    eyes = mean_parts == FACE_PARTS.index("eyes")
    nose = mean_parts == FACE_PARTS.index("nose")
    mouth = mean_parts == FACE_PARTS.index("mouth")
    face = rasterize_shape(FaceGeometry(mean_shape()).face_outline(), *SHAPE)
    for index, code in enumerate(ZONE_ABBREVIATIONS):
        mask = mean_masks[index]
        assert not (mask & eyes).any(), code
        assert not (mask & ~face).any(), code
        if code == "NBA":
            assert (mask & nose).sum() >= 0.97 * mask.sum()
        elif code in ("FUL", "FLW"):
            assert (mask & mouth).sum() >= 0.97 * mask.sum()
        else:
            assert not (mask & (nose | mouth)).any(), code


def test_only_designed_pairs_overlap(mean_masks: np.ndarray) -> None:
    flat = mean_masks.reshape(33, -1).astype(np.int32)
    shared = flat @ flat.T
    for a in range(33):
        for b in range(a + 1, 33):
            pair = frozenset((ZONE_ABBREVIATIONS[a], ZONE_ABBREVIATIONS[b]))
            if pair not in DESIGNED_OVERLAPS:
                assert shared[a, b] == 0, pair
    for pair in (("LNF", "LAA"), ("LNF", "LOC"), ("RNF", "UPA"), ("FFA", "CGA"), ("FPA", "LMS")):
        assert shared[ZONE_INDEX[pair[0]], ZONE_INDEX[pair[1]]] > 0, pair


def test_adjacent_zones_touch_without_overlap(mean_masks: np.ndarray) -> None:
    import cv2

    medial, lateral = mean_masks[ZONE_INDEX["LMI"]], mean_masks[ZONE_INDEX["LLI"]]
    assert not (medial & lateral).any()
    grown = cv2.dilate(medial.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    assert (grown & lateral).sum() > 10


def test_zones_follow_rotation_and_scale() -> None:
    base = mean_shape()
    angle = np.deg2rad(15)
    rotation = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([200.0, 260.0])
    moved = (base - centre) @ rotation.T * 1.5 + centre * 1.5
    original = render_zone_masks(base, SHAPE).sum(axis=(1, 2))
    transformed = render_zone_masks(moved, (720, 600)).sum(axis=(1, 2))
    ratio = transformed / original
    assert np.allclose(ratio, 2.25, rtol=0.08), dict(zip(ZONE_ABBREVIATIONS, ratio.round(2), strict=True))


def test_bad_landmarks_are_rejected() -> None:
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        render_zone_masks(np.zeros((5, 2)), SHAPE)
    broken = mean_shape().copy()
    broken[3] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        render_zone_masks(broken, SHAPE)
    with pytest.raises(ValueError, match="height"):
        render_zone_masks(mean_shape(), (0, 10))


def test_landmark_parts_leave_hair_empty(mean_parts: np.ndarray) -> None:
    assert not (mean_parts == FACE_PARTS.index("hair")).any()
    for name in ("skin", "eyes", "nose", "mouth"):
        assert (mean_parts == FACE_PARTS.index(name)).sum() > 100, name
