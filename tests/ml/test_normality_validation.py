"""Validity-test helpers: simulated asymmetry and warp, lip-nose zone, AUROC, re-framings, noise floor."""

import numpy as np
import pytest

from ml.normality import validation
from ml.normality.scoring import region_mask
from tests.ml.test_normality_evaluation import smooth_face
from tests.ml.test_normality_scoring import synthetic_landmarks


def textured_face(seed: int = 0) -> np.ndarray:
    """A face-sized image with structure, so a displacement changes pixels."""
    rng = np.random.default_rng(seed)
    return np.clip(smooth_face(seed) + rng.integers(0, 60, (128, 128, 1)), 0, 255).astype(np.uint8)


@pytest.mark.parametrize("defect", sorted(validation.DEFECTS))
def test_each_simulated_defect_changes_the_mouth_nose_region_only(defect):
    face, landmarks = textured_face(), synthetic_landmarks()
    altered = validation.DEFECTS[defect](face, landmarks, 1)
    assert altered.mask.any()
    changed = np.any(np.abs(altered.image.astype(int) - face) > 6, axis=-1)
    assert not np.any(changed & ~altered.mask)
    region = region_mask(landmarks, face.shape[:2], "mouth_nose")
    rows, columns = np.nonzero(altered.mask)
    assert region[int(rows.mean()), int(columns.mean())]


def test_ideal_normalizer_detects_every_simulated_defect():
    clean = {i: textured_face(i) for i in range(3)}
    faces = [(clean[i], synthetic_landmarks()) for i in range(3)]

    def ideal(image: np.ndarray, landmarks: np.ndarray, observed: np.ndarray | None) -> np.ndarray:
        return min(clean.values(), key=lambda face: float(np.abs(face.astype(int) - image).sum()))

    normal_scores, results = validation.evaluate_simulated_defects(faces, ideal)["raw"]
    assert len(normal_scores) == 3 and all(score > 20 for score in normal_scores)  # identical: S = 27.6
    assert [r.defect for r in results] == list(validation.DEFECTS)
    for result in results:
        assert result.faces == 3 and result.score_worse_fraction == 1.0 and result.peak_inside_fraction == 1.0


def test_lip_nose_zone_excludes_nasal_bridge_and_chin():
    landmarks = synthetic_landmarks()
    zone = validation.lip_nose_zone(landmarks, (128, 128))
    for inside in (33, 51, 62):
        assert zone[int(landmarks[inside, 1]), int(landmarks[inside, 0])]
    for outside in (27, 8, 57):
        assert not zone[int(landmarks[outside, 1]), int(landmarks[outside, 0])]


def test_auroc_counts_lower_scores_as_positive():
    assert validation.auroc([1, 2], [3, 4]) == 1.0
    assert validation.auroc([3, 4], [1, 2]) == 0.0
    assert validation.auroc([2], [2]) == 0.5


def test_reframings_keep_the_face_and_noise_floor_is_a_quantile():
    face, landmarks = textured_face(), synthetic_landmarks()
    variants = validation.reframings(face, landmarks)
    assert {"original", "tight_crop", "loose_crop", "scale_0.5", "scale_2", "rotate_+5", "jpeg_75"} <= set(
        variants
    )
    assert variants["scale_2"].shape[0] == 256 and variants["scale_0.5"].shape[0] == 64
    assert variants["tight_crop"].shape[0] < variants["loose_crop"].shape[0]
    assert validation.noise_floor([-1, 0.5, 0.2, 0.1] * 5, 0.5) == pytest.approx(0.35)
    with pytest.raises(ValueError, match="No score"):
        validation.noise_floor([])


def test_age_bands_and_reference_range():
    assert [validation.age_band(a) for a in ("12", 19, "27", 40, "NA", None)] == [
        "0-17",
        "18-24",
        "25-29",
        "30+",
        "unknown",
        "unknown",
    ]
    reference = validation.reference_range(list(range(101)))
    assert reference == {"count": 101, "p5": 5.0, "median": 50.0, "p95": 95.0}
    assert validation.reference_range([])["count"] == 0
