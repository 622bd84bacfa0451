"""Head pose (yaw, pitch, roll): a rigid 3-D face fitted to 68 landmarks, or to a dense 3-D mesh.

**From 68 landmarks** (:func:`estimate_head_pose`): the generic 3-D face :data:`FACE_MODEL_68`
(``face_model_68.json``, centimetres) is fitted by perspective-n-point (``cv2.solvePnP``,
Levenberg–Marquardt on the reprojection error) to the landmarks that sit on rigid, pose-independent
anatomy: brows, nose, eyes, mouth and chin (the jaw contour 0–16 is left out except the chin, because it
follows the visible silhouette and slides over the face as the head turns). The camera is nearly
orthographic (focal length :data:`FOCAL_PER_SIDE` times the image's longer side): an uncalibrated
photo's focal length is unknown, and assuming a wide-angle lens (focal = image width, the common default)
made a 45° turn measure about 20° on FASSEG, because perspective then explains most of the foreshortening.

The 3-D model is the mean FaceMesh surface of the 905 training faces of the human 300-W split, reduced to
the iBUG-68 points by the fitted 468→68 mapping, made left–right symmetric, levelled so the eye and mouth
corners lie in one fronto-parallel plane (pitch 0), and scaled in depth by the factor that best explains
the human 300-W labels (least reprojection error); ``python -m ml landmarks fit-mesh-geometry`` rebuilds
it (see ``docs/head-pose.md``).

**From a dense mesh**, see :func:`ml.landmarks.mesh.pose_from_mesh` (rigid 3-D alignment).

Sign convention (degrees, camera looking at the subject):

* ``yaw > 0``: the subject has turned to *their* left, so the nose points towards image right.
* ``pitch > 0``: chin up, the nose points towards the top of the image.
* ``roll > 0``: the head is tilted clockwise in the image (top of the head towards image right,
  i.e. towards the subject's left shoulder).

The rotation from the model to the camera is ``R = Rz(roll) · Rx(−pitch) · Ry(−yaw)`` with the
right-handed rotation matrices of the OpenCV camera frame (x right, y down, z forward);
:func:`rotation_from_pose` builds it and :func:`pose_from_rotation` inverts it. The model frame is the
camera frame of a frontal face: x towards image right, y down, z away from the camera.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

FACE_MODEL_FILE = Path(__file__).resolve().parent / "face_model_68.json"
# iBUG-68 points used for pose: chin, brows, nose, eyes, lips (not the jaw contour).
POSE_LANDMARK_INDICES: tuple[int, ...] = (8, *range(17, 68))
# Focal length of the assumed camera, in units of the image's longer side (a nearly orthographic view).
FOCAL_PER_SIDE = 10.0


def _load_face_model() -> np.ndarray:
    document = json.loads(FACE_MODEL_FILE.read_text())
    points = np.asarray(document["points"], dtype=np.float64)
    if points.shape != (68, 3):
        raise ValueError(f"{FACE_MODEL_FILE} must hold 68 points (x, y, z), got {points.shape}.")
    return points


FACE_MODEL_68 = _load_face_model()


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees; see the module docstring for the sign convention."""

    yaw: float
    pitch: float
    roll: float

    def as_dict(self) -> dict[str, float]:
        return {"yaw": self.yaw, "pitch": self.pitch, "roll": self.roll}


def camera_matrix(image_shape: tuple[int, ...]) -> np.ndarray:
    """The assumed intrinsics: focal ``FOCAL_PER_SIDE × longer side``, principal point at the centre."""
    height, width = image_shape[:2]
    focal = FOCAL_PER_SIDE * max(height, width)
    return np.array([[focal, 0.0, width / 2.0], [0.0, focal, height / 2.0], [0.0, 0.0, 1.0]])


def rotation_from_pose(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """Model-to-camera rotation matrix for a pose in degrees (inverse of :func:`pose_from_rotation`)."""
    b, a, g = np.radians([-yaw, -pitch, roll])
    rot_y = np.array([[np.cos(b), 0, np.sin(b)], [0, 1, 0], [-np.sin(b), 0, np.cos(b)]])
    rot_x = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]])
    rot_z = np.array([[np.cos(g), -np.sin(g), 0], [np.sin(g), np.cos(g), 0], [0, 0, 1]])
    return rot_z @ rot_x @ rot_y


def pose_from_rotation(rotation: np.ndarray) -> HeadPose:
    """Decompose ``R = Rz(roll) · Rx(−pitch) · Ry(−yaw)`` into a :class:`HeadPose` in degrees."""
    yaw = np.degrees(np.arctan2(rotation[2, 0], rotation[2, 2]))
    pitch = -np.degrees(np.arcsin(np.clip(rotation[2, 1], -1.0, 1.0)))
    roll = np.degrees(np.arctan2(-rotation[0, 1], rotation[1, 1]))
    return HeadPose(yaw=float(yaw), pitch=float(pitch), roll=float(roll))


def project_model(
    yaw: float,
    pitch: float,
    roll: float,
    image_shape: tuple[int, ...],
    eye_distance_px: float | None = None,
) -> np.ndarray:
    """``(68, 2)`` image points of the generic face posed at the image centre, seen by the pose camera.

    ``eye_distance_px`` is the frontal outer-eye-corner distance in pixels (default 0.3 of the image
    width). Useful to test pose estimation and to draw an expected pose.
    """
    import cv2

    camera = camera_matrix(image_shape)
    wanted = eye_distance_px if eye_distance_px is not None else 0.3 * image_shape[1]
    model_eye_distance = float(np.linalg.norm(FACE_MODEL_68[36] - FACE_MODEL_68[45]))
    distance = camera[0, 0] * model_eye_distance / wanted
    rotation_vector, _ = cv2.Rodrigues(rotation_from_pose(yaw, pitch, roll))
    points, _ = cv2.projectPoints(
        FACE_MODEL_68, rotation_vector, np.array([0.0, 0.0, distance]), camera, np.zeros(4)
    )
    return points.reshape(-1, 2)


def estimate_head_pose(
    landmarks: np.ndarray, image_shape: tuple[int, ...], model: np.ndarray | None = None
) -> HeadPose:
    """Head pose in degrees from ``(68, 2)`` iBUG landmarks in pixels of an image of ``image_shape``.

    ``model`` replaces :data:`FACE_MODEL_68` (used when the model itself is being fitted).
    """
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"Expected (68, 2) landmarks, got an array of shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("Landmarks contain NaN or infinite values.")
    face_model = FACE_MODEL_68 if model is None else np.asarray(model, dtype=np.float64)
    used = list(POSE_LANDMARK_INDICES)
    camera = camera_matrix(image_shape)
    # Start frontal at the distance that matches the face's size, so the solver does not wander.
    model_eye_distance = float(np.linalg.norm(face_model[36] - face_model[45]))
    eye_distance = max(float(np.linalg.norm(points[36] - points[45])), 1e-6)
    distance = camera[0, 0] * model_eye_distance / eye_distance
    centre = points[used].mean(axis=0)
    initial_translation = np.array(
        [
            [(centre[0] - camera[0, 2]) * distance / camera[0, 0]],
            [(centre[1] - camera[1, 2]) * distance / camera[1, 1]],
            [distance],
        ]
    )
    ok, rotation_vector, _ = cv2.solvePnP(
        np.ascontiguousarray(face_model[used]),
        np.ascontiguousarray(points[used]).reshape(-1, 1, 2),
        camera,
        np.zeros(4),
        np.zeros((3, 1)),
        initial_translation,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        raise ValueError("Head pose could not be estimated from these landmarks.")
    rotation, _ = cv2.Rodrigues(rotation_vector)
    return pose_from_rotation(rotation)
