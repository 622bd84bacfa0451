"""Facet's own 68-point landmark model: YOLOv8-pose on an eye-aligned face crop from the face detector.

YOLOv8-pose (Jocher et al., Ultralytics YOLOv8, 2023) regresses a face box and the 68 iBUG points in
one pass. Facet runs it on a crop, not the whole photo: the face detector's eyes and mouth give the
face frame (:func:`crop_roi`), the crop is rotated so the eyes are level and scaled so every face has
the same size (:data:`CROP_SIZE` pixels, the face ≈ 65 % of it), which spends the network's resolution
on the face and removes in-plane rotation and scale from what it has to learn. The network is a
YOLOv8n-pose with its stride-8 level removed (``yolo-pose68-crop.yaml``: a face fills the crop, so only
the coarse levels are needed), trained from scratch by :mod:`ml.landmarks.campaign` from human 300-W
labels; see ``ml/weights/yolo-pose68/MODEL_CARD.md``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import numpy as np

from ml.config import weights_dir
from ml.core.detection import FaceDetection, FaceDetector, check_rgb_image
from ml.core.face_crop import Roi, detection_angle, extract_crop, eye_angle, roi_around, to_image
from ml.core.landmarks import (
    FaceLandmarks,
    LandmarkModel,
    ModelFileMissingError,
    detection_frame,
    landmarks_frame,
)
from ml.model_names import YOLO_POSE68

YOLO_POSE68_NAME = YOLO_POSE68
WEIGHTS_FILE = "yolo-pose68.pt"
MODEL_YAML = Path(__file__).resolve().parent / "yolo-pose68-crop.yaml"

CROP_SIZE = 256
# Input size of whole-photo models (study campaigns) whose checkpoint does not record one.
DEFAULT_IMGSZ = 320
# Crop side and centre in units of the eye-to-mouth distance: the 68 points span 2.2 (median, 3.1 at the
# 99th percentile) of them and their extent's centre lies 0.17 below the eye–mouth midpoint (landmarks300w
# training faces).
CROP_SIDE = 3.4
CROP_SHIFT_DOWN = 0.17


def yolo_pose68_dir() -> Path:
    return weights_dir() / YOLO_POSE68_NAME


def yolo_pose68_weights() -> Path:
    return yolo_pose68_dir() / WEIGHTS_FILE


def checkpoint_inference(weights: Path) -> dict[str, Any]:
    """Run-time settings of weights without a card: a crop model (trained from ``yolo-pose68-crop.yaml``)
    or a whole-photo model, at the image size it was trained at (the checkpoint records both)."""
    import torch

    state = torch.load(weights, map_location="cpu", weights_only=False)
    train_args = state.get("train_args") or {}
    crop = Path(str(train_args.get("model", ""))).name == MODEL_YAML.name
    imgsz = int(train_args.get("imgsz") or (CROP_SIZE if crop else DEFAULT_IMGSZ))
    return {"input": "crop" if crop else "image", "imgsz": imgsz}


def yolo_pose_model(weights: Path, inference: dict[str, Any] | None = None) -> Any:
    """The yolo-pose68 runner for ``weights``: on face crops or on the whole photo, as the weights were
    trained (``inference`` from their model card, else read from the checkpoint)."""
    settings = dict(inference) if inference else checkpoint_inference(Path(weights))
    if settings.get("input", "image") == "crop":
        return YoloPoseLandmarker(
            weights=weights,
            crop_size=settings.get("imgsz"),
            refine=bool(settings.get("refine", False)),
            flip=bool(settings.get("flip", False)),
        )
    return YoloPoseImageDetector(weights=weights, imgsz=settings.get("imgsz"))


def crop_roi(detection: FaceDetection) -> Roi:
    """The model's input crop for a detected face."""
    centre, scale = detection_frame(detection)
    return roi_around(centre, scale, detection_angle(detection), CROP_SIDE, CROP_SHIFT_DOWN)


def landmarks_roi(landmarks: np.ndarray) -> Roi:
    """The model's input crop for a face whose 68 landmarks are known (labels, or a first pass)."""
    points = np.asarray(landmarks, dtype=np.float64)
    centre, scale = landmarks_frame(points)
    angle = eye_angle(points[36:42].mean(axis=0), points[42:48].mean(axis=0))
    return roi_around(centre, scale, angle, CROP_SIDE, CROP_SHIFT_DOWN)


def load_pose_network(weights: Path) -> Any:
    """An Ultralytics pose checkpoint as a fused, FP32 ``nn.Module`` in eval mode."""
    from ultralytics.nn.tasks import load_checkpoint

    model, _ = load_checkpoint(str(weights), device="cpu", fuse=True)
    return model.float().eval()


def decode_best_face(output: Any, crop_size: int) -> tuple[np.ndarray, float, np.ndarray] | None:
    """The anchor with the highest face score: ``(68, 2)`` points and box in crop pixels, and its score.

    ``output`` is the eval-mode output of a YOLOv8-pose network: ``(1, 4 + 1 + 68·k, anchors)`` with the
    box as centre/size, the face score, then 68 points of ``k`` values (x, y[, visibility]).
    """
    predictions = output[0] if isinstance(output, tuple | list) else output
    table = predictions[0].float().numpy()
    scores = table[4]
    best = int(np.argmax(scores))
    column = table[:, best]
    keypoints = column[5:]
    dims = keypoints.size // 68
    points = keypoints.reshape(68, dims)[:, :2].astype(np.float64)
    cx, cy, w, h = column[:4]
    box = np.array([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], dtype=np.float64)
    if not np.all(np.isfinite(points)):
        return None
    return points, float(scores[best]), box


class YoloPoseLandmarker(LandmarkModel):
    """yolo-pose68 on a crop of each detected face; ``refine`` re-crops once from its own landmarks.

    ``flip`` averages the prediction with that of the mirrored crop (test-time augmentation; twice the
    time).
    """

    name = YOLO_POSE68_NAME

    def __init__(
        self,
        weights: Path | None = None,
        face_detector: FaceDetector | None = None,
        crop_size: int | None = None,
        refine: bool = False,
        flip: bool = False,
    ) -> None:
        super().__init__(face_detector)
        self.weights = Path(weights) if weights is not None else yolo_pose68_weights()
        if not self.weights.is_file():
            raise ModelFileMissingError(
                f"{self.weights} is absent: train it with 'python -m ml landmarks campaign human-300w' "
                "(see docs/landmark-campaign.md)."
            )
        self.crop_size = int(crop_size or CROP_SIZE)
        self.refine = refine
        self.flip = flip
        self._net: Any = None

    def _network(self) -> Any:
        with self._lock:
            if self._net is None:
                from ml.config import apply_torch_threads

                apply_torch_threads()
                self._net = load_pose_network(self.weights)
            return self._net

    def load(self) -> YoloPoseLandmarker:
        super().load()
        self._network()
        return self

    def predict_crop(self, crop: np.ndarray) -> tuple[np.ndarray, float]:
        """``(68, 2)`` points in pixels of a ``crop_size`` RGB crop, and the face score."""
        import torch

        from ml.landmarks.formats import IBUG68_FLIP_IDX

        net = self._network()
        batch = [crop, crop[:, ::-1]] if self.flip else [crop]
        tensor = torch.from_numpy(np.ascontiguousarray(np.stack(batch))).permute(0, 3, 1, 2).float() / 255.0
        with torch.inference_mode():
            output = net(tensor)
        predictions = output[0] if isinstance(output, tuple | list) else output
        decoded = [
            decode_best_face(predictions[index : index + 1], self.crop_size) for index in range(len(batch))
        ]
        if decoded[0] is None:
            return np.full((68, 2), np.nan), 0.0
        points, score, _ = decoded[0]
        if self.flip and decoded[1] is not None:
            mirrored = decoded[1][0][list(IBUG68_FLIP_IDX)]
            mirrored[:, 0] = self.crop_size - 1 - mirrored[:, 0]
            points = (points + mirrored) / 2.0
        return points, score

    def landmarks_in(self, image: np.ndarray, roi: Roi) -> tuple[np.ndarray, float]:
        crop, crop_to_image = extract_crop(image, roi, self.crop_size)
        points, score = self.predict_crop(crop)
        return to_image(points, crop_to_image), score

    def fit(self, image: np.ndarray, detection: FaceDetection) -> FaceLandmarks:
        check_rgb_image(image)
        landmarks, _ = self.landmarks_in(image, crop_roi(detection))
        if self.refine and np.all(np.isfinite(landmarks)):
            landmarks, _ = self.landmarks_in(image, landmarks_roi(landmarks))
        return FaceLandmarks(
            box=detection.box, score=detection.score, landmarks=landmarks, detector=detection.detector
        )


class YoloPoseImageDetector:
    """A whole-photo yolo-pose68 (the study campaigns' models): faces and 68 landmarks in one pass.

    Same ``detect`` contract as :class:`~ml.core.landmarks.LandmarkModel`; it finds faces itself, so a
    ``face_detector`` passed to :meth:`detect` is not used.
    """

    name = YOLO_POSE68_NAME

    def __init__(
        self,
        weights: Path | None = None,
        imgsz: int | None = None,
        min_score: float = 0.25,
        device: str = "cpu",
    ) -> None:
        self.weights = Path(weights) if weights is not None else yolo_pose68_weights()
        if not self.weights.is_file():
            raise ModelFileMissingError(
                f"{self.weights} is absent: train it with a landmark campaign "
                "(see docs/landmark-campaign.md)."
            )
        self.imgsz = imgsz
        self.min_score = min_score
        self.device = device
        self._model: Any = None
        self._lock = threading.Lock()

    def _yolo(self) -> Any:
        with self._lock:
            if self._model is None:
                from ultralytics import YOLO

                self._model = YOLO(str(self.weights), task="pose")
                if self.imgsz is None:
                    # Predict at the size the weights were trained at (the checkpoint records it).
                    trained = (getattr(self._model, "ckpt", None) or {}).get("train_args", {}).get("imgsz")
                    self.imgsz = int(trained or DEFAULT_IMGSZ)
            return self._model

    def load(self) -> YoloPoseImageDetector:
        self._yolo()
        return self

    def detect(self, image: np.ndarray, face_detector: FaceDetector | None = None) -> list[FaceLandmarks]:
        """All faces with their landmarks, best score first."""
        check_rgb_image(image)
        model = self._yolo()
        # Ultralytics reads numpy arrays as BGR (OpenCV order); Facet images are RGB.
        bgr = np.ascontiguousarray(image[..., ::-1])
        with self._lock:  # one predictor per model object: serialise concurrent calls
            result = model.predict(
                source=bgr, imgsz=self.imgsz, conf=self.min_score, device=self.device, verbose=False
            )[0]
        if result.boxes is None or not len(result.boxes) or result.keypoints is None:
            return []
        boxes = result.boxes.xyxy.cpu().numpy().astype(np.float64)
        scores = result.boxes.conf.cpu().numpy().astype(np.float64)
        points = result.keypoints.xy.cpu().numpy().astype(np.float64)
        faces = [
            FaceLandmarks(
                box=(float(box[0]), float(box[1]), float(box[2]), float(box[3])),
                score=float(score),
                landmarks=keypoints,
                detector=self.name,
            )
            for box, score, keypoints in zip(boxes, scores, points, strict=True)
        ]
        return sorted(faces, key=lambda face: -face.score)


def landmarks68_nme(detector: Any, data_root: Path) -> dict[str, dict[str, Any]]:
    """Per-face NME (outer eye corners) on the human-annotated ``landmarks68`` faces, by name."""
    from ml.landmarks.evaluation import evaluate_faces
    from ml.landmarks.human_sets import read_landmark_folder

    faces = read_landmark_folder(data_root / "landmarks68")
    return {
        row.name: {
            "detected": row.detected,
            "faces_found": row.faces_found,
            "nme": round(row.nme, 4) if row.nme is not None else None,
        }
        for row in evaluate_faces(detector, faces)
    }
