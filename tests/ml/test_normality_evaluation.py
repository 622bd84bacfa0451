"""Simulated lip notch and the defect evaluation with an ideal normalizer."""

import numpy as np
import pytest

from ml.normality.evaluation import evaluate_defects, simulate_lip_notch
from ml.normality.scoring import region_mask
from tests.ml.test_normality_scoring import synthetic_landmarks


def smooth_face(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = np.array([190, 150, 130]) + rng.normal(0, 3, (128, 128, 3))
    return np.clip(base, 0, 255).astype(np.uint8)


def test_notch_changes_only_the_upper_lip_inside_the_scoring_region():
    face, landmarks = smooth_face(), synthetic_landmarks()
    defect = simulate_lip_notch(face, landmarks)
    changed = np.any(defect.image != face, axis=-1)
    assert changed.any() and not np.any(changed & ~defect.mask)
    region = region_mask(landmarks, face.shape[:2], "mouth_nose")
    assert np.all(region[defect.mask])
    rows = np.nonzero(defect.mask)[0]
    assert rows.min() > landmarks[33, 1] and rows.max() < landmarks[62, 1] + 3
    with pytest.raises(ValueError, match="68, 2"):
        simulate_lip_notch(face, np.zeros((5, 2)))


def test_ideal_normalizer_detects_every_notch():
    clean = {i: smooth_face(i) for i in range(3)}
    faces = [(clean[i], synthetic_landmarks()) for i in range(3)]

    def ideal(image: np.ndarray) -> np.ndarray:
        """The best possible normalizer: returns the matching unaltered face."""
        return min(clean.values(), key=lambda face: float(np.abs(face.astype(int) - image).sum()))

    result = evaluate_defects(faces, ideal)
    assert result.faces == 3 and result.semi_synthetic
    assert result.score_worse_fraction == 1.0 and result.peak_inside_fraction == 1.0
    assert result.mean_score_altered < result.mean_score_normal
