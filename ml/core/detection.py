"""Face detection behind one interface: YuNet (default), dlib HOG, dlib CNN (MMOD) and OpenCV Haar.

Every detector takes an RGB ``uint8`` image of any size and returns :class:`FaceDetection` objects in
pixels of that image, best score first. Scores are each detector's own scale (YuNet and BlazeFace: a
probability; dlib HOG: an SVM margin; MMOD: a CNN margin; Haar: a cascade level weight), so every
detector states the score from which a detection counts as confident (``confident_score``); the quality
gate uses it.

* **YuNet** (Wu et al., "YuNet: A Tiny Millisecond-level Face Detector", Machine Intelligence Research
  2023; weights Apache-2.0, ``ml/weights/yunet``) runs through ``cv2.FaceDetectorYN`` on a copy of the
  image scaled so its longer side is ``max_side`` (default 480: every labelled face of the evaluation
  sets is found at 480 as at 640, in half the time) and padded to a multiple of 32; boxes and its five
  points are mapped back. Tight crops, in which the face touches the borders, are padded first
  so the face is not cut by the frame. Finds faces from about 10 px to the whole frame, turned up to
  profile, in group photos.
* **dlib HOG** (Dalal & Triggs 2005 features, max-margin object detection, King 2015): roughly frontal
  faces of at least ~80 px; misses turned faces and tight crops.
* **dlib MMOD** (King, "Max-Margin Object Detection", 2015; CNN weights CC0): more robust than HOG to
  pose and lighting, slow on a CPU (the image is scaled to ``max_side``).
* **OpenCV Haar** (Viola & Jones 2001, ``haarcascade_frontalface_default.xml``): a last-resort baseline.

The five points are, in this order, the subject's right eye, left eye, nose tip, right mouth corner and
left mouth corner (for a frontal photo the subject's right eye is on the image's left).
"""

from __future__ import annotations

import bz2
import logging
import tempfile
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ml.core.metrics import box_iou
from ml.model_names import DLIB_HOG, DLIB_MMOD, OPENCV_HAAR, YUNET

logger = logging.getLogger(__name__)

DEFAULT_FACE_DETECTOR = YUNET

FIVE_POINT_NAMES = ("right_eye", "left_eye", "nose_tip", "right_mouth_corner", "left_mouth_corner")


@dataclass(frozen=True, eq=False)
class FaceDetection:
    """A face box ``(x0, y0, x1, y1)`` in pixels of the input image, its score and the detector's name.

    ``points`` holds the detector's five points ``(5, 2)`` (see :data:`FIVE_POINT_NAMES`) when it
    gives them, else ``None``.
    """

    box: tuple[float, float, float, float]
    score: float
    detector: str
    points: np.ndarray | None = field(default=None)

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


def resize_image(image: np.ndarray, scale: float) -> np.ndarray:
    """``image`` scaled by ``scale``; large reductions are band-limited cheaply.

    OpenCV's ``INTER_AREA`` is fast for whole-number ratios only: at other ratios it costs 25–45 ms on a
    12-MP photo here. Three cases:

    * ``scale < 0.25``: bilinear to twice the target size, then an exact 2:1 area reduction. The
      bilinear step reads only the rows it needs (0.4 ms from 12 MP to YuNet's 320 px).
    * ``0.25 ≤ scale ≤ 0.5``: the exact 2:1 area reduction first, then bilinear by the remaining factor
      (0.5–1). It reads the source once and writes a quarter of it: 1.3 ms instead of 3.3 ms for an
      1800-px face region at 0.45, where bilinear first wrote an intermediate nearly as large as the
      source. An odd last row or column is left out of the 2:1 step (the far edge moves by under one
      source pixel).
    * ``0.5 < scale < 1``: ``INTER_AREA`` (slow, 2.5 ms on a 950-px region at 0.6). It is met by YuNet's
      input from photos under about 530 px, the FaceMesh crop's pre-reduction (about 1.4 ms a face) and
      face regions 400–800 px wide. Bilinear-based alternatives were cheaper but moved dlib's
      landmarks300w val NME (0.02695 → 0.0271), through YuNet's input from those small photos.
    """
    import cv2

    height, width = image.shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    if scale >= 1.0:
        return cv2.resize(image, size, interpolation=cv2.INTER_LINEAR) if scale > 1.0 else image
    if 0.25 <= scale <= 0.5 and height >= 2 and width >= 2:
        halved = cv2.resize(
            image[: height - height % 2, : width - width % 2],
            (width // 2, height // 2),
            interpolation=cv2.INTER_AREA,
        )
        return cv2.resize(halved, size, interpolation=cv2.INTER_LINEAR)
    if scale < 0.25:
        image = cv2.resize(image, (size[0] * 2, size[1] * 2), interpolation=cv2.INTER_LINEAR)
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


def _map_back(
    box: Sequence[float], scale: float, offset: tuple[float, float], shape: tuple[int, ...]
) -> tuple:
    """A box from a scaled, offset working copy back to the input image, clipped to it."""
    height, width = shape[:2]
    x0 = (box[0] - offset[0]) / scale
    y0 = (box[1] - offset[1]) / scale
    x1 = (box[2] - offset[0]) / scale
    y1 = (box[3] - offset[1]) / scale
    return (
        float(min(max(x0, 0.0), width)),
        float(min(max(y0, 0.0), height)),
        float(min(max(x1, 0.0), width)),
        float(min(max(y1, 0.0), height)),
    )


class FaceDetector(ABC):
    """One face detector. Subclasses implement :meth:`_detect`; models are read on first use (or ``load``)."""

    name: ClassVar[str]
    #: Scores at or above this count as a confident detection (the quality gate's limit).
    confident_score: ClassVar[float]

    def __init__(self) -> None:
        self._lock = threading.Lock()

    def load(self) -> FaceDetector:
        """Read the model files now rather than in the first request (workers call this once)."""
        return self

    def detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Faces in ``image`` (RGB uint8), best score first."""
        check_rgb_image(image)
        faces = [face for face in self._detect(image) if face.width > 1 and face.height > 1]
        return sorted(faces, key=lambda face: face.score, reverse=True)

    @abstractmethod
    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        """Detections in pixels of ``image``, any order."""


class YuNetDetector(FaceDetector):
    """YuNet through ``cv2.FaceDetectorYN``: boxes, scores and five points.

    The fixed 640×640 ONNX files run at any input size in OpenCV's DNN module (the network is fully
    convolutional and ``FaceDetectorYN`` builds its priors for the size set), so the image is scaled to
    ``max_side`` and padded only to a multiple of 32, not to a square. ``border`` pads every side by that
    fraction of the longer side first (black), so a face cropped tightly by the frame is seen whole;
    detections in the border are clipped to the image.

    Two sizes: a quick pass at ``quick_side`` (320) is kept when it finds a face at least
    :data:`REFINE_BELOW_PX` wide there (about a quarter of the photo: a portrait, as clinical photos are);
    otherwise the photo is searched again at ``max_side``, where faces down to about 2 % of the photo are
    found. The quick pass costs a third of the full one. With a portrait's face in the frame, faces smaller
    than about 3 % of the photo (a distant bystander) are not looked for.
    """

    name = YUNET
    # On landmarks300w, MEBeauty crops and FASSEG (real faces) scores are ≥ 0.75 almost always; the
    # false positives that pass the 0.6 detection threshold (posters, patterns) mostly score below it.
    confident_score = 0.75

    def __init__(
        self,
        weights: Path | str | None = None,
        max_side: int = 480,
        min_score: float = 0.6,
        nms_iou: float = 0.3,
        border: float = 0.1,
        quick_side: int | None = 320,
    ) -> None:
        super().__init__()
        self.weights = Path(weights) if weights is not None else yunet_weights()
        self.max_side = max_side
        self.quick_side = quick_side
        self.min_score = min_score
        self.nms_iou = nms_iou
        self.border = border
        self._model: Any = None

    def _yunet(self) -> Any:
        if self._model is None:
            import cv2

            if not self.weights.is_file():
                raise FileNotFoundError(f"The YuNet weights {self.weights} are absent.")
            self._model = cv2.FaceDetectorYN.create(
                str(self.weights), "", (self.max_side, self.max_side), self.min_score, self.nms_iou, 5000
            )
        return self._model

    def load(self) -> YuNetDetector:
        with self._lock:
            self._yunet()
        return self

    def _run(self, image: np.ndarray, max_side: int, border: float) -> list[FaceDetection]:
        """One YuNet pass on ``image`` scaled to ``max_side``; detections in pixels of ``image``."""
        height, width = image.shape[:2]
        pad = round(border * max(height, width))
        scale = max_side / (max(height, width) + 2 * pad)
        working = resize_image(image, scale)
        offset = round(pad * scale)
        rows = -(-(working.shape[0] + 2 * offset) // 32) * 32
        cols = -(-(working.shape[1] + 2 * offset) // 32) * 32
        canvas = np.zeros((rows, cols, 3), dtype=np.uint8)
        # FaceDetectorYN expects BGR.
        canvas[offset : offset + working.shape[0], offset : offset + working.shape[1]] = working[..., ::-1]
        with self._lock:
            model = self._yunet()
            model.setInputSize((cols, rows))
            _, rows_found = model.detect(canvas)
        faces = []
        for row in rows_found if rows_found is not None else ():
            x, y, w, h = (float(value) for value in row[:4])
            box = _map_back((x, y, x + w, y + h), scale, (offset, offset), image.shape)
            points = (np.asarray(row[4:14], dtype=np.float64).reshape(5, 2) - offset) / scale
            faces.append(FaceDetection(box=box, score=float(row[14]), detector=self.name, points=points))
        return faces

    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        side = self.max_side
        faces: list[FaceDetection] = []
        if self.quick_side is not None and self.quick_side < self.max_side:
            # A portrait's face is found, and its points placed, as well at the quick size: keep that pass
            # when it sees a face of at least REFINE_BELOW_PX there, else look again at full size.
            faces = self._run(image, self.quick_side, self.border)
            quick_scale = self.quick_side / ((1 + 2 * self.border) * max(image.shape[:2]))
            if any(max(face.width, face.height) * quick_scale >= REFINE_BELOW_PX for face in faces):
                side = self.quick_side
            else:
                faces = []
        if side == self.max_side:
            faces = self._run(image, self.max_side, self.border)
        scale = side / ((1 + 2 * self.border) * max(image.shape[:2]))
        return [
            self._refine(image, face) if max(face.width, face.height) * scale < REFINE_BELOW_PX else face
            for face in faces
        ]

    def _refine(self, image: np.ndarray, face: FaceDetection) -> FaceDetection:
        """A small face detected again on a crop around it, where it is about 100 px wide.

        At 480 px a face of 40 px gets imprecise points (einstein in landmarks68: its eye-to-mouth
        distance is 4 % off), and the landmark models start from them.
        """
        side = REFINE_REGION * max(face.width, face.height)
        cx, cy = (face.box[0] + face.box[2]) / 2.0, (face.box[1] + face.box[3]) / 2.0
        x0, y0 = int(max(0, cx - side / 2)), int(max(0, cy - side / 2))
        x1, y1 = int(min(image.shape[1], cx + side / 2)), int(min(image.shape[0], cy + side / 2))
        if x1 - x0 < 8 or y1 - y0 < 8:
            return face
        found = self._run(image[y0:y1, x0:x1], REFINE_INPUT_SIDE, 0.0)
        local = (face.box[0] - x0, face.box[1] - y0, face.box[2] - x0, face.box[3] - y0)
        best = max(found, key=lambda item: box_iou(item.box, local), default=None)
        if best is None or box_iou(best.box, local) < 0.3 or best.points is None:
            return face
        box = (best.box[0] + x0, best.box[1] + y0, best.box[2] + x0, best.box[3] + y0)
        return FaceDetection(box=box, score=best.score, detector=self.name, points=best.points + [x0, y0])


# Faces smaller than this in YuNet's working image are detected again on a crop REFINE_REGION times
# their size, at REFINE_INPUT_SIDE pixels (the face then spans about 100 px).
REFINE_BELOW_PX = 64.0
REFINE_REGION = 3.0
REFINE_INPUT_SIDE = 320


class DlibHogDetector(FaceDetector):
    """dlib's HOG frontal detector; small images are upsampled so faces reach its ~80 px minimum.

    Its SVM score is ≥ 0 for a detection and false positives cluster near 0.1, so faces below
    ``min_score`` (default 0.5) are dropped. Images whose longer side exceeds ``max_side`` are
    downscaled (boxes are mapped back).
    """

    name = DLIB_HOG
    confident_score = 0.5

    def __init__(self, min_score: float = 0.5, max_side: int = 1600, upsample: int | None = None) -> None:
        super().__init__()
        self.min_score = min_score
        self.max_side = max_side
        self.upsample = upsample
        self._model: Any = None

    def _dlib(self) -> Any:
        with self._lock:
            if self._model is None:
                import dlib

                self._model = dlib.get_frontal_face_detector()
            return self._model

    def load(self) -> DlibHogDetector:
        self._dlib()
        return self

    @staticmethod
    def _upsample_times(shorter_side: int) -> int:
        if shorter_side < 300:
            return 2
        if shorter_side < 600:
            return 1
        return 0

    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        working = resize_image(image, scale)
        upsample = (
            self.upsample if self.upsample is not None else self._upsample_times(min(working.shape[:2]))
        )
        rectangles, scores, _ = self._dlib().run(working, upsample, min(self.min_score, 0.0))
        faces = []
        for rectangle, score in zip(rectangles, scores, strict=True):
            if score < self.min_score:
                continue
            box = (rectangle.left(), rectangle.top(), rectangle.right() + 1, rectangle.bottom() + 1)
            faces.append(
                FaceDetection(
                    box=_map_back(box, scale, (0, 0), image.shape), score=float(score), detector=self.name
                )
            )
        return faces


class DlibMmodDetector(FaceDetector):
    """dlib's CNN face detector (MMOD), read from the shipped ``.dat.bz2`` (decompressed when loaded).

    It finds faces of at least ~80 px; small images are upsampled once. Images are scaled so the longer
    side is at most ``max_side`` (the CNN costs about 1 s per megapixel on this CPU).
    """

    name = DLIB_MMOD
    # MMOD margins of real faces are ≥ 0.5 on the evaluation sets; clutter scores near 0.
    confident_score = 0.5

    def __init__(
        self, weights: Path | str | None = None, min_score: float = 0.0, max_side: int = 800
    ) -> None:
        super().__init__()
        self.weights = Path(weights) if weights is not None else dlib_mmod_weights()
        self.min_score = min_score
        self.max_side = max_side
        self._model: Any = None

    def _dlib(self) -> Any:
        with self._lock:
            if self._model is None:
                import dlib

                if not self.weights.is_file():
                    raise FileNotFoundError(f"The dlib MMOD weights {self.weights} are absent.")
                if self.weights.suffix == ".bz2":
                    with tempfile.TemporaryDirectory() as folder:
                        unpacked = Path(folder) / self.weights.stem
                        unpacked.write_bytes(bz2.decompress(self.weights.read_bytes()))
                        self._model = dlib.cnn_face_detection_model_v1(str(unpacked))
                else:
                    self._model = dlib.cnn_face_detection_model_v1(str(self.weights))
            return self._model

    def load(self) -> DlibMmodDetector:
        self._dlib()
        return self

    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        working = resize_image(image, scale)
        upsample = 1 if min(working.shape[:2]) < 400 else 0
        model = self._dlib()
        with self._lock:  # one dlib network object: serialise concurrent calls
            found = model(working, upsample)
        faces = []
        for item in found:
            if item.confidence < self.min_score:
                continue
            rectangle = item.rect
            box = (rectangle.left(), rectangle.top(), rectangle.right() + 1, rectangle.bottom() + 1)
            faces.append(
                FaceDetection(
                    box=_map_back(box, scale, (0, 0), image.shape),
                    score=float(item.confidence),
                    detector=self.name,
                )
            )
        return faces


def haar_cascade_path() -> Path:
    """Path of OpenCV's bundled frontal-face Haar cascade."""
    import cv2

    return Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"


class HaarCascadeDetector(FaceDetector):
    """OpenCV's Viola–Jones frontal-face cascade; score = the cascade's final-stage level weight."""

    name = OPENCV_HAAR
    confident_score = 3.0

    def __init__(self, max_side: int = 1200) -> None:
        super().__init__()
        self.max_side = max_side
        self._model: Any = None

    def _cascade(self) -> Any:
        with self._lock:
            if self._model is None:
                import cv2

                if not hasattr(cv2, "CascadeClassifier"):
                    raise RuntimeError(
                        f"OpenCV {cv2.__version__} has no CascadeClassifier; the Haar detector is unusable."
                    )
                path = haar_cascade_path()
                cascade = cv2.CascadeClassifier(str(path))
                if cascade.empty():
                    raise RuntimeError(f"OpenCV could not load the Haar cascade at {path}.")
                self._model = cascade
            return self._model

    def load(self) -> HaarCascadeDetector:
        self._cascade()
        return self

    def _detect(self, image: np.ndarray) -> list[FaceDetection]:
        import cv2

        cascade = self._cascade()
        scale = min(1.0, self.max_side / max(image.shape[:2]))
        grey = cv2.equalizeHist(cv2.cvtColor(resize_image(image, scale), cv2.COLOR_RGB2GRAY))
        min_side = max(24, int(0.12 * min(grey.shape)))
        boxes, _, level_weights = cascade.detectMultiScale3(
            grey, scaleFactor=1.1, minNeighbors=6, minSize=(min_side, min_side), outputRejectLevels=True
        )
        faces = []
        for (x, y, w, h), weight in zip(
            np.asarray(boxes).reshape(-1, 4), np.ravel(level_weights), strict=True
        ):
            box = _map_back((x, y, x + w, y + h), scale, (0, 0), image.shape)
            faces.append(FaceDetection(box=box, score=float(weight), detector=self.name))
        return faces


def confident_score_of(detector: str) -> float | None:
    """The confident-detection score of the detector class named ``detector`` (``None`` if unknown)."""
    pending: list[type[FaceDetector]] = [FaceDetector]
    while pending:
        cls = pending.pop()
        if getattr(cls, "name", None) == detector and hasattr(cls, "confident_score"):
            return float(cls.confident_score)
        pending.extend(cls.__subclasses__())
    return None


def yunet_weights() -> Path:
    """The shipped YuNet ONNX file (``<weights dir>/yunet/``)."""
    from ml.config import weights_dir

    return weights_dir() / YUNET / "yunet_s_640_640.onnx"


def dlib_mmod_weights() -> Path:
    """The shipped dlib MMOD file (``<weights dir>/dlib-mmod/``, bzip2-compressed as published)."""
    from ml.config import weights_dir

    return weights_dir() / DLIB_MMOD / "mmod_human_face_detector.dat.bz2"
