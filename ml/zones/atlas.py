"""The 33 clinical facial zones, each built from the 68 iBUG landmarks and derived points.

Zones follow the numbering and abbreviations of Tuazon & Mortezaei, "Automatic labeling of facial
zones for digital clinical application: an ensemble of semantic segmentation models", Skin Res
Technol 2024, Table 2. The paper's figure is not available, so each zone's extent is our anatomical
reading (see ``docs/zones.md``).

Side convention: ``L`` is the **patient's** left, which appears on the **image right** of a frontal
photo. iBUG points 0–16 run from the image left (patient's right jaw) to the image right, so left
zones are built from points 9–16, 22–26, 42–47, 35 and 54, and each right zone is the mirror of its
left zone through :data:`IBUG_MIRROR`.

Geometry lives in a face frame: ``x`` runs from the image-left eye centre to the image-right eye
centre, ``up`` is perpendicular to it (towards the forehead) and lengths are in units of the
inter-ocular distance (IOD, between eye centres), so zones follow roll and scale of the face.
"""

from __future__ import annotations

from dataclasses import dataclass

N_LANDMARKS = 68

# Index of each iBUG-68 point's mirror image (patient right <-> patient left).
IBUG_MIRROR: tuple[int, ...] = (
    *range(16, -1, -1),  # jaw 0..16
    *range(26, 16, -1),  # brows 17..26
    27,
    28,
    29,
    30,  # nose bridge
    35,
    34,
    33,
    32,
    31,  # nostril base
    45,
    44,
    43,
    42,
    47,
    46,  # image-left eye 36..41
    39,
    38,
    37,
    36,
    41,
    40,  # image-right eye 42..47
    54,
    53,
    52,
    51,
    50,
    49,
    48,  # outer upper lip 48..54
    59,
    58,
    57,
    56,
    55,  # outer lower lip 55..59
    64,
    63,
    62,
    61,
    60,  # inner upper lip 60..64
    67,
    66,
    65,  # inner lower lip 65..67
)


@dataclass(frozen=True)
class Zone:
    """One atlas zone: 1-based ``number``, ``abbreviation``, ``name``, ``side`` and a plain definition."""

    number: int
    abbreviation: str
    name: str
    side: str  # "left", "right" or "midline"
    definition: str


_LEFT_DEFINITIONS: dict[str, tuple[str, str]] = {
    "TA": (
        "temporal area",
        "Temple: from the lateral canthus level up to 0.45 IOD above the brow tail (point 26), between the "
        "brow tail and the face contour extrapolated above jaw point 16.",
    ),
    "PA": (
        "preauricular area",
        "Band 0.22 IOD wide inside the face contour in front of the ear, from the jaw angle (point 13) up "
        "to the lateral canthus level.",
    ),
    "JA": (
        "jawline / jowl area",
        "Band 0.22 IOD wide inside the jaw contour from point 10 to the jaw angle (13).",
    ),
    "OC": (
        "oral commissure",
        "Disc of radius 0.16 IOD centred 0.05 IOD outside and 0.07 IOD below the mouth corner (point 54), "
        "minus the lips and the upper perioral area.",
    ),
    "NF": (
        "nasolabial fold",
        "Band 0.14 IOD wide from the alar crease (0.13 IOD outside point 35) to 0.12 IOD outside and 0.10 "
        "IOD below the mouth corner; overlaps the anteromedial cheek, submalar area, oral commissure, "
        "upper perioral and perioral areas.",
    ),
    "SA": (
        "submalar area",
        "Cheek hollow from the nose-tip level (point 33) down to 0.15 IOD below the mouth corner, between "
        "the nasolabial line and the preauricular / jawline band.",
    ),
    "ZA": (
        "zygomatic area",
        "Cheekbone: below the lateral infraorbital area and the lateral canthus, from the mid-pupil line out "
        "to the preauricular band, down to the nose-tip level.",
    ),
    "AA": (
        "anteromedial cheek area",
        "Cheek 'apple': below the infraorbital areas, from the side of the nose and the upper nasolabial "
        "line out to the mid-pupil line, down to the nose-tip level.",
    ),
    "LI": (
        "lateral infraorbital area",
        "Below the lower eyelid from the mid-pupil point to 0.08 IOD beyond the lateral canthus, "
        "0.28 IOD deep.",
    ),
    "MI": (
        "medial infraorbital area (tear trough)",
        "Below the lower eyelid from the inner canthus to the mid-pupil point, 0.28 IOD deep, bounded "
        "medially by the side of the nose.",
    ),
    "UL": ("upper eyelid", "Between the upper lid margin (points 42-45) and 0.08 IOD below the brow."),
    "BA": ("brow area", "The eyebrow points 22-26 widened 0.08 IOD up and down."),
}

_MIDLINE_DEFINITIONS: dict[str, tuple[str, str]] = {
    "FFA": (
        "central forehead",
        "Between the mid-brow points 19 and 24, from 0.08 IOD above the brows to the estimated hairline "
        "0.8 IOD above them (no landmark marks the hairline).",
    ),
    "CGA": (
        "glabella",
        "Between the inner brow ends (points 21, 22), from the nasion (point 27) up to 0.3 IOD above the "
        "brows; overlaps the lower central forehead.",
    ),
    "NBA": (
        "nasal bridge / dorsum",
        "Nasal dorsum from the nasion (point 27, 0.16 IOD wide) to the nose tip (point 30, 0.24 IOD wide).",
    ),
    "FPA": (
        "perioral area",
        "Ring 0.12 IOD wide around the outer lip contour (points 48-59), lips excluded; overlaps the upper "
        "perioral area, the labiomental sulcus, the commissures and the nasolabial folds.",
    ),
    "FUL": (
        "upper lip (vermilion)",
        "Red upper lip between the outer (48-54) and inner (60-64) lip contours.",
    ),
    "FLW": (
        "lower lip (vermilion)",
        "Red lower lip between the outer (54-59, 48) and inner (64-67, 60) contours.",
    ),
    "LMS": (
        "labiomental sulcus",
        "Below the lower lip between points 55 and 59, down to 40 % of the way from the lower lip to "
        "the chin.",
    ),
    "FCS": ("chin", "From the labiomental sulcus down to the chin contour (jaw points 6-10)."),
    "UPA": (
        "upper perioral area (philtrum and white upper lip)",
        "From the nose base and alar bases down to the upper vermilion border (points 48-54), out to the "
        "middle of the nasolabial lines.",
    ),
}

_ORDER: tuple[str, ...] = (
    "LTA",
    "LPA",
    "LJA",
    "LOC",
    "LNF",
    "LSA",
    "LZA",
    "LAA",
    "LLI",
    "LMI",
    "LUL",
    "LBA",
    "FFA",
    "CGA",
    "NBA",
    "FPA",
    "FUL",
    "FLW",
    "LMS",
    "FCS",
    "ROC",
    "RNF",
    "RSA",
    "RZA",
    "RAA",
    "RLI",
    "RMI",
    "RUL",
    "RBA",
    "RTA",
    "RPA",
    "RJA",
    "UPA",
)


def _build_zones() -> tuple[Zone, ...]:
    zones = []
    for number, abbreviation in enumerate(_ORDER, start=1):
        if abbreviation in _MIDLINE_DEFINITIONS:
            name, definition = _MIDLINE_DEFINITIONS[abbreviation]
            zones.append(Zone(number, abbreviation, name, "midline", definition))
            continue
        side = "left" if abbreviation[0] == "L" else "right"
        name, definition = _LEFT_DEFINITIONS[abbreviation[1:]]
        if side == "right":
            definition = definition + " Mirror image of the left zone."
        zones.append(Zone(number, abbreviation, f"{side} {name}", side, definition))
    return tuple(zones)


ZONES: tuple[Zone, ...] = _build_zones()
ZONE_ABBREVIATIONS: tuple[str, ...] = tuple(zone.abbreviation for zone in ZONES)
ZONE_INDEX: dict[str, int] = {abbreviation: index for index, abbreviation in enumerate(ZONE_ABBREVIATIONS)}
N_ZONES = len(ZONES)


def zone(abbreviation: str) -> Zone:
    """The zone with that abbreviation; ``KeyError`` lists the valid ones."""
    try:
        return ZONES[ZONE_INDEX[abbreviation]]
    except KeyError:
        raise KeyError(
            f"Unknown zone '{abbreviation}'. Valid zones: {', '.join(ZONE_ABBREVIATIONS)}."
        ) from None
