"""Fixtures for the ml library tests: synthetic 68-point faces with a known head pose; a real studio photo
for the normality analysis."""

from collections.abc import Callable

import numpy as np
import pytest

from ml.core.pose import project_model


def synthetic_landmarks(
    yaw: float = 0.0,
    pitch: float = 0.0,
    roll: float = 0.0,
    image_shape: tuple[int, int] = (600, 600),
    eye_distance_px: float | None = None,
) -> np.ndarray:
    """(68, 2) iBUG landmarks: the generic 3-D face of ``ml.core.pose`` posed and projected.

    ``eye_distance_px`` is the frontal outer-eye-corner distance (default 0.3 of the image width).
    """
    points = project_model(yaw, pitch, roll, image_shape, eye_distance_px=eye_distance_px)
    assert np.all(np.isfinite(points))
    return points


@pytest.fixture
def make_landmarks() -> Callable[..., np.ndarray]:
    return synthetic_landmarks


@pytest.fixture(scope="session")
def london_photo() -> np.ndarray:
    """A London studio photo (the whole face inside, with a margin), where the shipped normality models
    (autoencoder and rating regressor) exist."""
    from ml.config import data_dir_or_none
    from ml.normality import models

    data = data_dir_or_none()
    if data is None or not (data / "london" / "neutral").is_dir():
        pytest.skip("the face data directory (FACET_DATA_DIR) with london/ is absent")
    if not models.autoencoder_weights_path().is_file() or not models.regressor_path().is_file():
        pytest.skip("the shipped autoencoder or rating regressor is not installed")
    from ml.core.imageio import load_image

    return load_image(sorted((data / "london" / "neutral").glob("*.jpg"))[0])
