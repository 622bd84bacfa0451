"""The standardized residual map: statistics of normal faces' PSE, and what standardizing does."""

import numpy as np
import pytest

from ml.normality import residual_reference
from ml.normality.scoring import pse_heatmap, score_pair
from ml.normality.validation import heatmap_peak
from tests.ml.test_normality_scoring import synthetic_landmarks
from tests.ml.test_normality_validation import textured_face

SIZE = 64
ALWAYS_HIGH = (slice(10, 16), slice(10, 16))  # where every normal face is reconstructed badly
DEFECT = (slice(40, 46), slice(40, 46))


def normal_heatmaps(count: int = 40, seed: int = 0) -> np.ndarray:
    """PSE maps of normal faces: low noise everywhere, high error in ``ALWAYS_HIGH`` on every face."""
    rng = np.random.default_rng(seed)
    maps = rng.gamma(2.0, 5.0, size=(count, SIZE, SIZE, 3))
    maps[(slice(None), *ALWAYS_HIGH)] += rng.gamma(20.0, 20.0, size=(count, 6, 6, 3))
    return maps


def test_the_standardized_map_moves_the_peak_from_an_always_high_region_to_a_defect():
    reference = residual_reference.fit_residual_reference(normal_heatmaps(), {"faces": 40})
    face = normal_heatmaps(1, seed=1)[0]
    face[DEFECT] += 120.0  # a defect smaller than the ordinary error at ALWAYS_HIGH (about 400)
    everywhere = np.ones((SIZE, SIZE), dtype=bool)
    assert heatmap_peak(face, everywhere)[0] in range(10, 16)  # the raw peak: the always-high region
    standardized = residual_reference.standardize(face, reference)
    row, column = heatmap_peak(standardized, everywhere)
    assert row in range(38, 48) and column in range(38, 48)
    assert standardized[ALWAYS_HIGH].mean() < 0.1 * standardized[DEFECT].mean()
    assert standardized.min() == 0.0  # below the normal median counts as nothing, never as negative


def test_statistics_follow_the_normal_faces_and_the_scale_has_a_floor():
    maps = normal_heatmaps()
    reference = residual_reference.fit_residual_reference(maps, {"faces": 40})
    assert reference.median.shape == reference.scale.shape == (SIZE, SIZE, 3)
    assert reference.median[ALWAYS_HIGH].mean() > 10 * reference.median[DEFECT].mean()
    flat = residual_reference.fit_residual_reference(np.zeros((5, SIZE, SIZE, 3)), {})
    assert np.all(flat.scale > 0)  # identical normal faces: no division by zero
    with pytest.raises(ValueError, match="two"):
        residual_reference.fit_residual_reference(maps[:1], {})


def test_the_reference_is_stored_in_fp16_beside_the_weights_and_read_back(tmp_path):
    reference = residual_reference.fit_residual_reference(normal_heatmaps(), {"faces": 40, "data": "normal"})
    path = residual_reference.residual_reference_path(tmp_path / "autoencoder-128.pt")
    assert path == tmp_path / "autoencoder-128.residual.npz"
    residual_reference.save_residual_reference(reference, path)
    loaded = residual_reference.load_residual_reference(path)
    assert loaded is not None and loaded.provenance == {"faces": 40, "data": "normal"}
    assert np.allclose(loaded.median, reference.median, rtol=1e-3) and loaded.size == SIZE
    assert np.load(path)["median"].dtype == np.float16
    assert residual_reference.load_residual_reference(tmp_path / "absent.npz") is None


def test_score_pair_uses_the_standardized_map_with_a_reference_and_rejects_another_size():
    face = textured_face(0)
    twin = np.clip(face.astype(int) + 6, 0, 255).astype(np.uint8)
    landmarks = synthetic_landmarks()
    size = face.shape[0]
    maps = np.stack([pse_heatmap(face, twin)] * 3) * np.array([0.5, 1.0, 2.0])[:, None, None, None]
    reference = residual_reference.fit_residual_reference(maps, {})
    standardized = score_pair(face, twin, landmarks, reference=reference)
    raw = score_pair(face, twin, landmarks)
    assert standardized.metric == residual_reference.STANDARDIZED_METRIC and raw.metric == "pse-ycbcr-eroded"
    assert standardized.score != raw.score
    other = residual_reference.fit_residual_reference(np.zeros((2, size // 2, size // 2, 3)), {})
    with pytest.raises(ValueError, match="another normalizer size"):
        score_pair(face, twin, landmarks, reference=other)


def test_the_analysis_scores_the_standardized_map_only_when_asked_and_says_when_it_cannot(tmp_path):
    """The shipped autoencoder has a stored reference; a copy of its weights elsewhere has none."""
    import shutil

    from ml.config import data_dir_or_none
    from ml.core.imageio import load_image
    from ml.normality import models
    from ml.normality.analysis import analyze_normality

    data = data_dir_or_none()
    if data is None or not (data / "london" / "neutral").is_dir():
        pytest.skip("the face data directory (FACET_DATA_DIR) with london/ is absent")
    weights = models.autoencoder_weights_path()
    if not residual_reference.residual_reference_path(weights).is_file():
        pytest.skip("the shipped autoencoder has no residual reference")
    image = load_image(sorted((data / "london" / "neutral").glob("*.jpg"))[0])
    fast = {"rating": False, "projection_steps": 1, "adapt_steps": 1}
    default = analyze_normality(image, **fast).data
    standardized = analyze_normality(image, residual_map="standardized", **fast).data
    assert default["metric"]["heatmap"] == "pse-ycbcr-eroded" and default["score"] == default["score_raw"]
    assert standardized["metric"]["heatmap"] == residual_reference.STANDARDIZED_METRIC
    assert standardized["score"] != standardized["score_raw"]
    assert (
        standardized["residual_reference"]["faces"] >= 100
        and "training" in standardized["residual_reference"]["data"]
    )
    assert standardized["reference"] is None  # the card's range is of the raw map, not shown for another
    # The shipped reference was fitted on the default analysis' fit pixels; another fit is told it differs.
    assert standardized["residual_reference"]["fit_pixels"] == default["observed"]["fit_pixels"]
    assert not any("unlike fits" in note for note in standardized["notes"] + default["notes"])
    every_pixel = analyze_normality(image, residual_map="standardized", fit_pixels="all", **fast).data
    assert any("compares unlike fits" in note for note in every_pixel["notes"])
    copy = tmp_path / "autoencoder-copy.pt"
    shutil.copy(weights, copy)
    fallback = analyze_normality(image, weights=copy, residual_map="standardized", **fast).data
    assert fallback["metric"]["heatmap"] == "pse-ycbcr-eroded" and fallback["score"] == fallback["score_raw"]
    assert any("no residual reference" in note for note in fallback["notes"])


def test_the_scale_floor_comes_from_the_pixels_the_normalizer_changes():
    """An inpainting normalizer changes only its hole: the floor must not be the median of an image that
    is mostly exact zeros, or a residual of 1 on the hole's rim would weigh a thousand times a defect's."""
    maps = np.zeros((30, SIZE, SIZE, 3))
    rng = np.random.default_rng(0)
    maps[:, 20:40, 20:40] = rng.gamma(2.0, 5.0, size=(30, 20, 20, 3))
    maps[:3, 40:42, 20:40] = 50.0  # the hole of a few faces reaches 2 px further
    reference = residual_reference.fit_residual_reference(maps, {})
    inside = np.median(reference.scale[25:35, 25:35].reshape(-1, 3), axis=0)
    assert np.all(reference.scale >= 0.2 * inside)
    face = np.zeros((SIZE, SIZE, 3))
    face[41, 30] = 1.0  # a grey level of residual on the rim
    assert residual_reference.standardize(face, reference).max() < 1.0


def test_a_pixel_s_statistics_come_only_from_the_faces_that_fitted_it():
    """With fit pixels, a face's unfitted pixels (padding, outside the outline) are not normal residuals:
    they must not move the reference, and pixels no face fitted get no statistics of their own."""
    maps = normal_heatmaps()
    fitted = np.ones(maps.shape[:3], dtype=bool)
    fitted[:, :, : SIZE // 4] = False  # no face fitted the left quarter
    fitted[: len(maps) // 2, SIZE // 2 :, :] = False  # half the faces did not fit the lower half
    polluted = maps.copy()
    polluted[~fitted] = 1e6  # what an unfitted pixel's residual might be: anything
    masked = residual_reference.fit_residual_reference(polluted, {}, fitted)
    lower_half = residual_reference.fit_residual_reference(maps[len(maps) // 2 :], {})
    inner = (slice(SIZE // 2 + 4, SIZE - 4), slice(SIZE // 4 + 4, SIZE - 4))
    np.testing.assert_allclose(masked.median[inner], lower_half.median[inner], rtol=1e-5, atol=1e-6)
    assert np.all(masked.median[:, : SIZE // 4 - 4] == 0.0)
    assert np.all(masked.scale < 1e5)
    with pytest.raises(ValueError, match="masks"):
        residual_reference.fit_residual_reference(maps, {}, fitted[:, :-1])
