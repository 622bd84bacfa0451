"""Forehead and eye crop from 68 landmarks (Kim et al. 2023, Sec. 3.2 and Table 1, corrected).

Table 1 of the paper has typos; the intended square is
``x1 = P1.x``, ``x2 = P2.x``, ``y1 = P3.y − (x2 − x1)·0.66``, ``y2 = y1 + (x2 − x1)``,
resized to 640×640. With iBUG-68 indices (0-based) this module uses

* P1 = landmark 0 (start of the jaw line at the subject's right temple/ear, the leftmost point
  at eye height in a frontal photo),
* P2 = landmark 16 (end of the jaw line at the left temple, the rightmost such point),
* P3 = landmark 27 (top of the nose bridge, the point between the eyes).

The square then spans temple to temple, from about two thirds of a face-width above the eyes
(forehead) to one third below them (eyes and upper cheeks). Parts of the square outside the photo
are padded with zeros and flagged in :meth:`ForeheadEyeCrop.valid_mask`.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import cv2
import numpy as np

CROP_SIZE = 640
LEFT_POINT_INDEX = 0
RIGHT_POINT_INDEX = 16
BETWEEN_EYES_INDEX = 27
FOREHEAD_FACTOR = 0.66
# Whole-face square, in jaw widths (landmark 0 to 16): it reaches about 0.55 widths above the brows
# (the forehead's upper lines) and a little below the chin, with the ears' edge at the sides.
FACE_SIDE_FACTOR = 1.6
FACE_TOP_ABOVE_BROWS = 0.55
FACE_BOTTOM_BELOW_CHIN = 0.05
CHIN_INDEX = 8
BROW_INDICES = slice(17, 27)


@dataclass(frozen=True)
class ForeheadEyeCrop:
    """A square region ``[x1, x2) × [y1, y2)`` of the photo mapped onto ``size × size`` pixels."""

    x1: float
    y1: float
    x2: float
    y2: float
    size: int = CROP_SIZE

    @property
    def scale(self) -> float:
        """Crop pixels per photo pixel."""
        return self.size / (self.x2 - self.x1)

    def affine(self) -> np.ndarray:
        """The 2×3 matrix that maps photo coordinates to crop coordinates."""
        scale = self.scale
        return np.array([[scale, 0.0, -self.x1 * scale], [0.0, scale, -self.y1 * scale]], dtype=np.float64)

    def to_crop(self, points: np.ndarray) -> np.ndarray:
        """Photo ``(x, y)`` points → crop pixel coordinates."""
        points = np.asarray(points, dtype=np.float64)
        return (points - [self.x1, self.y1]) * self.scale

    def to_photo(self, points: np.ndarray) -> np.ndarray:
        """Crop pixel coordinates → photo ``(x, y)`` points."""
        points = np.asarray(points, dtype=np.float64)
        return points / self.scale + [self.x1, self.y1]

    def crop_image(self, image: np.ndarray, interpolation: int = cv2.INTER_AREA) -> np.ndarray:
        """The ``size × size`` crop; pixels outside the photo are 0."""
        interpolation = interpolation if self.scale < 1 else cv2.INTER_LINEAR
        return cv2.warpAffine(
            np.ascontiguousarray(image),
            self.affine(),
            (self.size, self.size),
            flags=interpolation,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )

    def valid_mask(self, image_shape: tuple[int, ...]) -> np.ndarray:
        """Bool ``size × size`` mask of crop pixels that come from inside the photo."""
        ones = np.full(image_shape[:2], 255, dtype=np.uint8)
        return self.crop_image(ones, interpolation=cv2.INTER_NEAREST) > 127

    def mask_to_photo(self, crop_mask: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
        """A ``size × size`` mask or probability map mapped back onto the photo (0 outside the square).

        Booleans come back as booleans (nearest neighbour); float maps are interpolated linearly.
        """
        crop_mask = np.asarray(crop_mask)
        if crop_mask.shape[:2] != (self.size, self.size):
            raise ValueError(f"Expected a {self.size}×{self.size} crop mask, got {crop_mask.shape}.")
        is_bool = crop_mask.dtype == bool
        source = crop_mask.astype(np.uint8) if is_bool else crop_mask.astype(np.float32)
        warped = cv2.warpAffine(
            source,
            self.affine(),
            (image_shape[1], image_shape[0]),
            flags=(cv2.INTER_NEAREST if is_bool else cv2.INTER_LINEAR) | cv2.WARP_INVERSE_MAP,
            borderMode=cv2.BORDER_CONSTANT,
            borderValue=0,
        )
        return warped > 0 if is_bool else warped


def forehead_eye_crop(landmarks: np.ndarray, size: int = CROP_SIZE) -> ForeheadEyeCrop:
    """The forehead-and-eye square of Kim et al. 2023 (Table 1, corrected) from iBUG-68 landmarks."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"Expected (68, 2) iBUG-68 landmarks, got shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("Landmarks contain NaN or infinite values.")
    x1 = points[LEFT_POINT_INDEX, 0]
    x2 = points[RIGHT_POINT_INDEX, 0]
    width = x2 - x1
    if width <= 1:
        raise ValueError(
            f"Landmark {RIGHT_POINT_INDEX} is not right of landmark {LEFT_POINT_INDEX} "
            f"(width {width:.1f} px); the face is too small, mirrored or in profile."
        )
    y1 = points[BETWEEN_EYES_INDEX, 1] - width * FOREHEAD_FACTOR
    return ForeheadEyeCrop(x1=float(x1), y1=float(y1), x2=float(x2), y2=float(y1 + width), size=size)


def face_crop(landmarks: np.ndarray, size: int = CROP_SIZE) -> ForeheadEyeCrop:
    """The whole-face square (forehead to chin, temple to temple with a margin) from iBUG-68 landmarks.

    The side is ``FACE_SIDE_FACTOR`` jaw widths; vertically it spans from ``FACE_TOP_ABOVE_BROWS`` jaw
    widths above the highest brow point to ``FACE_BOTTOM_BELOW_CHIN`` below the chin, centred."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"Expected (68, 2) iBUG-68 landmarks, got shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("Landmarks contain NaN or infinite values.")
    width = points[RIGHT_POINT_INDEX, 0] - points[LEFT_POINT_INDEX, 0]
    if width <= 1:
        raise ValueError(
            f"Landmark {RIGHT_POINT_INDEX} is not right of landmark {LEFT_POINT_INDEX} "
            f"(width {width:.1f} px); the face is too small, mirrored or in profile."
        )
    side = FACE_SIDE_FACTOR * width
    centre_x = (points[RIGHT_POINT_INDEX, 0] + points[LEFT_POINT_INDEX, 0]) / 2.0
    top = points[BROW_INDICES, 1].min() - FACE_TOP_ABOVE_BROWS * width
    bottom = points[CHIN_INDEX, 1] + FACE_BOTTOM_BELOW_CHIN * width
    centre_y = (top + bottom) / 2.0
    x1, y1 = centre_x - side / 2.0, centre_y - side / 2.0
    return ForeheadEyeCrop(x1=float(x1), y1=float(y1), x2=float(x1 + side), y2=float(y1 + side), size=size)


@dataclass(frozen=True)
class AnalysisFrame:
    """The pixel frame the wrinkle analysis computes in: the model's square (``crop``, at its
    ``CROP_SIZE`` px) where the photo is finer than that square — a 12-MP photo holds no more wrinkle
    information than the segmentation made at the square's resolution, only more pixels to draw the skin,
    the clean-up and the regions in — else the photo itself (``crop`` ``None``).

    Every figure is reported in the stored photo's pixels (one frame). A frame mask stands for its
    photo-sized map (:meth:`to_photo`, nearest frame pixel), so its area in photo pixels is exactly the sum
    of :meth:`pixel_weights` (photo pixels mapped to each frame pixel, about ``photo_px²``) over it, and a
    skeleton taken on the photo-sized mask is counted back per frame pixel
    (:meth:`photo_skeleton_counts`): every figure is that of the photo-sized masks, counted in the
    frame."""

    photo_shape: tuple[int, int]
    crop: ForeheadEyeCrop | None = None

    @classmethod
    def of(
        cls, crop: ForeheadEyeCrop, image_shape: tuple[int, ...], full_resolution: bool = False
    ) -> AnalysisFrame:
        """The coarser of the photo and the model's square ``crop``; the photo with ``full_resolution``
        (the reference the square's figures are measured against, ``bench.wrinkle_frame``)."""
        photo_shape = (int(image_shape[0]), int(image_shape[1]))
        return cls(photo_shape, crop if crop.scale < 1 and not full_resolution else None)

    @classmethod
    def photo(cls, image_shape: tuple[int, ...]) -> AnalysisFrame:
        """The photo's own pixels."""
        return cls((int(image_shape[0]), int(image_shape[1])))

    @property
    def shape(self) -> tuple[int, int]:
        """``(height, width)`` of the frame."""
        return self.photo_shape if self.crop is None else (self.crop.size, self.crop.size)

    @property
    def photo_px(self) -> float:
        """Photo pixels per frame pixel, along a line."""
        return 1.0 if self.crop is None else 1.0 / self.crop.scale

    @functools.cached_property
    def _photo_to_frame(self) -> tuple[np.ndarray, np.ndarray]:
        """The frame row of every photo row and the frame column of every photo column (-1: outside the
        square), as :meth:`to_photo` picks them (the square is axis-aligned, so one row and one column of
        its nearest-neighbour warp give them all)."""
        assert self.crop is not None
        size = self.crop.size
        index = np.tile(np.arange(size, dtype=np.float32), (size, 1))
        affine = self.crop.affine()
        flags = cv2.INTER_NEAREST | cv2.WARP_INVERSE_MAP
        by_column, by_row = affine.copy(), affine.copy()
        by_column[1] = [0.0, 0.0, size / 2]  # sample the square's middle row along every photo column
        by_row[0] = [0.0, 0.0, size / 2]
        columns = cv2.warpAffine(index, by_column, (self.photo_shape[1], 1), flags=flags, borderValue=-1)
        rows = cv2.warpAffine(index.T.copy(), by_row, (1, self.photo_shape[0]), flags=flags, borderValue=-1)
        return rows.ravel().astype(np.int64), columns.ravel().astype(np.int64)

    @functools.cached_property
    def pixel_weights(self) -> np.ndarray | None:
        """Photo pixels that :meth:`to_photo` maps to each frame pixel (``None`` in the photo frame: 1)."""
        if self.crop is None:
            return None
        rows, columns = self._photo_to_frame
        size = self.crop.size
        per_row = np.bincount(rows[rows >= 0], minlength=size)
        per_column = np.bincount(columns[columns >= 0], minlength=size)
        return np.outer(per_row, per_column).astype(np.int64)

    def photo_area(self, mask: np.ndarray) -> int:
        """The area in photo pixels of a frame mask: that of its photo-sized map."""
        mask = np.asarray(mask, dtype=bool)
        weights = self.pixel_weights
        return int(np.count_nonzero(mask)) if weights is None else int(weights[mask].sum())

    def photo_skeleton_counts(self, photo_skeleton: np.ndarray) -> np.ndarray:
        """A photo-sized skeleton counted per frame pixel (int, the frame's shape): summed over a frame
        region it gives the skeleton's photo pixels in the region's photo-sized map."""
        if self.crop is None:
            return np.asarray(photo_skeleton, dtype=bool)
        rows, columns = self._photo_to_frame
        ys, xs = np.nonzero(photo_skeleton)
        frame_rows, frame_columns = rows[ys], columns[xs]
        inside = (frame_rows >= 0) & (frame_columns >= 0)
        size = self.crop.size
        flat = frame_rows[inside] * size + frame_columns[inside]
        return np.bincount(flat, minlength=size * size).reshape(size, size)

    def points(self, points: np.ndarray) -> np.ndarray:
        """Photo ``(x, y)`` points (e.g. the 68 landmarks) in the frame's pixel coordinates."""
        points = np.asarray(points, dtype=np.float64)
        return points if self.crop is None else self.crop.to_crop(points)

    def box_to_photo(self, box: list[float]) -> list[float]:
        """A box ``[x0, y0, x1, y1]`` of frame pixel edges in photo pixel edges (pixel ``i`` spans
        ``[i, i + 1)``, its centre at ``i`` in the point convention the crop's affine maps)."""
        if self.crop is None:
            return [float(value) for value in box]
        corners = self.crop.to_photo(np.array([box[:2], box[2:]], dtype=np.float64) - 0.5) + 0.5
        return [float(value) for value in corners.ravel()]

    def from_photo(self, photo_map: np.ndarray) -> np.ndarray:
        """A photo-sized bool mask or uint8 label map (or a stack of them, ``(N, H, W)``) sampled into
        the frame (nearest photo pixel)."""
        photo_map = np.asarray(photo_map)
        if self.crop is None:
            return photo_map
        if photo_map.ndim == 3:
            return np.stack([self.from_photo(layer) for layer in photo_map])
        is_bool = photo_map.dtype == bool
        source = np.ascontiguousarray(photo_map).view(np.uint8) if is_bool else photo_map
        sampled = self.crop.crop_image(source, interpolation=cv2.INTER_NEAREST)
        return sampled.astype(bool) if is_bool else sampled

    def to_photo(self, frame_mask: np.ndarray) -> np.ndarray:
        """A frame-sized mask or probability map on the photo (see
        :meth:`ForeheadEyeCrop.mask_to_photo`)."""
        return frame_mask if self.crop is None else self.crop.mask_to_photo(frame_mask, self.photo_shape)
