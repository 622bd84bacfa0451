"""A check the figure tests share: sub-regions never exceed the whole, and disjoint parts add up."""

import cv2
import numpy as np

from ml.wrinkles.analysis import WrinkleLines, wrinkle_figures


def assert_sub_regions_add_up(lines: WrinkleLines, whole: np.ndarray, rng: np.random.Generator) -> None:
    """Twenty random parts of ``whole``: no figure of a part exceeds the whole's; a part and the rest of
    the whole add up in area and length; a line crossing their border counts in both."""
    overall = wrinkle_figures(lines, whole)
    for _ in range(20):
        part = whole & (rng.random(whole.shape) < rng.uniform(0.2, 0.9))
        part = cv2.dilate(part.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool) & whole
        inside, outside = wrinkle_figures(lines, part), wrinkle_figures(lines, whole & ~part)
        for key in ("area_px", "total_length_px", "count", "region_px"):
            assert inside[key] <= overall[key], key
        assert inside["area_px"] + outside["area_px"] == overall["area_px"]
        assert inside["total_length_px"] + outside["total_length_px"] == overall["total_length_px"]
        assert inside["count"] + outside["count"] >= overall["count"]
