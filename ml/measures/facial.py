"""Landmark-derived facial measures, normalised by the inter-pupillary distance (IPD).

Every measure is computed in the *face frame* of one photo's iBUG-68 landmarks: the origin is the
midpoint between the two eye centres (the pupil proxy), the x axis runs from the subject's right eye
(image left, points 36–41) to the subject's left eye, the y axis points towards the chin, and one unit
is the distance between the eye centres. In-plane rotation, position and photo scale therefore drop
out; a study that sets its subjects' IPD in millimetres (a study setting) gets millimetres by
multiplying lengths by that IPD and areas by its square. Definitions: docs/measures.md.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ml.core.alignment import apply_transform, eye_centers, similarity_transform

IPD = "IPD"
IPD_SQUARED = "IPD²"
RATIO = "ratio"


@dataclass(frozen=True)
class MeasureDefinition:
    """One measure: its key, a label, its unit (IPD, IPD² or a plain ratio), a group and a definition."""

    key: str
    label: str
    unit: str
    group: str
    definition: str

    def in_mm(self, value: float, ipd_mm: float) -> float:
        """The value in mm (lengths) or mm² (areas) for a subject whose IPD is ``ipd_mm``."""
        if self.unit == IPD:
            return value * ipd_mm
        if self.unit == IPD_SQUARED:
            return value * ipd_mm * ipd_mm
        return value

    def unit_label(self, ipd_mm: float | None) -> str:
        """The unit values are shown in: mm or mm² for lengths and areas when the study sets an IPD."""
        if ipd_mm is None:
            return self.unit
        return {IPD: "mm", IPD_SQUARED: "mm²"}.get(self.unit, self.unit)


# iBUG-68 indices (0-based).
OUTER_LIPS = tuple(range(48, 60))
INNER_LIPS = tuple(range(60, 68))
UPPER_LIP = (48, 49, 50, 51, 52, 53, 54, 64, 63, 62, 61, 60)
LOWER_LIP = (54, 55, 56, 57, 58, 59, 48, 60, 67, 66, 65, 64)
RIGHT_BROW, LEFT_BROW = tuple(range(17, 22)), tuple(range(22, 27))
# Each landmark's mirror partner across the facial midline (a midline point is its own partner).
MIRROR = np.array(
    [16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0]
    + [26, 25, 24, 23, 22, 21, 20, 19, 18, 17]
    + [27, 28, 29, 30, 35, 34, 33, 32, 31]
    + [45, 44, 43, 42, 47, 46, 39, 38, 37, 36, 41, 40]
    + [54, 53, 52, 51, 50, 49, 48, 59, 58, 57, 56, 55]
    + [64, 63, 62, 61, 60, 67, 66, 65]
)
SYMMETRY_REGIONS: dict[str, tuple[int, ...]] = {
    "overall": tuple(range(68)),
    "brows": RIGHT_BROW + LEFT_BROW,
    "eyes": tuple(range(36, 48)),
    "mouth": OUTER_LIPS + INNER_LIPS,
    "jawline": tuple(range(17)),
}

_LANDMARK_DEFINITIONS = [
    (
        "upper_vermilion_height",
        "Upper vermilion height",
        IPD,
        "lips",
        "Vertical distance from the upper lip's outer midpoint (51) to its inner midpoint (62).",
    ),
    (
        "lower_vermilion_height",
        "Lower vermilion height",
        IPD,
        "lips",
        "Vertical distance from the lower lip's inner midpoint (66) to its outer midpoint (57).",
    ),
    (
        "upper_vermilion_area",
        "Upper vermilion area",
        IPD_SQUARED,
        "lips",
        "Area of the upper lip: outer contour 48–54 closed by the inner contour 64–60.",
    ),
    (
        "lower_vermilion_area",
        "Lower vermilion area",
        IPD_SQUARED,
        "lips",
        "Area of the lower lip: outer contour 54–59, 48 closed by the inner contour 60, 67–64.",
    ),
    (
        "vermilion_area",
        "Vermilion area",
        IPD_SQUARED,
        "lips",
        "Area inside the outer lip contour (48–59) minus the area inside the inner contour (60–67).",
    ),
    ("mouth_width", "Mouth width", IPD, "lips", "Distance between the mouth corners (48 and 54)."),
    (
        "commissure_drop_right",
        "Right commissure below stomion",
        IPD,
        "commissures",
        "Height of the stomion (mean of 62 and 66) above the subject's right mouth corner (48); "
        "positive = the corner sits lower than the lip midline (down-turned).",
    ),
    (
        "commissure_drop_left",
        "Left commissure below stomion",
        IPD,
        "commissures",
        "As the right one, for the subject's left mouth corner (54).",
    ),
    (
        "commissure_height_difference",
        "Commissure height difference",
        IPD,
        "commissures",
        "Right corner (48) height minus left corner (54) height, perpendicular to the pupil line; 0 = level.",
    ),
    (
        "brow_height_right",
        "Right brow height",
        IPD,
        "brows",
        "Mean height of the subject's right brow (17–21) above the pupil line.",
    ),
    (
        "brow_height_left",
        "Left brow height",
        IPD,
        "brows",
        "Mean height of the subject's left brow (22–26) above the pupil line.",
    ),
    (
        "palpebral_fissure_width_right",
        "Right palpebral fissure width",
        IPD,
        "eyes",
        "Distance between the right eye's corners (36 and 39).",
    ),
    (
        "palpebral_fissure_width_left",
        "Left palpebral fissure width",
        IPD,
        "eyes",
        "Distance between the left eye's corners (42 and 45).",
    ),
    (
        "palpebral_fissure_height_right",
        "Right palpebral fissure height",
        IPD,
        "eyes",
        "Mean lid opening of the right eye: distances 37–41 and 38–40.",
    ),
    (
        "palpebral_fissure_height_left",
        "Left palpebral fissure height",
        IPD,
        "eyes",
        "Mean lid opening of the left eye: distances 43–47 and 44–46.",
    ),
]
_SYMMETRY_DEFINITIONS = [
    (
        f"asymmetry_{region}",
        f"Asymmetry index ({region})",
        IPD,
        "symmetry",
        f"Mean distance between the {region} landmarks and their mirror partners after the mirrored face is "
        "fitted onto the face (similarity transform on all 68 points), halved; 0 = perfectly symmetric.",
    )
    for region in SYMMETRY_REGIONS
]
LANDMARK_MEASURES: dict[str, MeasureDefinition] = {
    key: MeasureDefinition(key, label, unit, group, definition)
    for key, label, unit, group, definition in _LANDMARK_DEFINITIONS + _SYMMETRY_DEFINITIONS
}


def face_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """The landmarks in the face frame (module docstring) and the IPD in pixels."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"Expected 68 finite (x, y) landmarks, got shape {points.shape}.")
    right_eye, left_eye = eye_centers(points)
    axis = left_eye - right_eye
    ipd = float(np.hypot(*axis))
    if ipd <= 0:
        raise ValueError("The eye centres coincide; the landmarks are degenerate.")
    x_axis = axis / ipd
    y_axis = np.array([-x_axis[1], x_axis[0]])
    centred = points - (right_eye + left_eye) / 2
    return np.stack([centred @ x_axis, centred @ y_axis], axis=1) / ipd, ipd


def polygon_area(points: np.ndarray) -> float:
    """Area of a simple polygon (shoelace formula), always positive."""
    x, y = points[:, 0], points[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2)


def asymmetry(frame: np.ndarray) -> dict[str, float]:
    """Per region: half the mean distance between each landmark and its partner of the mirrored face,
    after fitting the mirrored face onto the face, in IPD."""
    mirrored = frame[MIRROR] * np.array([-1.0, 1.0])
    fitted = apply_transform(similarity_transform(mirrored, frame), mirrored)
    distances = np.linalg.norm(fitted - frame, axis=1) / 2
    return {
        f"asymmetry_{region}": float(distances[list(ids)].mean()) for region, ids in SYMMETRY_REGIONS.items()
    }


def facial_measures(landmarks: np.ndarray) -> dict[str, float]:
    """Every landmark measure of :data:`LANDMARK_MEASURES` for one face, in IPD units (areas in IPD²)."""
    p, _ = face_frame(landmarks)

    def distance(a: int, b: int) -> float:
        return float(np.hypot(*(p[a] - p[b])))

    stomion_y = (p[62, 1] + p[66, 1]) / 2
    measures = {
        "upper_vermilion_height": float(p[62, 1] - p[51, 1]),
        "lower_vermilion_height": float(p[57, 1] - p[66, 1]),
        "upper_vermilion_area": polygon_area(p[list(UPPER_LIP)]),
        "lower_vermilion_area": polygon_area(p[list(LOWER_LIP)]),
        "vermilion_area": polygon_area(p[list(OUTER_LIPS)]) - polygon_area(p[list(INNER_LIPS)]),
        "mouth_width": distance(48, 54),
        "commissure_drop_right": float(p[48, 1] - stomion_y),
        "commissure_drop_left": float(p[54, 1] - stomion_y),
        "commissure_height_difference": float(p[54, 1] - p[48, 1]),
        "brow_height_right": float(-p[list(RIGHT_BROW), 1].mean()),
        "brow_height_left": float(-p[list(LEFT_BROW), 1].mean()),
        "palpebral_fissure_width_right": distance(36, 39),
        "palpebral_fissure_width_left": distance(42, 45),
        "palpebral_fissure_height_right": (distance(37, 41) + distance(38, 40)) / 2,
        "palpebral_fissure_height_left": (distance(43, 47) + distance(44, 46)) / 2,
    }
    measures.update(asymmetry(p))
    return measures
