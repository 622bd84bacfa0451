"""Compact storage of the 33 overlapping zone masks and their outlines for drawing.

The masks overlap, so they cannot be one label image: they are packed into the bits of a 16-bit RGB
PNG (3 × 16 = 48 ≥ 33 bits per pixel) cropped to the zones' bounding box. Outlines are polygons in
photo pixels that a browser draws with the even-odd rule.
"""

from __future__ import annotations

import cv2
import numpy as np

BITS_PER_CHANNEL = 16
MASK_ENCODING = (
    "16-bit RGB PNG; zone i (0-based atlas order) is bit i % 16 of channel i // 16 (OpenCV channel order), "
    "cropped to mask_box [x0, y0, x1, y1]"
)


def encode_zone_masks(masks: np.ndarray) -> tuple[bytes, list[int]]:
    """Pack ``(33, H, W)`` bool masks into one 16-bit RGB PNG cropped to the zones' bounding box.

    Zone i (0-based, atlas order) is bit i % 16 of channel i // 16. Returns the PNG bytes and the box
    ``[x0, y0, x1, y1]`` (exclusive ends) in photo pixels.
    """
    count = masks.shape[0]
    if count > 3 * BITS_PER_CHANNEL:
        raise ValueError(f"At most {3 * BITS_PER_CHANNEL} zones fit in one mask PNG; got {count}.")
    covered = masks.any(axis=0)
    if covered.any():
        rows, cols = np.nonzero(covered.any(axis=1))[0], np.nonzero(covered.any(axis=0))[0]
        box = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
    else:
        box = [0, 0, 1, 1]
    x0, y0, x1, y1 = box
    packed = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint16)
    for index in range(count):
        channel, bit = divmod(index, BITS_PER_CHANNEL)
        packed[..., channel] |= masks[index, y0:y1, x0:x1].astype(np.uint16) << bit
    ok, encoded = cv2.imencode(".png", packed)
    if not ok:
        raise RuntimeError("Could not encode the zone masks as PNG.")
    return encoded.tobytes(), box


def decode_zone_masks(content: bytes, box: list[int], shape: tuple[int, int], count: int = 33) -> np.ndarray:
    """Inverse of :func:`encode_zone_masks`: ``(count, H, W)`` bool masks in a photo of ``shape`` (H, W)."""
    packed = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if packed is None or packed.dtype != np.uint16 or packed.ndim != 3:
        raise ValueError("The zone-mask artifact is not a 16-bit RGB PNG.")
    x0, y0, x1, y1 = box
    if packed.shape[:2] != (y1 - y0, x1 - x0):
        raise ValueError(f"The zone-mask PNG is {packed.shape[:2]}, its box says {(y1 - y0, x1 - x0)}.")
    masks = np.zeros((count, *shape), dtype=bool)
    for index in range(count):
        channel, bit = divmod(index, BITS_PER_CHANNEL)
        masks[index, y0:y1, x0:x1] = (packed[..., channel] >> bit) & 1
    return masks


def zone_outlines(mask: np.ndarray) -> list[list[int]]:
    """Outer and hole contours of a mask as flat ``[x0, y0, x1, y1, …]`` lists (drawn with even-odd fill)."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outlines = []
    for contour in contours:
        simplified = cv2.approxPolyDP(contour, 0.8, True)
        if len(simplified) >= 3:
            outlines.append([int(value) for value in simplified.reshape(-1)])
    return outlines
