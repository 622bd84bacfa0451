"""Filter baselines for wrinkle segmentation: Hessian (Frangi) and a Gabor filter bank.

Kim et al. 2023 compare against Hessian- and Gabor-based detectors (Table 3). Both filters here give
a per-pixel "dark line" response, normalised per image by its 99.5th percentile inside the analysed
region and clipped to [0, 1]; a wrinkle is a pixel whose normalised response exceeds ``threshold``.
The threshold is a parameter so that evaluation can fit it on training data
(:func:`fit_threshold`) and never on the test images.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import cv2
import numpy as np
from skimage.filters import frangi

from ml.wrinkles.labeling import grayscale
from ml.wrinkles.metrics import confusion

FilterName = Literal["frangi", "gabor"]
FILTERS: tuple[str, ...] = ("frangi", "gabor")
FRANGI_SIGMAS: tuple[float, ...] = (1.0, 1.5, 2.0, 3.0)
GABOR_WAVELENGTHS: tuple[float, ...] = (6.0, 10.0)
GABOR_ORIENTATIONS = 8
NORMALISATION_PERCENTILE = 99.5
DEFAULT_THRESHOLD = 0.5


def frangi_response(image: np.ndarray, sigmas: Sequence[float] = FRANGI_SIGMAS) -> np.ndarray:
    """Frangi vesselness of dark ridges (``skimage.filters.frangi``, ``black_ridges=True``)."""
    grey = grayscale(image) / 255.0
    return frangi(grey, sigmas=list(sigmas), black_ridges=True)


def gabor_response(
    image: np.ndarray,
    wavelengths: Sequence[float] = GABOR_WAVELENGTHS,
    orientations: int = GABOR_ORIENTATIONS,
) -> np.ndarray:
    """Maximum over a bank of zero-mean even Gabor filters of the dark-line response.

    Each kernel (``cv2.getGaborKernel``, σ = 0.5·λ, aspect 0.5, phase 0) is made zero-mean so flat skin
    gives 0; the response to a dark line is negative, so its negation is taken, and negative values
    (bright lines) are dropped.
    """
    grey = grayscale(image).astype(np.float32) / 255.0
    best = np.zeros_like(grey)
    for wavelength in wavelengths:
        sigma = 0.5 * wavelength
        size = int(2 * round(3 * sigma) + 1)
        for index in range(orientations):
            theta = np.pi * index / orientations
            kernel = cv2.getGaborKernel((size, size), sigma, theta, wavelength, 0.5, 0.0, ktype=cv2.CV_32F)
            kernel -= kernel.mean()
            kernel /= np.abs(kernel).sum()
            response = -cv2.filter2D(grey, cv2.CV_32F, kernel, borderType=cv2.BORDER_REFLECT_101)
            np.maximum(best, response, out=best)
    return best.astype(np.float64)


def normalised_response(
    image: np.ndarray, method: FilterName, region: np.ndarray | None = None
) -> np.ndarray:
    """Filter response scaled to [0, 1] by its 99.5th percentile inside ``region`` (0 outside)."""
    if method == "frangi":
        response = frangi_response(image)
    elif method == "gabor":
        response = gabor_response(image)
    else:
        raise ValueError(f"Unknown filter '{method}'; choose one of {', '.join(FILTERS)}.")
    inside = np.ones(response.shape, dtype=bool) if region is None else np.asarray(region).astype(bool)
    if not inside.any():
        return np.zeros_like(response)
    scale = np.percentile(response[inside], NORMALISATION_PERCENTILE)
    normalised = np.clip(response / scale, 0.0, 1.0) if scale > 0 else np.zeros_like(response)
    return np.where(inside, normalised, 0.0)


def segment_with_filter(
    image: np.ndarray,
    method: FilterName,
    threshold: float = DEFAULT_THRESHOLD,
    region: np.ndarray | None = None,
) -> np.ndarray:
    """Binary wrinkle mask: normalised filter response above ``threshold`` (inside ``region``)."""
    return normalised_response(image, method, region) > threshold


def fit_threshold(
    responses: Sequence[np.ndarray],
    truths: Sequence[np.ndarray],
    regions: Sequence[np.ndarray | None] | None = None,
    candidates: Sequence[float] = (0.01, 0.02, 0.03, 0.04, *np.round(np.arange(0.05, 1.0, 0.05), 2)),
) -> float:
    """The candidate threshold with the best pooled JSI on the given (training) images.

    The grid reaches down to 0.01 because faint creases on a photo with hair and brows (which set the
    99.5th-percentile normalisation) can have their best threshold below 0.05."""
    if not responses:
        raise ValueError("No images to fit the threshold on.")
    regions = regions if regions is not None else [None] * len(responses)
    best_threshold, best_jsi = float(candidates[0]), -1.0
    for threshold in candidates:
        pooled = None
        for response, truth, region in zip(responses, truths, regions, strict=True):
            counts = confusion(response > threshold, truth, region)
            pooled = counts if pooled is None else pooled + counts
        if pooled is not None and pooled.jsi > best_jsi:
            best_threshold, best_jsi = float(threshold), pooled.jsi
    return best_threshold
