"""Head pose from synthetic projections of the generic 3D face at known angles."""

import numpy as np
import pytest

from ml.core.pose import estimate_head_pose, pose_from_rotation, project_model, rotation_from_pose

SHAPE = (600, 800)


@pytest.mark.parametrize(
    ("yaw", "pitch", "roll"),
    [(0, 0, 0), (30, 0, 0), (-45, 0, 0), (0, 15, 0), (0, -20, 0), (0, 0, 12), (25, -10, -8), (-60, 5, 3)],
)
def test_pose_of_a_projected_model_is_recovered(yaw, pitch, roll):
    pose = estimate_head_pose(project_model(yaw, pitch, roll, SHAPE), SHAPE)
    assert pose.yaw == pytest.approx(yaw, abs=0.5)
    assert pose.pitch == pytest.approx(pitch, abs=0.5)
    assert pose.roll == pytest.approx(roll, abs=0.5)


def test_sign_convention_matches_the_image():
    frontal = project_model(0, 0, 0, SHAPE)
    eyes = slice(36, 48)
    nose = slice(31, 36)  # nostrils and the bottom of the nose
    turned_left = project_model(30, 0, 0, SHAPE)
    # Subject turned to their left: nose moves towards image right relative to the eyes.
    assert turned_left[nose, 0].mean() - turned_left[eyes, 0].mean() > 5
    chin_up = project_model(0, 20, 0, SHAPE)
    # Chin up: the nose rises towards the eyes (smaller vertical gap in the image).
    frontal_gap = frontal[nose, 1].mean() - frontal[eyes, 1].mean()
    assert chin_up[nose, 1].mean() - chin_up[eyes, 1].mean() < frontal_gap - 5
    clockwise = project_model(0, 0, 15, SHAPE)
    # Clockwise roll: the image-right eye corner (45) drops below the image-left one (36).
    assert clockwise[45, 1] - clockwise[36, 1] > 5


def test_the_generic_face_is_symmetric_and_anatomical():
    from ml.core.pose import FACE_MODEL_68
    from ml.landmarks.formats import IBUG68_FLIP_IDX

    mirrored = FACE_MODEL_68[list(IBUG68_FLIP_IDX)] * np.array([-1.0, 1.0, 1.0])
    np.testing.assert_allclose(mirrored, FACE_MODEL_68, atol=1e-3)
    assert np.linalg.norm(FACE_MODEL_68[36] - FACE_MODEL_68[45]) == pytest.approx(9.0, abs=0.5)
    # The nose tip (30) is nearer the camera than the eye corners, which are nearer than the jaw angles.
    assert FACE_MODEL_68[30, 2] < FACE_MODEL_68[[36, 45], 2].mean() - 1.0
    assert FACE_MODEL_68[[36, 45], 2].mean() < FACE_MODEL_68[[2, 14], 2].mean()


def test_full_landmarks_give_the_same_pose(make_landmarks):
    landmarks = make_landmarks(yaw=20, pitch=-5, roll=4, image_shape=SHAPE)
    pose = estimate_head_pose(landmarks, SHAPE)
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((20, -5, 4), abs=0.5)


def test_rotation_round_trip():
    pose = pose_from_rotation(rotation_from_pose(33.0, -12.0, 7.0))
    assert (pose.yaw, pose.pitch, pose.roll) == pytest.approx((33.0, -12.0, 7.0), abs=1e-9)
    rotation = rotation_from_pose(10, 20, 30)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)


def test_bad_landmarks_are_refused():
    with pytest.raises(ValueError, match=r"\(68, 2\)"):
        estimate_head_pose(np.zeros((5, 2)), SHAPE)
    landmarks = np.full((68, 2), np.nan)
    with pytest.raises(ValueError, match="NaN"):
        estimate_head_pose(landmarks, SHAPE)
