"""Functional evaluation of a normalizer with simulated local defects (issue 6 acceptance).

For each held-out normal face, a cleft-like notch is cut into the upper lip
(:func:`simulate_lip_notch`); the face and its altered copy are normalized and scored. A good
normalizer gives the altered face a worse (lower) score and puts the heatmap's peak inside the
notch. Figures from this are semi-synthetic (real faces, simulated defects) and must say so.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

from ml.normality.scoring import score_pair


@dataclass
class SimulatedDefect:
    """The altered image and the mask of the pixels the defect changed (slightly dilated)."""

    image: np.ndarray
    mask: np.ndarray


def simulate_lip_notch(image: np.ndarray, landmarks: np.ndarray, side: int = 1) -> SimulatedDefect:
    """Cut a wedge-shaped notch into the upper lip beside the philtrum, like an incomplete cleft lip.

    The wedge runs from the vermilion border (between landmarks 51 and 52, or 50 and 51 with
    ``side=-1``) up towards the nostril sill (landmarks 32/34), about 1/3 of the lip-to-nose
    height, and is filled with the dark colour of the mouth opening, blurred at its edges.
    """
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2):
        raise ValueError(f"landmarks must be a (68, 2) array; got {points.shape}.")
    lip_top = (points[51] + points[52 if side > 0 else 50]) / 2
    nostril = points[34 if side > 0 else 32]
    mouth_inside = points[62]
    width = max(2.0, 0.12 * float(np.linalg.norm(points[54] - points[48])))
    apex = lip_top + (nostril - lip_top) * 0.55
    base_direction = np.array([1.0, 0.0])
    bottom = lip_top + (mouth_inside - lip_top) * 0.6
    wedge = np.array([bottom - base_direction * width, bottom + base_direction * width, apex])
    mask = np.zeros(image.shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(mask, np.round(wedge).astype(np.int32), 1)
    if not mask.any():
        raise ValueError("The simulated notch is empty: the face is too small.")
    dark = np.percentile(image.reshape(-1, 3), 5, axis=0)
    soft = cv2.GaussianBlur(mask.astype(np.float32), (0, 0), sigmaX=max(0.6, width / 6))[..., None]
    altered = image.astype(np.float32) * (1 - soft) + dark * soft
    changed = cv2.dilate((soft[..., 0] > 0.05).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return SimulatedDefect(image=np.clip(np.rint(altered), 0, 255).astype(np.uint8), mask=changed)


@dataclass
class DefectEvaluation:
    """Fractions over faces; ``semi_synthetic`` is always true (simulated defects on real faces)."""

    faces: int
    score_worse_fraction: float
    peak_inside_fraction: float
    mean_score_normal: float
    mean_score_altered: float
    normal_ms_ssim: float
    normal_psnr_db: float
    semi_synthetic: bool = True


def evaluate_defects(
    faces: Sequence[tuple[np.ndarray, np.ndarray]],
    normalize: Callable[[np.ndarray], np.ndarray],
    region: str = "mouth_nose",
    peak_tolerance: int = 2,
) -> DefectEvaluation:
    """Score each aligned ``(face, landmarks)`` and its notched copy with ``normalize(image) -> image``.

    The peak counts as inside when the heatmap maximum within the region lies within
    ``peak_tolerance`` pixels of the changed pixels. MS-SSIM and PSNR between each unaltered face
    and its normalized version measure how closely the normalizer reproduces normal faces.
    """
    import torch

    from ml.normality.features import ms_ssim, psnr

    if not faces:
        raise ValueError("No faces to evaluate.")
    worse, inside, normal_scores, altered_scores, similarities, psnrs = 0, 0, [], [], [], []
    for image, landmarks in faces:
        defect = simulate_lip_notch(image, landmarks)
        normalized = normalize(image)
        pair = [torch.from_numpy(face).permute(2, 0, 1)[None].float() / 255 for face in (image, normalized)]
        similarities.append(float(ms_ssim(*pair)))
        psnrs.append(psnr(image, normalized))
        normal = score_pair(image, normalized, landmarks, region)
        altered = score_pair(defect.image, normalize(defect.image), landmarks, region)
        normal_scores.append(normal.score)
        altered_scores.append(altered.score)
        worse += altered.score < normal.score
        magnitude = np.where(altered.mask, altered.heatmap.sum(axis=-1), -np.inf)
        peak = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
        kernel = np.ones((2 * peak_tolerance + 1, 2 * peak_tolerance + 1), np.uint8)
        inside += bool(cv2.dilate(defect.mask.astype(np.uint8), kernel)[peak])
    return DefectEvaluation(
        faces=len(faces),
        score_worse_fraction=worse / len(faces),
        peak_inside_fraction=inside / len(faces),
        mean_score_normal=float(np.mean(normal_scores)),
        mean_score_altered=float(np.mean(altered_scores)),
        normal_ms_ssim=float(np.mean(similarities)),
        normal_psnr_db=float(np.mean(psnrs)),
    )
