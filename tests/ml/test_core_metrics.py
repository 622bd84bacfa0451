"""Landmark NME and mask overlap metrics."""

import numpy as np
import pytest

from ml.core.metrics import binary_iou, box_iou, dice_coefficient, normalized_mean_error, per_class_iou


def test_nme_uses_the_outer_eye_corner_distance(make_landmarks):
    truth = make_landmarks()
    shifted = truth + [3.0, 4.0]  # every point 5 px away
    corner_distance = np.linalg.norm(truth[36] - truth[45])
    assert normalized_mean_error(shifted, truth) == pytest.approx(5.0 / corner_distance)
    assert normalized_mean_error(shifted, truth, normalization="none") == pytest.approx(5.0)
    assert normalized_mean_error(truth, truth) == 0.0


def test_nme_refuses_bad_input(make_landmarks):
    truth = make_landmarks()
    with pytest.raises(ValueError, match="equal shape"):
        normalized_mean_error(truth[:10], truth)
    with pytest.raises(ValueError, match="Unknown normalization"):
        normalized_mean_error(truth, truth, normalization="face")


def test_binary_iou_and_dice():
    a = np.zeros((4, 4), bool)
    b = np.zeros((4, 4), bool)
    a[:2] = True  # 8 pixels
    b[1:3] = True  # 8 pixels, 4 shared
    assert binary_iou(a, b) == pytest.approx(4 / 12)
    assert dice_coefficient(a, b) == pytest.approx(8 / 16)
    assert binary_iou(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
    with pytest.raises(ValueError, match="shapes differ"):
        binary_iou(a, b[:2])


def test_per_class_iou_marks_absent_classes_nan():
    truth = np.array([[0, 1], [1, 2]])
    predicted = np.array([[0, 1], [2, 2]])
    scores = per_class_iou(predicted, truth, classes=[0, 1, 2, 3])
    assert scores[0] == 1.0 and scores[1] == 0.5 and scores[2] == 0.5 and np.isnan(scores[3])


def test_box_iou():
    assert box_iou((0, 0, 10, 10), (5, 0, 15, 10)) == pytest.approx(50 / 150)
    assert box_iou((0, 0, 1, 1), (2, 2, 3, 3)) == 0.0
