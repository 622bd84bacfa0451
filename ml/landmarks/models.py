"""Models of the landmarks pipeline — face detectors and 68-point landmark models — registered with
:data:`ml.registry.registry` on discovery."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from ml.core.detection import (
    DLIB_HOG,
    DLIB_MMOD,
    OPENCV_HAAR,
    YUNET,
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


# ------------------------------------------------------------------------------------------ detectors

registry.register(
    ModelSpec(
        name=YUNET,
        task=FACE_DETECTION,
        version="yunet-s-640",
        loader=lambda: YuNetDetector().load(),
        weights_path=yunet_weights(),
        licence="Apache-2.0 (ShiqiYu/libfacedetection.train); see ml/weights/yunet/LICENSE.",
        description=(
            "YuNet (Wu et al. 2023) through cv2.FaceDetectorYN: boxes, scores and five points; the default "
            "face detector. See ml/weights/yunet/MODEL_CARD.md."
        ),
    )
)
registry.register(
    ModelSpec(
        name=DLIB_HOG,
        task=FACE_DETECTION,
        version=f"dlib-{_dlib_version()}-hog",
        loader=lambda: DlibHogDetector().load(),
        licence="dlib: Boost Software License 1.0.",
        description="dlib's HOG + linear SVM frontal face detector (no weights file); misses turned faces.",
    )
)
registry.register(
    ModelSpec(
        name=DLIB_MMOD,
        task=FACE_DETECTION,
        version=f"dlib-{_dlib_version()}-mmod",
        loader=lambda: DlibMmodDetector().load(),
        weights_path=dlib_mmod_weights(),
        licence="Weights CC0 (davisking/dlib-models); dlib: Boost Software License 1.0.",
        description="dlib's CNN face detector (max-margin object detection); robust but slow on a CPU.",
    )
)
registry.register(
    ModelSpec(
        name=OPENCV_HAAR,
        task=FACE_DETECTION,
        version=f"opencv-{_opencv_version()}-haar-frontalface-default",
        loader=lambda: HaarCascadeDetector().load(),
        licence="OpenCV cascade: Intel License Agreement (BSD-style), bundled with OpenCV.",
        description="Viola–Jones Haar cascade (frontal faces), a baseline.",
    )
)


def _blazeface_spec() -> ModelSpec:
    from ml.landmarks.mesh import BLAZEFACE, BlazeFaceDetector, mediapipe_weights_dir

    return ModelSpec(
        name=BLAZEFACE,
        task=FACE_DETECTION,
        version="mediapipe-blazeface-short-range",
        loader=lambda: BlazeFaceDetector().load(),
        weights_path=mediapipe_weights_dir() / "blazeface.pth",
        licence="Apache-2.0 (MediaPipe; converted by zmurez/MediaPipePyTorch).",
        description=(
            "MediaPipe BlazeFace, short range (128×128 input): for faces filling much of the frame; "
            "see ml/weights/mediapipe/MODEL_CARD.md."
        ),
    )


registry.register(_blazeface_spec())

# ---------------------------------------------------------------------------------- landmark models


def _with_mesh(model: object) -> object:
    """A 68-point model whose faces also carry the FaceMesh surface (head pose, dense zones)."""
    from ml.landmarks.mesh import WithFaceMesh

    return WithFaceMesh(model).load()  # type: ignore[arg-type]


registry.register(
    ModelSpec(
        name="dlib-68",
        task=LANDMARKS,
        version=f"dlib-{_dlib_version()}-sp68",
        loader=lambda: _with_mesh(DlibLandmarker()),
        weights_path=_predictor_path(),
        licence=(
            "dlib code: Boost Software License 1.0. Shape-predictor weights: trained on the iBUG 300-W "
            "dataset, whose licence excludes commercial use — research use only."
        ),
        metrics={
            "note": (
                "dlib's predictor was trained on the 300-W training images (AFW, HELEN, LFPW, IBUG): its "
                "figures on landmarks300w are in-sample. See docs/reports/landmarks-evaluation.md."
            ),
        },
        description=(
            "dlib 68-point ensemble-of-regression-trees shape predictor (Kazemi & Sullivan, CVPR 2014) on "
            "the study's face detector (default YuNet), pretrained weights from face-recognition-models; "
            "not trained by this project."
        ),
        trained=True,
    )
)


def _facemesh_spec() -> ModelSpec:
    from ml.landmarks.mesh import FACEMESH_68, FaceMeshLandmarker, mediapipe_weights_dir

    return ModelSpec(
        name=FACEMESH_68,
        task=LANDMARKS,
        version="mediapipe-facemesh-468",
        loader=lambda: FaceMeshLandmarker().load(),
        weights_path=mediapipe_weights_dir() / "blazeface_landmark.pth",
        licence=(
            "Network weights: Apache-2.0 (MediaPipe FaceMesh, converted by zmurez/MediaPipePyTorch). The "
            "468→68 mapping was fitted on iBUG 300-W human labels (non-commercial research use)."
        ),
        description=(
            "MediaPipe FaceMesh (Kartynnik et al. 2019): 468 3-D points on the study's face detector; "
            "iBUG-68 points from a fitted vertex mapping. See ml/weights/mediapipe/MODEL_CARD.md."
        ),
    )


registry.register(_facemesh_spec())


def _yolo_pose68_spec() -> ModelSpec:
    from ml.landmarks.yolo_pose import (
        YOLO_POSE68_NAME,
        YoloPoseLandmarker,
        yolo_pose68_metrics,
        yolo_pose68_weights,
    )

    weights = yolo_pose68_weights()
    metrics = yolo_pose68_metrics()
    version = str(metrics.get("version", "untrained"))
    goal = metrics.get("goal", {})
    if goal.get("met") is False:  # the detect output must say so
        version += f" (below its goal: {goal.get('summary', 'see the model card')})"
    return ModelSpec(
        name=YOLO_POSE68_NAME,
        task=LANDMARKS,
        version=version,
        loader=lambda: _with_mesh(YoloPoseLandmarker()),
        weights_path=weights,
        licence=(
            "Code: Facet (open source) and Ultralytics YOLOv8 (AGPL-3.0). Weights: trained by Facet on "
            "iBUG 300-W human labels (non-commercial research use) and pseudo-labelled MEBeauty "
            "(non-commercial research use), London (CC-BY 4.0) and FASSEG photos — research use only."
        ),
        metrics={key: value for key, value in metrics.items() if key != "version"},
        description=(
            "YOLOv8-pose with 68 iBUG keypoints on a face crop from the study's detector, trained from "
            "scratch by an iterative labelling campaign (Chen 2024) from human 300-W labels; see "
            "ml/weights/yolo-pose68/MODEL_CARD.md."
        ),
        trained=weights.is_file(),
    )


registry.register(_yolo_pose68_spec())
