"""Similarity alignment of faces: eyes level and a fixed inter-ocular distance."""

from __future__ import annotations

import numpy as np

from ml.core.detection import check_rgb_image

RIGHT_EYE_INDICES = slice(36, 42)  # subject's right eye, image left
LEFT_EYE_INDICES = slice(42, 48)  # subject's left eye, image right


def similarity_transform(src_points: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, translation) mapping ``src`` onto ``dst``.

    Umeyama, "Least-squares estimation of transformation parameters between two point patterns",
    IEEE TPAMI 13(4), 1991, eqs. (40)–(42): ``R = U S Vᵀ`` from the SVD of the cross-covariance with
    ``S`` fixing det(R) = +1 (no reflection), ``c = tr(D S) / σ²_src``, ``t = μ_dst − c R μ_src``.
    Returns the ``(2, 3)`` matrix ``[c R | t]`` for ``cv2.warpAffine``.
    """
    src = np.asarray(src_points, dtype=np.float64)
    dst = np.asarray(dst_points, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2:
        raise ValueError(f"Expected two (N, 2) point arrays of equal shape, got {src.shape} and {dst.shape}.")
    if src.shape[0] < 2:
        raise ValueError("At least two point pairs are needed for a similarity transform.")
    src_mean, dst_mean = src.mean(axis=0), dst.mean(axis=0)
    src_centred, dst_centred = src - src_mean, dst - dst_mean
    src_variance = (src_centred**2).sum() / len(src)
    if src_variance <= 1e-12:
        raise ValueError("Source points are all identical; the transform is undefined.")
    covariance = dst_centred.T @ src_centred / len(src)
    u, singular_values, vt = np.linalg.svd(covariance)
    sign = np.eye(2)
    if np.linalg.det(u) * np.linalg.det(vt) < 0:
        sign[1, 1] = -1.0
    rotation = u @ sign @ vt
    scale = np.trace(np.diag(singular_values) @ sign) / src_variance
    translation = dst_mean - scale * rotation @ src_mean
    return np.hstack([scale * rotation, translation[:, None]])


def apply_transform(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """Apply a ``(2, 3)`` affine matrix to ``(N, 2)`` points."""
    points = np.asarray(points, dtype=np.float64)
    return points @ matrix[:, :2].T + matrix[:, 2]


def eye_centers(landmarks: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Centres of the eye contours ``(image_left_eye, image_right_eye)`` from iBUG-68 landmarks.

    The image-left eye is the subject's right eye (points 36–41).
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"Expected (68, 2) landmarks, got {points.shape}.")
    return points[RIGHT_EYE_INDICES].mean(axis=0), points[LEFT_EYE_INDICES].mean(axis=0)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    """Distance in pixels between the eye centres."""
    image_left_eye, image_right_eye = eye_centers(landmarks)
    return float(np.linalg.norm(image_right_eye - image_left_eye))


def align_face(
    image: np.ndarray,
    landmarks: np.ndarray,
    output_size: int = 256,
    inter_ocular: float = 0.35,
    eye_height: float = 0.40,
) -> tuple[np.ndarray, np.ndarray]:
    """Warp a face so the eyes are level, ``inter_ocular × output_size`` pixels apart and centred.

    The eye midpoint lands at ``(output_size / 2, eye_height × output_size)``. Returns the
    ``(output_size, output_size, 3)`` aligned image and the ``(2, 3)`` matrix from image to aligned
    coordinates (apply it to landmarks with :func:`apply_transform`).
    """
    import cv2

    check_rgb_image(image)
    if output_size < 8:
        raise ValueError(f"output_size must be at least 8 pixels, got {output_size}.")
    if not 0.0 < inter_ocular < 1.0:
        raise ValueError(f"inter_ocular is a fraction of the output width in (0, 1), got {inter_ocular}.")
    image_left_eye, image_right_eye = eye_centers(landmarks)
    half_distance = inter_ocular * output_size / 2.0
    centre_x, eye_y = output_size / 2.0, eye_height * output_size
    target = np.array([[centre_x - half_distance, eye_y], [centre_x + half_distance, eye_y]])
    matrix = similarity_transform(np.stack([image_left_eye, image_right_eye]), target)
    aligned = cv2.warpAffine(
        image, matrix, (output_size, output_size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT101
    )
    return aligned, matrix
