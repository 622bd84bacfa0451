"""Overview pictures of zone masks: translucent fills, outlines and abbreviations."""

from __future__ import annotations

import colorsys
import json
from pathlib import Path

import cv2
import numpy as np

from ml.zones.atlas import N_ZONES, ZONE_ABBREVIATIONS


def zone_colours() -> np.ndarray:
    """A fixed, well-separated RGB colour per zone, ``(33, 3) uint8``."""
    colours = []
    for index in range(N_ZONES):
        hue = (index * 0.618034) % 1.0  # golden-ratio hue steps keep neighbours distinct
        red, green, blue = colorsys.hsv_to_rgb(hue, 0.85, 0.95)
        colours.append((int(red * 255), int(green * 255), int(blue * 255)))
    return np.array(colours, dtype=np.uint8)


def render_overview(
    image: np.ndarray, masks: np.ndarray, alpha: float = 0.35, labels: bool = True
) -> np.ndarray:
    """RGB picture of ``image`` with each of the 33 ``masks`` filled, outlined and labelled."""
    if masks.ndim != 3 or masks.shape[0] != N_ZONES or masks.shape[1:] != image.shape[:2]:
        raise ValueError(
            f"Expected masks of shape (33, {image.shape[0]}, {image.shape[1]}), got {masks.shape}."
        )
    colours = zone_colours()
    canvas = image.astype(np.float32).copy()
    for index in range(N_ZONES):
        mask = masks[index]
        if mask.any():
            canvas[mask] = canvas[mask] * (1 - alpha) + colours[index].astype(np.float32) * alpha
    out = np.clip(canvas, 0, 255).astype(np.uint8)
    scale = max(image.shape[:2]) / 600.0
    for index in range(N_ZONES):
        mask = masks[index].astype(np.uint8)
        if not mask.any():
            continue
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        cv2.drawContours(out, contours, -1, tuple(int(c) for c in colours[index]), max(1, round(scale)))
    if labels:
        for index in range(N_ZONES):
            ys, xs = np.nonzero(masks[index])
            if len(xs) == 0:
                continue
            # Label at the mask pixel nearest the centroid, so concave zones get a label on themselves.
            cx, cy = xs.mean(), ys.mean()
            nearest = int(np.argmin((xs - cx) ** 2 + (ys - cy) ** 2))
            position = (int(xs[nearest]) - int(9 * scale), int(ys[nearest]) + int(3 * scale))
            cv2.putText(
                out,
                ZONE_ABBREVIATIONS[index],
                position,
                cv2.FONT_HERSHEY_SIMPLEX,
                0.28 * scale,
                (0, 0, 0),
                max(1, round(2 * scale)),
                cv2.LINE_AA,
            )
            cv2.putText(
                out,
                ZONE_ABBREVIATIONS[index],
                position,
                cv2.FONT_HERSHEY_SIMPLEX,
                0.28 * scale,
                (255, 255, 255),
                max(1, round(scale * 0.7)),
                cv2.LINE_AA,
            )
    return out


MEAN_SHAPE_PATH = Path(__file__).with_name("mean_shape.json")
# The iBUG-68 face's lines (jaw, brows, nose bridge, nostrils, eyes, outer and inner lips), closed or not.
LANDMARK_LINES: tuple[tuple[range, bool], ...] = (
    (range(0, 17), False),
    (range(17, 22), False),
    (range(22, 27), False),
    (range(27, 31), False),
    (range(31, 36), False),
    (range(36, 42), True),
    (range(42, 48), True),
    (range(48, 60), True),
    (range(60, 68), True),
)


def mean_shape() -> np.ndarray:
    """The symmetrised mean iBUG-68 shape ``(68, 2)`` in a 400×480 frame (see ``mean_shape.json``)."""
    return np.array(json.loads(MEAN_SHAPE_PATH.read_text())["landmarks"], dtype=np.float64)


def atlas_figure(scale: int = 2) -> np.ndarray:
    """The atlas drawn on the mean landmark shape: face lines on white, zones filled and labelled."""
    from ml.zones.landmark_model import render_zone_masks

    landmarks = mean_shape() * scale
    height, width = 480 * scale, 400 * scale
    canvas = np.full((height, width, 3), 255, dtype=np.uint8)
    for indices, closed in LANDMARK_LINES:
        points = np.round(landmarks[list(indices)]).astype(np.int32)
        cv2.polylines(canvas, [points], closed, (90, 90, 90), scale, cv2.LINE_AA)
    masks = render_zone_masks(landmarks, canvas.shape)
    figure = render_overview(canvas, masks, alpha=0.45)
    for text, x in (("patient's RIGHT (R zones)", 12 * scale), ("patient's LEFT (L zones)", 232 * scale)):
        cv2.putText(
            figure,
            text,
            (x, 20 * scale),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.45 * scale,
            (40, 40, 40),
            scale,
            cv2.LINE_AA,
        )
    return figure
