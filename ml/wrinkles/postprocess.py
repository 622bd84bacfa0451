"""Post-processing of the wrinkle mask: what the network marks that is not a facial wrinkle line.

Measured on the train/val photos of ``wrinkle-boxes`` (docs/reports/wrinkles-boxes-precision.md), most
false-positive pixels lie around the eyes — glasses frames, lid margins and lashes, lower-lid arcs — then
at the face's outline (hairline, jaw, beard edge, background). Every step uses only the subject's 68
landmarks and the mask's own shape; each is measured in eye distances (``unit``, the distance between
the eye centres) so that it does not depend on the photo's resolution:

1. **Eye and mouth margins, lower nose** — skin within ``eye_margin`` eye distances of an eye's
   landmark outline (lashes and lid margins border it) or within ``mouth_margin`` of the lips' outline
   (the vermilion border) is not analysed, nor the nose below ``nose_kept`` of its height from its root
   (landmark 27) to its base (landmark 33): the nostrils and the alar groove are edges, the bunny lines
   lie on the upper nose.
2. **Outline margin** — skin within ``outline_margin`` eye distances of the face outline is not
   analysed (hairline, beard edge, jaw against the background).
3. **Line shape** — a connected line (8-connectivity) is kept only when it is long enough
   (``min_length`` eye distances along its major axis) and elongated (major ÷ minor axis ≥
   ``min_elongation``); blobs and specks are not lines.
4. **Direction around the eyes** — crow's feet and lower-lid lines run *radially* from the eye; glasses
   rims, lid folds and eye bags run *around* it. A line whose centre lies below the brows, within
   ``eye_zone`` eye distances of an eye centre and outside the glabella, is dropped when its major axis
   is more than ``tangential_angle`` degrees from the radial direction.
5. **Peak probability** (hysteresis, as in Canny's edge detector) — the model's threshold draws a line's
   extent, but a line is kept only where the model is sure of it somewhere: its highest probability
   must reach ``min_peak``. Raising the threshold instead would shorten every line.
6. **Glasses bridge** — a line centred on the nose bridge between the inner eye corners (below the
   brows, above landmark 29) that runs within ``bridge_angle`` degrees of horizontal is a frame's
   bridge, not a frown line (those run vertically).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace
from typing import Any

import cv2
import numpy as np


@dataclass(frozen=True)
class PostProcessing:
    """Parameters of :func:`refine_wrinkle_mask` (see the module doc); ``None`` turns a step off."""

    eye_margin: float | None = None
    mouth_margin: float | None = None
    nose_kept: float | None = None
    outline_margin: float | None = None
    min_length: float | None = None
    min_elongation: float | None = None
    eye_zone: float | None = None
    tangential_angle: float = 45.0
    bridge_angle: float | None = None
    min_peak: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def with_(self, **changes: Any) -> PostProcessing:
        return replace(self, **changes)


NO_POST_PROCESSING = PostProcessing()


def eye_distance(landmarks: np.ndarray) -> float:
    """Distance between the eye centres (iBUG-68 36–41 and 42–47), the face's length unit."""
    return float(np.linalg.norm(landmarks[36:42].mean(axis=0) - landmarks[42:48].mean(axis=0)))


def _near(mask: np.ndarray, distance: float) -> np.ndarray:
    """Pixels within ``distance`` pixels of ``mask``."""
    return cv2.distanceTransform((~mask).astype(np.uint8), cv2.DIST_L2, 3) <= distance


def analysed_region(
    skin: np.ndarray, landmarks: np.ndarray, settings: PostProcessing, parts: np.ndarray, outline: np.ndarray
) -> np.ndarray:
    """``skin`` without the eye, mouth and outline margins and the lower nose (steps 1 and 2); ``parts``
    is the face-part label map (:data:`ml.zones.landmark_model.FACE_PARTS`), ``outline`` the face
    outline's bool mask."""
    from ml.zones.landmark_model import FACE_PARTS

    unit = eye_distance(landmarks)
    region = skin.copy()
    if settings.eye_margin:
        region &= ~_near(parts == FACE_PARTS.index("eyes"), settings.eye_margin * unit)
    if settings.mouth_margin:
        region &= ~_near(parts == FACE_PARTS.index("mouth"), settings.mouth_margin * unit)
    if settings.nose_kept is not None:
        top, tip = landmarks[27, 1], landmarks[33, 1]
        lower = np.arange(region.shape[0])[:, None] > top + settings.nose_kept * (tip - top)
        region &= ~((parts == FACE_PARTS.index("nose")) & lower)
    if settings.outline_margin:
        inward = cv2.distanceTransform(outline.astype(np.uint8), cv2.DIST_L2, 3)
        region &= inward > settings.outline_margin * unit
    return region


@dataclass(frozen=True)
class LineShapes:
    """Per connected line of a mask: label image and, indexed by label − 1, centre (x, y), length and width
    (``major``, ``minor``: pixels, those of the straight band with the same second moments) and the major
    axis's direction (radians, image x to the right, y down)."""

    labels: np.ndarray
    centres: np.ndarray
    major: np.ndarray
    minor: np.ndarray
    direction: np.ndarray

    @classmethod
    def of(cls, mask: np.ndarray) -> LineShapes:
        count, labels = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)
        ys, xs = np.nonzero(labels)
        ids = labels[ys, xs] - 1
        n = count - 1
        pixels = np.bincount(ids, minlength=n).astype(np.float64)
        safe = np.maximum(pixels, 1)
        cx = np.bincount(ids, xs, n) / safe
        cy = np.bincount(ids, ys, n) / safe
        dx, dy = xs - cx[ids], ys - cy[ids]
        # Second central moments (+1/12: a pixel's own spread). A uniform segment of length L has variance
        # L²/12 along it, so sqrt(12·λ) of the moment matrix's eigenvalues are a line's length and width.
        sxx = np.bincount(ids, dx * dx, n) / safe + 1 / 12
        syy = np.bincount(ids, dy * dy, n) / safe + 1 / 12
        sxy = np.bincount(ids, dx * dy, n) / safe
        spread = np.sqrt(((sxx - syy) / 2) ** 2 + sxy**2)
        major = np.sqrt(12 * ((sxx + syy) / 2 + spread))
        minor = np.sqrt(12 * np.maximum((sxx + syy) / 2 - spread, 0))
        direction = 0.5 * np.arctan2(2 * sxy, sxx - syy)
        return cls(labels, np.stack([cx, cy], axis=1), major, minor, direction)


def _angle_between(direction: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """Unsigned angle in degrees (0–90) between axes ``direction`` and the directions of ``vectors``."""
    other = np.arctan2(vectors[:, 1], vectors[:, 0])
    difference = np.abs((direction - other + np.pi / 2) % np.pi - np.pi / 2)
    return np.degrees(difference)


def line_peaks(shapes: LineShapes, probability: np.ndarray) -> np.ndarray:
    """Highest ``probability`` along each line of ``shapes``."""
    peaks = np.zeros(len(shapes.major), dtype=np.float64)
    inside = shapes.labels > 0
    np.maximum.at(peaks, shapes.labels[inside] - 1, probability[inside])
    return peaks


def kept_lines(
    shapes: LineShapes,
    landmarks: np.ndarray,
    settings: PostProcessing,
    peaks: np.ndarray | None = None,
) -> np.ndarray:
    """Bool per line of ``shapes``: kept by steps 3–6 (see the module doc); ``peaks``
    (:func:`line_peaks`) are needed for step 5."""
    unit = eye_distance(landmarks)
    keep = np.ones(len(shapes.major), dtype=bool)
    if settings.min_peak is not None:
        if peaks is None:
            raise ValueError("The peak-probability step needs the model's probabilities.")
        keep &= peaks >= settings.min_peak
    if settings.min_length:
        keep &= shapes.major >= settings.min_length * unit
    if settings.min_elongation:
        keep &= shapes.major >= settings.min_elongation * np.maximum(shapes.minor, 1e-6)
    x, y = shapes.centres[:, 0], shapes.centres[:, 1]
    inner_left, inner_right = landmarks[39, 0], landmarks[42, 0]
    glabella = (x > inner_left) & (x < inner_right)
    below_brows = y > landmarks[17:27, 1].max()
    if settings.eye_zone:
        eye_centres = np.stack([landmarks[36:42].mean(axis=0), landmarks[42:48].mean(axis=0)])
        offsets = shapes.centres[:, None, :] - eye_centres[None, :, :]
        nearest = np.linalg.norm(offsets, axis=2).argmin(axis=1)
        radial = offsets[np.arange(len(nearest)), nearest]
        in_zone = (np.linalg.norm(radial, axis=1) < settings.eye_zone * unit) & below_brows & ~glabella
        tangential = _angle_between(shapes.direction, radial) > settings.tangential_angle
        keep &= ~(in_zone & tangential)
    if settings.bridge_angle is not None:
        on_bridge = glabella & below_brows & (y < landmarks[29, 1])
        horizontal = _angle_between(shapes.direction, np.array([[1.0, 0.0]])) < settings.bridge_angle
        keep &= ~(on_bridge & horizontal)
    return keep


def refine_wrinkle_mask(
    mask: np.ndarray,
    region: np.ndarray,
    landmarks: np.ndarray,
    settings: PostProcessing,
    probability: np.ndarray | None = None,
) -> np.ndarray:
    """The wrinkle ``mask`` inside the analysed ``region`` (:func:`analysed_region`) without the lines
    that steps 3–6 drop (module doc); ``probability``: the model's map of the same size (step 5)."""
    mask = np.asarray(mask, dtype=bool) & region
    if not mask.any():
        return mask
    shapes = LineShapes.of(mask)
    peaks = line_peaks(shapes, probability) if probability is not None else None
    keep = np.concatenate([[False], kept_lines(shapes, landmarks, settings, peaks)])
    return keep[shapes.labels]
