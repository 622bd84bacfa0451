"""Framing invariance on real photos: the shipped inpainting normalizer scores the same London face
re-framed (crops, scale, JPEG) within the noise floor stated in its model card."""

import numpy as np
import pytest

from ml.config import data_dir_or_none
from ml.model_names import NORMALITY_INPAINTING
from ml.normality import models
from ml.normality.validation import reframings
from ml.registry import registry

CHECKED = ("tight_crop", "loose_crop", "scale_0.5", "scale_2", "jpeg_75")


def test_reframed_real_photos_score_within_the_cards_noise_floor():
    data = data_dir_or_none()
    if data is None or not (data / "london" / "neutral").is_dir():
        pytest.skip("the face data directory (FACET_DATA_DIR) with london/ is absent")
    if not models.inpainting_weights_path().is_file():
        pytest.skip("the inpainting normalizer's weights are not installed")
    reference = registry.describe(NORMALITY_INPAINTING)["details"].get("reference")
    assert reference and reference["noise_floor"] > 0, "the shipped card states no noise floor"
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks
    from ml.normality.analysis import analyze_normality

    differences = []
    for photo in sorted((data / "london" / "neutral").glob("*.jpg"))[-2:]:
        image = load_image(photo)
        variants = reframings(image, subject_landmarks(detect_faces_with_landmarks(image)))
        scores = {
            name: analyze_normality(variants[name], normalizer=NORMALITY_INPAINTING, rating=False).data[
                "score"
            ]
            for name in ("original", *CHECKED)
        }
        differences += [abs(scores[name] - scores["original"]) for name in CHECKED]
    # The floor is a 95th percentile: allow one re-framing of the ten above it, none far above it.
    assert np.mean(np.array(differences) <= reference["noise_floor"]) >= 0.9
    assert max(differences) <= 2 * reference["noise_floor"]


def test_a_12_megapixel_photo_decoded_at_reduced_size_scores_within_the_floor_of_the_full_decode(tmp_path):
    """The worker's default normalizer on a 12-MP JPEG: the reduced decode (with detected landmarks, and
    with full-size landmarks carried over by the decode's scale, as the worker does) moves S by less
    than the card's noise floor."""
    data = data_dir_or_none()
    if data is None or not (data / "london" / "neutral").is_dir():
        pytest.skip("the face data directory (FACET_DATA_DIR) with london/ is absent")
    import cv2

    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks
    from ml.model_names import NORMALITY_AUTOENCODER
    from ml.normality.analysis import analyze_normality, load_photo

    floor = registry.describe(NORMALITY_AUTOENCODER)["details"]["reference"]["noise_floor"]
    photo = cv2.imread(str(sorted((data / "london" / "neutral").glob("*.jpg"))[-1]))
    large = tmp_path / "twelve-mp.jpg"
    canvas = np.full((3000, 4000, 3), photo[:5, :5].reshape(-1, 3).mean(0), np.uint8)
    canvas[:, 500:3500] = cv2.resize(photo, (3000, 3000), interpolation=cv2.INTER_CUBIC)
    cv2.imwrite(str(large), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])

    full = load_image(large)
    reduced, scale = load_photo(large)
    assert scale == 0.25 and reduced.shape == (750, 1000, 3)
    full_landmarks = subject_landmarks(detect_faces_with_landmarks(full))
    scores = [
        analyze_normality(image, landmarks=landmarks, rating=False).data["score"]
        for image, landmarks in ((full, full_landmarks), (reduced, None), (reduced, full_landmarks * scale))
    ]
    assert abs(scores[1] - scores[0]) <= floor and abs(scores[2] - scores[0]) <= floor
