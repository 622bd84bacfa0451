"""Evaluation metrics shared by the pipelines."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

OUTER_EYE_CORNERS = (36, 45)
EYE_CENTRES = "eye_centers"
NORMALIZATIONS = ("outer_eye_corners", EYE_CENTRES, "box_diagonal", "none")


def normalized_mean_error(
    predicted: np.ndarray, ground_truth: np.ndarray, normalization: str = "outer_eye_corners"
) -> float:
    """Mean point-to-point Euclidean error divided by a face-size distance (NME).

    ``outer_eye_corners`` is the 300-W "inter-ocular" normalisation (Sagonas et al., 300 Faces
    in-the-Wild Challenge, IMAVIS 2016): distance between iBUG points 36 and 45 of the ground truth.
    ``eye_centers`` uses the pupil-centre ("inter-pupil") distance, ``box_diagonal`` the diagonal of
    the ground-truth bounding box, ``none`` returns the raw mean error in pixels.
    """
    predicted = np.asarray(predicted, dtype=np.float64)
    ground_truth = np.asarray(ground_truth, dtype=np.float64)
    if predicted.shape != ground_truth.shape or predicted.ndim != 2 or predicted.shape[1] != 2:
        raise ValueError(
            f"Expected two (N, 2) arrays of equal shape, got {predicted.shape} and {ground_truth.shape}."
        )
    mean_error = float(np.linalg.norm(predicted - ground_truth, axis=1).mean())
    if normalization == "outer_eye_corners":
        if len(ground_truth) != 68:
            raise ValueError("outer_eye_corners normalisation needs 68-point iBUG landmarks.")
        distance = np.linalg.norm(ground_truth[OUTER_EYE_CORNERS[0]] - ground_truth[OUTER_EYE_CORNERS[1]])
    elif normalization == EYE_CENTRES:
        if len(ground_truth) != 68:
            raise ValueError("eye_centers normalisation needs 68-point iBUG landmarks.")
        distance = np.linalg.norm(ground_truth[36:42].mean(axis=0) - ground_truth[42:48].mean(axis=0))
    elif normalization == "box_diagonal":
        distance = np.linalg.norm(ground_truth.max(axis=0) - ground_truth.min(axis=0))
    elif normalization == "none":
        return mean_error
    else:
        raise ValueError(
            f"Unknown normalization '{normalization}'; choose one of {', '.join(NORMALIZATIONS)}."
        )
    if distance <= 0:
        raise ValueError("The normalising distance of the ground truth is zero.")
    return mean_error / float(distance)


def binary_iou(predicted: np.ndarray, target: np.ndarray, empty_value: float = 1.0) -> float:
    """Intersection over union of two boolean masks; ``empty_value`` when both are empty."""
    predicted = np.asarray(predicted).astype(bool)
    target = np.asarray(target).astype(bool)
    if predicted.shape != target.shape:
        raise ValueError(f"Mask shapes differ: {predicted.shape} and {target.shape}.")
    union = np.logical_or(predicted, target).sum()
    if union == 0:
        return float(empty_value)
    return float(np.logical_and(predicted, target).sum() / union)


def dice_coefficient(predicted: np.ndarray, target: np.ndarray, empty_value: float = 1.0) -> float:
    """Sørensen–Dice overlap ``2|A∩B| / (|A|+|B|)`` of two boolean masks; ``empty_value`` if both empty."""
    predicted = np.asarray(predicted).astype(bool)
    target = np.asarray(target).astype(bool)
    if predicted.shape != target.shape:
        raise ValueError(f"Mask shapes differ: {predicted.shape} and {target.shape}.")
    total = predicted.sum() + target.sum()
    if total == 0:
        return float(empty_value)
    return float(2.0 * np.logical_and(predicted, target).sum() / total)


def per_class_iou(
    predicted: np.ndarray, target: np.ndarray, classes: Sequence[int], ignore_index: int | None = None
) -> dict[int, float]:
    """IoU per class index of two integer label maps; classes absent from both maps get ``nan``."""
    predicted = np.asarray(predicted)
    target = np.asarray(target)
    if predicted.shape != target.shape:
        raise ValueError(f"Label map shapes differ: {predicted.shape} and {target.shape}.")
    valid = np.ones(target.shape, dtype=bool) if ignore_index is None else target != ignore_index
    scores: dict[int, float] = {}
    for class_index in classes:
        predicted_mask = (predicted == class_index) & valid
        target_mask = (target == class_index) & valid
        scores[int(class_index)] = binary_iou(predicted_mask, target_mask, empty_value=float("nan"))
    return scores


def box_iou(box_a: Sequence[float], box_b: Sequence[float]) -> float:
    """IoU of two ``(x0, y0, x1, y1)`` boxes."""
    x0, y0 = max(box_a[0], box_b[0]), max(box_a[1], box_b[1])
    x1, y1 = min(box_a[2], box_b[2]), min(box_a[3], box_b[3])
    intersection = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    area_a = max(0.0, box_a[2] - box_a[0]) * max(0.0, box_a[3] - box_a[1])
    area_b = max(0.0, box_b[2] - box_b[0]) * max(0.0, box_b[3] - box_b[1])
    union = area_a + area_b - intersection
    return float(intersection / union) if union > 0 else 0.0
