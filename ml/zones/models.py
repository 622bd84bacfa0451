"""Models of the zones pipeline, registered with :data:`ml.registry.registry` on discovery."""

from __future__ import annotations

from pathlib import Path

from ml.config import weights_dir
from ml.model_names import DLIB_68, ZONES_HRNET, ZONES_LANDMARK
from ml.modelcard import ModelCard, installed_card
from ml.registry import ModelSpec, registry
from ml.zones.ensemble import ENSEMBLE_FILE, ModelNotTrainedError, ZoneEnsemble, not_trained_message

SEGMENTATION_WEIGHTS_FILE = "zones_hrnet.pt"


def segmentation_model_dir() -> Path:
    """Where the trained HRNetV2 ensemble lives: ``<weights>/zones/hrnet``."""
    return weights_dir() / "zones" / "hrnet"


class LandmarkZoneModel:
    """The baseline: zones and face parts rendered from the landmarks of the ``landmarks`` model."""

    def __init__(self, landmark_model: str = DLIB_68) -> None:
        self.landmark_model = landmark_model


def _load_segmentation_model(weights: Path | None) -> ZoneEnsemble:
    """The ensemble of the folder that holds ``weights`` (a weights file or the folder itself)."""
    model_dir = segmentation_model_dir() if weights is None else Path(weights)
    if model_dir.is_file():
        model_dir = model_dir.parent
    if not (model_dir / ENSEMBLE_FILE).is_file():
        raise ModelNotTrainedError(not_trained_message(model_dir))
    return ZoneEnsemble(model_dir)


registry.register(
    ModelSpec.from_card(
        ModelCard(
            name=ZONES_LANDMARK,
            task="zones",
            version="atlas-1",
            description=(
                "Geometric baseline: the 33 atlas zones (Tuazon & Mortezaei 2024) and face parts (skin, "
                "eyes, nose, mouth; hair is always empty) drawn from 68 landmarks."
            ),
            data="none: no fitted weights; the atlas is defined on the 68 iBUG landmarks (docs/zones.md).",
            command="none (geometry in ml/zones/atlas.py and ml/zones/landmark_model.py)",
            licence="Apache-2.0 (project code); uses the dlib-68 landmark model (research use only).",
            limitations="Quality is that of the atlas and of the landmarks; hair is not estimated.",
        ),
        lambda weights: LandmarkZoneModel(),
        trained=False,
    )
)


def _segmentation_card(weights: Path) -> ModelCard:
    return installed_card(weights) or ModelCard(
        name=ZONES_HRNET,
        task="zones",
        version="untrained",
        description="HRNetV2 zone ensemble (Tuazon & Mortezaei, Skin Res Technol 2024).",
        data="none yet: no weights are installed",
        command="python -m ml zones build-dataset --out DIR, then python -m ml zones train --dataset DIR",
        licence="Apache-2.0 (project code).",
        limitations="Not trained: zone jobs use the landmark baseline until it is.",
    )


_weights = segmentation_model_dir() / SEGMENTATION_WEIGHTS_FILE
registry.register(
    ModelSpec.from_card(
        _segmentation_card(_weights),
        _load_segmentation_model,
        weights_path=_weights,
        trained=(segmentation_model_dir() / ENSEMBLE_FILE).is_file() and _weights.is_file(),
    )
)
