"""Which perceptual distance is used offline, and that its name says so."""

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
