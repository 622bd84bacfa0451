"""Which perceptual distance is used offline, and that its name says so."""

import numpy as np
import pytest
import torch

from ml.normality import perceptual


@pytest.fixture
def no_alexnet_weights(tmp_path, monkeypatch):
    monkeypatch.setattr(perceptual, "alexnet_checkpoint_path", lambda: tmp_path / "absent.pth")
    monkeypatch.delenv(perceptual.RANDOM_BACKBONE_ENV, raising=False)


def test_without_alexnet_weights_the_default_is_the_named_ssim_fallback(no_alexnet_weights):
    distance = perceptual.load_perceptual()
    assert distance.metric == "ssim-fallback"
    image = torch.rand(1, 3, 32, 32) * 2 - 1
    assert float(distance(image, image)) == pytest.approx(0.0, abs=1e-5)
    assert float(distance(image, -image)) > 0.5


def test_random_backbone_lpips_only_when_asked_for(no_alexnet_weights, monkeypatch):
    pytest.importorskip("lpips")
    monkeypatch.setenv(perceptual.RANDOM_BACKBONE_ENV, "1")
    distance = perceptual.load_perceptual()
    assert distance.metric == "lpips-alex-random-backbone"
    assert perceptual.load_perceptual(allow_random_backbone=False).metric == "ssim-fallback"


def test_ssim_agrees_with_scikit_image_on_colour_images():
    """The fallback's SSIM (five local statistics filtered in one grouped convolution) is Wang et al.'s,
    as scikit-image computes it with the same 11-tap Gaussian window."""
    metrics = pytest.importorskip("skimage.metrics")
    rng = np.random.default_rng(0)
    first = rng.random((40, 48, 3))
    second = np.clip(first + rng.normal(0, 0.1, first.shape), 0, 1)
    expected = metrics.structural_similarity(
        first,
        second,
        channel_axis=2,
        gaussian_weights=True,
        sigma=1.5,
        use_sample_covariance=False,
        data_range=1.0,
    )
    ssim_map, _ = perceptual.ssim_components(_as_batch(first), _as_batch(second))
    assert float(ssim_map.mean()) == pytest.approx(expected, abs=1e-6)


def _as_batch(image: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(image).permute(2, 0, 1)[None].float()
