"""Models of the landmarks pipeline, registered with :data:`ml.registry.registry` on discovery."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from ml.core.landmarks import (
    SHAPE_PREDICTOR_68,
    LandmarkDetector,
    ModelFileMissingError,
    face_recognition_models_file,
)
from ml.model_names import DLIB_68, YOLO_POSE68
from ml.modelcard import ModelCard, card_path, read_card
from ml.registry import ModelSpec, registry


def _dlib_version() -> str:
    try:
        return importlib.metadata.version("dlib-bin")
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.metadata.version("dlib")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


def _predictor_path() -> Path | None:
    try:
        return face_recognition_models_file(SHAPE_PREDICTOR_68)
    except ModelFileMissingError:
        return None


def _load_dlib(weights: Path | None) -> LandmarkDetector:
    return LandmarkDetector(predictor_path=weights).load()


# The predictor file comes from the face-recognition-models package, so its card lives here.
DLIB_68_CARD = ModelCard(
    name=DLIB_68,
    task="landmarks",
    version=f"dlib-{_dlib_version()}-sp68",
    description=(
        "dlib HOG face detector (OpenCV Haar cascade fallback) + dlib 68-point ensemble-of-regression-trees "
        "shape predictor (Kazemi & Sullivan, CVPR 2014), pretrained weights from face-recognition-models."
    ),
    data="iBUG 300-W training images (dlib's own training; not trained by this project).",
    command="pip install dlib-bin face-recognition-models (no training by Facet)",
    licence=(
        "dlib code: Boost Software License 1.0. Shape-predictor weights: trained on the iBUG 300-W "
        "dataset, whose licence excludes commercial use — research use only."
    ),
    limitations=(
        "Trained on the 300-W training images, so figures on those images are in-sample; weak on turned "
        "faces (breakingbad's face scores 0.24, below the 0.5 detection threshold, einstein is not found)."
    ),
    # Measured by tests/ml/test_landmarks_accuracy.py (pytest -s prints them); three faces are a
    # regression check, not a statistic.
    metrics={
        "nme_outer_eye_corners": {"takeo": 0.0361, "lenna": 0.0357, "breakingbad": 0.0460},
        "evaluated_on": "landmarks68 (3 human-annotated faces)",
    },
)

registry.register(ModelSpec.from_card(DLIB_68_CARD, _load_dlib, weights_path=_predictor_path()))


def _load_yolo_pose68(weights: Path | None) -> Any:
    from ml.landmarks.yolo_pose import YoloPoseLandmarkDetector, yolo_pose68_weights

    shipped = weights is None or Path(weights) == yolo_pose68_weights()
    # The shipped weights' input size is in their card; other weights carry their training size.
    imgsz = _yolo_card().details.get("imgsz") if shipped else None
    return YoloPoseLandmarkDetector(weights=weights, imgsz=imgsz)


def _yolo_card() -> ModelCard:
    from ml.landmarks.yolo_pose import yolo_pose68_weights

    path = card_path(yolo_pose68_weights())
    if path.is_file():
        return read_card(path)
    return ModelCard(
        name=YOLO_POSE68,
        task="landmarks",
        version="untrained",
        description="YOLOv8n-pose with 68 iBUG keypoints, trained by a landmark auto-labelling campaign.",
        data="none yet: no weights are installed",
        command="python -m ml landmarks campaign mebeauty ..., then "
        "python -m ml landmarks campaign ship ROOT",
        licence="Code: Facet (open source) and Ultralytics YOLOv8 (AGPL-3.0).",
        limitations="Not trained: no landmarks can be detected until weights are shipped or a version "
        "is activated.",
    )


def _yolo_pose68_spec() -> ModelSpec:
    from ml.landmarks.yolo_pose import yolo_pose68_weights

    card = _yolo_card()
    if card.metrics.get("acceptance", {}).get("passed") is False:
        # The detect output must say so.
        card = ModelCard(
            **{**card.__dict__, "version": card.version + " (weak: fails NME ≤ 0.08 on landmarks68)"}
        )
    return ModelSpec.from_card(card, _load_yolo_pose68, weights_path=yolo_pose68_weights())


registry.register(_yolo_pose68_spec())
