"""Embedded normalizer: a few training steps, fp16 save/load, and the normalizer interface."""

import numpy as np
import pytest
import torch

from ml.normality.autoencoder import (
    FaceAutoencoder,
    autoencoder_normalizer,
    load_autoencoder,
    save_autoencoder,
    train_autoencoder,
)
from ml.normality.perceptual import load_perceptual
from ml.normality.projection import ProjectionConfig


@pytest.fixture(scope="module", autouse=True)
def single_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def blobs(count: int, size: int = 32, seed: int = 0) -> np.ndarray:
    """Smooth synthetic "faces": a bright ellipse on a dark background with random shifts."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[:size, :size] / size
    faces = []
    for _ in range(count):
        cx, cy = 0.5 + rng.normal(0, 0.05, 2)
        ellipse = ((xs - cx) / 0.3) ** 2 + ((ys - cy) / 0.4) ** 2 < 1
        face = np.where(ellipse[..., None], [200, 160, 140], [30, 30, 40]) + rng.normal(0, 5, (size, size, 3))
        faces.append(np.clip(face, 0, 255).astype(np.uint8))
    return np.stack(faces)


@pytest.fixture(scope="module")
def trained(single_thread):
    model = FaceAutoencoder(size=32, latent_dim=16, channels=(8, 16))
    return train_autoencoder(blobs(24), blobs(8, seed=1), steps=30, batch_size=8, model=model)


def test_training_reduces_loss_and_reports_held_out_quality(trained):
    assert np.mean(trained.losses[-5:]) < np.mean(trained.losses[:5])
    assert set(trained.held_out) == {"ms_ssim", "psnr_db", "faces"} and trained.held_out["faces"] == 8
    assert float(trained.model.w_std) > 0 and trained.model.w_avg.abs().max() < 1


def test_fp16_save_load_round_trip(trained, tmp_path):
    path = tmp_path / "ae.pt"
    save_autoencoder(trained.model, path, {"note": "smoke"})
    loaded, metadata = load_autoencoder(path)
    assert metadata == {"note": "smoke"}
    batch = torch.from_numpy(blobs(2)).permute(0, 3, 1, 2).float() / 127.5 - 1
    with torch.no_grad():
        assert torch.allclose(loaded(batch), trained.model(batch), atol=2e-2)
    with pytest.raises(FileNotFoundError, match="train-normalizer"):
        load_autoencoder(tmp_path / "missing.pt")


def test_autoencoder_normalizer_interface(trained):
    normalizer = autoencoder_normalizer(
        trained.model, ProjectionConfig(steps=4), adapt_steps=2, perceptual=load_perceptual(False)
    )
    image = blobs(1, seed=3)[0]
    normalized, w_norm, w_raw = normalizer.normalize(image)
    assert normalized.shape == (32, 32, 3) and w_norm.shape == (16,) and w_raw.shape == (16,)
    assert np.abs(w_norm).max() <= 1.0


def test_time_budget_stops_training_early():
    model = FaceAutoencoder(size=32, latent_dim=16, channels=(8, 16))
    result = train_autoencoder(blobs(16), steps=10_000, batch_size=8, model=model, max_seconds=0.5)
    assert 0 < len(result.losses) < 10_000 and result.seconds < 10


def test_aligned_face_cache_is_reused_and_read_by_source(tmp_path, monkeypatch):
    from ml.normality import autoencoder
    from ml.normality.autoencoder import (
        aligned_faces_and_masks_cached,
        aligned_faces_cached,
        cached_faces_by_source,
        cached_observed_by_source,
    )

    photo = np.full((80, 80, 3), 120, np.uint8)
    photos = []
    for index in range(2):
        path = tmp_path / f"face{index}.png"
        path.write_bytes(__import__("cv2").imencode(".png", photo)[1].tobytes())
        photos.append(path)
    points = np.zeros((68, 2))
    points[36:42] = (30, 35)  # left eye
    points[42:48] = (50, 35)  # right eye
    points[48], points[54] = (33, 60), (47, 60)  # mouth corners
    calls = []

    def finder(image):
        calls.append(1)
        return None if len(calls) == 2 else points  # the second photo has "no face"

    monkeypatch.setattr(autoencoder, "largest_face_landmarks", finder)
    cache = tmp_path / "cache" / "train-32.npz"
    faces, landmarks, sources = aligned_faces_cached(photos, 32, cache, find_landmarks=finder)
    assert faces.shape == (1, 32, 32, 3) and landmarks.shape == (1, 68, 2) and sources == [str(photos[0])]
    again = aligned_faces_cached(photos, 32, cache, find_landmarks=finder)
    assert len(calls) == 2 and np.array_equal(again[0], faces)  # read back, no detection
    masks = aligned_faces_and_masks_cached(photos, 32, cache, find_landmarks=finder)[2]
    assert len(calls) == 2 and masks.dtype == bool
    assert np.array_equal(masks[0], cached_observed_by_source(cache.parent, 32)[str(photos[0])])
    by_source = cached_faces_by_source(cache.parent, 32)
    assert list(by_source) == [str(photos[0])] and np.array_equal(by_source[str(photos[0])][0], faces[0])
    assert cached_faces_by_source(cache.parent, 64) == {}
    # A cache from another version of the alignment is neither read nor reused: the faces are aligned again.
    monkeypatch.setattr("ml.normality.preprocess.ALIGNMENT_VERSION", -1)
    assert cached_faces_by_source(cache.parent, 32) == {}
    aligned_faces_cached(photos, 32, cache, find_landmarks=finder)
    assert len(calls) == 4


def test_normalized_image_matches_the_interface(trained):
    normalizer = autoencoder_normalizer(
        trained.model, ProjectionConfig(steps=3), adapt_steps=2, perceptual=load_perceptual(False)
    )
    image = blobs(1, seed=4)[0]
    normalized = normalizer.normalized_image(image)
    assert normalized.shape == image.shape and normalized.dtype == np.uint8
    # Same seed, same steps: the cheaper path renders the same face as normalize().
    assert np.array_equal(normalized, normalizer.normalize(image)[0])


def test_autoencoder_normalizer_clamps_its_tanh_latent(trained):
    normalizer = autoencoder_normalizer(trained.model, ProjectionConfig(steps=3), adapt_steps=0)
    assert normalizer.config.clip_mode == "clamp" and normalizer.config.steps == 3


def test_masked_normalization_ignores_the_content_of_unobserved_pixels(trained):
    normalizer = autoencoder_normalizer(
        trained.model, ProjectionConfig(steps=3), adapt_steps=3, perceptual=load_perceptual(False)
    )
    image = blobs(1, seed=5)[0]
    observed = np.zeros(image.shape[:2], dtype=bool)
    observed[6:26, 4:28] = True
    repainted = image.copy()
    repainted[~observed] = np.random.default_rng(0).integers(0, 256, (int((~observed).sum()), 3))
    masked = [normalizer.normalized_image(face, observed=observed) for face in (image, repainted)]
    np.testing.assert_allclose(masked[0].astype(int), masked[1].astype(int), atol=1)
    full = normalizer.normalize_full(repainted, observed=observed)
    np.testing.assert_allclose(full.image.astype(int), masked[1].astype(int), atol=1)
    # Without the mask the repainted pixels do pull the fit (so the check above is not vacuous).
    unmasked = [normalizer.normalized_image(face) for face in (image, repainted)]
    assert np.abs(unmasked[0].astype(int) - unmasked[1].astype(int)).max() > 5
