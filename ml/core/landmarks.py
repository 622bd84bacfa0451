"""68-point facial landmarks (iBUG-300W order): the landmark-model interface and dlib's predictor.

A landmark model takes a face found by any :class:`~ml.core.detection.FaceDetector` and places the 68
points in it. Models were trained with one detector's boxes, so each model maps a detection to the face
region it expects (:meth:`LandmarkModel.fit`) from the detection's points where it has them, else from
its box.

dlib's predictor implements Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of
Regression Trees", CVPR 2014. Its weights, ``shape_predictor_68_face_landmarks.dat``, come from the
``face-recognition-models`` package; they were trained on iBUG 300-W (AFW, HELEN, LFPW training images and
IBUG), whose licence excludes commercial use — figures measured on those images are in-sample.
"""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ml.core.detection import DEFAULT_FACE_DETECTOR, FaceDetection, FaceDetector, check_rgb_image

DEFAULT_LANDMARK_MODEL = "dlib-68"
SHAPE_PREDICTOR_68 = "shape_predictor_68_face_landmarks.dat"


class ModelFileMissingError(FileNotFoundError):
    """A bundled model file is not installed."""


def face_recognition_models_file(filename: str) -> Path:
    """Path of a file in ``face_recognition_models/models``.

    The package's own ``import`` needs ``pkg_resources`` (absent on new setuptools), so the file is
    located through the import system without importing the package.
    """
    found = importlib.util.find_spec("face_recognition_models")
    locations = list(found.submodule_search_locations or []) if found is not None else []
    for location in locations:
        candidate = Path(location) / "models" / filename
        if candidate.is_file():
            return candidate
    raise ModelFileMissingError(
        f"{filename} was not found: install the 'face-recognition-models' package "
        f"(searched {', '.join(locations) or 'no installed copy'})."
    )


@dataclass(frozen=True, eq=False)
class FaceLandmarks:
    """One face: box ``(x0, y0, x1, y1)``, detector score, ``(68, 2)`` landmarks and detector name.

    ``mesh`` holds a dense ``(N, 3)`` surface (image pixels; ``z`` in pixel units, smaller is nearer the
    camera) when the model gives one, else ``None``.
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detector: str
    mesh: np.ndarray | None = field(default=None)


def detection_frame(detection: FaceDetection) -> tuple[np.ndarray, float]:
    """Centre ``(x, y)`` and scale (pixels) of a face, from its five points when present.

    The scale is the distance from the eye midpoint to the mouth midpoint when five points are known
    (stable under yaw up to ~60° and under any box convention), else the box's mean side divided by
    :data:`BOX_SIDE_PER_EYE_MOUTH`, the ratio measured for YuNet boxes on landmarks300w.
    """
    if detection.points is not None:
        points = np.asarray(detection.points, dtype=np.float64)
        eyes = points[:2].mean(axis=0)
        mouth = points[3:5].mean(axis=0)
        return (eyes + mouth) / 2.0, float(np.linalg.norm(mouth - eyes))
    x0, y0, x1, y1 = detection.box
    centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
    return centre, ((x1 - x0) + (y1 - y0)) / 2.0 / BOX_SIDE_PER_EYE_MOUTH


# Median (width + height) / 2 of a YuNet box over the eye-to-mouth distance of its five points
# (403 landmarks300w faces).
BOX_SIDE_PER_EYE_MOUTH = 2.48


class LandmarkModel(ABC):
    """Face detector + 68-point landmarker. Subclasses implement :meth:`fit`.

    ``face_detector`` is the detector used by :meth:`detect` when none is passed; without one the
    registry's default detector is loaded on first use.
    """

    name: ClassVar[str]

    def __init__(self, face_detector: FaceDetector | None = None) -> None:
        self._face_detector = face_detector
        self._lock = threading.Lock()

    @property
    def face_detector(self) -> FaceDetector:
        if self._face_detector is None:
            from ml.registry import registry

            self._face_detector = registry.load(DEFAULT_FACE_DETECTOR)
        return self._face_detector

    def load(self) -> LandmarkModel:
        """Read every model file now, so the first photo does not pay for it."""
        self.face_detector.load()
        return self

    @abstractmethod
    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        """The 68 landmarks of the face found by ``detection`` in ``image`` (RGB uint8)."""

    def detect(self, image: np.ndarray, face_detector: FaceDetector | None = None) -> list[FaceLandmarks]:
        """All faces with their landmarks, best detection score first."""
        check_rgb_image(image)
        detections = (face_detector or self.face_detector).detect(image)
        return [self.fit(image, detection) for detection in detections]


class DlibLandmarker(LandmarkModel):
    """dlib's 68-point shape predictor; the predictor file is read on first use.

    The predictor was trained on dlib HOG boxes, so a detection from another detector is first turned
    into the box HOG would give (:func:`hog_box_from_frame`), and the prediction is refined once from a
    box re-derived from the first pass's own landmarks — the result then hardly depends on the detector.
    """

    name = "dlib-68"

    def __init__(self, predictor_path: Path | None = None, face_detector: FaceDetector | None = None) -> None:
        super().__init__(face_detector)
        self.predictor_path = predictor_path or face_recognition_models_file(SHAPE_PREDICTOR_68)
        self._predictor: Any = None

    def _shape_predictor(self) -> Any:
        with self._lock:
            if self._predictor is None:
                import dlib

                self._predictor = dlib.shape_predictor(str(self.predictor_path))
            return self._predictor

    def load(self) -> DlibLandmarker:
        super().load()
        self._shape_predictor()
        return self

    def predict(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """``(68, 2)`` landmarks for the face in a dlib-HOG-style ``box`` of ``image`` (RGB uint8)."""
        import dlib

        check_rgb_image(image)
        rectangle = dlib.rectangle(
            round(box[0]),
            round(box[1]),
            max(round(box[0]) + 1, round(box[2]) - 1),
            max(round(box[1]) + 1, round(box[3]) - 1),
        )
        shape = self._shape_predictor()(image, rectangle)
        return np.array([[point.x, point.y] for point in shape.parts()], dtype=np.float64)

    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        if detection.detector == "dlib-hog":
            landmarks = self.predict(image, detection.box)
        else:
            centre, scale = detection_frame(detection)
            first = self.predict(image, hog_box_from_frame(centre, scale))
            landmarks = self.predict(image, hog_box_from_landmarks(first))
        return FaceLandmarks(
            box=detection.box, score=detection.score, landmarks=landmarks, detector=detection.detector
        )


# The square box dlib's HOG detector gives, relative to a face frame (offsets and side in units of the
# eye-to-mouth distance): from a YuNet frame and from the frame of dlib's 68 landmarks. Medians over the
# 353 faces of every third landmarks300w image that both detectors found (spread of the side: ±0.2).
HOG_BOX_FROM_FRAME = {"dx": -0.015, "dy": -0.010, "side": 2.32}
HOG_BOX_FROM_LANDMARKS = {"dx": -0.014, "dy": -0.032, "side": 2.33}


def landmarks_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and eye-to-mouth scale of 68 landmarks (same definition as :func:`detection_frame`)."""
    points = np.asarray(landmarks, dtype=np.float64)
    eyes = (points[36:42].mean(axis=0) + points[42:48].mean(axis=0)) / 2.0
    mouth = (points[48] + points[54]) / 2.0
    return (eyes + mouth) / 2.0, float(np.linalg.norm(mouth - eyes))


def _box_from(
    centre: np.ndarray, scale: float, relation: dict[str, float]
) -> tuple[float, float, float, float]:
    cx = centre[0] + relation["dx"] * scale
    cy = centre[1] + relation["dy"] * scale
    half = relation["side"] * scale / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


def hog_box_from_frame(centre: np.ndarray, scale: float) -> tuple[float, float, float, float]:
    """The dlib-HOG-style box of a face frame from a detector (see :func:`detection_frame`)."""
    return _box_from(centre, scale, HOG_BOX_FROM_FRAME)


def hog_box_from_landmarks(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """The dlib-HOG-style box of a face from its 68 landmarks."""
    centre, scale = landmarks_frame(landmarks)
    return _box_from(centre, scale, HOG_BOX_FROM_LANDMARKS)


def detect_faces_with_landmarks(
    image: np.ndarray,
    detector: LandmarkModel | None = None,
    model: str = DEFAULT_LANDMARK_MODEL,
    face_detector: FaceDetector | str | None = None,
) -> list[FaceLandmarks]:
    """Detect faces and their 68 landmarks.

    Without ``detector`` the registry's ``model`` is used, loaded once per process; ``face_detector``
    (an object or a registered detector name) replaces the model's default detector.
    """
    from ml.registry import registry

    if detector is None:
        detector = registry.load(model)
    if isinstance(face_detector, str):
        face_detector = registry.load(face_detector)
    return detector.detect(image, face_detector=face_detector)
