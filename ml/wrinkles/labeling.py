"""Semi-automatic wrinkle labeling (Kim et al., "Facial wrinkle segmentation using weighted deep
supervision and semi-automatic labeling", Artificial Intelligence in Medicine 145, 2023, Sec. 3.1).

An annotator paints a rough mask M over wrinkle regions; the exact wrinkle pixels inside M come from
an adaptive threshold of the texture map T (Eq. 1), which is bright where the skin is darker than its
surroundings (creases are shadows).
"""

from __future__ import annotations

from typing import Literal

import cv2
import numpy as np

GAUSSIAN_KERNEL_SIZE = 21
GAUSSIAN_SIGMA = 5.0
BRADLEY_ROTH_WINDOW = 15
BRADLEY_ROTH_PERCENT = 15.0
OPENCV_BLOCK_SIZE = 11
OPENCV_C = 1.0

ThresholdMethod = Literal["bradley-roth", "opencv-gaussian"]
THRESHOLD_METHODS: tuple[str, ...] = ("bradley-roth", "opencv-gaussian")


def grayscale(image: np.ndarray) -> np.ndarray:
    """Luminance in [0, 255] as float64 (ITU-R BT.601 weights, as ``cv2.COLOR_RGB2GRAY``).

    Accepts an RGB ``(H, W, 3)`` image or an already grey ``(H, W)`` one, of any numeric dtype in
    [0, 255]; the result is never rounded to integers.
    """
    array = np.asarray(image)
    if array.ndim == 2:
        return array.astype(np.float64)
    if array.ndim == 3 and array.shape[2] == 3:
        rgb = array.astype(np.float64)
        return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    raise ValueError(f"Expected an RGB (H, W, 3) or grey (H, W) image, got shape {array.shape}.")


def texture_map(
    image: np.ndarray,
    kernel_size: int = GAUSSIAN_KERNEL_SIZE,
    sigma: float = GAUSSIAN_SIGMA,
    clip: bool = True,
) -> np.ndarray:
    """Texture map T = (1 − I / (1 + I_G(σ))) · 255 (Kim et al. 2023, Eq. 1), in float64.

    ``I`` is the grey level of ``image`` in [0, 255] as floats (see :func:`grayscale`) and ``I_G(σ)``
    is ``I`` blurred by a ``kernel_size``² Gaussian of standard deviation ``sigma`` (OpenCV's
    ``GaussianBlur`` with its default reflect-101 border). Everything stays in floating point: the
    authors' code inverts a uint8 image with wrap-around, which this deliberately does not copy.

    T is 255 on black pixels, about 0 on flat skin and negative where a pixel is brighter than its
    neighbourhood. With ``clip`` (default) the result is clipped to [0, 255], so only "darker than the
    surroundings" survives, which is what the wrinkle threshold needs.
    """
    if kernel_size < 1 or kernel_size % 2 == 0:
        raise ValueError(f"kernel_size must be a positive odd number, got {kernel_size}.")
    if sigma <= 0:
        raise ValueError(f"sigma must be positive, got {sigma}.")
    grey = grayscale(image)
    blurred = cv2.GaussianBlur(grey, (kernel_size, kernel_size), sigma, borderType=cv2.BORDER_REFLECT_101)
    texture = (1.0 - grey / (1.0 + blurred)) * 255.0
    return np.clip(texture, 0.0, 255.0) if clip else texture


def _as_mask(mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    array = np.asarray(mask)
    if array.ndim == 3:
        array = array[..., 0]
    if array.shape != shape:
        raise ValueError(f"The rough mask has shape {array.shape} but the image is {shape}.")
    return array > 0


def masked_texture_map(texture: np.ndarray, rough_mask: np.ndarray) -> np.ndarray:
    """T' = T inside the annotator's rough mask M and 0 outside (Kim et al. 2023, Sec. 3.1)."""
    inside = _as_mask(rough_mask, texture.shape)
    return np.where(inside, texture, 0.0)


def window_means(values: np.ndarray, window: int) -> np.ndarray:
    """Mean of ``values`` over the ``window``² square centred on each pixel, via an integral image.

    The square is cut at the image border and the mean taken over the pixels that remain (Bradley &
    Roth 2007 do the same with their summed-area table).
    """
    if window < 1 or window % 2 == 0:
        raise ValueError(f"window must be a positive odd number, got {window}.")
    height, width = values.shape
    integral = np.zeros((height + 1, width + 1), dtype=np.float64)
    integral[1:, 1:] = np.cumsum(np.cumsum(values.astype(np.float64), axis=0), axis=1)
    half = window // 2
    rows = np.arange(height)
    cols = np.arange(width)
    top = np.clip(rows - half, 0, height)[:, None]
    bottom = np.clip(rows + half + 1, 0, height)[:, None]
    left = np.clip(cols - half, 0, width)[None, :]
    right = np.clip(cols + half + 1, 0, width)[None, :]
    sums = integral[bottom, right] - integral[top, right] - integral[bottom, left] + integral[top, left]
    counts = (bottom - top) * (right - left)
    return sums / counts


def bradley_roth_threshold(
    values: np.ndarray, window: int = BRADLEY_ROTH_WINDOW, percent: float = BRADLEY_ROTH_PERCENT
) -> np.ndarray:
    """Bradley–Roth adaptive threshold for BRIGHT structures (Bradley & Roth, J. Graphics Tools 2007).

    A pixel is foreground when ``value · 100 > mean_window · (100 + percent)`` and ``value > 0``, with
    ``mean_window`` from :func:`window_means`. The original rule marks pixels *darker* than the local
    mean by ``percent`` %; wrinkles are dark in the photo and therefore bright in the texture map, so
    the comparison is mirrored. ``value > 0`` keeps an all-zero background from becoming foreground.
    """
    if percent < 0:
        raise ValueError(f"percent must be non-negative, got {percent}.")
    array = np.asarray(values, dtype=np.float64)
    means = window_means(array, window)
    return (array * 100.0 > means * (100.0 + percent)) & (array > 0)


def opencv_gaussian_threshold(
    values: np.ndarray, block_size: int = OPENCV_BLOCK_SIZE, c: float = OPENCV_C
) -> np.ndarray:
    """OpenCV's Gaussian adaptive threshold as the authors' code uses it (block 11, C = 1).

    ``values`` are rounded and clipped to uint8 (OpenCV needs 8-bit input); a pixel is foreground
    when ``value > gaussian_weighted_mean(block_size) − c`` (``cv2.THRESH_BINARY``) and ``value > 0``;
    the latter keeps the zero background outside M out, as multiplying by M does in the paper.
    """
    if block_size < 3 or block_size % 2 == 0:
        raise ValueError(f"block_size must be an odd number ≥ 3, got {block_size}.")
    as_uint8 = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    binary = cv2.adaptiveThreshold(
        as_uint8, 255, cv2.ADAPTIVE_THRESH_GAUSSIAN_C, cv2.THRESH_BINARY, block_size, c
    )
    return (binary > 0) & (as_uint8 > 0)


def label_wrinkles(
    image: np.ndarray,
    rough_mask: np.ndarray,
    method: ThresholdMethod = "bradley-roth",
    window: int = BRADLEY_ROTH_WINDOW,
    percent: float = BRADLEY_ROTH_PERCENT,
    block_size: int = OPENCV_BLOCK_SIZE,
    c: float = OPENCV_C,
) -> np.ndarray:
    """Ground-truth wrinkle mask (bool, ``(H, W)``) from a photo and a rough annotator mask.

    T' = T·M (:func:`texture_map`, :func:`masked_texture_map`), then adaptive thresholding by
    ``method`` ("bradley-roth": ``window``/``percent``; "opencv-gaussian": ``block_size``/``c``);
    the result is restricted to M.
    """
    texture = texture_map(image)
    inside = _as_mask(rough_mask, texture.shape)
    masked = np.where(inside, texture, 0.0)
    if method == "bradley-roth":
        labels = bradley_roth_threshold(masked, window=window, percent=percent)
    elif method == "opencv-gaussian":
        labels = opencv_gaussian_threshold(masked, block_size=block_size, c=c)
    else:
        raise ValueError(
            f"Unknown threshold method '{method}'; choose one of {', '.join(THRESHOLD_METHODS)}."
        )
    return labels & inside
