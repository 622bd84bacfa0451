"""Models of the zones pipeline, registered with :data:`ml.registry.registry` on discovery."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ml.config import weights_dir
from ml.registry import ModelSpec, registry
from ml.zones.ensemble import ENSEMBLE_FILE, ModelNotTrainedError, ZoneEnsemble, not_trained_message

LANDMARK_MODEL = "zones-landmark"
SEGMENTATION_MODEL = "zones-hrnet"
LANDMARK_MODEL_VERSION = "atlas-1"


def segmentation_model_dir() -> Path:
    """Where the trained HRNetV2 ensemble lives: ``<weights>/zones/hrnet``."""
    return weights_dir() / "zones" / "hrnet"


class LandmarkZoneModel:
    """The baseline: zones and face parts rendered from the landmarks of the ``landmarks`` model."""

    def __init__(self, landmark_model: str = "dlib-68") -> None:
        self.landmark_model = landmark_model


def _ensemble_metadata() -> dict[str, Any]:
    path = segmentation_model_dir() / ENSEMBLE_FILE
    if not path.is_file():
        return {}
    return json.loads(path.read_text())


def _load_segmentation_model() -> ZoneEnsemble:
    model_dir = segmentation_model_dir()
    if not (model_dir / ENSEMBLE_FILE).is_file():
        raise ModelNotTrainedError(not_trained_message(model_dir))
    return ZoneEnsemble(model_dir)


registry.register(
    ModelSpec(
        name=LANDMARK_MODEL,
        task="zones",
        version=LANDMARK_MODEL_VERSION,
        loader=LandmarkZoneModel,
        weights_path=None,
        licence="Apache-2.0 (project code); uses the dlib-68 landmark model (research use only).",
        metrics={},
        description=(
            "Geometric baseline: the 33 atlas zones and face parts (skin, eyes, nose, mouth; hair is always "
            "empty) drawn from 68 landmarks. No fitted weights; quality = atlas + landmarks."
        ),
        trained=False,
    )
)

_metadata = _ensemble_metadata()
registry.register(
    ModelSpec(
        name=SEGMENTATION_MODEL,
        task="zones",
        version=_metadata.get("version", "untrained"),
        loader=_load_segmentation_model,
        weights_path=(segmentation_model_dir() / next(iter(_metadata["weights"]))) if _metadata else None,
        licence=(
            "Apache-2.0 (project code). Weights trained on MEBeauty (non-commercial research use only) and "
            "FASSEG (no licence; cite Khan et al., ICIP 2015 / ICME 2017): research use only. Landmark "
            "pseudo-labels and face crops use dlib-68 (iBUG 300-W, no commercial use)."
        ),
        metrics={
            "validation_iou": _metadata.get("validation_iou", {}),
            "parts_validation_iou": _metadata.get("parts_validation_iou", {}),
        }
        if _metadata
        else {},
        description=(
            "HRNetV2 (timm hrnet_w18_small_v2) with three zone-set heads and a face-part head on a square "
            "face crop placed from dlib landmarks; each zone from the sub-model with the best validation IoU "
            "(Tuazon & Mortezaei, Skin Res Technol 2024). Short CPU training from scratch: see MODEL_CARD.md."
        ),
        trained=bool(_metadata),
    )
)
