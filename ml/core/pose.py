"""Head pose (yaw, pitch, roll) from 68 landmarks by perspective-n-point fitting of a generic 3D face.

The 3D points are the 14-point anthropometric head model used by lincolnhard/head-pose-estimation
(from the ISR Coimbra "glAnthropometric3DModel"), re-expressed in OpenCV's object frame. The pose
is ``cv2.solvePnP`` (Levenberg–Marquardt minimisation of reprojection error) with a pinhole camera
whose focal length equals the image width and whose principal point is the image centre.

Sign convention (degrees, camera looking at the subject):

* ``yaw > 0``: the subject has turned to *their* left, so the nose points towards image right.
* ``pitch > 0``: chin up, the nose points towards the top of the image.
* ``roll > 0``: the head is tilted clockwise in the image (top of the head towards image right,
  i.e. towards the subject's left shoulder).

The rotation from the model to the camera is ``R = Rz(roll) · Rx(−pitch) · Ry(−yaw)`` with the
right-handed rotation matrices of the OpenCV camera frame (x right, y down, z forward);
:func:`rotation_from_pose` builds it and :func:`pose_from_rotation` inverts it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# iBUG-68 indices of the model points: brow corners, eye corners, nostril corners, mouth corners,
# lower-lip centre, chin.
MODEL_LANDMARK_INDICES: tuple[int, ...] = (17, 21, 22, 26, 36, 39, 42, 45, 31, 35, 48, 54, 57, 8)

# Object frame: x towards image right for a frontal face, y down, z away from the camera (nose has
# the smallest z). Units are arbitrary (about centimetres).
GENERIC_FACE_MODEL_3D = np.array(
    [
        [-6.825897, -6.760612, -4.402142],
        [-1.330353, -7.122144, -6.903745],
        [1.330353, -7.122144, -6.903745],
        [6.825897, -6.760612, -4.402142],
        [-5.311432, -5.485328, -3.987654],
        [-1.789930, -5.393625, -4.413414],
        [1.789930, -5.393625, -4.413414],
        [5.311432, -5.485328, -3.987654],
        [-2.005628, -1.409845, -6.165652],
        [2.005628, -1.409845, -6.165652],
        [-2.774015, 2.080775, -5.048531],
        [2.774015, 2.080775, -5.048531],
        [0.000000, 3.116408, -6.097667],
        [0.000000, 7.415691, -4.070434],
    ],
    dtype=np.float64,
)


@dataclass(frozen=True)
class HeadPose:
    """Head rotation in degrees; see the module docstring for the sign convention."""

    yaw: float
    pitch: float
    roll: float

    def as_dict(self) -> dict[str, float]:
        return {"yaw": self.yaw, "pitch": self.pitch, "roll": self.roll}


def camera_matrix(image_shape: tuple[int, ...]) -> np.ndarray:
    """Pinhole intrinsics assumed for an uncalibrated photo: focal = width, centre = image centre."""
    height, width = image_shape[:2]
    return np.array(
        [[width, 0.0, width / 2.0], [0.0, width, height / 2.0], [0.0, 0.0, 1.0]], dtype=np.float64
    )


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
    yaw: float, pitch: float, roll: float, image_shape: tuple[int, ...], distance: float = 60.0
) -> np.ndarray:
    """Image points of the generic model posed at ``distance`` in front of the camera, centred.

    Useful to test pose estimation and to draw the expected pose; returns ``(14, 2)`` points in the
    order of :data:`MODEL_LANDMARK_INDICES`.
    """
    import cv2

    rotation_vector, _ = cv2.Rodrigues(rotation_from_pose(yaw, pitch, roll))
    translation = np.array([0.0, 0.0, distance])
    points, _ = cv2.projectPoints(
        GENERIC_FACE_MODEL_3D, rotation_vector, translation, camera_matrix(image_shape), np.zeros(4)
    )
    return points.reshape(-1, 2)


def estimate_head_pose(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> HeadPose:
    """Head pose in degrees from ``(68, 2)`` landmarks (or the 14 model points in model order)."""
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape == (68, 2):
        points = points[list(MODEL_LANDMARK_INDICES)]
    elif points.shape != (len(MODEL_LANDMARK_INDICES), 2):
        raise ValueError(f"Expected (68, 2) landmarks, got an array of shape {points.shape}.")
    if not np.all(np.isfinite(points)):
        raise ValueError("Landmarks contain NaN or infinite values.")
    # Start frontal at a plausible distance so the iterative solver does not flip the face behind the camera.
    initial_rotation = np.zeros((3, 1))
    initial_translation = np.array([[0.0], [0.0], [60.0]])
    ok, rotation_vector, _ = cv2.solvePnP(
        GENERIC_FACE_MODEL_3D,
        points.reshape(-1, 1, 2),
        camera_matrix(image_shape),
        np.zeros(4),
        initial_rotation,
        initial_translation,
        useExtrinsicGuess=True,
        flags=cv2.SOLVEPNP_ITERATIVE,
    )
    if not ok:
        raise ValueError("Head pose could not be estimated from these landmarks.")
    rotation, _ = cv2.Rodrigues(rotation_vector)
    return pose_from_rotation(rotation)
