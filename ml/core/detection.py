"""Face detection: dlib's HOG frontal detector, with OpenCV's Haar cascade as a fallback.

dlib HOG (Dalal & Triggs 2005 features, max-margin object detection, King 2015) is accurate for
roughly frontal faces down to about 80 px; its SVM score is ≥ 0 for a detection and false positives
cluster near 0.1, so faces below ``min_score`` (default 0.5) are dropped. When dlib finds nothing the
Viola–Jones Haar cascade (``haarcascade_frontalface_default.xml``) is tried; its score is the cascade's
final-stage level weight and is not comparable with dlib's. Every detection says which detector found it.
Neither detector finds 90° profiles.
"""

from __future__ import annotations

import logging
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

logger = logging.getLogger(__name__)

DLIB_HOG = "dlib-hog"
OPENCV_HAAR = "opencv-haar"


@dataclass(frozen=True)
class FaceDetection:
    """A face box ``(x0, y0, x1, y1)`` in pixels of the input image, its score and the detector's name."""

    box: tuple[float, float, float, float]
    score: float
    detector: str

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


def check_rgb_image(image: np.ndarray) -> None:
    """Raise ``ValueError`` unless ``image`` follows the contract: RGB ``uint8`` ``(H, W, 3)``."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        description = (
            f"{image.dtype} {image.shape}" if isinstance(image, np.ndarray) else type(image).__name__
        )
        raise ValueError(f"Expected an RGB uint8 image of shape (H, W, 3), got {description}.")


def haar_cascade_path() -> Path:
    """Path of OpenCV's bundled frontal-face Haar cascade."""
    import cv2

    return Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"


class FaceDetector:
    """dlib HOG detector with a Haar-cascade fallback; the underlying models are built on first use.

    Images whose longer side exceeds ``max_side`` are downscaled for detection (boxes are mapped back),
    and small images are upsampled (``upsample=None``: by image size) so faces reach dlib's ~80 px minimum.
    """

    def __init__(
        self,
        min_score: float = 0.5,
        max_side: int = 1600,
        use_haar_fallback: bool = True,
        upsample: int | None = None,
    ) -> None:
        self.min_score = min_score
        self.upsample = upsample
        self.max_side = max_side
        self.use_haar_fallback = use_haar_fallback
        self._dlib_detector: Any = None
        self._haar: Any = None
        self._lock = threading.Lock()

    def _dlib(self) -> Any:
        with self._lock:
            if self._dlib_detector is None:
                import dlib

                self._dlib_detector = dlib.get_frontal_face_detector()
            return self._dlib_detector

    def _cascade(self) -> Any:
        """The Haar cascade, or ``None`` where this OpenCV build lacks ``CascadeClassifier`` (OpenCV 5)."""
        with self._lock:
            if self._haar is None:
                import cv2

                if not hasattr(cv2, "CascadeClassifier"):
                    logger.warning(
                        "OpenCV %s has no CascadeClassifier; the Haar face-detection fallback is disabled.",
                        cv2.__version__,
                    )
                    self.use_haar_fallback = False
                    return None
                path = haar_cascade_path()
                cascade = cv2.CascadeClassifier(str(path))
                if cascade.empty():
                    raise RuntimeError(f"OpenCV could not load the Haar cascade at {path}.")
                self._haar = cascade
            return self._haar

    def load(self) -> FaceDetector:
        """Read the detectors now rather than in the first request (workers call this once per process)."""
        self._dlib()
        if self.use_haar_fallback:
            self._cascade()
        return self

    @staticmethod
    def _upsample_times(shorter_side: int) -> int:
        if shorter_side < 300:
            return 2
        if shorter_side < 600:
            return 1
        return 0

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (RGB uint8), best score first."""
        check_rgb_image(image)
        working, scale = _downscale(image, self.max_side)
        faces = self._detect_dlib(working)
        if not faces and self.use_haar_fallback:
            faces = self._detect_haar(working)
        mapped = [
            FaceDetection(
                box=tuple(float(v) / scale for v in face.box), score=face.score, detector=face.detector
            )
            for face in faces
        ]
        return sorted(mapped, key=lambda face: face.score, reverse=True)

    def _detect_dlib(self, image: np.ndarray) -> list[FaceDetection]:
        detector = self._dlib()
        upsample = self.upsample if self.upsample is not None else self._upsample_times(min(image.shape[:2]))
        rectangles, scores, _ = detector.run(image, upsample, min(self.min_score, 0.0))
        faces = []
        for rectangle, score in zip(rectangles, scores, strict=True):
            if score < self.min_score:
                continue
            box = (
                float(max(rectangle.left(), 0)),
                float(max(rectangle.top(), 0)),
                float(min(rectangle.right() + 1, image.shape[1])),
                float(min(rectangle.bottom() + 1, image.shape[0])),
            )
            faces.append(FaceDetection(box=box, score=float(score), detector=DLIB_HOG))
        return faces

    def _detect_haar(self, image: np.ndarray) -> list[FaceDetection]:
        import cv2

        cascade = self._cascade()
        if cascade is None:
            return []
        grey = cv2.equalizeHist(cv2.cvtColor(image, cv2.COLOR_RGB2GRAY))
        min_side = max(24, int(0.12 * min(grey.shape)))
        boxes, _, level_weights = cascade.detectMultiScale3(
            grey,
            scaleFactor=1.1,
            minNeighbors=6,
            minSize=(min_side, min_side),
            outputRejectLevels=True,
        )
        faces = []
        for (x, y, w, h), weight in zip(
            np.asarray(boxes).reshape(-1, 4), np.ravel(level_weights), strict=True
        ):
            faces.append(
                FaceDetection(
                    box=(float(x), float(y), float(x + w), float(y + h)),
                    score=float(weight),
                    detector=OPENCV_HAAR,
                )
            )
        return faces


def _downscale(image: np.ndarray, max_side: int) -> tuple[np.ndarray, float]:
    """Shrink so the longer side is at most ``max_side``; returns the image and the scale applied."""
    longer = max(image.shape[:2])
    if longer <= max_side:
        return image, 1.0
    import cv2

    scale = max_side / longer
    size = (max(1, round(image.shape[1] * scale)), max(1, round(image.shape[0] * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA), scale
