"""68-point facial landmarks (iBUG-300W order) with dlib's ensemble-of-regression-trees predictor.

The predictor implements Kazemi & Sullivan, "One Millisecond Face Alignment with an Ensemble of
Regression Trees", CVPR 2014. Its weights, ``shape_predictor_68_face_landmarks.dat``, come from the
``face-recognition-models`` package; they were trained on iBUG 300-W, whose licence excludes
commercial use.
"""

from __future__ import annotations

import importlib.util
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.detection import FaceDetection, FaceDetector, check_rgb_image
from ml.model_names import DLIB_68

DEFAULT_LANDMARK_MODEL = DLIB_68
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


@dataclass(frozen=True)
class FaceLandmarks:
    """One face: box ``(x0, y0, x1, y1)``, detector score, ``(68, 2)`` float landmarks and detector name."""

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray
    detector: str


class LandmarkDetector:
    """Face detector plus dlib 68-point shape predictor; the predictor file is read on first use."""

    def __init__(self, predictor_path: Path | None = None, face_detector: FaceDetector | None = None) -> None:
        self.predictor_path = predictor_path or face_recognition_models_file(SHAPE_PREDICTOR_68)
        self.face_detector = face_detector or FaceDetector()
        self._predictor: Any = None
        self._lock = threading.Lock()

    def _shape_predictor(self) -> Any:
        with self._lock:
            if self._predictor is None:
                import dlib

                self._predictor = dlib.shape_predictor(str(self.predictor_path))
            return self._predictor

    def load(self) -> LandmarkDetector:
        """Read the detector and predictor files now, so the first photo does not pay for it."""
        self.face_detector.load()
        self._shape_predictor()
        return self

    def predict(self, image: np.ndarray, box: tuple[float, float, float, float]) -> np.ndarray:
        """``(68, 2)`` landmarks for the face in ``box`` of ``image`` (RGB uint8)."""
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

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
        """All faces with their landmarks, best detection score first."""
        detections: list[FaceDetection] = self.face_detector.detect(image)
        return [
            FaceLandmarks(
                box=face.box,
                score=face.score,
                landmarks=self.predict(image, face.box),
                detector=face.detector,
            )
            for face in detections
        ]


def detect_faces_with_landmarks(
    image: np.ndarray, detector: LandmarkDetector | None = None, model: str = DEFAULT_LANDMARK_MODEL
) -> list[FaceLandmarks]:
    """Detect faces and their 68 landmarks.

    Without ``detector`` the registry's ``model`` is used, loaded once per process.
    """
    if detector is None:
        from ml.registry import registry

        detector = registry.load(model)
    return detector.detect(image)
