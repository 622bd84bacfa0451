"""Fixtures for the ml library tests: synthetic 68-point faces with a known head pose."""

from collections.abc import Callable

import numpy as np
import pytest

from ml.core.pose import MODEL_LANDMARK_INDICES, project_model


def synthetic_landmarks(
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    image_shape: tuple[int, int] = (600, 600),
    distance: float = 35.0,
) -> np.ndarray:
    """(68, 2) iBUG landmarks whose 14 pose-model points are an exact projection of the generic face.

    The other points are placed between them (eye lids, jaw ellipse, nose, lips) so that eye centres
    and the face hull are plausible; only the 14 model points carry the pose.
    """
    model_points = project_model(yaw, pitch, roll, image_shape, distance=distance)
    points = np.full((68, 2), np.nan)
    for index, point in zip(MODEL_LANDMARK_INDICES, model_points, strict=True):
        points[index] = point
    eye_height = 0.12 * np.linalg.norm(points[39] - points[36])
    up = np.array([-(points[45] - points[36])[1], (points[45] - points[36])[0]])
    up = -up / np.linalg.norm(up)  # perpendicular pointing to the top of the head
    for outer, inner, upper, lower in ((36, 39, (37, 38), (41, 40)), (42, 45, (43, 44), (47, 46))):
        for fraction, top, bottom in zip((1 / 3, 2 / 3), upper, lower, strict=True):
            along = points[outer] + fraction * (points[inner] - points[outer])
            points[top] = along + eye_height * up
            points[bottom] = along - eye_height * up
    for index, fraction in zip(range(18, 21), (0.25, 0.5, 0.75), strict=True):
        points[index] = points[17] + fraction * (points[21] - points[17])
    for index, fraction in zip(range(23, 26), (0.25, 0.5, 0.75), strict=True):
        points[index] = points[22] + fraction * (points[26] - points[22])
    nose_top = (points[39] + points[42]) / 2
    nose_bottom = (points[31] + points[35]) / 2
    for index, fraction in zip(range(27, 31), (0.0, 0.33, 0.66, 1.0), strict=True):
        points[index] = nose_top + fraction * (nose_bottom - nose_top)
    for index, fraction in zip(range(32, 35), (0.25, 0.5, 0.75), strict=True):
        points[index] = points[31] + fraction * (points[35] - points[31])
    mouth_mid = (points[48] + points[54]) / 2
    lip_up = 0.25 * (points[57] - mouth_mid)
    for index in range(49, 68):
        if index in (54, 57):
            continue
        fraction = ((index - 48) % 12) / 6 if index < 60 else ((index - 60) % 8) / 4
        across = points[48] + min(fraction, 2 - fraction) * (points[54] - points[48])
        points[index] = across - lip_up if index in (50, 51, 52, 61, 62, 63) else across + 0.5 * lip_up
    # Jaw: an arc from beside the outer brows down to the chin and back.
    centre = (points[17] + points[26]) / 2
    half_width = 0.55 * np.linalg.norm(points[26] - points[17])
    depth = points[8] - centre
    right = (points[26] - points[17]) / np.linalg.norm(points[26] - points[17])
    for index in range(17):
        if index == 8:
            continue
        angle = np.pi * index / 16
        points[index] = centre - np.cos(angle) * half_width * right + np.sin(angle) * depth
    assert np.all(np.isfinite(points))
    return points


@pytest.fixture
def make_landmarks() -> Callable[..., np.ndarray]:
    return synthetic_landmarks
