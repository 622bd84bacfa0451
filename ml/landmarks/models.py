"""Models of the landmarks pipeline — face detectors and 68-point landmark models — registered with
:data:`ml.registry.registry` on discovery.

Every model is described by its model card (:mod:`ml.modelcard`): the card file beside shipped weights
(``<weights stem>.card.json``), or a card written here for models whose files come from an installed
package (dlib's predictor, dlib HOG, OpenCV's Haar cascade).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path
from typing import Any

from ml.core.detection import (
    DlibHogDetector,
    DlibMmodDetector,
    HaarCascadeDetector,
    YuNetDetector,
    dlib_mmod_weights,
    yunet_weights,
)
from ml.core.landmarks import (
    SHAPE_PREDICTOR_68,
    DlibLandmarker,
    ModelFileMissingError,
    face_recognition_models_file,
)
from ml.model_names import (
    DLIB_68,
    DLIB_HOG,
    OPENCV_HAAR,
    YOLO_POSE68,
)
from ml.modelcard import ModelCard, card_path, installed_card, read_card
from ml.registry import ModelSpec, registry

FACE_DETECTION = "face-detection"
LANDMARKS = "landmarks"


def _dlib_version() -> str:
    try:
        return importlib.metadata.version("dlib-bin")
    except importlib.metadata.PackageNotFoundError:
        try:
            return importlib.metadata.version("dlib")
        except importlib.metadata.PackageNotFoundError:
            return "unknown"


def _opencv_version() -> str:
    import cv2

    return cv2.__version__


def _predictor_path() -> Path | None:
    try:
        return face_recognition_models_file(SHAPE_PREDICTOR_68)
    except ModelFileMissingError:
        return None


def _from_card_file(weights: Path, loader: Any) -> ModelSpec:
    return ModelSpec.from_card(read_card(card_path(weights)), loader, weights_path=weights)


# ------------------------------------------------------------------------------------------ detectors

registry.register(_from_card_file(yunet_weights(), lambda weights: YuNetDetector(weights=weights).load()))
registry.register(
    _from_card_file(dlib_mmod_weights(), lambda weights: DlibMmodDetector(weights=weights).load())
)

DLIB_HOG_CARD = ModelCard(
    name=DLIB_HOG,
    task=FACE_DETECTION,
    version=f"dlib-{_dlib_version()}-hog",
    description=(
        "dlib's HOG + linear SVM frontal face detector (Dalal & Triggs 2005 features, max-margin object "
        "detection, King 2015); built into dlib, no weights file."
    ),
    data="dlib's own training (frontal faces); not trained by Facet.",
    command="pip install dlib-bin (no training by Facet)",
    licence="dlib: Boost Software License 1.0.",
    limitations=(
        "Roughly frontal faces of at least ~80 px only: misses turned faces, tight crops and some archive "
        "photos (docs/reports/face-detectors.md)."
    ),
)
registry.register(ModelSpec.from_card(DLIB_HOG_CARD, lambda weights: DlibHogDetector().load(), trained=True))

OPENCV_HAAR_CARD = ModelCard(
    name=OPENCV_HAAR,
    task=FACE_DETECTION,
    version=f"opencv-{_opencv_version()}-haar-frontalface-default",
    description="Viola–Jones Haar cascade (haarcascade_frontalface_default.xml, bundled with OpenCV).",
    data="OpenCV's bundled cascade (frontal faces); not trained by Facet.",
    command="pip install opencv-python-headless (no training by Facet)",
    licence="OpenCV cascade: Intel License Agreement (BSD-style), bundled with OpenCV.",
    limitations="A last-resort baseline: frontal faces only, frequent false detections, no eye points.",
)
registry.register(
    ModelSpec.from_card(OPENCV_HAAR_CARD, lambda weights: HaarCascadeDetector().load(), trained=True)
)


def _load_blazeface(weights: Path | None) -> Any:
    from ml.landmarks.mesh import BlazeFaceDetector

    return BlazeFaceDetector(weights=weights).load()


def _mediapipe_file(name: str) -> Path:
    from ml.landmarks.mesh import mediapipe_weights_dir

    return mediapipe_weights_dir() / name


registry.register(_from_card_file(_mediapipe_file("blazeface.pth"), _load_blazeface))

# ---------------------------------------------------------------------------------- landmark models


def _with_mesh(model: Any) -> Any:
    """A 68-point model whose faces also carry the FaceMesh surface (head pose, dense zones)."""
    from ml.landmarks.mesh import WithFaceMesh

    return WithFaceMesh(model).load()


def as_registered(model: Any) -> Any:
    """A yolo-pose68 runner as the registry serves it (so as every analysis and acceptance test runs it): a
    crop model beside FaceMesh, on the face's neighbourhood at the landmark models' working scale; a
    whole-photo model as it is. The bare crop model on the whole photo resamples its crop differently
    (einstein 0.071 against 0.081 for the same weights), so a card's figures are measured this way."""
    return _with_mesh(model) if hasattr(model, "fit") else model.load()


def _load_dlib(weights: Path | None) -> Any:
    return _with_mesh(DlibLandmarker(predictor_path=weights))


# The predictor file comes from the face-recognition-models package, so its card lives here.
DLIB_68_CARD = ModelCard(
    name=DLIB_68,
    task=LANDMARKS,
    version=f"dlib-{_dlib_version()}-sp68",
    description=(
        "dlib 68-point ensemble-of-regression-trees shape predictor (Kazemi & Sullivan, CVPR 2014) on the "
        "study's face detector (default YuNet; its box calibrated to the predictor's HOG-style box, median "
        "of a 2×2 box jitter), pretrained weights from face-recognition-models; every face also carries the "
        "FaceMesh surface for head pose."
    ),
    data="iBUG 300-W training images (AFW, HELEN train, LFPW train, IBUG): dlib's own training; not trained "
    "by this project.",
    command="pip install dlib-bin face-recognition-models (no training by Facet)",
    licence=(
        "dlib code: Boost Software License 1.0. Shape-predictor weights: trained on the iBUG 300-W "
        "dataset, whose licence excludes commercial use — research use only."
    ),
    limitations=(
        "Trained on the 300-W training images, so its figures on landmarks300w (AFW, HELEN train) are "
        "in-sample; weak on strongly turned faces (docs/reports/landmarks-evaluation.md)."
    ),
    metrics={
        "note": (
            "Figures on landmarks300w are in-sample (dlib trained on those images): "
            "docs/reports/landmarks-evaluation.md."
        ),
    },
)
registry.register(ModelSpec.from_card(DLIB_68_CARD, _load_dlib, weights_path=_predictor_path()))


def _load_facemesh(weights: Path | None) -> Any:
    from ml.landmarks.mesh import FaceMeshLandmarker

    return FaceMeshLandmarker(weights=weights).load()


registry.register(_from_card_file(_mediapipe_file("blazeface_landmark.pth"), _load_facemesh))


def _yolo_card() -> ModelCard:
    from ml.landmarks.yolo_pose import yolo_pose68_weights

    return installed_card(yolo_pose68_weights()) or ModelCard(
        name=YOLO_POSE68,
        task=LANDMARKS,
        version="untrained",
        description="YOLOv8n-pose with 68 iBUG keypoints, trained by a landmark auto-labelling campaign.",
        data="none yet: no weights are installed",
        command=(
            "python -m ml landmarks campaign human-300w ..., then python -m ml landmarks campaign ship ROOT"
        ),
        licence="Code: Facet (open source) and Ultralytics YOLOv8 (AGPL-3.0).",
        limitations="Not trained: no landmarks can be detected until weights are shipped or a version "
        "is activated.",
    )


def _load_yolo_pose68(weights: Path | None) -> Any:
    from ml.landmarks.yolo_pose import yolo_pose68_weights, yolo_pose_model

    shipped = weights is None or Path(weights) == yolo_pose68_weights()
    # The shipped weights' run-time settings are in their card; other weights are read from the checkpoint.
    inference = _yolo_card().details.get("inference") if shipped else None
    return as_registered(yolo_pose_model(weights or yolo_pose68_weights(), inference))


def _yolo_pose68_spec() -> ModelSpec:
    from ml.landmarks.yolo_pose import yolo_pose68_weights

    # A weak or below-goal version says so in its card's limitations and metrics (both in every result's
    # provenance); the version stays the card's own, the name every result and study choice records.
    card = _yolo_card()
    return ModelSpec.from_card(card, _load_yolo_pose68, weights_path=yolo_pose68_weights())


registry.register(_yolo_pose68_spec())
