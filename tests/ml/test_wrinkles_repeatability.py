"""Noise floor of the wrinkle figures: re-photographs and the changes between two results."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.wrinkles.repeatability import figure_changes, measure_noise_floor, rephotograph


def _result(fraction: float, count: int, length: float, width: float | None) -> dict:
    figures = {"area_fraction": fraction, "count": count, "total_length_px": length, "mean_width_px": width}
    return {
        "overall": figures,
        "regions": {"forehead": figures},
        "zones": [{"abbreviation": "FFA", "area_fraction": fraction}],
    }


def test_a_rephotograph_is_a_small_change_of_the_same_photo() -> None:
    rng = np.random.default_rng(0)
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[80:120, 60:140] = 200
    copy = rephotograph(image, rng)
    assert copy.shape == image.shape and copy.dtype == np.uint8
    assert not np.array_equal(copy, image)
    assert abs(float(copy.mean()) - float(image.mean())) < 0.2 * float(image.mean())  # not another photo


def test_changes_are_in_the_units_the_comparison_page_shows() -> None:
    changes = figure_changes(_result(0.010, 5, 200.0, 2.0), _result(0.013, 3, 150.0, None))
    assert changes["overall/area_percent_points"] == pytest.approx(0.3)
    assert changes["overall/count"] == 2
    assert changes["overall/length_percent"] == pytest.approx(25.0)
    assert "overall/mean_width_px" not in changes  # no width without length
    assert changes["zone:FFA/area_percent_points"] == pytest.approx(0.3)


def test_the_floor_is_the_95th_percentile_and_skips_photos_without_a_face(tmp_path: Path) -> None:
    photos = []
    for index in range(3):
        path = tmp_path / f"{index}.png"
        cv2.imwrite(str(path), np.full((32, 32, 3), 100 + index, np.uint8))
        photos.append(path)
    fractions = iter([0.01, 0.02, 0.01, 0.03])

    def analyse(image: np.ndarray) -> dict:
        value = next(fractions, None)
        if value is None:
            raise ValueError("No face was found in the photo.")
        return _result(value, 1, 10.0, 1.0)

    report = measure_noise_floor(photos, analyse, log=lambda line: None)
    assert report["photos"] == 2 and report["skipped"][0]["reason"].startswith("No face")
    assert report["floor"]["overall"]["area_percent_points"] == pytest.approx(np.percentile([1.0, 2.0], 95))
