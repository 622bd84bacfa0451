"""Facet's own 68-point face landmark detector: a YOLOv8n-pose model trained by a landmark campaign.

YOLOv8-pose (Jocher et al., Ultralytics YOLOv8, 2023) detects the face box and regresses the 68 iBUG
points in one pass; the weights come from :mod:`ml.landmarks.campaign` (see
``ml/weights/yolo-pose68/MODEL_CARD.md``).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Any

import numpy as np

from ml.config import weights_dir
from ml.core.detection import check_rgb_image
from ml.core.landmarks import FaceLandmarks, ModelFileMissingError
from ml.model_names import YOLO_POSE68

YOLO_POSE68_NAME = YOLO_POSE68
WEIGHTS_FILE = "yolo-pose68.pt"
DEFAULT_IMGSZ = 320


def yolo_pose68_dir() -> Path:
    return weights_dir() / YOLO_POSE68_NAME


def yolo_pose68_weights() -> Path:
    return yolo_pose68_dir() / WEIGHTS_FILE


class YoloPoseLandmarkDetector:
    """Faces and 68 landmarks from a YOLOv8-pose model; same ``detect`` contract as the dlib detector."""

    def __init__(
        self,
        weights: Path | None = None,
        imgsz: int | None = None,
        min_score: float = 0.25,
        name: str = YOLO_POSE68_NAME,
        device: str = "cpu",
    ) -> None:
        self.weights = Path(weights) if weights is not None else yolo_pose68_weights()
        if not self.weights.is_file():
            raise ModelFileMissingError(
                f"{self.weights} is absent: train it with 'python -m ml landmarks campaign mebeauty' "
                "(see docs/landmark-campaign.md)."
            )
        self.imgsz = imgsz
        self.min_score = min_score
        self.name = name
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

    def detect(self, image: np.ndarray) -> list[FaceLandmarks]:
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


def landmarks68_nme(detector: Any, data_root: Path, min_iou: float = 0.3) -> dict[str, dict[str, Any]]:
    """Per-face NME (outer eye corners) on the human-annotated ``landmarks68`` faces.

    The annotated face is matched to the detection of highest box IoU with the annotation's point extent;
    below ``min_iou`` the face counts as not detected (``nme`` is ``None``).
    """
    from ml.core.imageio import load_image
    from ml.core.metrics import box_iou, normalized_mean_error

    annotations = json.loads((data_root / "landmarks68" / "landmarks.json").read_text())["faces"]
    results: dict[str, dict[str, Any]] = {}
    for name, points in sorted(annotations.items()):
        truth = np.asarray(points, dtype=np.float64)
        truth_box = (*truth.min(axis=0), *truth.max(axis=0))
        faces = detector.detect(load_image(data_root / "landmarks68" / name))
        best = max(faces, key=lambda face: box_iou(face.box, truth_box), default=None)
        iou = box_iou(best.box, truth_box) if best is not None else 0.0
        detected = best is not None and iou >= min_iou
        results[Path(name).stem] = {
            "detected": detected,
            "faces_found": len(faces),
            "box_iou": round(iou, 3),
            "score": round(best.score, 3) if best is not None else None,
            "nme": round(normalized_mean_error(best.landmarks, truth), 4) if detected else None,
        }
    return results
