"""Noise floors and comparability limits from re-photography-like perturbations.

A *re-photographed* copy of a photo is the photo shifted (±3 % of its width and height), rotated
(±3°), scaled (±5 %), brightened or darkened (±10 %) and JPEG-compressed again (quality 80–95): what
taking the same standardised photo twice changes. Real test–retest photos of the same people are not
in the data set; these perturbations are its stand-in, and every figure says so.

* Noise floor: each measure's repeatability coefficient RC = 1.96·√2·S_w (Bland & Altman 1999), S_w
  the within-photo standard deviation over the re-photographed copies: a change smaller than RC is
  within what re-photographing alone produces (95 % of repeat pairs differ by less).
* Calibration: comparability figures of re-photographed pairs (a photo with each of its copies) and of
  pairs of different people (every pair of originals); each limit sits just above the largest figure of
  the re-photographed pairs, and the report says how many pairs of different people it flags.
"""

from __future__ import annotations

import itertools
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.core.imageio import encode_jpeg, load_image
from ml.measures.comparability import CHECKS, PhotoFigures, face_colour, pair_figures, warnings_for

RC_FACTOR = 1.96 * math.sqrt(2)
LIMIT_MARGIN = 1.2
# The perturbations move the photo in its plane and scale its brightness only; real re-photographs
# also differ in 3-D head pose, light colour and landmark placement. A limit is therefore never tighter
# than what clinical photo standards tolerate between sessions (head rotation within ±5°, framing
# within 10 %) or than a slightly larger registration residual than the perturbations produce.
MINIMUM_LIMITS = {
    "residual_ipd": 0.03,
    "yaw_difference": 5.0,
    "pitch_difference": 5.0,
    "scale_change": 10.0,
    "exposure_difference": 20.0,
    "white_balance_difference": 1.5,
}


@dataclass(frozen=True)
class Perturbation:
    dx: float
    dy: float
    angle: float
    scale: float
    brightness: float
    jpeg_quality: int

    def as_dict(self) -> dict[str, float]:
        return {key: round(float(value), 4) for key, value in vars(self).items()}


def random_perturbation(rng: np.random.Generator) -> Perturbation:
    return Perturbation(
        dx=float(rng.uniform(-0.03, 0.03)),
        dy=float(rng.uniform(-0.03, 0.03)),
        angle=float(rng.uniform(-3, 3)),
        scale=float(rng.uniform(0.95, 1.05)),
        brightness=float(rng.uniform(0.9, 1.1)),
        jpeg_quality=int(rng.integers(80, 96)),
    )


def rephotograph(image: np.ndarray, perturbation: Perturbation) -> np.ndarray:
    """The photo as a second shot might show it (module docstring)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D((width / 2, height / 2), perturbation.angle, perturbation.scale)
    matrix[:, 2] += (perturbation.dx * width, perturbation.dy * height)
    moved = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    brightened = np.clip(moved.astype(np.float32) * perturbation.brightness, 0, 255).astype(np.uint8)
    return load_image(encode_jpeg(brightened, quality=perturbation.jpeg_quality))


def repeatability(values_by_photo: Sequence[Sequence[float]]) -> dict[str, float]:
    """S_w (pooled within-photo SD, each photo's copies) and RC = 1.96·√2·S_w, with the counts."""
    groups = [np.asarray(values, dtype=np.float64) for values in values_by_photo if len(values) >= 2]
    if not groups:
        raise ValueError("Need at least one photo with two or more copies.")
    within = sum(float(((group - group.mean()) ** 2).sum()) for group in groups)
    degrees = sum(len(group) - 1 for group in groups)
    sw = math.sqrt(within / degrees)
    means = np.array([group.mean() for group in groups])
    return {
        "within_sd": sw,
        "repeatability_coefficient": RC_FACTOR * sw,
        "mean": float(means.mean()),
        "between_photo_sd": float(means.std(ddof=1)) if len(means) > 1 else 0.0,
        "photos": len(groups),
        "copies": int(sum(len(group) for group in groups)),
    }


MeasureFunction = Callable[[np.ndarray], dict[str, float] | None]


def noise_floor(
    photos: Sequence[Path],
    measure: MeasureFunction,
    copies: int = 4,
    seed: int = 0,
    checkpoint: Path | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Measure each photo's ``copies`` re-photographed copies with ``measure`` (image → measures, None
    without a face) and each measure's repeatability. ``checkpoint`` (JSON lines) keeps finished photos
    so an interrupted run resumes."""
    done: dict[str, list[dict[str, float]]] = {}
    if checkpoint is not None and checkpoint.exists():
        for line in checkpoint.read_text().splitlines():
            entry = json.loads(line)
            done[entry["photo"]] = entry["copies"]
    for index, path in enumerate(photos):
        if str(path) in done:
            continue
        rng = np.random.default_rng([seed, index])
        image = load_image(path)
        measured = []
        for _ in range(copies):
            values = measure(rephotograph(image, random_perturbation(rng)))
            if values is not None:
                measured.append(values)
        done[str(path)] = measured
        if checkpoint is not None:
            with checkpoint.open("a") as handle:
                handle.write(json.dumps({"photo": str(path), "copies": measured}) + "\n")
        log(f"{index + 1}/{len(photos)} {path.name}: {len(measured)} copies measured")
    keys = sorted({key for measured in done.values() for values in measured for key in values})
    measures = {}
    for key in keys:
        per_photo = [[values[key] for values in measured if key in values] for measured in done.values()]
        try:
            measures[key] = repeatability(per_photo)
        except ValueError:
            continue
    return {"photos": len(done), "copies_per_photo": copies, "seed": seed, "measures": measures}


def calibrate(
    photos: Sequence[Path],
    figures_of: Callable[[np.ndarray], PhotoFigures | None],
    copies: int = 9,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Comparability figures of re-photographed pairs and of pairs of different people, the limits set
    just above the re-photographed pairs (× :data:`LIMIT_MARGIN`, at least :data:`MINIMUM_LIMITS`), and
    how many pairs of each kind warn."""
    originals: list[PhotoFigures] = []
    same: list[dict[str, float]] = []
    for index, path in enumerate(photos):
        image = load_image(path)
        original = figures_of(image)
        if original is None:
            log(f"{path.name}: no face, left out")
            continue
        originals.append(original)
        rng = np.random.default_rng([seed, index])
        for _ in range(copies):
            copy = figures_of(rephotograph(image, random_perturbation(rng)))
            if copy is not None:
                same.append(pair_figures(original, copy))
        log(f"{index + 1}/{len(photos)} {path.name}")
    different = [pair_figures(a, b) for a, b in itertools.combinations(originals, 2)]
    limits = {}
    for check in CHECKS:
        values = [figures[check.key] for figures in same if check.key in figures]
        if values:
            limits[check.key] = max(float(f"{max(values) * LIMIT_MARGIN:.3g}"), MINIMUM_LIMITS[check.key])
    same_warned = sum(bool(warnings_for(figures, limits)) for figures in same)
    different_warned = sum(bool(warnings_for(figures, limits)) for figures in different)
    flagged_by = {
        check.key: sum(
            bool(warnings_for({check.key: figures.get(check.key)}, limits)) for figures in different
        )
        for check in CHECKS
    }

    def distribution(values: list[dict[str, float]]) -> dict[str, dict[str, float]]:
        found = {}
        for check in CHECKS:
            column = np.array([figures[check.key] for figures in values if check.key in figures])
            if len(column):
                found[check.key] = {
                    "median": float(np.median(column)),
                    "p95": float(np.percentile(column, 95)),
                    "max": float(column.max()),
                }
        return found

    return {
        "limits": limits,
        "margin": LIMIT_MARGIN,
        "minimum_limits": MINIMUM_LIMITS,
        "rephotographed_pairs": {"pairs": len(same), "warned": same_warned, "figures": distribution(same)},
        "different_people_pairs": {
            "pairs": len(different),
            "warned": different_warned,
            "flagged_by_check": flagged_by,
            "figures": distribution(different),
        },
        "photos": len(originals),
        "copies_per_photo": copies,
        "seed": seed,
    }


def photo_figures_from(
    landmarks_of: Callable[[np.ndarray], dict[str, Any]],
) -> Callable[[np.ndarray], PhotoFigures | None]:
    """:class:`PhotoFigures` of an image from a landmarks analysis (``analyze_landmarks``' JSON)."""
    from ml.core.subject import subject_face

    def figures(image: np.ndarray) -> PhotoFigures | None:
        face = subject_face(landmarks_of(image)["faces"])
        if face is None:
            return None
        points = np.asarray(face["landmarks"], dtype=np.float64)
        return PhotoFigures(
            points, face["pose"], face_colour(image, points), size=(image.shape[1], image.shape[0])
        )

    return figures
