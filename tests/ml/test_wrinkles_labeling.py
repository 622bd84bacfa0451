"""Texture map (Kim et al. 2023, Eq. 1) and the adaptive thresholds of the semi-automatic labeling."""

from __future__ import annotations

import math

import numpy as np
import pytest

from ml.wrinkles.labeling import (
    bradley_roth_threshold,
    grayscale,
    label_wrinkles,
    masked_texture_map,
    opencv_gaussian_threshold,
    texture_map,
    window_means,
)


def _gaussian_blur_direct(grey: np.ndarray, size: int, sigma: float) -> np.ndarray:
    """Separable Gaussian with reflect-101 borders, written out without OpenCV."""
    half = size // 2
    offsets = np.arange(-half, half + 1)
    kernel = np.exp(-(offsets**2) / (2 * sigma**2))
    kernel /= kernel.sum()
    padded = np.pad(grey, half, mode="reflect")  # numpy "reflect" is OpenCV's reflect-101
    rows = sum(kernel[i] * padded[:, i : i + grey.shape[1]] for i in range(size))
    return sum(kernel[i] * rows[i : i + grey.shape[0], :] for i in range(size))


def test_texture_map_matches_equation_1_on_a_constructed_image() -> None:
    rng = np.random.default_rng(3)
    image = np.full((40, 50, 3), 180, dtype=np.uint8)
    image[18:21, 5:45] = 90  # a dark horizontal crease
    image = np.clip(image.astype(int) + rng.integers(-10, 11, size=image.shape), 0, 255).astype(np.uint8)
    grey = 0.299 * image[..., 0] + 0.587 * image[..., 1] + 0.114 * image[..., 2]
    expected = (1.0 - grey / (1.0 + _gaussian_blur_direct(grey, 21, 5.0))) * 255.0
    np.testing.assert_allclose(texture_map(image, clip=False), expected, atol=1e-6)
    clipped = texture_map(image)
    np.testing.assert_allclose(clipped, np.clip(expected, 0, 255), atol=1e-6)
    assert clipped[19, 25] > 60 > clipped[5, 25]  # the crease is bright in T


def test_texture_map_is_float_and_has_no_uint8_wrap_around() -> None:
    black_on_white = np.full((30, 30), 255.0)
    black_on_white[15, 15] = 0.0
    texture = texture_map(black_on_white)
    assert texture.dtype == np.float64
    assert texture[15, 15] == pytest.approx(255.0)
    assert texture.min() >= 0.0


def test_grayscale_rejects_bad_shapes() -> None:
    with pytest.raises(ValueError, match="RGB"):
        grayscale(np.zeros((4, 4, 2)))


def _bradley_roth_direct(values: np.ndarray, window: int, percent: float) -> np.ndarray:
    height, width = values.shape
    half = window // 2
    result = np.zeros(values.shape, dtype=bool)
    for y in range(height):
        for x in range(width):
            block = values[max(0, y - half) : y + half + 1, max(0, x - half) : x + half + 1]
            mean = sum(float(v) for v in block.ravel()) / block.size
            result[y, x] = values[y, x] * 100 > mean * (100 + percent) and values[y, x] > 0
    return result


@pytest.mark.parametrize(("window", "percent"), [(3, 0.0), (7, 15.0), (15, 40.0)])
def test_bradley_roth_matches_a_direct_loop(window: int, percent: float) -> None:
    values = np.random.default_rng(window).uniform(0, 50, size=(23, 31))
    values[values < 10] = 0
    np.testing.assert_array_equal(
        bradley_roth_threshold(values, window, percent), _bradley_roth_direct(values, window, percent)
    )


def test_window_means_cuts_the_window_at_the_border() -> None:
    values = np.arange(12, dtype=float).reshape(3, 4)
    assert window_means(values, 3)[0, 0] == pytest.approx(np.mean([0, 1, 4, 5]))
    with pytest.raises(ValueError, match="odd"):
        window_means(values, 4)


def test_labels_are_the_crease_inside_the_rough_mask_for_both_methods() -> None:
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(170, 3, size=(60, 60, 3)), 0, 255).astype(np.uint8)
    image[29:31, 5:55] = 110
    image[10, 5:55] = 110  # a second crease outside the rough mask
    rough = np.zeros((60, 60), dtype=np.uint8)
    rough[22:38, :] = 255
    for method in ("bradley-roth", "opencv-gaussian"):
        labels = label_wrinkles(image, rough, method=method)
        assert labels[29:31, 10:50].mean() > 0.9, method
        assert not labels[rough == 0].any(), method
        assert labels[rough > 0].mean() < 0.4, method


def test_opencv_threshold_rule_and_masked_map() -> None:
    texture = np.zeros((20, 20))
    texture[10, :] = 50
    np.testing.assert_array_equal(
        masked_texture_map(texture, np.eye(20))[10], np.where(np.arange(20) == 10, 50, 0)
    )
    binary = opencv_gaussian_threshold(texture)
    assert binary[10].all() and not binary[:9].any()


def test_label_wrinkles_rejects_unknown_method_and_mismatched_mask() -> None:
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match="Unknown threshold method"):
        label_wrinkles(image, np.ones((10, 10)), method="otsu")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="shape"):
        label_wrinkles(image, np.ones((9, 10)))
    assert math.isfinite(float(texture_map(image).sum()))
