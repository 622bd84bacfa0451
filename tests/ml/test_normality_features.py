"""Boyaci features: latent distances against scipy, MS-SSIM, PSNR and K-averaging."""

import numpy as np
import pytest
import torch
from scipy.spatial import distance

from ml.normality import features
from ml.normality.perceptual import load_perceptual


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Small tensors are fastest on one thread, especially on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def test_latent_distances_match_scipy():
    rng = np.random.default_rng(0)
    for _ in range(5):
        u, v = rng.normal(size=512), rng.normal(size=512)
        assert features.bray_curtis(u, v) == pytest.approx(distance.braycurtis(u, v))
        assert features.correlation_distance(u, v) == pytest.approx(distance.correlation(u, v))
    w = rng.normal(size=(18, 32))
    assert features.correlation_distance(w, w) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="constant"):
        features.correlation_distance(np.ones(4), rng.normal(size=4))


def test_ms_ssim_is_one_for_identical_and_drops_with_noise():
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, 64, 64, generator=generator)
    assert float(features.ms_ssim(image, image)) == pytest.approx(1.0, abs=1e-5)
    slightly = (image + 0.05 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
    heavily = (image + 0.3 * torch.randn(image.shape, generator=generator)).clamp(0, 1)
    assert 1.0 > float(features.ms_ssim(image, slightly)) > float(features.ms_ssim(image, heavily))


def test_psnr_known_value():
    first = np.zeros((8, 8, 3), np.uint8)
    second = np.full((8, 8, 3), 10, np.uint8)
    assert features.psnr(first, second) == pytest.approx(10 * np.log10(255**2 / 100))


def test_features_are_averaged_over_k_candidates():
    rng = np.random.default_rng(2)
    raw = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    w_raw = rng.normal(size=16)
    candidates = [
        (
            np.clip(raw.astype(int) + rng.integers(-30, 30, raw.shape), 0, 255).astype(np.uint8),
            rng.normal(size=16),
        )
        for _ in range(5)
    ]
    perceptual = load_perceptual(allow_lpips=False)
    per_candidate = [features.pair_features(raw, image, w_raw, w, perceptual) for image, w in candidates]
    averaged = features.candidate_features(raw, candidates, w_raw, perceptual)
    assert set(averaged) == set(features.FEATURE_NAMES)
    for name in features.FEATURE_NAMES:
        assert averaged[name] == pytest.approx(np.mean([f[name] for f in per_candidate]))
    assert averaged["d_braycurtis"] == pytest.approx(
        np.mean([distance.braycurtis(w_raw, w) for _, w in candidates])
    )
    assert features.feature_vector(averaged).shape == (5,)
    with pytest.raises(ValueError, match="No normalized"):
        features.average_features([])


def test_pixels_the_fit_ignored_are_not_compared():
    """Where a candidate was not fitted (outside its fit mask) the normalizer drew freely: two candidates
    that differ only there give the same features, and one that differs inside does not."""
    rng = np.random.default_rng(3)
    raw = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    fit_mask = np.zeros((32, 32), bool)
    fit_mask[8:24, 8:24] = True
    w_raw, w_norm = rng.normal(size=16), rng.normal(size=16)
    normalized = np.clip(raw.astype(int) + rng.integers(-20, 20, raw.shape), 0, 255).astype(np.uint8)
    scribbled = normalized.copy()
    scribbled[~fit_mask] = 255 - scribbled[~fit_mask]
    perceptual = load_perceptual(allow_lpips=False)

    def features_of(image: np.ndarray, mask: np.ndarray | None) -> dict[str, float]:
        return features.candidate_features(raw, [(image, w_norm)], w_raw, perceptual, mask)

    assert features_of(scribbled, fit_mask) == pytest.approx(features_of(normalized, fit_mask))
    assert features_of(scribbled, None) != pytest.approx(features_of(normalized, None))
    inside = normalized.copy()
    inside[fit_mask] = 255 - inside[fit_mask]
    assert features_of(inside, fit_mask) != pytest.approx(features_of(normalized, fit_mask))
