"""Noise floor of the wrinkle figures: how much they move when the same face is photographed again.

A *re-photograph* of a photo is one random draw of: shift up to ±2 % of the photo's side, rotation
±3°, scale ±5 % (one similarity warp, reflected border), brightness ±10 % and a JPEG re-encoding at
quality 70–95. For each photo two re-photographs are analysed with :func:`analyze_wrinkles`; the
change between them is what a clinician would see for an untreated face. The **noise floor** of a
figure is the 95th percentile of the absolute change over all photos.

Changes are taken as the comparison page shows them: area fractions in percentage points, the line
count in lines, the total length in per cent of the larger of the two, the mean width in pixels.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import cv2
import numpy as np

FLOOR_PERCENTILE = 95.0
MAX_SHIFT = 0.02
MAX_ROTATION_DEGREES = 3.0
MAX_SCALE_CHANGE = 0.05
MAX_BRIGHTNESS_CHANGE = 0.10
JPEG_QUALITY_RANGE = (70, 95)


def rephotograph(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """One re-photography-like copy of an RGB uint8 photo (see the module doc)."""
    height, width = image.shape[:2]
    matrix = cv2.getRotationMatrix2D(
        (width / 2, height / 2),
        rng.uniform(-MAX_ROTATION_DEGREES, MAX_ROTATION_DEGREES),
        1.0 + rng.uniform(-MAX_SCALE_CHANGE, MAX_SCALE_CHANGE),
    )
    matrix[:, 2] += rng.uniform(-MAX_SHIFT, MAX_SHIFT, size=2) * (width, height)
    warped = cv2.warpAffine(
        image, matrix, (width, height), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    brighter = np.clip(
        warped.astype(np.float32) * (1.0 + rng.uniform(-MAX_BRIGHTNESS_CHANGE, MAX_BRIGHTNESS_CHANGE)), 0, 255
    )
    quality = int(rng.integers(JPEG_QUALITY_RANGE[0], JPEG_QUALITY_RANGE[1] + 1))
    encoded = cv2.imencode(
        ".jpg",
        cv2.cvtColor(brighter.astype(np.uint8), cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, quality],
    )[1]
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def figure_changes(first: dict[str, Any], second: dict[str, Any]) -> dict[str, float]:
    """Absolute changes between two wrinkle results, keyed ``scope/figure`` (``overall``, ``forehead``,
    ``below_brows``, ``zone:ABBR``)."""
    changes: dict[str, float] = {}
    scopes = [("overall", first["overall"], second["overall"])]
    scopes += [(name, first["regions"][name], second["regions"][name]) for name in first["regions"]]
    for scope, before, after in scopes:
        changes[f"{scope}/area_percent_points"] = 100 * abs(after["area_fraction"] - before["area_fraction"])
        changes[f"{scope}/count"] = abs(after["count"] - before["count"])
        longer = max(after["total_length_px"], before["total_length_px"])
        changes[f"{scope}/length_percent"] = (
            100 * abs(after["total_length_px"] - before["total_length_px"]) / longer if longer else 0.0
        )
        if before["mean_width_px"] is not None and after["mean_width_px"] is not None:
            changes[f"{scope}/mean_width_px"] = abs(after["mean_width_px"] - before["mean_width_px"])
    second_zones = {zone["abbreviation"]: zone for zone in second["zones"]}
    for zone in first["zones"]:
        other = second_zones[zone["abbreviation"]]
        changes[f"zone:{zone['abbreviation']}/area_percent_points"] = 100 * abs(
            other["area_fraction"] - zone["area_fraction"]
        )
    return changes


def measure_noise_floor(
    photos: Sequence[Path],
    analyse: Callable[[np.ndarray], dict[str, Any]],
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """The noise floor of every figure over ``photos`` (two re-photographs each; photos without a face
    are listed and left out): ``{"floor": {scope: {figure: value}}, "median": ..., "photos": ...}``."""
    from ml.core.imageio import load_image

    rng = np.random.default_rng(seed)
    collected: dict[str, list[float]] = {}
    skipped = []
    started = time.monotonic()
    for number, path in enumerate(photos, start=1):
        image = load_image(path)
        try:
            results = [analyse(rephotograph(image, rng)) for _ in range(2)]
        except ValueError as error:
            skipped.append({"photo": Path(path).name, "reason": str(error)})
            continue
        for key, value in figure_changes(*results).items():
            collected.setdefault(key, []).append(float(value))
        if number % 10 == 0:
            log(f"{number}/{len(photos)} photos, {time.monotonic() - started:.0f} s")
    floor: dict[str, dict[str, float]] = {}
    median: dict[str, dict[str, float]] = {}
    for key, values in sorted(collected.items()):
        scope, figure = key.split("/")
        floor.setdefault(scope, {})[figure] = float(np.percentile(values, FLOOR_PERCENTILE))
        median.setdefault(scope, {})[figure] = float(np.median(values))
    return {
        "definition": f"{FLOOR_PERCENTILE:g}th percentile of the absolute change between two "
        "re-photographs of the same photo (shift ±2 %, rotation ±3°, scale ±5 %, brightness ±10 %, "
        "JPEG 70–95)",
        "photos": len(photos) - len(skipped),
        "skipped": skipped,
        "seed": seed,
        "floor": floor,
        "median": median,
        "seconds": time.monotonic() - started,
    }


def weights_sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def markdown_report(report: dict[str, Any], command: str) -> str:
    """The floor per scope and figure, with its median, the model and the command."""
    lines = [
        "# Noise floor of the wrinkle figures (real photographs)",
        "",
        f"Model: {report['model']} (weights SHA-256 `{report['weights_sha256'][:12]}…`). "
        f"Photos: {report['photos']} from {report['data']}, split `{report['split']}`. "
        f"Floor: {report['definition']}. A change between two visits within the floor is shown on the "
        'comparison page as "no measurable change".',
        "",
        f"Command: `{command}`",
        "",
        "| scope | area (percentage points) | lines | length (%) | mean width (px) |",
        "|---|---|---|---|---|",
    ]
    for scope, figures in report["floor"].items():
        cells = [
            figures.get(name) for name in ("area_percent_points", "count", "length_percent", "mean_width_px")
        ]
        median = report["median"][scope]
        lines.append(
            f"| {scope} | "
            + " | ".join(
                "–" if value is None else f"{value:.3g} (median {median[name]:.3g})"
                for value, name in zip(
                    cells, ("area_percent_points", "count", "length_percent", "mean_width_px"), strict=True
                )
            )
            + " |"
        )
    return "\n".join(lines) + "\n"
