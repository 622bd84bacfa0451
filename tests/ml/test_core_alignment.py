"""Similarity transform (Umeyama) and face alignment."""

import numpy as np
import pytest

from ml.core.alignment import (
    align_face,
    apply_transform,
    eye_centers,
    inter_ocular_distance,
    similarity_transform,
)


def _similarity(scale: float, angle_degrees: float, tx: float, ty: float) -> np.ndarray:
    angle = np.radians(angle_degrees)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, [[tx], [ty]]])


def test_similarity_transform_recovers_a_known_transform():
    rng = np.random.default_rng(3)
    source = rng.uniform(0, 200, (20, 2))
    expected = _similarity(1.7, 23.0, -40.0, 12.5)
    target = apply_transform(expected, source)
    np.testing.assert_allclose(similarity_transform(source, target), expected, atol=1e-9)


def test_similarity_transform_is_least_squares_under_noise():
    rng = np.random.default_rng(4)
    source = rng.uniform(0, 200, (200, 2))
    expected = _similarity(0.8, -10.0, 5.0, 7.0)
    target = apply_transform(expected, source) + rng.normal(0, 0.5, source.shape)
    np.testing.assert_allclose(similarity_transform(source, target), expected, atol=0.05)


def test_similarity_transform_never_reflects():
    source = np.array([[0.0, 0.0], [4.0, 0.0], [0.0, 1.0], [4.0, 1.0], [2.0, 0.3]])
    mirrored = source * [-1.0, 1.0]
    matrix = similarity_transform(source, mirrored)
    # A reflection would fit exactly (determinant −1); a similarity must keep orientation.
    assert np.linalg.det(matrix[:, :2]) > 0


def test_similarity_transform_refuses_degenerate_input():
    with pytest.raises(ValueError, match="identical"):
        similarity_transform(np.ones((3, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="equal shape"):
        similarity_transform(np.zeros((3, 2)), np.zeros((4, 2)))


def test_align_face_levels_the_eyes_and_normalises_their_distance(make_landmarks):
    landmarks = make_landmarks(roll=12.0, eye_distance_px=88.0)  # eye centres ≈ 60 px apart: scale ≈ 1
    image = np.random.default_rng(5).integers(0, 255, (600, 600, 3), np.uint8)
    aligned, matrix = align_face(image, landmarks, output_size=200, inter_ocular=0.3, eye_height=0.4)
    assert aligned.shape == (200, 200, 3) and aligned.dtype == np.uint8
    moved = apply_transform(matrix, landmarks)
    image_left_eye, image_right_eye = eye_centers(moved)
    assert image_left_eye[1] == pytest.approx(image_right_eye[1], abs=1e-6)
    assert inter_ocular_distance(moved) == pytest.approx(60.0, abs=1e-6)
    np.testing.assert_allclose((image_left_eye + image_right_eye) / 2, [100.0, 80.0], atol=1e-6)
    # The warp moves pixels the way the matrix says: the image-left eye centre keeps its colour.
    source_eye = np.round(eye_centers(landmarks)[0]).astype(int)
    target_eye = np.round(image_left_eye).astype(int)
    source_value = image[source_eye[1], source_eye[0]].astype(int)
    nearby = aligned[target_eye[1] - 1 : target_eye[1] + 2, target_eye[0] - 1 : target_eye[0] + 2].astype(int)
    assert np.abs(nearby - source_value).sum(axis=2).min() < 60
