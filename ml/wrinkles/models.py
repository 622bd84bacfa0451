"""Registry entries of the default wrinkle model (U-Net + weighted deep supervision) and of the
wrinkle-type detectors: YOLOv8n (``<weights_dir>/wrinkle-types/wrinkle_types.pt``) and the
landmark-geometry rules (``<weights_dir>/wrinkle-types-geometry/rules.json``). The default type detector
is the trained one with the best mAP50 on the val split (:func:`default_type_model`).

The weights are ``<weights_dir>/wrinkles/unet_wds.pt`` with their model card ``unet_wds.card.json``
(written by ``python -m ml wrinkles card``). Without the weights file the model is registered as
untrained and loading it fails with a clear message.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ml.config import weights_dir
from ml.model_names import WRINKLE_TYPES_GEOMETRY, WRINKLE_TYPES_YOLO, WRINKLES_UNET_WDS
from ml.modelcard import ModelCard, installed_card
from ml.registry import ModelSpec, registry, weights_file

DEFAULT_WRINKLE_MODEL = WRINKLES_UNET_WDS
WEIGHTS_FILE = weights_dir() / "wrinkles" / "unet_wds.pt"


def _load(weights: Path | None) -> Any:
    path = weights_file(
        weights,
        WEIGHTS_FILE,
        "No trained wrinkle weights ({name}); train them with `python -m ml wrinkles train`.",
    )
    from ml.wrinkles.train import load_checkpoint

    return load_checkpoint(path)


def _card() -> ModelCard:
    return installed_card(WEIGHTS_FILE) or ModelCard(
        name=WRINKLES_UNET_WDS,
        task="wrinkle-segmentation",
        version="untrained",
        description="U-Net with weighted deep supervision (Kim et al. 2023), RGB + texture-map input.",
        data="none yet: no weights are installed",
        command="python -m ml wrinkles synthesize ..., then python -m ml wrinkles train (docs/wrinkles.md)",
        licence="Apache-2.0 (project code).",
        limitations="Not trained: no wrinkle figures can be computed until weights are installed or a "
        "trained version is activated.",
    )


registry.register(ModelSpec.from_card(_card(), _load, weights_path=WEIGHTS_FILE))


TYPES_WEIGHTS_FILE = weights_dir() / "wrinkle-types" / "wrinkle_types.pt"


def _load_types(weights: Path | None) -> Any:
    path = weights_file(
        weights,
        TYPES_WEIGHTS_FILE,
        "No trained wrinkle-type weights ({name}); train them with `python -m ml wrinkles train-types`.",
    )
    from ml.wrinkles.types import DEFAULT_IMAGE_SIZE, load_type_detector

    # The detector runs at the resolution it was trained at (its card says which).
    card = installed_card(path)
    image_size = card.details.get("image_size") if card else None
    return load_type_detector(path, image_size=int(image_size or DEFAULT_IMAGE_SIZE))


def _types_card() -> ModelCard:
    return installed_card(TYPES_WEIGHTS_FILE) or ModelCard(
        name=WRINKLE_TYPES_YOLO,
        task="wrinkle-type-detection",
        version="untrained",
        description="YOLOv8n (Ultralytics, from yolov8n.yaml) detecting 9 clinical wrinkle types.",
        data="none yet: no weights are installed",
        command="python -m ml wrinkles train-types --data DATA/wrinkle-boxes --out FILE --work DIR",
        licence="AGPL-3.0 (Ultralytics); research use only (wrinkle-boxes photos).",
        limitations="Not trained: no wrinkle types are reported until weights are installed.",
    )


registry.register(ModelSpec.from_card(_types_card(), _load_types, weights_path=TYPES_WEIGHTS_FILE))


GEOMETRY_RULES_FILE = weights_dir() / "wrinkle-types-geometry" / "rules.json"
TYPE_DETECTION = "wrinkle-type-detection"


def _load_geometry(weights: Path | None) -> Any:
    path = weights_file(
        weights,
        GEOMETRY_RULES_FILE,
        "No fitted wrinkle-type rules ({name}); fit them with `python -m ml wrinkles fit-geometry-types`.",
    )
    from ml.wrinkles.type_geometry import GeometryTypeDetector, TypeRules

    return GeometryTypeDetector(TypeRules.read(path))


def _geometry_card() -> ModelCard:
    return installed_card(GEOMETRY_RULES_FILE) or ModelCard(
        name=WRINKLE_TYPES_GEOMETRY,
        task=TYPE_DETECTION,
        version="untrained",
        description="Landmark-geometry rules on the wrinkle segmentation: the 9 clinical wrinkle types as "
        "facial regions (docs/wrinkles.md).",
        data="none yet: no rules are fitted",
        command="python -m ml wrinkles fit-geometry-types --data DATA/wrinkle-boxes --cache DIR --out FILE",
        licence="Apache-2.0 (project code).",
        limitations="Not fitted: no wrinkle types are reported until rules are installed.",
    )


registry.register(ModelSpec.from_card(_geometry_card(), _load_geometry, weights_path=GEOMETRY_RULES_FILE))


def default_type_model() -> str | None:
    """The wrinkle-type detector the analysis runs: of the trained ones, the best mAP50 on the val split
    (their cards), so a better detector (a YOLO trained on a GPU) replaces the geometry rules by being
    installed; ``None`` when none is trained."""
    trained = [registry.describe(name) for name in registry.names(task=TYPE_DETECTION)]
    trained = [description for description in trained if description["trained"]]
    if not trained:
        return None
    return max(trained, key=lambda item: (item.get("metrics") or {}).get("map50") or 0.0)["name"]
