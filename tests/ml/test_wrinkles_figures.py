"""One definition per wrinkle figure, in the photo's pixel frame: they add up and sub-regions never
exceed the whole."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from ml.wrinkles.analysis import WrinkleLines, skin_mask, wrinkle_figures
from ml.zones.landmark_model import FACE_PARTS
from tests.ml.wrinkle_figure_checks import assert_sub_regions_add_up


def _three_lines() -> np.ndarray:
    mask = np.zeros((120, 200), dtype=bool)
    mask[20:23, 10:190] = True  # a 3-px-wide line crossing the whole photo
    mask[60:62, 30:90] = True
    cv2.line(mask.view(np.uint8), (120, 50), (180, 100), 1, 2)
    return mask


def test_mean_width_is_area_over_length_and_area_fraction_uses_the_region() -> None:
    lines = WrinkleLines.of(_three_lines())
    whole = np.ones((120, 200), dtype=bool)
    figures = wrinkle_figures(lines, whole)
    assert figures["count"] == 3
    assert figures["area_px"] == int(_three_lines().sum())
    assert figures["mean_width_px"] == figures["area_px"] / figures["total_length_px"]
    assert figures["area_fraction"] == figures["area_px"] / figures["region_px"]
    horizontal = wrinkle_figures(lines, np.pad(np.ones((5, 200), bool), ((19, 96), (0, 0))))
    assert horizontal["count"] == 1
    assert 175 <= horizontal["total_length_px"] <= 180  # the skeleton of a 180-px line
    assert horizontal["mean_width_px"] == pytest.approx(3.0, abs=0.1)


def test_sub_regions_never_exceed_the_whole_and_disjoint_parts_add_up() -> None:
    rng = np.random.default_rng(0)
    lines = WrinkleLines.of(_three_lines())
    whole = np.zeros((120, 200), dtype=bool)
    whole[10:110, 5:195] = True
    assert_sub_regions_add_up(lines, whole, rng)


def test_a_line_cut_by_a_region_border_counts_once_in_each_part_and_once_overall() -> None:
    lines = WrinkleLines.of(_three_lines())
    left = np.zeros((120, 200), dtype=bool)
    left[:, :100] = True
    assert wrinkle_figures(lines, np.ones_like(left))["count"] == 3
    assert wrinkle_figures(lines, left)["count"] == 2  # the long line and the short one
    assert wrinkle_figures(lines, ~left)["count"] == 2  # the long line and the diagonal


def test_no_wrinkles_give_zero_area_and_no_width() -> None:
    figures = wrinkle_figures(WrinkleLines.of(np.zeros((10, 10), bool)), np.ones((10, 10), bool))
    assert figures == {
        "region_px": 100,
        "area_px": 0,
        "area_fraction": 0.0,
        "total_length_px": 0,
        "mean_width_px": None,
        "count": 0,
    }


def test_skin_mask_removes_hair_brows_eyes_and_lips_but_keeps_the_nose() -> None:
    parts = np.zeros((4, 6), dtype=np.uint8)
    for column, name in enumerate(FACE_PARTS):
        parts[:, column] = FACE_PARTS.index(name)
    kept = skin_mask(parts)[0]
    assert [name for name, keep in zip(FACE_PARTS, kept, strict=True) if keep] == ["skin", "nose"]
