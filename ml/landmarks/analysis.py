"""Landmarks analysis of one photo (CLI and worker): faces, 68 landmarks, head pose and quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ml.core.detection import check_rgb_image
from ml.core.landmarks import DEFAULT_LANDMARK_MODEL, FaceLandmarks, detect_faces_with_landmarks
from ml.core.pose import HeadPose
from ml.core.quality import QualityThresholds, assess_quality
from ml.core.subject import subject_index
from ml.landmarks.mesh import head_pose
from ml.progress import ProgressCallback, report
from ml.registry import registry


def _face_to_dict(face: FaceLandmarks, pose: HeadPose) -> dict[str, Any]:
    return {
        "box": [round(float(value), 2) for value in face.box],
        "score": round(float(face.score), 4),
        "detector": face.detector,
        "landmarks": [[round(float(x), 2), round(float(y), 2)] for x, y in np.asarray(face.landmarks)],
        "pose": {key: round(value, 2) for key, value in pose.as_dict().items()},
    }


def analyze_landmarks(
    image: np.ndarray,
    *,
    model: str = DEFAULT_LANDMARK_MODEL,
    weights: Path | str | None = None,
    expected_yaw: float = 0.0,
    thresholds: QualityThresholds | None = None,
    face_detector: str | None = None,
    progress: ProgressCallback | None = None,
) -> dict[str, Any]:
    """Detect faces, landmarks and pose and check photo quality: the pipeline's one entry point.

    ``model``/``weights`` name the registry's landmark model and its weights file (default: the
    shipped one); ``face_detector`` names a registered face detector to use instead of the model's
    default (YuNet). Returns ``{"faces": [{"box", "score", "detector", "landmarks", "pose": {"yaw",
    "pitch", "roll"}}], "subject": index of the subject's face (``ml.core.subject``) or None,
    "quality": {"ok", "reasons", "measures"}, "model": provenance, "image": {"width", "height"}}``.
    """
    check_rgb_image(image)
    report(progress, 0.0, "Loading the landmark model")
    detector = registry.load(model, weights)
    report(progress, 0.2, "Detecting faces and landmarks")
    faces = detect_faces_with_landmarks(image, detector=detector, face_detector=face_detector)
    report(progress, 0.7, "Estimating head pose")
    poses = [head_pose(face, image.shape)[0] for face in faces]
    report(progress, 0.85, "Checking photo quality")
    quality = assess_quality(
        image,
        faces,
        expected_yaw=expected_yaw,
        thresholds=thresholds,
        pose=poses[0] if len(poses) == 1 else None,
    )
    result = {
        "faces": [_face_to_dict(face, pose) for face, pose in zip(faces, poses, strict=True)],
        "subject": subject_index(faces),
        "quality": quality.as_dict(),
        "model": registry.describe(model, weights),
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
    }
    report(progress, 1.0, "Done")
    return result
