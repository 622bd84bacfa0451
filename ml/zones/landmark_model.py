"""The landmark zone model (baseline): zones and face parts rasterised from 68 landmarks.

Pixels are assigned by their centre (pixel ``(row, col)`` has centre ``(x=col, y=row)``, the library's
0-based point convention), so two polygons that share an edge never both claim a pixel: adjacent
zones touch without overlapping, and only the overlaps the atlas intends remain.

Hair cannot be derived from landmarks (no landmark marks the hairline or the hair outline), so the
landmark model's ``hair`` part is always empty; the eyebrows, which FASSEG labels as hair, are removed
from skin but not reported as hair.
"""

from __future__ import annotations

import numpy as np

from ml.zones.atlas import N_ZONES, ZONE_INDEX
from ml.zones.geometry import (
    DESIGNED_OVERLAPS,
    ZONE_PRECEDENCE,
    Band,
    Disc,
    FaceGeometry,
    Polygon,
    Shape,
    ZoneShapes,
)

FACE_PARTS: tuple[str, ...] = ("background", "skin", "hair", "eyes", "nose", "mouth")
PART_NAMES: tuple[str, ...] = FACE_PARTS[1:]


def _check_shape(image_shape: tuple[int, ...]) -> tuple[int, int]:
    if len(image_shape) < 2 or image_shape[0] <= 0 or image_shape[1] <= 0:
        raise ValueError(f"image_shape must start with a positive (height, width), got {tuple(image_shape)}.")
    return int(image_shape[0]), int(image_shape[1])


def _bbox(points: np.ndarray, pad: float, height: int, width: int) -> tuple[int, int, int, int] | None:
    x0 = max(int(np.floor(points[:, 0].min() - pad)), 0)
    x1 = min(int(np.ceil(points[:, 0].max() + pad)) + 1, width)
    y0 = max(int(np.floor(points[:, 1].min() - pad)), 0)
    y1 = min(int(np.ceil(points[:, 1].max() + pad)) + 1, height)
    if x0 >= x1 or y0 >= y1:
        return None
    return x0, x1, y0, y1


def _polygon_inside(points: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Even-odd crossing test of pixel centres against a closed polygon (half-open in y)."""
    inside = np.zeros(np.broadcast(xs, ys).shape, dtype=bool)
    count = len(points)
    for k in range(count):
        xa, ya = points[k]
        xb, yb = points[(k + 1) % count]
        if ya == yb:
            continue
        crosses = (ya > ys) != (yb > ys)
        x_cross = xa + (ys - ya) * (xb - xa) / (yb - ya)
        inside ^= crosses & (xs < x_cross)
    return inside


def _segment_distance(xs: np.ndarray, ys: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    direction = b - a
    length_sq = float(direction @ direction)
    if length_sq == 0.0:
        return np.hypot(xs - a[0], ys - a[1])
    t = np.clip(((xs - a[0]) * direction[0] + (ys - a[1]) * direction[1]) / length_sq, 0.0, 1.0)
    return np.hypot(xs - (a[0] + t * direction[0]), ys - (a[1] + t * direction[1]))


def rasterize_shape(shape: Shape, height: int, width: int) -> np.ndarray:
    """Boolean ``(H, W)`` mask of the pixels whose centres lie in ``shape``."""
    mask = np.zeros((height, width), dtype=bool)
    if isinstance(shape, Polygon):
        points, pad = shape.points, 0.0
    elif isinstance(shape, Band):
        points, pad = shape.points, shape.half_width
    elif isinstance(shape, Disc):
        points, pad = shape.centre[None, :], shape.radius
    else:
        raise TypeError(f"Unknown shape type {type(shape).__name__}.")
    box = _bbox(points, pad, height, width)
    if box is None:
        return mask
    x0, x1, y0, y1 = box
    ys, xs = np.mgrid[y0:y1, x0:x1].astype(np.float64)
    if isinstance(shape, Polygon):
        region = _polygon_inside(points, xs, ys)
    elif isinstance(shape, Band):
        distance = np.full(xs.shape, np.inf)
        for a, b in zip(points[:-1], points[1:], strict=True):
            distance = np.minimum(distance, _segment_distance(xs, ys, a, b))
        region = distance <= shape.half_width
    else:
        region = np.hypot(xs - shape.centre[0], ys - shape.centre[1]) <= shape.radius
    mask[y0:y1, x0:x1] = region
    return mask


def rasterize_region(
    region: ZoneShapes,
    height: int,
    width: int,
    clip: np.ndarray | None = None,
    cache: dict[int, np.ndarray] | None = None,
) -> np.ndarray:
    """Union of the region's ``include`` shapes minus its ``exclude`` shapes, optionally clipped.

    ``cache`` (keyed by shape identity) lets zones that exclude the same eyes, nose and mouth share
    one rasterisation of them.
    """

    def raster(shape: Shape) -> np.ndarray:
        if cache is None:
            return rasterize_shape(shape, height, width)
        if id(shape) not in cache:
            cache[id(shape)] = rasterize_shape(shape, height, width)
        return cache[id(shape)]

    mask = np.zeros((height, width), dtype=bool)
    for shape in region.include:
        mask |= raster(shape)
    for shape in region.exclude:
        mask &= ~raster(shape)
    if clip is not None:
        mask &= clip
    return mask


def render_zone_masks(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """The 33 atlas zones as a boolean ``(33, H, W)`` array in atlas order; zones may overlap.

    Every zone is clipped to the landmark face outline (jaw contour plus estimated temples and forehead),
    and only the pairs in :data:`~ml.zones.geometry.DESIGNED_OVERLAPS` may overlap.
    """
    height, width = _check_shape(image_shape)
    geometry = FaceGeometry(landmarks)
    face = rasterize_shape(geometry.face_outline(), height, width)
    shapes = geometry.zone_shapes()
    masks = np.zeros((N_ZONES, height, width), dtype=bool)
    placed: list[str] = []
    cache: dict[int, np.ndarray] = {}
    for code in ZONE_PRECEDENCE:
        mask = rasterize_region(shapes[code], height, width, clip=face, cache=cache)
        for earlier in placed:
            if frozenset((code, earlier)) not in DESIGNED_OVERLAPS:
                mask &= ~masks[ZONE_INDEX[earlier]]
        masks[ZONE_INDEX[code]] = mask
        placed.append(code)
    return masks


def render_face_parts(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Face-part label map ``(H, W) uint8`` with the FASSEG classes of :data:`FACE_PARTS`.

    skin = face outline minus eyes, eyebrows, nose and mouth; hair stays empty (see module docstring).
    """
    height, width = _check_shape(image_shape)
    geometry = FaceGeometry(landmarks)
    labels = np.zeros((height, width), dtype=np.uint8)
    labels[rasterize_shape(geometry.face_outline(), height, width)] = FACE_PARTS.index("skin")
    for brow in geometry.brows():
        labels[rasterize_shape(brow, height, width)] = FACE_PARTS.index("background")
    for eye in geometry.eyes():
        labels[rasterize_shape(eye, height, width)] = FACE_PARTS.index("eyes")
    labels[rasterize_shape(geometry.nose(), height, width)] = FACE_PARTS.index("nose")
    labels[rasterize_shape(geometry.mouth(), height, width)] = FACE_PARTS.index("mouth")
    return labels


def part_masks(labels: np.ndarray) -> dict[str, np.ndarray]:
    """Binary masks ``{skin, hair, eyes, nose, mouth}`` from a face-part label map."""
    return {name: labels == FACE_PARTS.index(name) for name in PART_NAMES}
