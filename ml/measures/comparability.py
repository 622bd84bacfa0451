"""Whether two photos of one subject can be compared: registration residual, head-pose difference,
scale, exposure and white-balance difference, each against a limit calibrated by
``python -m ml measures calibrate`` (shipped in ``comparability_limits.json``)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.core.alignment import apply_transform, similarity_transform
from ml.measures.facial import face_frame

LIMITS_FILE = Path(__file__).with_name("comparability_limits.json")
# Face outline for colour figures: the jaw (0–16) closed over the brows (26 back to 17).
FACE_OUTLINE = tuple(range(17)) + tuple(range(26, 16, -1))
COLOUR_WORKING_IPD_PX = 48.0


@dataclass(frozen=True)
class PhotoFigures:
    """What comparability needs from one photo: the subject's 68 landmarks, head pose in degrees (yaw,
    pitch; None or missing angles skip those checks), the face's colour (:func:`face_colour`, None
    when the photo was not read) and the photo's size ``(width, height)`` in pixels.

    With both photos' sizes known, the scale change compares the face's size *in its frame* (IPD over
    the photo's diagonal), so a 12-MP photo and a 900-px export of the same framing are not flagged for
    their resolution; without them it compares IPDs in pixels, which is only right for photos of one
    resolution."""

    landmarks: np.ndarray
    pose: dict[str, float] | None
    colour: dict[str, float] | None = None
    size: tuple[int, int] | None = None


def _face_size(figures: PhotoFigures, ipd: float, in_frame: bool) -> float:
    """The face's IPD, over the photo's diagonal when ``in_frame``."""
    return ipd / float(np.hypot(*figures.size)) if in_frame and figures.size else ipd


@dataclass(frozen=True)
class Check:
    key: str
    label: str
    unit: str


CHECKS = (
    Check("residual_ipd", "Registration residual", "IPD"),
    Check("yaw_difference", "Yaw difference", "°"),
    Check("pitch_difference", "Pitch difference", "°"),
    Check("scale_change", "Scale change", "%"),
    Check("exposure_difference", "Exposure difference", "grey levels"),
    Check("white_balance_difference", "White-balance difference", "chromaticity × 100"),
)


def face_colour(image: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Mean luminance (0–255) and mean chromaticity (r, b ×100) of the face inside its outline, read at
    a working scale of :data:`COLOUR_WORKING_IPD_PX` between the eyes."""
    points = np.asarray(landmarks, dtype=np.float64)
    _, ipd = face_frame(points)
    scale = min(1.0, COLOUR_WORKING_IPD_PX / ipd)
    outline = points[list(FACE_OUTLINE)]
    x0, y0 = np.floor(outline.min(axis=0)).astype(int).clip(0)
    x1, y1 = np.ceil(outline.max(axis=0)).astype(int) + 1
    patch = image[y0:y1, x0:x1]
    if patch.size == 0:
        raise ValueError("The face outline lies outside the photo.")
    small = cv2.resize(patch, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    mask = np.zeros(small.shape[:2], np.uint8)
    cv2.fillPoly(mask, [np.round((outline - [x0, y0]) * scale).astype(np.int32)], 1)
    pixels = small[mask.astype(bool)].astype(np.float64)
    if len(pixels) < 16:
        raise ValueError("The face is too small to measure its colour.")
    rgb = pixels.mean(axis=0)
    luminance = float(0.299 * rgb[0] + 0.587 * rgb[1] + 0.114 * rgb[2])
    total = float(rgb.sum()) or 1.0
    return {"luminance": luminance, "r_chroma": 100 * rgb[0] / total, "b_chroma": 100 * rgb[2] / total}


@cache
def shipped_limits() -> dict[str, float]:
    """The calibrated limits (``python -m ml measures calibrate``)."""
    return json.loads(LIMITS_FILE.read_text())["limits"]


def pair_figures(pre: PhotoFigures, post: PhotoFigures) -> dict[str, float]:
    """Each check's figure for a pre/post pair (colour checks only when both colours are known)."""
    pre_points = np.asarray(pre.landmarks, dtype=np.float64)
    post_points = np.asarray(post.landmarks, dtype=np.float64)
    _, pre_ipd = face_frame(pre_points)
    _, post_ipd = face_frame(post_points)
    matrix = similarity_transform(post_points, pre_points)
    residual = np.linalg.norm(apply_transform(matrix, post_points) - pre_points, axis=1).mean()
    in_frame = bool(pre.size and post.size)
    figures = {
        "residual_ipd": float(residual / pre_ipd),
        "scale_change": 100
        * abs(_face_size(post, post_ipd, in_frame) / _face_size(pre, pre_ipd, in_frame) - 1),
        "registration_scale": float(np.hypot(matrix[0, 0], matrix[1, 0])),
        "registration_rotation_degrees": float(np.degrees(np.arctan2(matrix[1, 0], matrix[0, 0]))),
    }
    for angle in ("yaw", "pitch"):
        if angle in (pre.pose or {}) and angle in (post.pose or {}):
            figures[f"{angle}_difference"] = abs(float(post.pose[angle]) - float(pre.pose[angle]))
    if pre.colour and post.colour:
        figures["exposure_difference"] = abs(post.colour["luminance"] - pre.colour["luminance"])
        figures["white_balance_difference"] = float(
            np.hypot(
                post.colour["r_chroma"] - pre.colour["r_chroma"],
                post.colour["b_chroma"] - pre.colour["b_chroma"],
            )
        )
    return figures


def warnings_for(figures: dict[str, Any], limits: dict[str, float] | None = None) -> list[str]:
    """One sentence per check whose figure exceeds its limit."""
    limits = limits or shipped_limits()
    warnings = []
    for check in CHECKS:
        value, limit = figures.get(check.key), limits.get(check.key)
        if value is not None and limit is not None and value > limit:
            warnings.append(
                f"{check.label} {value:.3g} {check.unit} exceeds the limit of {limit:.3g} {check.unit}."
            )
    return warnings


def assess_pair(
    pre: PhotoFigures, post: PhotoFigures, limits: dict[str, float] | None = None
) -> dict[str, Any]:
    """``{"figures": ..., "warnings": [...], "comparable": bool}`` for a pre/post pair."""
    figures = pair_figures(pre, post)
    warnings = warnings_for(figures, limits)
    return {"figures": figures, "warnings": warnings, "comparable": not warnings}
