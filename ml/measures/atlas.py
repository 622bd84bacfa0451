"""The atlas face the cohort's zone chart is drawn on: each zone's outline and the face's lines on the
mean iBUG-68 shape (``ml.zones.render.mean_shape``, a 400×480 frame)."""

from __future__ import annotations

from functools import cache

from ml.zones.atlas import ZONES
from ml.zones.encoding import zone_outlines
from ml.zones.landmark_model import render_zone_masks
from ml.zones.render import LANDMARK_LINES, mean_shape

ATLAS_WIDTH, ATLAS_HEIGHT = 400, 480


@cache
def atlas_zone_outlines() -> dict[str, list[list[int]]]:
    """Each zone's outlines (flat ``[x0, y0, x1, y1, …]`` lists) on the mean face, by abbreviation."""
    masks = render_zone_masks(mean_shape(), (ATLAS_HEIGHT, ATLAS_WIDTH))
    return {zone.abbreviation: zone_outlines(masks[index]) for index, zone in enumerate(ZONES)}


@cache
def atlas_face_lines() -> list[tuple[list[tuple[float, float]], bool]]:
    """The mean face's lines (jaw, brows, nose, eyes, lips) as point lists, each with whether it is closed."""
    points = mean_shape()
    return [
        ([(float(points[i, 0]), float(points[i, 1])) for i in indices], closed)
        for indices, closed in LANDMARK_LINES
    ]
