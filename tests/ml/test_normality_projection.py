"""Inversion (Algorithm 1 + Boyaci objective) and adaptation (Algorithm 2) on a tiny random generator."""

import numpy as np
import pytest
import torch

from ml.normality.perceptual import load_perceptual
from ml.normality.projection import (
    LatentNormalizer,
    ProjectionConfig,
    adapt_generator,
    clip_and_resample_,
    learning_rate,
    noise_regularization,
    normalize_noise_,
    project_latent,
    tensor_to_image,
)
from ml.normality.stylegan2 import Generator


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    """Tiny models are fastest on one thread, especially on a busy 2-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="module")
def tiny(single_thread):
    torch.manual_seed(0)
    generator = Generator(16, style_dim=16, n_mlp=2, max_channels=16).eval()
    for parameter in generator.parameters():
        parameter.requires_grad_(False)
    w_avg, w_std = generator.mean_latent(samples=2000)
    return generator, w_avg, float(w_std)


def test_noise_regulariser_small_for_white_noise_large_for_constant():
    generator = torch.Generator().manual_seed(0)
    white = [torch.randn(1, 1, 256, 256, generator=generator)]
    constant = [torch.ones(1, 1, 256, 256)]
    assert float(noise_regularization(white)) < 1e-4
    # Every pyramid level (256 … 8, six levels) contributes 1 + 1 for a constant map.
    assert float(noise_regularization(constant)) == pytest.approx(12.0)
    stripes = torch.ones(1, 1, 8, 8)
    stripes[..., ::2] = -1
    assert float(noise_regularization([stripes])) == pytest.approx(2.0)


def test_noise_renormalisation_and_clipping():
    noise = torch.randn(1, 1, 16, 16) * 3 + 2
    normalize_noise_([noise])
    assert float(noise.mean()) == pytest.approx(0, abs=1e-5) and float(noise.std()) == pytest.approx(
        1, abs=1e-5
    )
    w = torch.tensor([0.5, 2.0, -3.0, -0.2])
    assert clip_and_resample_(w, 1.0, torch.Generator().manual_seed(0)) == 2
    assert w.abs().max() <= 1.0 and w[0] == 0.5 and w[3] == pytest.approx(-0.2)


def test_learning_rate_ramps():
    config = ProjectionConfig(steps=100)
    assert learning_rate(0, config) == 0
    assert learning_rate(50, config) == pytest.approx(0.1)
    assert 0 < learning_rate(90, config) < 0.1 and learning_rate(2, config) < learning_rate(4, config)


def test_inversion_loss_decreases(tiny):
    generator, w_avg, w_std = tiny
    with torch.no_grad():
        target = generator.decode(
            generator.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(3)))
        )
    perceptual = load_perceptual(allow_lpips=False)
    config = ProjectionConfig(steps=30, lambda_avg=0.0, clip=None)
    result = project_latent(generator, target, w_avg, w_std, perceptual, config)
    assert len(result.losses) == 30
    assert result.best_loss < 0.7 * result.losses[0]
    assert result.best_loss == min(result.losses)


def test_averageness_term_pulls_towards_w_avg_and_clip_holds(tiny):
    generator, w_avg, w_std = tiny
    with torch.no_grad():
        target = generator.decode(
            generator.mapping(torch.randn(1, 16, generator=torch.Generator().manual_seed(4)))
        )
    perceptual = load_perceptual(allow_lpips=False)
    raw = project_latent(
        generator, target, w_avg, w_std, perceptual, ProjectionConfig(steps=15, lambda_avg=0.0)
    )
    norm = project_latent(
        generator, target, w_avg, w_std, perceptual, ProjectionConfig(steps=15, lambda_avg=100.0)
    )
    assert (norm.w - w_avg).abs().mean() < (raw.w - w_avg).abs().mean()
    assert raw.w.abs().max() <= 1.0


def test_adaptation_reduces_error_on_a_copy(tiny):
    generator, w_avg, w_std = tiny
    target = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(1)) * 2 - 1
    noises = generator.noise_buffers()
    perceptual = load_perceptual(allow_lpips=False)
    before = generator.decode(w_avg, noises).detach().clone()
    adapted = adapt_generator(generator, w_avg, noises, target, perceptual, steps=15, learning_rate=1e-2)
    with torch.no_grad():
        after = adapted.decode(w_avg, noises)
        assert torch.equal(generator.decode(w_avg, noises), before)
    assert torch.mean((after - target) ** 2) < torch.mean((before - target) ** 2)


def test_normalizer_interface_and_progress(tiny):
    generator, w_avg, w_std = tiny
    with torch.no_grad():
        image = tensor_to_image(generator.decode(w_avg + 0.3))
    calls = []
    normalizer = LatentNormalizer(
        generator, w_avg, w_std, ProjectionConfig(steps=5), adapt_steps=3, perceptual=load_perceptual(False)
    )
    normalized, w_norm, w_raw = normalizer.normalize(image, progress=lambda f, m: calls.append((f, m)))
    assert normalized.shape == (16, 16, 3) and normalized.dtype == np.uint8
    assert w_norm.shape == (16,) and w_raw.shape == (16,)
    fractions = [f for f, _ in calls]
    assert len(calls) == 13 and fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)
    assert normalizer.project(image).shape == (16,)
    assert normalizer.metric == "ssim-fallback"


def test_k_candidates_share_w_raw_and_differ_by_seed(tiny):
    generator, w_avg, w_std = tiny
    with torch.no_grad():
        image = tensor_to_image(generator.decode(w_avg - 0.2))
    normalizer = LatentNormalizer(
        generator, w_avg, w_std, ProjectionConfig(steps=4), adapt_steps=0, perceptual=load_perceptual(False)
    )
    w_raw, candidates = normalizer.candidates(image, 3)
    assert len(candidates) == 3
    assert all(np.array_equal(c.w_raw, w_raw) for c in candidates)
    assert not np.allclose(candidates[0].w_norm, candidates[1].w_norm)
    with pytest.raises(ValueError, match="At least one"):
        normalizer.candidates(image, 0)


class _TanhDecoder(torch.nn.Module):
    """A fixed linear map of a latent to a 16-px image: enough to test projection from a saturated start."""

    size = 16

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(
            torch.randn(3 * 16 * 16, 8, generator=torch.Generator().manual_seed(0))
        )

    def decode(self, w, noise=None):
        return torch.tanh(0.3 * (self.weight @ w.reshape(-1, 1))).reshape(1, 3, 16, 16)

    def noise_buffers(self):
        return []


def test_clamp_mode_keeps_improving_from_a_saturated_start():
    decoder = _TanhDecoder()
    for parameter in decoder.parameters():
        parameter.requires_grad_(False)
    w_true = torch.full((1, 8), 0.5)
    target = decoder.decode(w_true)
    start = torch.ones(1, 8)  # an encoder's tanh latent on the bound, as the embedded normalizer gives
    perceptual = load_perceptual(allow_lpips=False)
    config = ProjectionConfig(steps=15, lambda_avg=0.0, clip_mode="clamp")
    result = project_latent(decoder, target, torch.zeros(1, 8), 0.1, perceptual, config, w_start=start)
    assert result.best_loss < result.losses[0]
    assert not torch.equal(result.w, start) and result.w.abs().max() <= 1.0
    with pytest.raises(ValueError, match="clip_mode"):
        ProjectionConfig(clip_mode="wrap")
