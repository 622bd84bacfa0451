"""Landmarks analysis of one photo: faces, 68 landmarks, head pose and quality, as plain JSON data."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ml.core.detection import check_rgb_image
from ml.core.landmarks import DEFAULT_LANDMARK_MODEL, FaceLandmarks, detect_faces_with_landmarks
from ml.core.pose import HeadPose
from ml.core.quality import QualityThresholds, assess_quality
from ml.landmarks.mesh import head_pose
from ml.registry import registry

ProgressCallback = Callable[[float, str], None]


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
    expected_yaw: float = 0.0,
    model: str = DEFAULT_LANDMARK_MODEL,
    progress: ProgressCallback | None = None,
    thresholds: QualityThresholds | None = None,
    face_detector: str | None = None,
) -> dict[str, Any]:
    """Detect faces, landmarks and pose and check photo quality; returns the CLI's JSON document.

    ``{"faces": [{"box", "score", "detector", "landmarks", "pose": {"yaw", "pitch", "roll"}}],
    "quality": {"ok", "reasons", "measures"}, "model": {"name", "version"}, "image": {"width", "height"}}``.
    ``progress(fraction, message)`` is called as the work advances. ``face_detector`` names a registered
    face detector to use instead of the model's default (YuNet).
    """
    check_rgb_image(image)

    def report(fraction: float, message: str) -> None:
        if progress is not None:
            progress(fraction, message)

    report(0.0, "Loading the landmark model")
    spec = registry.spec(model)
    detector = registry.load(model)
    report(0.2, "Detecting faces and landmarks")
    faces = detect_faces_with_landmarks(image, detector=detector, face_detector=face_detector)
    report(0.7, "Estimating head pose")
    poses = [head_pose(face, image.shape)[0] for face in faces]
    report(0.85, "Checking photo quality")
    quality = assess_quality(
        image,
        faces,
        expected_yaw=expected_yaw,
        thresholds=thresholds,
        pose=poses[0] if len(poses) == 1 else None,
    )
    result = {
        "faces": [_face_to_dict(face, pose) for face, pose in zip(faces, poses, strict=True)],
        "quality": quality.as_dict(),
        "model": {"name": spec.name, "version": spec.version},
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
    }
    report(1.0, "Done")
    return result
