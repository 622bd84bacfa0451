"""Hayajneh et al.'s heatmap score: PSE in YCbCr, erosion, landmark regions, S = −log(‖PSE‖_F / N).

The pipeline (Hayajneh et al., "Unsupervised anomaly appraisal of cleft faces using a
StyleGAN2-based model adaptation technique"):

1. raw and normalized RGB images → YCbCr with ITU-R BT.601 (their Eq. 3);
2. pixelwise squared error per channel (the PSE heatmap);
3. 3×3 grey erosion of each channel's squared-error map: an isolated high pixel (residual
   misalignment at an edge, JPEG noise, a single hair) is removed, while an anomaly wider than
   the structuring element keeps its value — the minimum over a 3×3 window is high only where
   the whole neighbourhood differs;
4. restriction to a region from the landmarks (mouth + nose, or the face without the eyes);
5. ``S = −log(‖PSE_region‖_F / N)``, N = number of pixels in the region. Dividing by N makes
   regions of different sizes comparable; a higher S means a smaller difference, i.e. more normal.

Where the aligned crop is padding the alignment invented (the face filled the photo), nothing was
observed: with an ``observed`` mask those pixels are left out of the region and the heatmap, and a
region that is mostly unobserved gets no score (:class:`RegionNotObservedError`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

import cv2
import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    from ml.normality.residual_reference import ResidualReference

Region = Literal["mouth_nose", "face_no_eyes"]
REGIONS: tuple[str, ...] = ("mouth_nose", "face_no_eyes")
# Plain-language region names, for messages and the pages.
REGION_LABELS = {"mouth_nose": "mouth and nose", "face_no_eyes": "whole face without the eyes"}
HEATMAP_METRICS: tuple[str, ...] = ("pse", "lpips", "ssim")
# S is finite even for identical images: the normalised norm is floored at this value.
MIN_NORMALISED_NORM = 1e-12
# Below this share of its pixels inside the photo, a region's S would describe a different, smaller
# region than the one named (and than the reference range's), so none is given.
MIN_OBSERVED_COVERAGE = 0.6

_JAW = slice(0, 17)
_BROWS = slice(17, 27)
_NOSE = slice(27, 36)
_RIGHT_EYE = slice(36, 42)
_LEFT_EYE = slice(42, 48)
_MOUTH = slice(48, 68)


class RegionNotObservedError(ValueError):
    """Too little of the scoring region lies inside the photo for a score; the message says how much."""


def _check_image(image: np.ndarray, name: str) -> None:
    if not isinstance(image, np.ndarray) or image.ndim != 3 or image.shape[2] != 3:
        shape = getattr(image, "shape", None)
        raise ValueError(f"{name} must be an RGB array of shape (H, W, 3); got shape {shape}.")


def rgb_to_ycbcr(image: np.ndarray) -> np.ndarray:
    """RGB → YCbCr, ITU-R BT.601 as in Hayajneh et al. Eq. 3, output on the 8-bit scale (float64).

    With R, G, B in [0, 1]: Y = 16 + 65.481R + 128.553G + 24.966B,
    Cb = 128 − 37.797R − 74.203G + 112.0B, Cr = 128 + 112.0R − 93.786G − 18.214B.
    ``uint8`` input is divided by 255; float input must already be in [0, 1].
    """
    _check_image(image, "image")
    rgb = image.astype(np.float64) / 255.0 if image.dtype == np.uint8 else image.astype(np.float64)
    matrix = np.array(
        [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
    )
    return rgb @ matrix.T + np.array([16.0, 128.0, 128.0])


def squared_error_heatmap(raw: np.ndarray, normalized: np.ndarray) -> np.ndarray:
    """Pixelwise squared error ``(H, W, 3)`` between the YCbCr versions of two RGB images."""
    _check_image(raw, "raw image")
    _check_image(normalized, "normalized image")
    if raw.shape != normalized.shape:
        raise ValueError(f"Raw and normalized images differ in shape: {raw.shape} vs {normalized.shape}.")
    return (rgb_to_ycbcr(raw) - rgb_to_ycbcr(normalized)) ** 2


def erode_channels(heatmap: np.ndarray, size: int = 3) -> np.ndarray:
    """Grey erosion (minimum filter) with a ``size × size`` square on each channel separately."""
    if heatmap.ndim == 2:
        return ndimage.grey_erosion(heatmap, size=(size, size), mode="nearest")
    return np.stack(
        [
            ndimage.grey_erosion(heatmap[..., c], size=(size, size), mode="nearest")
            for c in range(heatmap.shape[2])
        ],
        axis=-1,
    )


def _hull_mask(points: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    mask = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(points).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask


def _dilate(mask: np.ndarray, radius: int) -> np.ndarray:
    if radius <= 0:
        return mask
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel)


def region_mask(landmarks: np.ndarray, shape: tuple[int, int], region: str) -> np.ndarray:
    """Boolean ``(H, W)`` mask of a scoring region from iBUG-68 landmarks.

    ``mouth_nose``: convex hull of the nose (27–35) and mouth (48–67) points, dilated by 5 % of the
    inter-ocular distance so the philtrum and alar creases (where clefts are) are inside.
    ``face_no_eyes``: convex hull of the jaw line and the brows raised by 10 % of the face height,
    minus the eye hulls dilated by 15 % of the inter-ocular distance (eyes blink and gaze, which is
    not anomaly).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"landmarks must be a finite (68, 2) array; got shape {points.shape}.")
    if region not in REGIONS:
        raise ValueError(f"Unknown region '{region}'; choose one of {', '.join(REGIONS)}.")
    height, width = shape[:2]
    inter_ocular = float(np.linalg.norm(points[_LEFT_EYE].mean(0) - points[_RIGHT_EYE].mean(0)))
    if region == "mouth_nose":
        hull = _hull_mask(np.concatenate([points[_NOSE], points[_MOUTH]]), (height, width))
        return _dilate(hull, int(round(0.05 * inter_ocular))).astype(bool)
    face_height = float(points[:, 1].max() - points[:, 1].min())
    brows = points[_BROWS].copy()
    brows[:, 1] -= 0.10 * face_height
    face = _hull_mask(np.concatenate([points[_JAW], brows]), (height, width))
    eye_radius = int(round(0.15 * inter_ocular))
    eyes = _dilate(_hull_mask(points[_RIGHT_EYE], (height, width)), eye_radius) | _dilate(
        _hull_mask(points[_LEFT_EYE], (height, width)), eye_radius
    )
    return (face.astype(bool)) & ~(eyes.astype(bool))


def normality_score(heatmap: np.ndarray, mask: np.ndarray) -> float:
    """``S = −log(‖H_mask‖_F / N)`` (Hayajneh et al.), N = number of pixels in the mask.

    ``heatmap`` is ``(H, W)`` or ``(H, W, C)``; the Frobenius norm runs over every channel value of
    the masked pixels. Higher is more normal. The normalised norm is floored at 1e-12 so identical
    images give a finite score (27.63).
    """
    mask = np.asarray(mask, dtype=bool)
    if mask.shape != heatmap.shape[:2]:
        raise ValueError(f"Mask shape {mask.shape} does not match heatmap shape {heatmap.shape[:2]}.")
    pixel_count = int(mask.sum())
    if pixel_count == 0:
        raise ValueError("The scoring region is empty: check the landmarks.")
    norm = float(np.sqrt(np.sum(heatmap[mask].astype(np.float64) ** 2)))
    return float(-np.log(max(norm / pixel_count, MIN_NORMALISED_NORM)))


def pse_heatmap(
    raw: np.ndarray, normalized: np.ndarray, erosion_size: int = 3, observed: np.ndarray | None = None
) -> np.ndarray:
    """Eroded YCbCr squared-error heatmap ``(H, W, 3)`` of Hayajneh et al.

    With ``observed`` ``(H, W)`` bool, unobserved pixels take no part in their neighbours' erosion
    (infinite before the minimum filter) and are 0 in the map.
    """
    squared = squared_error_heatmap(raw, normalized)
    if observed is None:
        return erode_channels(squared, erosion_size)
    squared[~observed] = np.inf
    return np.where(observed[..., None], erode_channels(squared, erosion_size), 0.0)


def ssim_heatmap(raw: np.ndarray, normalized: np.ndarray) -> np.ndarray:
    """``1 − SSIM`` map ``(H, W)`` on the luma (Y) channel, a structural alternative to PSE."""
    from skimage.metrics import structural_similarity

    _check_image(raw, "raw image")
    luma_raw = rgb_to_ycbcr(raw)[..., 0]
    luma_norm = rgb_to_ycbcr(normalized)[..., 0]
    _, ssim_map = structural_similarity(
        luma_raw, luma_norm, data_range=255.0, full=True, gaussian_weights=True
    )
    return np.clip(1.0 - ssim_map, 0.0, None)


def lpips_heatmap(raw: np.ndarray, normalized: np.ndarray) -> tuple[np.ndarray, str]:
    """Spatial LPIPS map ``(H, W)`` and the metric name actually used (see :mod:`perceptual`).

    Without LPIPS (no AlexNet weights and no random backbone asked for, or no ``lpips`` module) the
    SSIM map is returned and the name says ``ssim-fallback``.
    """
    import torch

    from ml.normality.perceptual import METRIC_SSIM_FALLBACK, load_perceptual

    perceptual = load_perceptual()
    if perceptual.spatial is None:
        return ssim_heatmap(raw, normalized), METRIC_SSIM_FALLBACK
    tensors = [torch.from_numpy(img).permute(2, 0, 1)[None].float() / 127.5 - 1 for img in (raw, normalized)]
    with torch.no_grad():
        heatmap = perceptual.spatial(tensors[0], tensors[1])[0, 0].numpy()
    return heatmap.astype(np.float64), perceptual.metric


@dataclass
class ScoreResult:
    """A score with the heatmap it came from, the region and the metric that produced it."""

    score: float
    heatmap: np.ndarray
    mask: np.ndarray
    region: str
    metric: str
    extra: dict[str, float] = field(default_factory=dict)


def score_pair(
    raw: np.ndarray,
    normalized: np.ndarray,
    landmarks: np.ndarray,
    region: str = "mouth_nose",
    metric: str = "pse",
    reference: ResidualReference | None = None,
    observed: np.ndarray | None = None,
    min_coverage: float = MIN_OBSERVED_COVERAGE,
) -> ScoreResult:
    """Score a raw face against its normalized version within a landmark region.

    ``metric``: ``pse`` (Hayajneh's eroded YCbCr squared error, the default), ``lpips`` or
    ``ssim`` (comparison heatmaps scored with the same formula). With a ``reference`` of normal faces'
    residuals, the PSE map is standardized against it (:mod:`ml.normality.residual_reference`) before
    the same score formula. ``landmarks`` are in the coordinates of ``raw``.

    ``observed`` ``(H, W)`` bool marks the pixels that are the photo's own (not alignment padding): the
    others are set to 0 in the heatmap and left out of the region, and ``extra["observed_coverage"]``
    is the share of the region kept. Below ``min_coverage`` :class:`RegionNotObservedError` is raised.
    """
    if metric not in HEATMAP_METRICS:
        raise ValueError(f"Unknown heatmap metric '{metric}'; choose one of {', '.join(HEATMAP_METRICS)}.")
    mask = region_mask(landmarks, raw.shape[:2], region)
    extra: dict[str, float] = {}
    inside = None
    if observed is not None:
        inside = np.asarray(observed, dtype=bool)
        if inside.shape != mask.shape:
            raise ValueError(f"Observed mask shape {inside.shape} does not match the image {mask.shape}.")
        coverage = float((mask & inside).sum()) / max(int(mask.sum()), 1)
        if coverage < min_coverage:
            raise RegionNotObservedError(
                f"Only {coverage:.0%} of the {REGION_LABELS[region]} region lies inside the photo "
                f"(the rest of the aligned face would be filled in by the alignment); a score needs at "
                f"least {min_coverage:.0%}. Use a photo that shows the whole face with a margin around it."
            )
        mask = mask & inside
        extra["observed_coverage"] = coverage
    if metric == "pse" and reference is not None:
        from ml.normality.residual_reference import STANDARDIZED_METRIC, standardize

        pse = pse_heatmap(raw, normalized, observed=inside)
        heatmap, used = standardize(pse, reference), STANDARDIZED_METRIC
    elif metric == "pse":
        heatmap, used = pse_heatmap(raw, normalized, observed=inside), "pse-ycbcr-eroded"
    elif metric == "ssim":
        heatmap, used = ssim_heatmap(raw, normalized), "ssim-y"
    else:
        heatmap, used = lpips_heatmap(raw, normalized)
    if inside is not None:
        # SSIM and LPIPS windows still see unobserved neighbours; their maps are comparison metrics only.
        heatmap = np.where(inside[..., None] if heatmap.ndim == 3 else inside, heatmap, 0.0)
    return ScoreResult(
        score=normality_score(heatmap, mask),
        heatmap=heatmap,
        mask=mask,
        region=region,
        metric=used,
        extra=extra,
    )


def heatmap_overlay(image: np.ndarray, heatmap: np.ndarray, mask: np.ndarray | None = None) -> np.ndarray:
    """RGB overlay of a heatmap (summed over channels, scaled to its 99th percentile) on the image."""
    magnitude = heatmap.sum(axis=-1) if heatmap.ndim == 3 else heatmap
    if mask is not None:
        magnitude = np.where(mask, magnitude, 0.0)
    scale = float(np.percentile(magnitude, 99)) or float(magnitude.max()) or 1.0
    levels = np.clip(magnitude / scale * 255.0, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    return (0.55 * image.astype(np.float64) + 0.45 * colour).clip(0, 255).astype(np.uint8)
