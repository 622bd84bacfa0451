"""Every measure of a photo, read from its analysis results, with its definition and noise floor.

Keys: the landmark measures of :mod:`ml.measures.facial`; ``normality_score`` and ``normality_rating``;
per atlas zone ``zone_area:<ZONE>`` (share of the face), ``wrinkle_area:<ABBR>`` (wrinkle pixels as a
percentage of the zone) and ``wrinkle_length:<ZONE>`` (total wrinkle length in IPD); and
``wrinkle_area:interest`` over the study's zones of interest together; per clinical wrinkle type (the
9 classes of :mod:`ml.wrinkles.type_geometry`, each an anatomical region) ``wrinkle_type_area:<TYPE>``
(wrinkle pixels as a percentage of the region's analysed skin) and ``wrinkle_type_length:<TYPE>``
(total wrinkle length in IPD).
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.subject import subject_face
from ml.measures.facial import IPD, LANDMARK_MEASURES, RATIO, MeasureDefinition, face_frame, facial_measures
from ml.wrinkles.type_geometry import TYPE_CLASSES, TYPE_LABELS
from ml.zones.atlas import ZONES

NOISE_FLOOR_FILE = Path(__file__).with_name("noise_floor.json")
# The normality score's floor comes from the normality pipeline's framing measurement (``python -m ml
# normality write-reference --measures-floor``), not from the re-photography run above: it belongs to
# one normalizer and residual map, so it is kept in its own file that the measures run does not rewrite.
NORMALITY_NOISE_FLOOR_FILE = Path(__file__).with_name("noise_floor_normality.json")
PERCENT = "%"
SCORE = "score"

_FIXED = {
    "normality_score": MeasureDefinition(
        "normality_score",
        "Normality score S",
        SCORE,
        "normality",
        "The normality pipeline's score S of the study's region (higher = more normal; docs/normality.md).",
    ),
    "normality_rating": MeasureDefinition(
        "normality_rating",
        "Normality rating (1–7)",
        SCORE,
        "normality",
        "The rating regressor's 1–7 rating; the study's calibrated regressor when one is active.",
    ),
    "wrinkle_area:interest": MeasureDefinition(
        "wrinkle_area:interest",
        "Wrinkle area, zones of interest",
        PERCENT,
        "wrinkles",
        "Wrinkle pixels in the study's zones of interest as a percentage of those zones' pixels.",
    ),
}


@cache
def definition(key: str) -> MeasureDefinition:
    """The definition of a measure key (KeyError for an unknown key)."""
    if key in LANDMARK_MEASURES:
        return LANDMARK_MEASURES[key]
    if key in _FIXED:
        return _FIXED[key]
    family, _, abbreviation = key.partition(":")
    if family in TYPE_FAMILIES:
        return _type_definition(key, family, abbreviation)
    zone = next((zone for zone in ZONES if zone.abbreviation == abbreviation), None)
    if zone is None:
        raise KeyError(key)
    if family == "zone_area":
        return MeasureDefinition(
            key,
            f"{zone.name}: share of the face",
            RATIO,
            "zones",
            f"Pixels of zone {abbreviation} as a share of the face's pixels.",
        )
    if family == "wrinkle_area":
        return MeasureDefinition(
            key,
            f"{zone.name}: wrinkle area",
            PERCENT,
            "wrinkles",
            f"Wrinkle pixels in zone {abbreviation} as a percentage of the zone's pixels.",
        )
    if family == "wrinkle_length":
        return MeasureDefinition(
            key,
            f"{zone.name}: wrinkle length",
            IPD,
            "wrinkles",
            f"Total skeleton length of the wrinkles in zone {abbreviation}, in IPD.",
        )
    raise KeyError(key)


ZONE_FAMILIES = ("zone_area", "wrinkle_area", "wrinkle_length")
TYPE_FAMILIES = ("wrinkle_type_area", "wrinkle_type_length")
WRINKLE_TYPES_GROUP = "wrinkle_types"
# The groups whose noise floors are measured on photos of wrinkled faces (ml/measures/cli.py).
WRINKLE_GROUPS = ("wrinkles", WRINKLE_TYPES_GROUP)


def _type_definition(key: str, family: str, name: str) -> MeasureDefinition:
    if name not in TYPE_LABELS:
        raise KeyError(key)
    label = TYPE_LABELS[name]
    if family == "wrinkle_type_area":
        return MeasureDefinition(
            key,
            f"{label}: wrinkle area",
            PERCENT,
            WRINKLE_TYPES_GROUP,
            f"Wrinkle pixels in the {label.lower()} region (docs/wrinkles.md, 'Wrinkle types') as a "
            "percentage of the region's analysed skin.",
        )
    return MeasureDefinition(
        key,
        f"{label}: wrinkle length",
        IPD,
        WRINKLE_TYPES_GROUP,
        f"Total skeleton length of the wrinkles in the {label.lower()} region, in IPD.",
    )


@cache
def group_keys(group: str) -> tuple[str, ...]:
    """Every measure key of ``group`` that :func:`definition` knows, sorted (readers select them)."""
    keys = (
        [*LANDMARK_MEASURES, *_FIXED]
        + [f"{family}:{zone.abbreviation}" for family in ZONE_FAMILIES for zone in ZONES]
        + [f"{family}:{name}" for family in TYPE_FAMILIES for name in TYPE_CLASSES]
    )
    return tuple(sorted(key for key in keys if definition(key).group == group))


@cache
def noise_floors() -> dict[str, float]:
    """Each measure's repeatability coefficient (``python -m ml measures noise-floor``; the normality
    score's from the normality pipeline's framing test), by key. A measure that was zero on every copy
    of every photo (no test photo showed the feature, e.g. bunny lines) has no floor: its zero spread
    says nothing about the noise, so a change in it must not read as beyond noise."""
    return {
        key: row["repeatability_coefficient"]
        for path in (NOISE_FLOOR_FILE, NORMALITY_NOISE_FLOOR_FILE)
        if path.exists()
        for key, row in json.loads(path.read_text())["measures"].items()
        if not _never_observed(row)
    }


@cache
def noise_floor_weights_sha256(analysis: str) -> str | None:
    """SHA-256 of the weights of the ``analysis`` model (``wrinkles``, ``zones``, ...) the shipped noise
    floors were measured with: a floor belongs to one model version."""
    if not NOISE_FLOOR_FILE.exists():
        return None
    model = json.loads(NOISE_FLOOR_FILE.read_text()).get("models", {}).get(analysis) or {}
    return model.get("weights_sha256")


def _never_observed(row: dict[str, float]) -> bool:
    return row.get("mean") == 0 and row.get("between_photo_sd") == 0 and row["within_sd"] == 0


def _subject_landmarks(landmarks_data: dict[str, Any] | None) -> np.ndarray | None:
    face = subject_face((landmarks_data or {}).get("faces") or [])
    return None if face is None else np.asarray(face["landmarks"], dtype=np.float64)


def photo_measures(
    *,
    landmarks: dict[str, Any] | None = None,
    zones: dict[str, Any] | None = None,
    wrinkles: dict[str, Any] | None = None,
    normality: dict[str, Any] | None = None,
    zones_of_interest: list[str] = (),
) -> dict[str, float]:
    """Every measure the given results (each a job's JSON, or None) allow, by key."""
    measures: dict[str, float] = {}
    points = _subject_landmarks(landmarks)
    ipd_px = None
    if points is not None:
        try:
            measures.update(facial_measures(points))
            ipd_px = face_frame(points)[1]
        except ValueError:
            pass  # degenerate landmarks (not 68 points, eyes on one spot): no landmark measures
    if normality:
        measures["normality_score"] = float(normality["score"])
        rating = (normality.get("rating") or {}).get("value")
        if rating is not None:
            measures["normality_rating"] = float(rating)
    interest = set(zones_of_interest)
    for zone in (zones or {}).get("zones", []):
        if zone["abbreviation"] in interest and "face_fraction" in zone:
            measures[f"zone_area:{zone['abbreviation']}"] = float(zone["face_fraction"])
    chosen_area = chosen_wrinkles = 0
    for zone in (wrinkles or {}).get("zones", []):
        abbreviation = zone["abbreviation"]
        if abbreviation not in interest:
            continue
        measures[f"wrinkle_area:{abbreviation}"] = 100 * float(zone["area_fraction"])
        if ipd_px:
            measures[f"wrinkle_length:{abbreviation}"] = float(zone["total_length_px"]) / ipd_px
        chosen_area += zone.get("zone_area_px", 0)
        chosen_wrinkles += zone.get("wrinkle_area_px", 0)
    if chosen_area:
        measures["wrinkle_area:interest"] = 100 * chosen_wrinkles / chosen_area
    for region in (wrinkles or {}).get("type_regions", []):
        if not region["region_px"]:
            continue  # the region is not on the analysed skin (outside the photo or the model's square)
        measures[f"wrinkle_type_area:{region['class']}"] = 100 * float(region["area_fraction"])
        if ipd_px:
            measures[f"wrinkle_type_length:{region['class']}"] = float(region["total_length_px"]) / ipd_px
    return measures
