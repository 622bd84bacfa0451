"""Is a photo usable for a study? One face, large enough, in the expected pose, sharp, well exposed.

Every failed check adds a complete sentence to ``reasons`` with the measured value and its limit,
and every measurement is kept in ``measures`` so that limits can be tuned from recorded data.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.core.alignment import inter_ocular_distance
from ml.core.detection import check_rgb_image, confident_score_of, resize_image
from ml.core.landmarks import FaceLandmarks
from ml.core.pose import HeadPose, estimate_head_pose

# Expected yaw per standard clinical view, in the sign convention of ml.core.pose (yaw > 0: the
# subject turned to their left). "left45"/"left90" show the subject's left side to the camera,
# so the subject has turned to their right (negative yaw).
VIEW_EXPECTED_YAW: dict[str, float] = {
    "frontal": 0.0,
    "left45": -45.0,
    "right45": 45.0,
    "left90": -90.0,
    "right90": 90.0,
}

# Frontal-only detectors (dlib HOG, Haar) do not find faces turned further than about this.
FRONTAL_DETECTOR_MAX_YAW = 60.0
# Beyond this yaw the pose estimate saturates (FaceMesh and the 68-point model describe the far side of
# the face; a 90° profile on FASSEG measures 55–65°), so a profile view is checked by direction: the
# head must be turned at least PROFILE_MIN_YAW the expected way.
POSE_RELIABLE_MAX_YAW = 55.0
PROFILE_MIN_YAW = 50.0

# Sharpness is measured after scaling the face so the eye centres are this far apart.
SHARPNESS_INTER_OCULAR_PX = 64.0
# Exposure is measured on the face scaled to this eye distance (about 250 × 300 pixels).
EXPOSURE_INTER_OCULAR_PX = 128.0


@dataclass(frozen=True)
class QualityThresholds:
    """Limits of the quality checks (angles in degrees, fractions in 0–1, intensities 0–255)."""

    min_inter_ocular_px: float = 60.0
    min_face_fraction: float = 0.15
    max_yaw_deviation: float = 15.0
    max_pitch: float = 20.0
    max_roll: float = 10.0
    # Sharp faces in FASSEG/MEBeauty/lenna measured 483–3339; the same faces blurred with a Gaussian of
    # σ = 3 % of the eye distance measured 63–330 and σ = 5 % measured 26–135.
    min_sharpness: float = 100.0
    min_brightness: float = 50.0
    max_brightness: float = 215.0
    max_clipped_fraction: float = 0.05


@dataclass
class QualityReport:
    """``ok`` is true when ``reasons`` is empty; ``measures`` holds every measured value."""

    ok: bool
    reasons: list[str] = field(default_factory=list)
    measures: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "reasons": list(self.reasons), "measures": dict(self.measures)}


def view_expected_yaw(view: str) -> float:
    """Expected yaw of a named view (``frontal``, ``left45``, ``right45``, ``left90``, ``right90``)."""
    try:
        return VIEW_EXPECTED_YAW[view]
    except KeyError:
        raise ValueError(f"Unknown view '{view}'; choose one of {', '.join(VIEW_EXPECTED_YAW)}.") from None


def suggest_view(yaw: float) -> str:
    """The standard view whose expected yaw a measured head yaw (degrees) matches best. A yaw beyond
    :data:`POSE_RELIABLE_MAX_YAW` is a profile: the estimate saturates there, so only its side counts."""
    side = "left" if yaw < 0 else "right"
    if abs(yaw) > POSE_RELIABLE_MAX_YAW:
        return f"{side}90"
    if abs(yaw) >= 22.5:  # half-way between frontal (0°) and a 45° view
        return f"{side}45"
    return "frontal"


def _face_mask(shape: tuple[int, int], landmarks: np.ndarray) -> np.ndarray:
    """Boolean mask of the convex hull of the landmarks (jaw line to brows)."""
    import cv2

    mask = np.zeros(shape, dtype=np.uint8)
    hull = cv2.convexHull(np.round(landmarks).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1)
    return mask.astype(bool)


def _face_patch(
    image: np.ndarray, landmarks: np.ndarray, inter_ocular_px: float
) -> tuple[np.ndarray, np.ndarray] | None:
    """The face's bounding region in grey, scaled so the eye centres are ``inter_ocular_px`` apart.

    Returns the patch and the face's convex-hull mask in it, or ``None`` for a degenerate face. Only the
    face region is converted and it is reduced with :func:`~ml.core.detection.resize_image`, so a 12-MP
    photo costs about what a small one does.
    """
    import cv2

    points = np.asarray(landmarks, dtype=np.float64)
    height, width = image.shape[:2]
    x0, y0 = np.floor(points.min(axis=0)).astype(int)
    x1, y1 = np.ceil(points.max(axis=0)).astype(int) + 1
    x0, y0, x1, y1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    scale = inter_ocular_px / max(inter_ocular_distance(points), 1e-6)
    region = resize_image(image[y0:y1, x0:x1], scale)  # a view: copying a 12-MP face region costs 40 ms
    grey = cv2.cvtColor(region, cv2.COLOR_RGB2GRAY)
    factor = np.array([grey.shape[1] / (x1 - x0), grey.shape[0] / (y1 - y0)])
    return grey, _face_mask(grey.shape, (points - [x0, y0]) * factor)


def face_sharpness(image: np.ndarray, landmarks: np.ndarray) -> float:
    """Variance of the Laplacian inside the face, after scaling the face to a fixed eye distance.

    The variance-of-Laplacian focus measure (Pech-Pacheco et al., ICPR 2000) grows with image
    scale, so the face is first resized to :data:`SHARPNESS_INTER_OCULAR_PX` between the eyes.
    """
    import cv2

    patch = _face_patch(image, landmarks, SHARPNESS_INTER_OCULAR_PX)
    if patch is None:
        return 0.0
    grey, mask = patch
    # Erode so the face outline (a strong edge against the background) does not count as detail.
    mask = cv2.erode(mask.astype(np.uint8), np.ones((5, 5), np.uint8)).astype(bool)
    if mask.sum() < 16:
        return 0.0
    laplacian = cv2.Laplacian(grey.astype(np.float64), cv2.CV_64F, ksize=3)
    return float(laplacian[mask].var())


def face_exposure(image: np.ndarray, landmarks: np.ndarray) -> tuple[float, float]:
    """Mean luminance (0–255) of the face and the fraction of its pixels clipped at ≤ 5 or ≥ 250.

    Measured on the face scaled to :data:`EXPOSURE_INTER_OCULAR_PX` between the eyes: clipped areas that
    matter (a burnt-out forehead, a black shadow) survive the reduction; single specular pixels do not.
    """
    patch = _face_patch(image, landmarks, EXPOSURE_INTER_OCULAR_PX)
    if patch is None or not patch[1].any():
        return 0.0, 1.0
    luminance = patch[0][patch[1]].astype(np.float64)
    clipped = np.logical_or(luminance <= 5, luminance >= 250).mean()
    return float(luminance.mean()), float(clipped)


def _round(value: float, digits: int = 3) -> float:
    return float(round(float(value), digits))


def assess_quality(
    image: np.ndarray,
    faces: Sequence[FaceLandmarks],
    expected_yaw: float = 0.0,
    thresholds: QualityThresholds | None = None,
    pose: HeadPose | None = None,
) -> QualityReport:
    """Check a study photo; ``faces`` come from :func:`ml.core.landmarks.detect_faces_with_landmarks`.

    ``expected_yaw`` is the yaw of the requested view (see :data:`VIEW_EXPECTED_YAW`); ``pose`` may be
    passed when already estimated for the single face.
    """
    check_rgb_image(image)
    limits = thresholds or QualityThresholds()
    measures: dict[str, Any] = {"face_count": len(faces), "expected_yaw": float(expected_yaw)}
    if not faces:
        reason = "No face was found."
        if abs(expected_yaw) > FRONTAL_DETECTOR_MAX_YAW:
            reason = (
                f"No face was found in this {abs(expected_yaw):.0f}° view. Frontal face detectors (dlib HOG, "
                f"Haar) miss faces turned more than about {FRONTAL_DETECTOR_MAX_YAW:.0f}°; YuNet finds "
                "profiles."
            )
        return QualityReport(ok=False, reasons=[reason], measures=measures)
    if len(faces) > 1:
        return QualityReport(
            ok=False,
            reasons=[f"{len(faces)} faces were found; a study photo must show exactly one."],
            measures=measures,
        )

    face = faces[0]
    landmarks = np.asarray(face.landmarks, dtype=np.float64)
    height, width = image.shape[:2]
    reasons: list[str] = []

    inter_ocular = inter_ocular_distance(landmarks)
    box_width, box_height = face.box[2] - face.box[0], face.box[3] - face.box[1]
    face_fraction = max(box_width / width, box_height / height)
    measures.update(inter_ocular_px=_round(inter_ocular, 1), face_fraction=_round(face_fraction))
    if inter_ocular < limits.min_inter_ocular_px:
        reasons.append(
            f"Face is too small: the eyes are {inter_ocular:.0f} px apart "
            f"(minimum {limits.min_inter_ocular_px:.0f} px)."
        )
    if face_fraction < limits.min_face_fraction:
        reasons.append(
            f"Face fills {face_fraction:.0%} of the photo "
            f"(minimum {limits.min_face_fraction:.0%}); move closer."
        )

    measures.update(detector=face.detector, detector_score=_round(face.score, 3))
    confident = confident_score_of(face.detector)
    if confident is not None and face.score < confident:
        reasons.append(
            f"The face was found with low confidence: {face.detector} score {face.score:.2f} "
            f"(minimum {confident:.2f}); check that the photo shows one clear face."
        )

    head_pose = pose or estimate_head_pose(landmarks, image.shape)
    yaw_deviation = head_pose.yaw - expected_yaw
    measures.update(
        yaw=_round(head_pose.yaw, 1),
        pitch=_round(head_pose.pitch, 1),
        roll=_round(head_pose.roll, 1),
        yaw_deviation=_round(yaw_deviation, 1),
    )
    if abs(expected_yaw) > POSE_RELIABLE_MAX_YAW:
        side = "left" if expected_yaw > 0 else "right"
        if np.sign(head_pose.yaw) != np.sign(expected_yaw) or abs(head_pose.yaw) < PROFILE_MIN_YAW:
            reasons.append(
                f"Head is turned {head_pose.yaw:.0f}° but this {abs(expected_yaw):.0f}° view expects a "
                f"profile (at least {PROFILE_MIN_YAW:.0f}° to the subject's {side})."
            )
    elif abs(yaw_deviation) > limits.max_yaw_deviation:
        if expected_yaw == 0:
            reasons.append(
                f"Head is turned {abs(head_pose.yaw):.0f}° (limit {limits.max_yaw_deviation:.0f}°)."
            )
        else:
            reasons.append(
                f"Head is turned {head_pose.yaw:.0f}° but this view expects {expected_yaw:.0f}° "
                f"(difference {abs(yaw_deviation):.0f}°, limit {limits.max_yaw_deviation:.0f}°)."
            )
    # A profile's pitch and roll are as unreliable as its yaw; they are checked on the other views.
    profile = abs(expected_yaw) > POSE_RELIABLE_MAX_YAW
    if not profile and abs(head_pose.pitch) > limits.max_pitch:
        direction = "up" if head_pose.pitch > 0 else "down"
        reasons.append(
            f"Head is tilted {direction} {abs(head_pose.pitch):.0f}° (limit {limits.max_pitch:.0f}°)."
        )
    if not profile and abs(head_pose.roll) > limits.max_roll:
        reasons.append(f"Head is tilted sideways {abs(head_pose.roll):.0f}° (limit {limits.max_roll:.0f}°).")

    sharpness = face_sharpness(image, landmarks)
    measures["sharpness"] = _round(sharpness, 1)
    if sharpness < limits.min_sharpness:
        reasons.append(f"Face is blurred: sharpness {sharpness:.1f} (minimum {limits.min_sharpness:.1f}).")

    brightness, clipped = face_exposure(image, landmarks)
    measures.update(brightness_mean=_round(brightness, 1), clipped_fraction=_round(clipped, 4))
    if brightness < limits.min_brightness:
        reasons.append(
            f"Face is too dark: mean brightness {brightness:.0f} "
            f"(minimum {limits.min_brightness:.0f} of 255)."
        )
    elif brightness > limits.max_brightness:
        reasons.append(
            f"Face is too bright: mean brightness {brightness:.0f} "
            f"(maximum {limits.max_brightness:.0f} of 255)."
        )
    if clipped > limits.max_clipped_fraction:
        reasons.append(
            f"{clipped:.0%} of the face is under- or over-exposed (limit {limits.max_clipped_fraction:.0%})."
        )
    return QualityReport(ok=not reasons, reasons=reasons, measures=measures)
