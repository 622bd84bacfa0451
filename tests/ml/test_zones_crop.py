"""Face crops of the zone network and the way back to the photo (``ml.zones.crop``)."""

import numpy as np
import pytest

from ml.zones.crop import (
    crop_image,
    crop_labels,
    face_crop_matrix,
    uncrop_labels,
    uncrop_logits,
    whole_image_matrix,
)
from ml.zones.render import mean_shape


def _face(scale: float = 0.5, offset: tuple[float, float] = (220.0, 260.0)) -> np.ndarray:
    shape = mean_shape()
    return (shape - shape.mean(0)) * scale * 400 / np.ptp(shape[:, 0]) + np.array(offset)


def _apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def test_face_crop_holds_the_landmarks_and_the_forehead() -> None:
    landmarks = _face()
    matrix = face_crop_matrix(landmarks, 128)
    inside = _apply(matrix, landmarks)
    assert inside.min() >= 0 and inside.max() <= 127
    assert matrix[0, 1] == 0 and matrix[1, 0] == 0 and matrix[0, 0] == matrix[1, 1]  # no rotation
    inter_ocular = np.linalg.norm(landmarks[42:48].mean(0) - landmarks[36:42].mean(0))
    hairline = landmarks[17:27].mean(0) - [0, 0.8 * inter_ocular]  # atlas forehead top
    assert _apply(matrix, hairline[None])[0, 1] >= 0


def test_labels_map_back_to_the_photo() -> None:
    landmarks = _face()
    photo_labels = np.zeros((500, 440), dtype=np.uint8)
    photo_labels[200:300, 150:290] = 3
    matrix = face_crop_matrix(landmarks, 256)
    cropped = crop_labels(photo_labels, matrix, 256)
    back = uncrop_labels(cropped, matrix, photo_labels.shape)
    agreement = (back == 3) == (photo_labels == 3)
    assert agreement.mean() > 0.995
    assert back[250, 220] == 3 and back[10, 10] == 0


def test_whole_image_matrix_letterboxes_without_squashing() -> None:
    image = np.full((300, 150, 3), 200, dtype=np.uint8)
    matrix = whole_image_matrix(image.shape, 100)
    assert matrix[0, 0] == pytest.approx(100 / 300) and matrix[1, 1] == matrix[0, 0]
    crop = crop_image(image, matrix, 100)
    assert crop[50, 50].tolist() == [200, 200, 200] and crop[50, 2].tolist() == [0, 0, 0]


def test_bad_landmarks_are_rejected() -> None:
    with pytest.raises(ValueError, match="68, 2"):
        face_crop_matrix(np.zeros((5, 2)), 128)
    with pytest.raises(ValueError, match="at least 8"):
        face_crop_matrix(_face(), 4)


def test_logits_map_back_like_labels_with_background_outside() -> None:
    torch = pytest.importorskip("torch")
    landmarks = _face()
    photo_labels = np.zeros((500, 440), dtype=np.uint8)
    photo_labels[200:300, 150:290] = 2
    matrix = face_crop_matrix(landmarks, 128)
    cropped = crop_labels(photo_labels, matrix, 128)
    logits = torch.nn.functional.one_hot(torch.from_numpy(cropped).long(), 3).permute(2, 0, 1)[None].float()
    back = uncrop_logits(logits, matrix, photo_labels.shape)[0].argmax(0).numpy()
    assert ((back == 2) == (photo_labels == 2)).mean() > 0.99
    assert back[0, 0] == 0 and back.shape == photo_labels.shape
