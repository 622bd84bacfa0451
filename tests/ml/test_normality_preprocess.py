"""FFHQ-style alignment and face mask on synthetic landmarks."""

import math

import numpy as np
import pytest

from ml.normality.preprocess import align_face, face_mask, ffhq_quad, inner_face_mask
from tests.ml.test_normality_scoring import synthetic_landmarks


def rotated(points: np.ndarray, degrees: float, center: np.ndarray) -> np.ndarray:
    angle = math.radians(degrees)
    rotation = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    return (points - center) @ rotation.T + center


def test_alignment_levels_the_eyes_and_is_rotation_invariant():
    rng = np.random.default_rng(0)
    photo = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    landmarks = synthetic_landmarks(128) * 1.5 + 100
    tilted = rotated(landmarks, 20, np.array([200.0, 200.0]))
    aligned_level = align_face(photo, landmarks, 64)
    aligned_tilted = align_face(photo, tilted, 64)
    for aligned in (aligned_level, aligned_tilted):
        assert aligned.image.shape == (64, 64, 3) and aligned.image.dtype == np.uint8
        right_eye, left_eye = aligned.landmarks[36:42].mean(0), aligned.landmarks[42:48].mean(0)
        assert abs(right_eye[1] - left_eye[1]) < 1e-6
    np.testing.assert_allclose(aligned_level.landmarks, aligned_tilted.landmarks, atol=1e-6)
    quad = ffhq_quad(landmarks)
    assert np.hypot(*(quad[3] - quad[0])) == pytest.approx(np.hypot(*(quad[1] - quad[0])))


def test_face_filling_the_frame_gets_a_blurred_mirrored_surround():
    photo = np.full((150, 150, 3), 200, dtype=np.uint8)
    photo[:, :75] = 40
    landmarks = synthetic_landmarks(150)
    aligned = align_face(photo, landmarks, 128)
    # The quad is larger than the photo: the crop's corners come from the padded canvas.
    quad = ffhq_quad(landmarks)
    assert quad.min() < 0 and quad.max() > 150
    assert aligned.image.shape == (128, 128, 3)
    corner = aligned.image[:4, :4].astype(float)
    assert 40 < corner.mean() < 200  # faded towards the median colour, not a hard copy of either side


def test_face_mask_contains_face_and_not_background():
    landmarks = synthetic_landmarks(128)
    mask = face_mask(landmarks, (128, 128))
    assert mask[96, 64] and mask[40, 64] and mask[70, 25]
    assert not mask[2, 2] and not mask[125, 5]
    smaller = face_mask(landmarks, (128, 128), dilation=0.0)
    assert smaller.sum() < mask.sum()
    with pytest.raises(ValueError, match="68, 2"):
        face_mask(np.zeros((10, 2)), (128, 128))


def test_inner_face_mask_holds_brows_to_mouth_and_leaves_out_the_jaw_line():
    landmarks = synthetic_landmarks(128)
    inner = inner_face_mask(landmarks, (128, 128))
    mouth, nose = np.round(landmarks[48:68].mean(0)).astype(int), np.round(landmarks[30]).astype(int)
    assert inner[mouth[1], mouth[0]] and inner[nose[1], nose[0]]
    chin = np.round(landmarks[8]).astype(int)
    assert not inner[chin[1], chin[0]] and inner.sum() < face_mask(landmarks, (128, 128)).sum()


def test_observed_mask_marks_padding_of_a_tight_crop_and_nothing_of_an_interior_crop():
    rng = np.random.default_rng(1)
    roomy = rng.integers(0, 256, (400, 400, 3), dtype=np.uint8)
    interior = align_face(roomy, synthetic_landmarks(128) * 1.5 + 100, 64)
    assert interior.observed.shape == (64, 64) and interior.observed.dtype == bool
    assert interior.observed.all()

    tight = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    landmarks = synthetic_landmarks(150)
    aligned = align_face(tight, landmarks, 128)
    assert ffhq_quad(landmarks).min() < 0  # the quad leaves the photo: padding fills the crop's rim
    assert not aligned.observed[:4, :4].any() and not aligned.observed[-4:, -4:].any()
    mouth = np.round(aligned.landmarks[48:68].mean(0)).astype(int)
    assert aligned.observed[mouth[1], mouth[0]]
    # Every observed crop pixel samples the photo itself, never the padded canvas around it.
    rows, columns = np.nonzero(aligned.observed)
    inverse = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))[:2]
    photo_points = np.stack([columns, rows], axis=1) @ inverse[:, :2].T + inverse[:, 2]
    assert photo_points.min() >= -1 and photo_points.max() <= 151


def test_padding_leaves_every_photo_pixel_of_a_tight_crop_as_it_is():
    """The blur and fade of the FFHQ padding stop at the photo's edge: a face photographed tightly keeps
    every pixel it has (observed and unchanged), so its fit sees what a loosely framed photo's does."""
    import cv2

    rng = np.random.default_rng(2)
    tight = rng.integers(0, 256, (150, 150, 3), dtype=np.uint8)
    aligned = align_face(tight, synthetic_landmarks(150), 128)
    inverse = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))[:2]
    rows, columns = np.mgrid[:128, :128]
    photo_points = np.stack([columns.ravel(), rows.ravel()], axis=1) @ inverse[:, :2].T + inverse[:, 2]
    inside = np.all((photo_points >= 0.01) & (photo_points <= 148.99), axis=1).reshape(128, 128)
    assert 0.3 < inside.mean() < 1.0  # the quad leaves this photo on some sides
    assert aligned.observed[inside].all()
    direct = cv2.warpAffine(tight.astype(np.float32), aligned.matrix, (128, 128), flags=cv2.INTER_LINEAR)
    assert np.abs(aligned.image[inside].astype(np.float64) - direct[inside]).max() <= 1.0


def test_fit_pixels_choose_all_observed_or_the_observed_face():
    from ml.normality.analysis import fit_pixels_mask

    rng = np.random.default_rng(3)
    landmarks = synthetic_landmarks(150)
    aligned = align_face(rng.integers(0, 256, (150, 150, 3), dtype=np.uint8), landmarks, 128)
    assert fit_pixels_mask(aligned.observed, aligned.landmarks, "all") is None
    assert fit_pixels_mask(aligned.observed, aligned.landmarks, "observed") is aligned.observed
    face = fit_pixels_mask(aligned.observed, aligned.landmarks, "observed-face")
    assert face.any() and not (face & ~aligned.observed).any()
    assert (face & ~face_mask(aligned.landmarks, (128, 128))).sum() == 0
    core = fit_pixels_mask(aligned.observed, aligned.landmarks, "observed-core")
    assert core.any() and not (core & ~face).any() and core.sum() < face.sum()
    with pytest.raises(ValueError, match="observed-face"):
        fit_pixels_mask(aligned.observed, aligned.landmarks, "padding")


def test_region_weight_lowers_only_the_scoring_region_in_the_fit():
    from ml.normality.analysis import region_weighted_fit
    from ml.normality.scoring import region_mask

    landmarks = synthetic_landmarks(128)
    region = region_mask(landmarks, (128, 128), "mouth_nose")
    fit = np.ones((128, 128), dtype=bool)
    fit[:10] = False
    assert region_weighted_fit(fit, landmarks, (128, 128), "mouth_nose", 1.0) is fit
    weights = region_weighted_fit(fit, landmarks, (128, 128), "mouth_nose", 0.25)
    assert np.all(weights[region] == 0.25) and np.all(weights[:10] == 0) and weights[50, 5] == 1
    assert region_weighted_fit(None, landmarks, (128, 128), "mouth_nose", 0.0)[region].max() == 0
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        region_weighted_fit(fit, landmarks, (128, 128), "mouth_nose", 1.5)


def test_symmetric_target_blends_a_one_sided_mark_onto_the_other_side():
    from ml.normality.preprocess import symmetric_target

    landmarks = synthetic_landmarks(128)
    face = np.full((128, 128, 3), 100, dtype=np.uint8)
    right_corner, left_corner = np.round(landmarks[54]).astype(int), np.round(landmarks[48]).astype(int)
    face[right_corner[1] - 2 : right_corner[1] + 3, right_corner[0] - 2 : right_corner[0] + 3] = 200
    assert symmetric_target(face, landmarks, None, 0.0) is face
    half = symmetric_target(face, landmarks, None, 0.5)
    assert half[right_corner[1], right_corner[0], 0] == pytest.approx(150, abs=2)
    assert half[left_corner[1], left_corner[0], 0] == pytest.approx(150, abs=2)
    assert symmetric_target(face, landmarks, None, 1.0)[left_corner[1], left_corner[0], 0] == pytest.approx(
        200, abs=2
    )
    # Where the mirror image would come from pixels outside the fit, the face keeps its own value.
    right_half_only = np.zeros((128, 128), dtype=bool)
    right_half_only[:, 64:] = True
    kept = symmetric_target(face, landmarks, right_half_only, 1.0)
    assert kept[right_corner[1], right_corner[0], 0] == 200
    with pytest.raises(ValueError, match="symmetry weight"):
        symmetric_target(face, landmarks, None, 1.5)


def rotated_picture_with_fill(size: int = 300, degrees: float = 12.0) -> tuple[np.ndarray, np.ndarray]:
    """A textured picture rotated inside its square frame, the corners black as a rotating tool leaves
    them, and the picture's own pixels (True) against the fill."""
    import cv2

    rng = np.random.default_rng(3)
    picture = cv2.GaussianBlur(rng.integers(30, 226, (size, size, 3), dtype=np.uint8), (0, 0), 2)
    rotation = cv2.getRotationMatrix2D((size / 2, size / 2), degrees, 0.85)
    framed = cv2.warpAffine(picture, rotation, (size, size), flags=cv2.INTER_LINEAR, borderValue=(0, 0, 0))
    inside = cv2.warpAffine(np.ones((size, size), np.uint8), rotation, (size, size), flags=cv2.INTER_NEAREST)
    return framed, inside.astype(bool)


def test_digital_fill_finds_the_corners_a_rotation_left_black_and_not_the_picture_itself():
    from ml.normality.preprocess import digital_fill

    framed, inside = rotated_picture_with_fill()
    fill = digital_fill(framed)
    assert fill.shape == inside.shape and fill.dtype == bool
    assert not (fill & inside).any()
    # All but the one-pixel seam the interpolation blended is found.
    assert fill.sum() >= 0.95 * (~inside).sum()
    # A black patch inside the picture that touches the photo's edge (dark hair, a backdrop) is the
    # photo's own: it lies within the picture's convex outline.
    framed[230:, 140:170] = 0
    assert not (digital_fill(framed) & inside)[230:, 140:170].any()
    # The fill must touch the photo's own edge: at a side that only crops the search, it does not count.
    assert not digital_fill(framed, (False, False, False, False)).any()
    # An ordinary photo with no black pixels has no fill.
    assert not digital_fill(np.full((50, 50, 3), 120, np.uint8)).any()


def test_alignment_marks_the_crop_pixels_showing_digital_fill_and_leaves_the_crop_as_it_was():
    framed, inside = rotated_picture_with_fill()
    landmarks = synthetic_landmarks(128) * 1.6 + 48
    aligned = align_face(framed, landmarks, 128)
    inverse = np.linalg.inv(np.vstack([aligned.matrix, [0, 0, 1]]))[:2]
    rows, columns = np.mgrid[:128, :128]
    photo_points = np.stack([columns.ravel(), rows.ravel()], axis=1) @ inverse[:, :2].T + inverse[:, 2]
    sampled = np.clip(np.rint(photo_points).astype(int), 0, 299)
    on_fill = ~inside[sampled[:, 1], sampled[:, 0]].reshape(128, 128)
    assert on_fill.mean() > 0.05  # the crop reaches into the black corners
    assert (aligned.fill == on_fill).mean() > 0.97  # up to the seam
    # Detection only: the fill still counts as observed and keeps its black (report section 22).
    assert aligned.observed.all() and np.median(aligned.image[aligned.fill]) == 0
    assert not align_face(np.full((300, 300, 3), 120, np.uint8), landmarks, 128).fill.any()
