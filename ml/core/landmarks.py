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

from ml.core.detection import (
    DEFAULT_FACE_DETECTOR,
    FaceDetection,
    FaceDetector,
    check_rgb_image,
    resize_image,
)
from ml.model_names import DLIB_68, DLIB_HOG

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

    The predictor was trained on dlib HOG boxes, so a detection from another detector is turned into
    the box HOG would give (:data:`HOG_BOX_FROM_FRAME`). The regression-tree cascade starts from the mean
    shape placed in that box and, on unusual faces (turned, grey, small), its result swings with a few
    pixels of box placement (NME 0.04–0.11 on landmarks68's hardest faces), so it runs on a grid of
    :data:`BOX_JITTER` boxes around the calibrated one and keeps each point's median — on landmarks300w
    val the median of four is also more accurate than one box (NME 0.0270 against 0.0283).
    """

    name = DLIB_68

    def __init__(
        self,
        predictor_path: Path | None = None,
        face_detector: FaceDetector | None = None,
        jitter: bool = True,
    ) -> None:
        super().__init__(face_detector)
        self.predictor_path = predictor_path or face_recognition_models_file(SHAPE_PREDICTOR_68)
        self.jitter = jitter
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

    def hog_box_frame(self, detection: FaceDetection) -> tuple[np.ndarray, float, dict[str, float]]:
        """Face frame (centre, eye-to-mouth scale) and the HOG-style box relative to it (``_box_from``)."""
        if detection.detector == DLIB_HOG:
            x0, y0, x1, y1 = detection.box
            centre = np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0])
            scale = ((x1 - x0) + (y1 - y0)) / 2.0 / HOG_BOX_FROM_FRAME["side"]
            return centre, scale, {"dx": 0.0, "dy": 0.0, "side": HOG_BOX_FROM_FRAME["side"]}
        centre, scale = detection_frame(detection)
        return centre, scale, HOG_BOX_FROM_FRAME

    def fit_frame(
        self, image: np.ndarray, centre: np.ndarray, scale: float, offset: dict[str, float] | None = None
    ) -> np.ndarray:
        """``(68, 2)`` landmarks of the face whose frame (centre, eye-to-mouth ``scale``) is known: predicted
        at the working scale in the HOG-style box ``offset`` (default :data:`HOG_BOX_FROM_FRAME`) places
        there, with :data:`BOX_JITTER`."""
        offset = offset or HOG_BOX_FROM_FRAME
        region, origin, factor = _face_region_at_working_scale(image, centre, offset["side"] * scale)
        grid = BOX_JITTER if self.jitter else ((1.0, 0.0),)
        local_centre = (np.asarray(centre, dtype=np.float64) - origin) * factor
        predictions = [
            self.predict(region, _box_from(local_centre, scale * factor, offset, side_factor, shift))
            for side_factor, shift in grid
        ]
        return np.median(predictions, axis=0) / factor + origin

    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        if detection.detector == DLIB_HOG and not self.jitter:
            landmarks = self.predict(image, detection.box)
        else:
            landmarks = self.fit_frame(image, *self.hog_box_frame(detection))
        return FaceLandmarks(
            box=detection.box, score=detection.score, landmarks=landmarks, detector=detection.detector
        )


# The predictor runs on the face's neighbourhood scaled so its HOG-style box side lies in this range
# (pixels). Small faces are enlarged: the predictor's pixel-difference features are too coarse on them
# (landmarks300w val NME 0.0269 → 0.0259 at 300 px; 250 and 400 px gave 0.0262 and 0.0259). Large faces
# are reduced: on a 12-MP photo the features' scattered reads cost 6 ms a prediction instead of 1 ms.
MIN_BOX_SIDE_PX = 300.0
MAX_BOX_SIDE_PX = 400.0


def _face_region_at_working_scale(
    image: np.ndarray, centre: np.ndarray, box_side: float
) -> tuple[np.ndarray, np.ndarray, float]:
    """The face's neighbourhood (twice the box) scaled into the working range of box sides.

    Returns the region, its top-left corner in the image and the scale factor (the image itself, a zero
    corner and 1 when the face is already in range).
    """
    import cv2

    factor = float(np.clip(box_side, MIN_BOX_SIDE_PX, MAX_BOX_SIDE_PX) / max(box_side, 1.0))
    if abs(factor - 1.0) < 1e-3:  # already in range (e.g. a region made by face_working_region)
        return image, np.zeros(2), 1.0
    x0 = int(max(0, np.floor(centre[0] - box_side)))
    y0 = int(max(0, np.floor(centre[1] - box_side)))
    x1 = int(min(image.shape[1], np.ceil(centre[0] + box_side)))
    y1 = int(min(image.shape[0], np.ceil(centre[1] + box_side)))
    if x1 - x0 < 2 or y1 - y0 < 2:
        return image, np.zeros(2), 1.0
    region = image[y0:y1, x0:x1]
    if factor > 1.0:
        scaled = cv2.resize(region, None, fx=factor, fy=factor, interpolation=cv2.INTER_CUBIC)
    else:
        scaled = resize_image(region, factor)
    # the factor actually applied (sizes are whole pixels)
    factor = scaled.shape[1] / (x1 - x0)
    return np.ascontiguousarray(scaled), np.array([x0, y0], dtype=np.float64), factor


def face_working_region(
    image: np.ndarray, detection: FaceDetection
) -> tuple[np.ndarray, FaceDetection, np.ndarray, float]:
    """The neighbourhood of a detected face at the landmark models' working scale, read once.

    A 12-MP photo's face is hundreds of pixels wider than any landmark model needs; reading and reducing
    its neighbourhood costs more than a model's prediction. The region (twice the HOG-style box, see
    :data:`HOG_BOX_FROM_FRAME`, around the face frame) is scaled so that box is
    :data:`MIN_BOX_SIDE_PX`–:data:`MAX_BOX_SIDE_PX` wide; dlib, yolo-pose68 and FaceMesh crops all fit in
    it. Returns the region, the detection in its pixels, its origin and scale factor (image pixel =
    region pixel / factor + origin).
    """
    centre, scale = detection_frame(detection)
    region, origin, factor = _face_region_at_working_scale(image, centre, HOG_BOX_FROM_FRAME["side"] * scale)
    if factor == 1.0:
        return region, detection, origin, factor
    corners = (np.asarray(detection.box, dtype=np.float64).reshape(2, 2) - origin) * factor
    points = None if detection.points is None else (np.asarray(detection.points) - origin) * factor
    local = FaceDetection(
        box=(float(corners[0, 0]), float(corners[0, 1]), float(corners[1, 0]), float(corners[1, 1])),
        score=detection.score,
        detector=detection.detector,
        points=points,
    )
    return region, local, origin, factor


# The square box dlib's HOG detector gives, relative to a detector's face frame (offsets and side in units
# of the eye-to-mouth distance): medians over the 353 faces of every third landmarks300w image that HOG
# and YuNet both found (spread of the side: ±0.2).
HOG_BOX_FROM_FRAME = {"dx": -0.015, "dy": -0.010, "side": 2.32}
# (side factor, downward shift in eye-to-mouth units) of the boxes whose predictions are combined: a 2×2
# grid, ±2.7 % in size and ±0.025 in height around a box 0.04 higher than the calibrated one. On the
# landmarks300w val split (YuNet's two-size search) the median of these four gave NME 0.0270, of a 3×3 grid
# (±5 %, ±0.05) 0.0269, of one box 0.0283; on the London set (out of dlib's training) 0.0193 for both grids.
# Each prediction costs 1–2 ms, so four keep the landmark job within its 30 ms budget on a 12-MP photo.
BOX_JITTER: tuple[tuple[float, float], ...] = tuple(
    (side, shift) for side in (0.975, 1.03) for shift in (-0.065, -0.015)
)


def landmarks_frame(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and eye-to-mouth scale of 68 landmarks (same definition as :func:`detection_frame`)."""
    points = np.asarray(landmarks, dtype=np.float64)
    eyes = (points[36:42].mean(axis=0) + points[42:48].mean(axis=0)) / 2.0
    mouth = (points[48] + points[54]) / 2.0
    return (eyes + mouth) / 2.0, float(np.linalg.norm(mouth - eyes))


def _box_from(
    centre: np.ndarray, scale: float, relation: dict[str, float], side_factor: float = 1.0, shift: float = 0.0
) -> tuple[float, float, float, float]:
    cx = centre[0] + relation["dx"] * scale
    cy = centre[1] + (relation["dy"] + shift) * scale
    half = relation["side"] * side_factor * scale / 2.0
    return (cx - half, cy - half, cx + half, cy + half)


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
