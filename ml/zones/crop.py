"""Square face crops for the zone network, and the way back to the photo.

The network sees a square crop around the face instead of the whole photo squashed to a square: the
zones fill most of the input, so a small CPU-friendly input size still resolves eyelids and lips. The
crop is a pure scale + translation (no rotation), stored as a 2×3 affine matrix from photo to crop
pixels, so crop-space label maps map back to the photo with its inverse.

Extent: the landmark bounding box, raised by :data:`FOREHEAD_IOD` inter-ocular distances above the
brows (the atlas puts the forehead up to 0.8 IOD above them), squared and widened by :data:`MARGIN`.
"""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np

FOREHEAD_IOD = 0.9
MARGIN = 1.15


def face_crop_matrix(landmarks: np.ndarray, size: int) -> np.ndarray:
    """2×3 affine matrix mapping photo pixels to a ``size``² crop around a face's 68 landmarks."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.isfinite(points).all():
        raise ValueError(f"Expected finite (68, 2) landmarks, got shape {points.shape}.")
    if size < 8:
        raise ValueError(f"Crop size must be at least 8 px, got {size}.")
    inter_ocular = float(np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0)))
    x0, x1 = points[:, 0].min(), points[:, 0].max()
    y0, y1 = points[:, 1].min() - FOREHEAD_IOD * inter_ocular, points[:, 1].max()
    side = max(x1 - x0, y1 - y0) * MARGIN
    return square_matrix((x0 + x1) / 2, (y0 + y1) / 2, side, size)


def whole_image_matrix(image_shape: tuple[int, ...], size: int) -> np.ndarray:
    """Crop matrix of the whole photo letterboxed into a square (used when no face is found)."""
    height, width = image_shape[:2]
    return square_matrix(width / 2, height / 2, float(max(height, width)), size)


def square_matrix(centre_x: float, centre_y: float, side: float, size: int) -> np.ndarray:
    """Matrix mapping the square of ``side`` px centred at ``(centre_x, centre_y)`` onto ``size``² px."""
    if side <= 0:
        raise ValueError(f"Crop side must be positive, got {side}.")
    scale = size / side
    # Pixel centres: photo point c maps to crop point (size - 1) / 2.
    return np.array(
        [
            [scale, 0.0, (size - 1) / 2 - scale * centre_x],
            [0.0, scale, (size - 1) / 2 - scale * centre_y],
        ]
    )


def crop_image(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """The ``size``² crop of an RGB image (bilinear, zero outside the photo)."""
    interpolation = cv2.INTER_AREA if matrix[0, 0] < 1 else cv2.INTER_LINEAR
    return cv2.warpAffine(image, matrix, (size, size), flags=interpolation, borderMode=cv2.BORDER_CONSTANT)


def crop_labels(labels: np.ndarray, matrix: np.ndarray, size: int, outside: int = 0) -> np.ndarray:
    """The ``size``² crop of a label map (nearest neighbour; ``outside`` beyond the photo)."""
    return cv2.warpAffine(
        labels,
        matrix,
        (size, size),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=outside,
    )


def uncrop_logits(logits: Any, matrix: np.ndarray, image_shape: tuple[int, ...]) -> Any:
    """Crop-space class scores ``(N, C, S, S)`` resampled bilinearly onto the photo, ``(N, C, H, W)``.

    Argmax after bilinear resampling gives smooth boundaries at photo resolution instead of the blocks
    of a nearest-neighbour upscaled label map. Photo pixels outside the crop get ``-inf`` except the
    background class 0, so they are background.
    """
    import torch
    from torch.nn import functional as F

    height, width = image_shape[:2]
    size = logits.shape[-1]
    ys, xs = torch.meshgrid(
        torch.arange(height, dtype=torch.float32), torch.arange(width, dtype=torch.float32), indexing="ij"
    )
    u = float(matrix[0, 0]) * xs + float(matrix[0, 2])
    v = float(matrix[1, 1]) * ys + float(matrix[1, 2])
    grid = torch.stack([u, v], dim=-1) / (size - 1) * 2 - 1
    sampled = F.grid_sample(
        logits.float(), grid[None].expand(logits.shape[0], -1, -1, -1), mode="bilinear", align_corners=True
    )
    outside = (u < 0) | (u > size - 1) | (v < 0) | (v > size - 1)
    sampled[:, 1:, outside] = float("-inf")
    sampled[:, 0, outside] = 0.0
    return sampled


def uncrop_labels(labels: np.ndarray, matrix: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Crop-space label map back onto the photo (nearest neighbour; 0 = background outside the crop)."""
    height, width = image_shape[:2]
    return cv2.warpAffine(
        labels,
        cv2.invertAffineTransform(matrix),
        (width, height),
        flags=cv2.INTER_NEAREST,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )
