"""Zone analysis of one photo: the pipeline's one entry point, used by the CLI and the worker alike.

A zone's share is always ``face_fraction``: its pixels divided by the face's pixels, the face being
the union of the face parts (skin, eyes, nose, mouth), or of the 33 zones when no part was found.
Zones overlap by design, so the fractions need not sum to 1.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.model_names import DLIB_68, ZONES_HRNET, ZONES_LANDMARK
from ml.progress import ProgressCallback, report
from ml.zones.atlas import ZONES
from ml.zones.encoding import zone_outlines
from ml.zones.landmark_model import PART_NAMES, part_masks, render_face_parts, render_zone_masks
from ml.zones.render import render_overview

FACE_PARTS_OF_THE_FACE = ("skin", "eyes", "nose", "mouth")
# The command line's short names for the two zone models.
MODEL_ALIASES = {"landmark": ZONES_LANDMARK, "ssm": ZONES_HRNET}
LANDMARK_BASELINE_NOTE = (
    "Landmark baseline: zones are drawn geometrically from 68 landmarks (no fitted weights); hair is not "
    "estimated."
)


@dataclass
class ZonesAnalysis:
    """``masks``: ``(33, H, W)`` bool in atlas order (overlaps kept); ``parts``: face-part label map
    ``(H, W)`` uint8; ``data``: the JSON result."""

    masks: np.ndarray
    parts: np.ndarray
    data: dict[str, Any]


def analyze_zones(
    image: np.ndarray,
    *,
    model: str = ZONES_LANDMARK,
    weights: Path | str | None = None,
    landmarks: np.ndarray | None = None,
    landmark_model: str = DLIB_68,
    progress: ProgressCallback | None = None,
) -> ZonesAnalysis:
    """The 33 zones and face parts of ``image`` with ``model`` (a registry name or ``landmark``/``ssm``).

    ``landmarks`` are the subject's 68 points when known (e.g. an earlier landmarks result); otherwise
    ``landmark_model`` finds them (the landmark baseline needs them; the HRNet ensemble places its face
    crop with them). Raises :class:`ml.core.subject.NoFaceError` when the baseline finds no face and
    :class:`ml.zones.ensemble.ModelNotTrainedError` for an untrained ensemble.
    """
    from ml.registry import registry

    model = MODEL_ALIASES.get(model, model)
    if model not in (ZONES_LANDMARK, ZONES_HRNET):
        raise ValueError(f"Unknown zone model '{model}'; use {ZONES_LANDMARK} or {ZONES_HRNET}.")
    notes: list[str] = []
    if model == ZONES_LANDMARK:
        if landmarks is None:
            report(progress, 0.1, "Finding landmarks")
            landmarks = _subject_landmarks(image, landmark_model)
        report(progress, 0.5, "Drawing the 33 zones from the landmarks")
        masks = render_zone_masks(landmarks, image.shape)
        parts = render_face_parts(landmarks, image.shape)
        notes.append(LANDMARK_BASELINE_NOTE)
    else:
        report(progress, 0.1, "Loading the zone model")
        ensemble = registry.load(ZONES_HRNET, weights)
        report(progress, 0.3, "Segmenting zones (HRNetV2 ensemble)")
        prediction = ensemble.predict(image, landmarks)
        masks, parts = prediction.masks, prediction.parts
        if not prediction.face_found:
            notes.append("No face was detected: the whole photo was segmented, without the face crop.")
    description = registry.describe(model, weights if model == ZONES_HRNET else None)
    if model == ZONES_HRNET and not description["trained"]:
        notes.append("The segmentation model is untrained; its output has no measured quality.")
    report(progress, 0.8, "Measuring zones")
    return ZonesAnalysis(
        masks, np.asarray(parts, dtype=np.uint8), _zones_data(image, masks, parts, description, notes)
    )


def _subject_landmarks(image: np.ndarray, landmark_model: str) -> np.ndarray:
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks

    return subject_landmarks(
        detect_faces_with_landmarks(image, model=landmark_model),
        "No face was found in the photo; the landmark zone model needs a visible face.",
    )


def face_mask(masks: np.ndarray, parts: np.ndarray) -> np.ndarray:
    """The face's pixels: the union of the face parts, else of the zones (see the module docstring)."""
    by_name = part_masks(parts)
    face = np.zeros(masks.shape[1:], dtype=bool)
    for name in FACE_PARTS_OF_THE_FACE:
        face |= by_name[name]
    return face if face.any() else masks.any(axis=0)


def _zones_data(
    image: np.ndarray, masks: np.ndarray, parts: np.ndarray, description: dict[str, Any], notes: list[str]
) -> dict[str, Any]:
    face_area = int(face_mask(masks, parts).sum())
    zones = []
    for index, zone in enumerate(ZONES):
        area = int(masks[index].sum())
        zones.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "area_px": area,
                "face_fraction": area / face_area if face_area else 0.0,
                "outlines": zone_outlines(masks[index]),
            }
        )
    return {
        "model": description,
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
        "face_area_px": face_area,
        "zones": zones,
        "parts": {name: {"area_px": int(mask.sum())} for name, mask in part_masks(parts).items()},
        "notes": notes,
    }


def write_outputs(image: np.ndarray, analysis: ZonesAnalysis, out: Path) -> None:
    """Write ``zones/<ABBR>.png``, ``parts/<part>.png`` (binary 0/255) and ``overview.png`` into ``out``."""
    out = Path(out)
    (out / "zones").mkdir(parents=True, exist_ok=True)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    for index, zone in enumerate(ZONES):
        Image.fromarray(analysis.masks[index].astype(np.uint8) * 255).save(
            out / "zones" / f"{zone.abbreviation}.png"
        )
    for name, mask in part_masks(analysis.parts).items():
        if name in PART_NAMES:
            Image.fromarray(mask.astype(np.uint8) * 255).save(out / "parts" / f"{name}.png")
    Image.fromarray(render_overview(image, analysis.masks)).save(out / "overview.png")
