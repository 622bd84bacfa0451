"""Models of the landmarks pipeline, registered with :data:`ml.registry.registry` on discovery."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ml.core.landmarks import (
    SHAPE_PREDICTOR_68,
    LandmarkDetector,
    ModelFileMissingError,
    face_recognition_models_file,
)
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


registry.register(
    ModelSpec(
        name="dlib-68",
        task="landmarks",
        version=f"dlib-{_dlib_version()}-sp68",
        loader=lambda: LandmarkDetector().load(),
        weights_path=_predictor_path(),
        licence=(
            "dlib code: Boost Software License 1.0. Shape-predictor weights: trained on the iBUG 300-W "
            "dataset, whose licence excludes commercial use — research use only."
        ),
        # Measured by tests/ml/test_landmarks_accuracy.py (pytest -s prints them); three faces are a
        # regression check, not a statistic. breakingbad's face scores 0.24, below the 0.5 detection
        # threshold, and einstein is not detected at all.
        metrics={
            "nme_outer_eye_corners": {"takeo": 0.0361, "lenna": 0.0357, "breakingbad": 0.0460},
            "evaluated_on": "landmarks68 (3 human-annotated faces)",
        },
        description=(
            "dlib HOG face detector (OpenCV Haar cascade fallback) + dlib 68-point ensemble-of-regression-"
            "trees shape predictor (Kazemi & Sullivan, CVPR 2014), pretrained weights from "
            "face-recognition-models; not trained by this project."
        ),
        trained=True,
    )
)


def _yolo_pose68_spec() -> ModelSpec:
    from ml.landmarks.yolo_pose import (
        YOLO_POSE68_NAME,
        YoloPoseLandmarkDetector,
        yolo_pose68_metrics,
        yolo_pose68_weights,
    )

    weights = yolo_pose68_weights()
    metrics = yolo_pose68_metrics()
    version = str(metrics.get("version", "untrained"))
    if metrics.get("acceptance", {}).get("passed") is False:
        version += " (weak: fails NME ≤ 0.08 on landmarks68)"  # the detect output must say so
    return ModelSpec(
        name=YOLO_POSE68_NAME,
        task="landmarks",
        version=version,
        loader=YoloPoseLandmarkDetector,
        weights_path=weights,
        licence=(
            "Code: Facet (open source) and Ultralytics YOLOv8 (AGPL-3.0). Weights: trained by Facet on "
            "MEBeauty photos (non-commercial research use only) with labels from the dlib-68 teacher, whose "
            "weights come from iBUG 300-W (no commercial use) — research use only."
        ),
        metrics={key: value for key, value in metrics.items() if key != "version"},
        description=(
            "YOLOv8n-pose with 68 iBUG keypoints, trained from scratch by an iterative auto-labelling "
            "campaign (Chen 2024) on MEBeauty originals; see ml/weights/yolo-pose68/MODEL_CARD.md."
        ),
        trained=weights.is_file(),
    )


registry.register(_yolo_pose68_spec())
