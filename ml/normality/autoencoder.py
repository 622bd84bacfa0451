"""The embedded default normalizer: a convolutional autoencoder of normal faces at 128 px.

No FFHQ StyleGAN2 weights can be shipped or downloaded, so Facet trains its own small generative
model of (mostly) normal faces on MEBeauty crops and FASSEG frontal faces, FFHQ-aligned with
:func:`ml.normality.preprocess.align_face`. The decoder plays the generator's role and the encoder
gives the starting latent; normalization then runs the same similarity + averageness inversion
(:func:`ml.normality.projection.project_latent`, without noise maps) and the same adaptation step
as the StyleGAN2 path (:class:`ml.normality.projection.LatentNormalizer`).

The latent is bounded by ``tanh`` so the [−1, 1] clipping of Boyaci et al. applies unchanged.
Training loss: L1 + (1 − SSIM) reconstruction (Zhao et al., "Loss Functions for Image Restoration
with Neural Networks", 2017, found L1 + MS-SSIM-type losses sharper than L2 for autoencoders).
"""

from __future__ import annotations

import csv
import math
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.core.fp16 import load_configured, save_configured
from ml.normality.features import ms_ssim
from ml.normality.perceptual import ssim_distance
from ml.normality.projection import LatentNormalizer, ProjectionConfig
from ml.normality.settings import DEFAULT_ADAPT_STEPS, DEFAULT_PROJECTION_STEPS

DEFAULT_SIZE = 128
DEFAULT_LATENT_DIM = 256
DEFAULT_CHANNELS = (16, 32, 64, 128, 256)


def _block(in_channels: int, out_channels: int, down: bool) -> nn.Sequential:
    if down:
        conv: nn.Module = nn.Conv2d(in_channels, out_channels, 4, stride=2, padding=1)
    else:
        conv = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"), nn.Conv2d(in_channels, out_channels, 3, padding=1)
        )
    return nn.Sequential(
        conv, nn.GroupNorm(8 if out_channels % 8 == 0 else 1, out_channels), nn.LeakyReLU(0.2)
    )


class Encoder(nn.Module):
    """Image ``(B, 3, S, S)`` in [−1, 1] → latent ``(B, latent_dim)`` in (−1, 1)."""

    def __init__(self, size: int, latent_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        layers, previous = [], 3
        for width in channels:
            layers.append(_block(previous, width, down=True))
            previous = width
        self.features = nn.Sequential(*layers)
        self.bottom = size // 2 ** len(channels)
        self.to_latent = nn.Linear(previous * self.bottom**2, latent_dim)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return torch.tanh(self.to_latent(self.features(image).flatten(1)))


class Decoder(nn.Module):
    """Latent ``(B, latent_dim)`` → image ``(B, 3, S, S)`` in [−1, 1]; the generator of the normalizer."""

    def __init__(self, size: int, latent_dim: int, channels: Sequence[int]) -> None:
        super().__init__()
        self.size = size
        widths = list(reversed(channels))
        self.bottom = size // 2 ** len(channels)
        self.first_width = widths[0]
        self.from_latent = nn.Linear(latent_dim, widths[0] * self.bottom**2)
        layers = [_block(widths[i], widths[i + 1], down=False) for i in range(len(widths) - 1)]
        layers.append(_block(widths[-1], widths[-1], down=False))
        self.features = nn.Sequential(*layers)
        self.to_rgb = nn.Conv2d(widths[-1], 3, 3, padding=1)

    def forward(self, latent: torch.Tensor) -> torch.Tensor:
        value = F.leaky_relu(self.from_latent(latent), 0.2).view(
            -1, self.first_width, self.bottom, self.bottom
        )
        return torch.tanh(self.to_rgb(self.features(value)))

    def decode(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Inversion interface (:class:`ml.normality.projection.LatentDecoder`); there are no noise maps."""
        return self(w)

    def noise_buffers(self) -> list[torch.Tensor]:
        return []


class FaceAutoencoder(nn.Module):
    """Encoder + decoder, with the latent mean ``w_avg`` and spread ``w_std`` of the training faces."""

    def __init__(
        self,
        size: int = DEFAULT_SIZE,
        latent_dim: int = DEFAULT_LATENT_DIM,
        channels: Sequence[int] = DEFAULT_CHANNELS,
    ) -> None:
        super().__init__()
        if size % 2 ** len(channels) != 0:
            raise ValueError(f"size {size} must be divisible by 2^{len(channels)}.")
        self.config: dict[str, Any] = {"size": size, "latent_dim": latent_dim, "channels": list(channels)}
        self.size = size
        self.encoder = Encoder(size, latent_dim, channels)
        self.decoder = Decoder(size, latent_dim, channels)
        self.register_buffer("w_avg", torch.zeros(1, latent_dim))
        self.register_buffer("w_std", torch.ones(()))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(image))


def reconstruction_loss(reconstructed: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """L1 + (1 − SSIM), both on images in [−1, 1]."""
    return F.l1_loss(reconstructed, target) + ssim_distance(reconstructed, target).mean()


def save_autoencoder(model: FaceAutoencoder, path: Path, metadata: dict[str, Any]) -> None:
    """Save fp16 weights, the architecture and metadata (training data, metrics) in one file."""
    save_configured(model, path, metadata)


def load_autoencoder(path: Path) -> tuple[FaceAutoencoder, dict[str, Any]]:
    """Load a model saved by :func:`save_autoencoder` (weights back to float32) and its metadata."""
    return load_configured(
        FaceAutoencoder,
        path,
        f"No trained normalizer at {path}. Train one with: "
        "python -m ml normality train-normalizer --data DIR",
    )


def autoencoder_normalizer(
    model: FaceAutoencoder,
    config: ProjectionConfig | None = None,
    adapt_steps: int = DEFAULT_ADAPT_STEPS,
    **kwargs: Any,
) -> LatentNormalizer:
    """A :class:`LatentNormalizer` whose generator is the decoder and whose start is the encoder's latent.

    Default ``DEFAULT_PROJECTION_STEPS`` projection steps, far fewer than Boyaci's 500 for StyleGAN2:
    the encoder starts close, and this keeps CPU time low.
    Out-of-range latent components are clamped, not resampled: the encoder's ``tanh`` latent has most
    components at ±1, so resampling (Boyaci's rule for StyleGAN's W) would discard the encoder's
    guess at the first step and leave the best latent at the start for both w_raw and w_norm.
    """
    return LatentNormalizer(
        model.decoder,
        model.w_avg,
        float(model.w_std),
        replace(config or ProjectionConfig(steps=DEFAULT_PROJECTION_STEPS), clip_mode="clamp"),
        adapt_steps=adapt_steps,
        encoder=model.encoder,
        **kwargs,
    )


# ---- training data ------------------------------------------------------------------------------

LandmarkFinder = Callable[[np.ndarray], np.ndarray | None]


def training_image_paths(data: Path, include_val: bool = False) -> tuple[list[Path], list[Path]]:
    """(training, held-out) photos: MEBeauty crops by their ``split`` column, plus FASSEG frontal faces
    for training. MEBeauty's ``val`` split is the held-out set unless ``include_val``."""
    table = data / "mebeauty" / "images.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: --data must be the data directory holding mebeauty/.")
    train, held_out = [], []
    with table.open(newline="") as handle:
        for row in csv.DictReader(handle):
            path = data / "mebeauty" / row["image"]
            (train if row["split"] == "train" or include_val else held_out).append(path)
    fasseg = data / "fasseg" / "frontal" / "train" / "images"
    train.extend(sorted(fasseg.glob("*.jpg")))
    return train, held_out


def largest_face_landmarks(image: np.ndarray) -> np.ndarray | None:
    """68 landmarks of the subject's face (``ml.core.subject``: the largest detected face), or ``None``."""
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_face

    face = subject_face(detect_faces_with_landmarks(image))
    return None if face is None else np.asarray(face.landmarks, dtype=np.float64)


def aligned_faces(
    paths: Sequence[Path],
    size: int,
    find_landmarks: LandmarkFinder = largest_face_landmarks,
    progress: Callable[[str], None] | None = None,
) -> np.ndarray:
    """FFHQ-aligned ``(N, size, size, 3)`` uint8 faces of the photos where a face is found."""
    from ml.core.imageio import load_image
    from ml.normality.preprocess import align_face

    faces = []
    for index, path in enumerate(paths):
        image = load_image(path)
        landmarks = find_landmarks(image)
        if landmarks is not None:
            faces.append(align_face(image, landmarks, size).image)
        if progress is not None and (index + 1) % 200 == 0:
            progress(f"aligned {index + 1}/{len(paths)} photos, {len(faces)} faces")
    if not faces:
        raise ValueError("No face was found in the training photos.")
    return np.stack(faces)


def aligned_faces_cached(
    paths: Sequence[Path],
    size: int,
    cache: Path | None,
    find_landmarks: LandmarkFinder = largest_face_landmarks,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """FFHQ-aligned faces, their landmarks in crop coordinates and the photo paths they came from.

    With ``cache`` (an ``.npz`` file) the alignment is done once and reused while the photo list and
    size are unchanged: face detection dominates, and training, evaluation and feature extraction
    all need the same crops. The cache also keeps each crop's observed-pixel mask (returned by
    :func:`aligned_faces_and_masks_cached`, read back by :func:`cached_observed_by_source`); a cache
    written by another version of the alignment is rebuilt.
    """
    faces, landmarks, _, sources = aligned_faces_and_masks_cached(
        paths, size, cache, find_landmarks, progress
    )
    return faces, landmarks, sources


def aligned_faces_and_masks_cached(
    paths: Sequence[Path],
    size: int,
    cache: Path | None,
    find_landmarks: LandmarkFinder = largest_face_landmarks,
    progress: Callable[[str], None] | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[str]]:
    """:func:`aligned_faces_cached` with each crop's observed-pixel mask
    (:attr:`ml.normality.preprocess.AlignedFace.observed`) after the landmarks."""
    from ml.core.imageio import load_image
    from ml.normality.preprocess import ALIGNMENT_VERSION, align_face

    names = [str(path) for path in paths]
    if cache is not None and cache.is_file():
        stored = np.load(cache, allow_pickle=False)
        if _is_current(stored, size) and list(stored["requested"]) == names:
            return (
                stored["faces"],
                stored["landmarks"],
                stored["observed"].astype(bool),
                [str(name) for name in stored["sources"]],
            )
    faces, landmarks, observed, sources = [], [], [], []
    for index, path in enumerate(paths):
        image = load_image(path)
        points = find_landmarks(image)
        if points is not None:
            aligned = align_face(image, points, size)
            faces.append(aligned.image)
            landmarks.append(aligned.landmarks)
            observed.append(aligned.observed)
            sources.append(str(path))
        if progress is not None and (index + 1) % 200 == 0:
            progress(f"aligned {index + 1}/{len(paths)} photos, {len(faces)} faces")
    if not faces:
        raise ValueError("No face was found in the photos.")
    result = np.stack(faces), np.stack(landmarks).astype(np.float32), np.stack(observed), sources
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        np.savez(
            cache,
            size=size,
            alignment_version=ALIGNMENT_VERSION,
            requested=np.array(names),
            faces=result[0],
            landmarks=result[1],
            observed=result[2],
            sources=np.array(sources),
        )
    return result


def _is_current(stored: Any, size: int) -> bool:
    """Whether a cache of aligned faces holds ``size`` crops from today's alignment (every versioned
    cache also holds the observed-pixel masks)."""
    from ml.normality.preprocess import ALIGNMENT_VERSION

    return (
        "alignment_version" in stored
        and int(stored["alignment_version"]) == ALIGNMENT_VERSION
        and int(stored["size"]) == size
    )


def cached_faces_by_source(cache_dir: Path, size: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Every ``(aligned face, landmarks)`` in the ``.npz`` caches of ``cache_dir`` at ``size``, by photo."""
    found: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for cache in sorted(cache_dir.glob(f"*-{size}.npz")):
        stored = np.load(cache, allow_pickle=False)
        if not _is_current(stored, size):
            continue
        for source, face, landmarks in zip(
            stored["sources"], stored["faces"], stored["landmarks"], strict=True
        ):
            found[str(source)] = (face, landmarks.astype(np.float64))
    return found


def cached_observed_by_source(cache_dir: Path, size: int) -> dict[str, np.ndarray]:
    """The observed-pixel mask of every cached face at ``size``, by photo (caches from another version
    of the alignment are skipped)."""
    found: dict[str, np.ndarray] = {}
    for cache in sorted(cache_dir.glob(f"*-{size}.npz")):
        stored = np.load(cache, allow_pickle=False)
        if not _is_current(stored, size):
            continue
        for source, observed in zip(stored["sources"], stored["observed"], strict=True):
            found[str(source)] = observed.astype(bool)
    return found


def _batches(faces: torch.Tensor, batch_size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    while True:
        order = torch.randperm(len(faces), generator=generator)
        for start in range(0, len(faces) - batch_size + 1, batch_size):
            batch = faces[order[start : start + batch_size]]
            flip = torch.rand(len(batch), generator=generator) < 0.5
            yield torch.where(flip.view(-1, 1, 1, 1), batch.flip(-1), batch)


def _to_tensor(faces: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1


@torch.no_grad()
def latent_statistics(
    model: FaceAutoencoder, faces: torch.Tensor, batch_size: int = 64
) -> tuple[torch.Tensor, float]:
    """Mean latent ``w_avg`` and spread √(Σ‖w − w_avg‖² / n) of the encoded faces."""
    latents = torch.cat([model.encoder(faces[i : i + batch_size]) for i in range(0, len(faces), batch_size)])
    w_avg = latents.mean(0, keepdim=True)
    return w_avg, float(torch.sqrt(((latents - w_avg) ** 2).sum() / len(latents)))


@torch.no_grad()
def reconstruction_quality(
    model: FaceAutoencoder, faces: torch.Tensor, batch_size: int = 64
) -> dict[str, float]:
    """Mean MS-SSIM and PSNR (dB, on 8-bit values) of encoder→decoder reconstructions."""
    scores, psnrs = [], []
    for start in range(0, len(faces), batch_size):
        batch = faces[start : start + batch_size]
        reconstructed = model(batch).clamp(-1, 1)
        scores.append(ms_ssim((reconstructed + 1) / 2, (batch + 1) / 2))
        mse = ((reconstructed - batch) / 2).pow(2).mean(dim=(1, 2, 3)).clamp_min(1e-10)
        psnrs.append(10 * torch.log10(1 / mse))
    return {
        "ms_ssim": float(torch.cat(scores).mean()),
        "psnr_db": float(torch.cat(psnrs).mean()),
        "faces": len(faces),
    }


@dataclass
class TrainingResult:
    """A trained model, its held-out reconstruction quality and the loss curve."""

    model: FaceAutoencoder
    held_out: dict[str, float]
    losses: list[float]
    seconds: float


def train_autoencoder(
    train_faces: np.ndarray,
    held_out_faces: np.ndarray | None = None,
    steps: int = 2000,
    batch_size: int = 32,
    learning_rate: float = 2e-3,
    model: FaceAutoencoder | None = None,
    seed: int = 0,
    log: Callable[[str], None] | None = None,
    max_seconds: float | None = None,
) -> TrainingResult:
    """Train on aligned uint8 faces ``(N, S, S, 3)`` with L1 + (1 − SSIM), Adam and cosine decay,
    then set ``w_avg``/``w_std`` from the training latents and measure held-out MS-SSIM and PSNR.

    With ``max_seconds`` the cosine schedule runs on whichever is further along, steps or wall-clock
    time, and training stops when either is used up, so a time budget still ends at a low learning rate.
    """
    started = time.monotonic()
    size = train_faces.shape[1]
    torch.manual_seed(seed)
    model = model or FaceAutoencoder(size=size)
    if model.size != size:
        raise ValueError(f"Faces are {size} px but the model is {model.size} px.")
    faces = _to_tensor(train_faces)
    batch_size = min(batch_size, len(faces))
    optimizer = torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.99))
    losses = []
    model.train()
    batches = _batches(faces, batch_size, torch.Generator().manual_seed(seed))
    for step in range(steps):
        elapsed = time.monotonic() - started
        fraction = max(step / steps, elapsed / max_seconds if max_seconds else 0.0)
        if fraction >= 1:
            break
        for group in optimizer.param_groups:
            group["lr"] = learning_rate * 0.5 * (1 + math.cos(math.pi * fraction))
        batch = next(batches)
        loss = reconstruction_loss(model(batch), batch)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if log is not None and (step + 1) % 50 == 0:
            log(f"step {step + 1}/{steps} loss {np.mean(losses[-50:]):.4f} ({elapsed:.0f} s)")
    model.eval()
    w_avg, w_std = latent_statistics(model, faces)
    model.w_avg.copy_(w_avg)
    model.w_std.fill_(w_std)
    held_out = reconstruction_quality(model, _to_tensor(held_out_faces)) if held_out_faces is not None else {}
    return TrainingResult(model=model, held_out=held_out, losses=losses, seconds=time.monotonic() - started)
