"""Hayajneh scoring: YCbCr (Eq. 3), erosion, regions and S = −log(‖PSE‖_F / N)."""

import math

import numpy as np
import pytest
import torch

from ml.normality import scoring


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Small tensors are fastest on one thread, especially on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def synthetic_landmarks(size: int = 128) -> np.ndarray:
    """A plausible frontal iBUG-68 layout scaled to a ``size`` square."""
    s = size / 128
    jaw = [(20 + 88 * i / 16, 60 + 50 * math.sin(math.pi * i / 16)) for i in range(17)]
    brows = [(28 + 8 * i, 44) for i in range(5)] + [(68 + 8 * i, 44) for i in range(5)]
    nose = [(64, 52 + 6 * i) for i in range(4)] + [(56 + 4 * i, 78) for i in range(5)]
    right_eye = [(36, 56), (40, 53), (46, 53), (50, 56), (46, 59), (40, 59)]
    left_eye = [(78, 56), (82, 53), (88, 53), (92, 56), (88, 59), (82, 59)]
    # iBUG order: 48/54 mouth corners, 51 upper-lip top, 57 lower-lip bottom, 62 inner upper lip.
    mouth = [
        (64 - 16 * math.cos(2 * math.pi * i / 12), 96 - 6 * math.sin(2 * math.pi * i / 12)) for i in range(12)
    ]
    inner = [
        (64 - 10 * math.cos(2 * math.pi * i / 8), 96 - 3 * math.sin(2 * math.pi * i / 8)) for i in range(8)
    ]
    points = np.array(jaw + brows + nose + right_eye + left_eye + mouth + inner, dtype=np.float64)
    assert points.shape == (68, 2)
    return points * s


def test_ycbcr_matches_equation_3_for_primaries_and_random_pixels():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(4, 5, 3), dtype=np.uint8)
    result = scoring.rgb_to_ycbcr(pixels)
    r, g, b = (pixels[..., c] / 255.0 for c in range(3))
    np.testing.assert_allclose(result[..., 0], 16 + 65.481 * r + 128.553 * g + 24.966 * b)
    np.testing.assert_allclose(result[..., 1], 128 - 37.797 * r - 74.203 * g + 112.0 * b)
    np.testing.assert_allclose(result[..., 2], 128 + 112.0 * r - 93.786 * g - 18.214 * b)
    white = scoring.rgb_to_ycbcr(np.full((1, 1, 3), 255, np.uint8))[0, 0]
    np.testing.assert_allclose(white, [235.0, 128.0, 128.0], atol=1e-9)
    black = scoring.rgb_to_ycbcr(np.zeros((1, 1, 3), np.uint8))[0, 0]
    np.testing.assert_allclose(black, [16.0, 128.0, 128.0])


def test_erosion_removes_isolated_pixels_and_keeps_wide_blobs():
    heatmap = np.zeros((12, 12, 3))
    heatmap[2, 2, 0] = 100.0  # isolated outlier
    heatmap[6:10, 6:10, 1] = 50.0  # 4×4 anomaly
    eroded = scoring.erode_channels(heatmap)
    assert eroded[..., 0].max() == 0.0
    assert eroded[7:9, 7:9, 1].min() == 50.0
    assert eroded[6, 6, 1] == 0.0  # edges shrink by one pixel
    assert eroded[..., 2].max() == 0.0


def test_score_formula_on_hand_computed_example():
    heatmap = np.zeros((4, 4, 3))
    heatmap[0, 0] = [3.0, 0.0, 4.0]  # contributes 9 + 16
    heatmap[1, 1] = [0.0, 12.0, 0.0]  # contributes 144
    heatmap[3, 3] = [1000.0, 0.0, 0.0]  # outside the mask
    mask = np.zeros((4, 4), bool)
    mask[:2, :2] = True  # N = 4
    expected = -math.log(math.sqrt(9 + 16 + 144) / 4)  # = -log(13 / 4)
    assert scoring.normality_score(heatmap, mask) == pytest.approx(expected)
    assert scoring.normality_score(np.zeros((4, 4, 3)), mask) == pytest.approx(-math.log(1e-12))
    with pytest.raises(ValueError, match="empty"):
        scoring.normality_score(heatmap, np.zeros((4, 4), bool))


def test_regions_cover_mouth_and_exclude_eyes():
    landmarks = synthetic_landmarks()
    mouth_nose = scoring.region_mask(landmarks, (128, 128), "mouth_nose")
    face = scoring.region_mask(landmarks, (128, 128), "face_no_eyes")
    assert mouth_nose[96, 64] and mouth_nose[70, 64]
    assert not mouth_nose[56, 40]
    assert face[96, 64] and face[80, 40]
    assert not face[56, 43] and not face[56, 85]
    with pytest.raises(ValueError, match="Unknown region"):
        scoring.region_mask(landmarks, (128, 128), "ears")


def test_local_defect_lowers_score_and_peaks_inside_region():
    rng = np.random.default_rng(1)
    face = rng.integers(80, 200, size=(128, 128, 3), dtype=np.uint8)
    landmarks = synthetic_landmarks()
    defect = face.copy()
    defect[90:100, 60:68] = 0
    clean = scoring.score_pair(face, face, landmarks)
    altered = scoring.score_pair(defect, face, landmarks)
    assert altered.score < clean.score
    peak = np.unravel_index(altered.heatmap.sum(-1).argmax(), (128, 128))
    assert 90 <= peak[0] < 100 and 60 <= peak[1] < 68
    ssim_based = scoring.score_pair(defect, face, landmarks, metric="ssim")
    assert (
        ssim_based.metric == "ssim-y"
        and ssim_based.score < scoring.score_pair(face, face, landmarks, metric="ssim").score
    )


def test_bad_inputs_are_explained():
    with pytest.raises(ValueError, match="RGB"):
        scoring.rgb_to_ycbcr(np.zeros((4, 4)))
    with pytest.raises(ValueError, match="differ in shape"):
        scoring.squared_error_heatmap(np.zeros((4, 4, 3), np.uint8), np.zeros((5, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="68, 2"):
        scoring.region_mask(np.zeros((5, 2)), (10, 10), "mouth_nose")


def test_unobserved_pixels_leave_the_score_and_a_mostly_unobserved_region_is_refused():
    rng = np.random.default_rng(2)
    face = rng.integers(80, 200, size=(128, 128, 3), dtype=np.uint8)
    normalized = rng.integers(80, 200, size=(128, 128, 3), dtype=np.uint8)
    landmarks = synthetic_landmarks()
    region = scoring.region_mask(landmarks, (128, 128), "mouth_nose")
    everything = np.ones((128, 128), dtype=bool)
    assert scoring.score_pair(face, normalized, landmarks, observed=everything).score == pytest.approx(
        scoring.score_pair(face, normalized, landmarks).score
    )
    rows = np.nonzero(region.any(axis=1))[0]
    observed = everything.copy()
    observed[rows[-1] - (rows[-1] - rows[0]) // 4 :] = False  # the bottom quarter of the region: padding
    spoiled = face.copy()
    spoiled[~observed] = 0  # whatever the padding holds does not enter S
    partial = scoring.score_pair(spoiled, normalized, landmarks, observed=observed)
    assert partial.score == pytest.approx(
        scoring.score_pair(face, normalized, landmarks, observed=observed).score
    )
    assert not partial.mask[~observed].any() and not partial.heatmap[~observed].any()
    assert 0.6 <= partial.extra["observed_coverage"] < 1.0
    observed[rows[0] + (rows[-1] - rows[0]) // 3 :] = False
    with pytest.raises(scoring.RegionNotObservedError, match=r"Only \d+% of the mouth and nose region"):
        scoring.score_pair(face, normalized, landmarks, observed=observed)
