"""Zone analysis of one photo with either model, and writing its mask files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.zones.atlas import ZONES
from ml.zones.landmark_model import PART_NAMES, part_masks, render_face_parts, render_zone_masks
from ml.zones.render import render_overview


class NoFaceError(ValueError):
    """No face was found in the photo."""


def analyze_zones(image: np.ndarray, model: str = "landmark") -> dict[str, Any]:
    """Zone masks ``(33, H, W)``, face-part masks and a JSON-safe summary for one photo.

    ``model`` is ``"landmark"`` (baseline from 68 landmarks) or ``"ssm"`` (the trained HRNetV2 ensemble,
    which raises :class:`ml.zones.ensemble.ModelNotTrainedError` when it has not been trained).
    """
    from ml.registry import registry
    from ml.zones.models import LANDMARK_MODEL, SEGMENTATION_MODEL

    if model == "landmark":
        from ml.core.landmarks import detect_faces_with_landmarks

        zone_model = registry.load(LANDMARK_MODEL)
        faces = detect_faces_with_landmarks(image, model=zone_model.landmark_model)
        if not faces:
            raise NoFaceError("No face was found in the photo; the landmark zone model needs a visible face.")
        landmarks = max(faces, key=lambda face: face.score).landmarks
        masks = render_zone_masks(landmarks, image.shape)
        parts = render_face_parts(landmarks, image.shape)
        name = LANDMARK_MODEL
        notes = ["Landmark baseline: zones are drawn geometrically from 68 landmarks; hair is not estimated."]
    elif model == "ssm":
        ensemble = registry.load(SEGMENTATION_MODEL)
        prediction = ensemble.predict(image)
        masks, parts = prediction.masks, prediction.parts
        name = SEGMENTATION_MODEL
        notes = [
            "Zone heads learnt from landmark pseudo-labels (no human zone annotations yet), in a short CPU "
            "training from scratch; measured IoU in ml/weights/zones/hrnet/MODEL_CARD.md."
        ]
        if not prediction.face_found:
            notes.append("No face was detected: the whole photo was segmented, without the face crop.")
    else:
        raise ValueError(f"Unknown zone model '{model}'; use 'landmark' or 'ssm'.")
    description = registry.describe(name)
    if not description["trained"] and model == "ssm":
        notes.append("The segmentation model is untrained; its output has no measured quality.")
    total = float(image.shape[0] * image.shape[1])
    zones = [
        {
            "number": zone.number,
            "abbreviation": zone.abbreviation,
            "name": zone.name,
            "area_px": int(masks[index].sum()),
            "area_fraction": float(masks[index].sum() / total),
        }
        for index, zone in enumerate(ZONES)
    ]
    parts_masks = part_masks(parts)
    return {
        "model": description,
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
        "zones": zones,
        "parts": {name: {"area_px": int(mask.sum())} for name, mask in parts_masks.items()},
        "notes": notes,
        "_masks": masks,
        "_parts": parts_masks,
    }


def write_outputs(image: np.ndarray, result: dict[str, Any], out: Path) -> dict[str, str]:
    """Write ``zones/<ABBR>.png``, ``parts/<part>.png`` (binary 0/255) and ``overview.png``; returns paths."""
    out = Path(out)
    (out / "zones").mkdir(parents=True, exist_ok=True)
    (out / "parts").mkdir(parents=True, exist_ok=True)
    for index, zone in enumerate(ZONES):
        Image.fromarray(result["_masks"][index].astype(np.uint8) * 255).save(
            out / "zones" / f"{zone.abbreviation}.png"
        )
    for name in PART_NAMES:
        Image.fromarray(result["_parts"][name].astype(np.uint8) * 255).save(out / "parts" / f"{name}.png")
    Image.fromarray(render_overview(image, result["_masks"])).save(out / "overview.png")
    return {"zones": str(out / "zones"), "parts": str(out / "parts"), "overview": str(out / "overview.png")}
