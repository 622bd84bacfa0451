"""Inpainting normalizer: the mouth–nose region is hidden and reconstructed from the rest of the face.

Hayajneh et al. (IEEE JBHI 2025) normalize a cleft face by inpainting the region of interest: the
network never sees the lip and nose, so it cannot copy a defect there, while everything outside the
mask stays the person's own pixels. The difference between the photo and its inpainted twin inside
the region is then exactly what the PSE score (:mod:`ml.normality.scoring`) measures. This replaces
the latent-space route of the autoencoder (:mod:`ml.normality.autoencoder`), whose whole-face
reconstruction error at 128 px drowned the local signal of a real cleft.

Network: a small U-Net (skip connections keep the unmasked context sharp) with dilated residual
blocks at 8×8, so every hidden pixel sees the whole face. Input: the face with the hole set to 0 and
the hole mask (4 channels); output: RGB, composited so only the hole changes. Training: normal faces
with the hole drawn from their landmarks with a random margin and shift, L1 in the hole (weighted)
and over the image, plus (1 − SSIM) of the composite.

K candidates (Boyaci et al. average features over K) differ by the hole margin, and are computed
in one batch. ``w_raw``/``w_norm`` for the latent features are the pooled bottleneck of the network
given the whole face and given the masked face.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.core.fp16 import load_configured, save_configured
from ml.normality.perceptual import PerceptualDistance, load_perceptual, ssim_distance
from ml.normality.projection import Normalization, image_to_tensor, tensor_to_image

DEFAULT_SIZE = 128
DEFAULT_CHANNELS = (16, 32, 64, 128, 256)
# Hole margin around the nose and mouth landmarks, in inter-ocular distances. The scoring region
# (``scoring.region_mask``, 0.05) must lie inside the hole, with room for the hole's soft border.
DEFAULT_MARGIN = 0.15
CANDIDATE_MARGINS = (0.15, 0.12, 0.18, 0.10, 0.20)
TRAINING_MARGINS = (0.08, 0.30)
TRAINING_SHIFT = 0.08
HOLE_WEIGHT = 6.0

_NOSE = slice(27, 36)
_MOUTH = slice(48, 68)


def inter_ocular_distance(landmarks: np.ndarray) -> float:
    points = np.asarray(landmarks, dtype=np.float64)
    return float(np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0)))


def hole_mask(
    landmarks: np.ndarray,
    size: int,
    margin: float = DEFAULT_MARGIN,
    shift: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """``(size, size)`` float mask, 1 in the hole: the hull of the nose (27–35) and mouth (48–67)
    points, moved by ``shift`` and dilated by ``margin`` (both in inter-ocular distances)."""
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (68, 2) or not np.all(np.isfinite(points)):
        raise ValueError(f"landmarks must be a finite (68, 2) array; got shape {points.shape}.")
    distance = inter_ocular_distance(points)
    region = np.concatenate([points[_NOSE], points[_MOUTH]]) + np.asarray(shift) * distance
    mask = np.zeros((size, size), dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(region).astype(np.int32)), 1)
    radius = max(1, int(round(margin * distance)))
    mask = cv2.dilate(mask, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1)))
    return mask.astype(np.float32)


def _conv(in_channels: int, out_channels: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=dilation, dilation=dilation),
        nn.GroupNorm(8 if out_channels % 8 == 0 else 1, out_channels),
        nn.LeakyReLU(0.2),
    )


class _DilatedResidual(nn.Module):
    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(_conv(channels, channels, dilation=dilation), _conv(channels, channels))

    def forward(self, value: torch.Tensor) -> torch.Tensor:
        return value + self.body(value)


class InpaintingNet(nn.Module):
    """U-Net: ``(B, 4, S, S)`` (RGB in [−1, 1] with the hole zeroed, hole mask) → RGB in [−1, 1]."""

    def __init__(self, size: int = DEFAULT_SIZE, channels: Sequence[int] = DEFAULT_CHANNELS) -> None:
        super().__init__()
        if size % 2 ** (len(channels) - 1) != 0:
            raise ValueError(f"size {size} must be divisible by 2^{len(channels) - 1}.")
        self.config: dict[str, Any] = {"size": size, "channels": list(channels)}
        self.size = size
        self.stem = _conv(4, channels[0])
        self.downs = nn.ModuleList(
            _conv(channels[i], channels[i + 1], stride=2) for i in range(len(channels) - 1)
        )
        self.middle = nn.Sequential(*(_DilatedResidual(channels[-1], d) for d in (1, 2, 4, 1)))
        self.ups = nn.ModuleList(
            _conv(channels[i + 1] + channels[i], channels[i]) for i in reversed(range(len(channels) - 1))
        )
        self.to_rgb = nn.Conv2d(channels[0], 3, 3, padding=1)

    def encode(self, image: torch.Tensor, hole: torch.Tensor) -> list[torch.Tensor]:
        """Feature maps from full resolution down to the bottleneck (the last one)."""
        value = self.stem(torch.cat([image * (1 - hole), hole], dim=1))
        skips = [value]
        for down in self.downs:
            value = down(value)
            skips.append(value)
        skips[-1] = self.middle(skips[-1])
        return skips

    def decode(self, skips: list[torch.Tensor]) -> torch.Tensor:
        value = skips[-1]
        for up, skip in zip(self.ups, reversed(skips[:-1]), strict=True):
            value = up(torch.cat([F.interpolate(value, scale_factor=2, mode="nearest"), skip], dim=1))
        return torch.tanh(self.to_rgb(value))

    def forward(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """The composite: network output in the hole, the input elsewhere."""
        output = self.decode(self.encode(image, hole))
        return image * (1 - hole) + output * hole

    @torch.no_grad()
    def latent(self, image: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` bounded code: tanh of the spatially pooled bottleneck."""
        return torch.tanh(self.encode(image, hole)[-1].mean(dim=(2, 3)))


def save_inpainter(model: InpaintingNet, path: Path, metadata: dict[str, Any]) -> None:
    """fp16 weights, the architecture and metadata in one file."""
    save_configured(model, path, metadata)


def load_inpainter(path: Path) -> tuple[InpaintingNet, dict[str, Any]]:
    """A model saved by :func:`save_inpainter` (weights back to float32) and its metadata."""
    return load_configured(
        InpaintingNet,
        path,
        f"No trained inpainting normalizer at {path}. Train one with: "
        "python -m ml normality train-inpainter --data DIR",
    )


class InpaintingNormalizer:
    """Normalizer interface of the analysis: ``candidates(image, count, landmarks=...)``.

    Needs the aligned face's landmarks (the hole is drawn from them). No projection or adaptation
    steps: one batched forward pass gives all K candidates and the two latents.
    """

    projection_steps = 0
    adapt_steps = 0

    def __init__(self, model: InpaintingNet, perceptual: PerceptualDistance | None = None) -> None:
        self.model = model.eval()
        self.size = model.size
        self.perceptual = perceptual or load_perceptual()

    @property
    def metric(self) -> str:
        return self.perceptual.metric

    @torch.no_grad()
    def candidates(
        self,
        image: np.ndarray,
        count: int = 1,
        progress: Callable[[float, str], None] | None = None,
        *,
        landmarks: np.ndarray,
    ) -> tuple[np.ndarray, list[Normalization]]:
        """``w_raw`` and ``count`` inpainted candidates (hole margins ``CANDIDATE_MARGINS``)."""
        if not 1 <= count <= len(CANDIDATE_MARGINS):
            raise ValueError(f"Between 1 and {len(CANDIDATE_MARGINS)} inpainted candidates; got {count}.")
        target = image_to_tensor(image, self.size)
        holes = torch.from_numpy(
            np.stack([hole_mask(landmarks, self.size, margin) for margin in CANDIDATE_MARGINS[:count]])
        )[:, None]
        batch = torch.cat([target.expand(count, -1, -1, -1), target], dim=0)
        all_holes = torch.cat([holes, torch.zeros_like(holes[:1])], dim=0)
        skips = self.model.encode(batch, all_holes)
        latents = torch.tanh(skips[-1].mean(dim=(2, 3))).numpy()
        outputs = self.model.decode([skip[:count] for skip in skips])
        composites = target * (1 - holes) + outputs * holes
        w_raw = latents[-1]
        if progress is not None:
            progress(1.0, "Inpainted")
        return w_raw, [
            Normalization(
                image=tensor_to_image(composites[i : i + 1]),
                w_norm=latents[i],
                w_raw=w_raw,
                metric=self.metric,
            )
            for i in range(count)
        ]

    def normalized_image(self, image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
        """The first candidate alone (default margin)."""
        return self.candidates(image, 1, landmarks=landmarks)[1][0].image


# ---- training ------------------------------------------------------------------------------------


def _faces_tensor(faces: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(faces).permute(0, 3, 1, 2).float() / 127.5 - 1


def random_holes(
    landmarks: np.ndarray,
    size: int,
    flips: np.ndarray,
    rng: np.random.Generator,
    score_time_fraction: float = 0.0,
) -> torch.Tensor:
    """Training holes ``(B, 1, S, S)``: random margin in ``TRAINING_MARGINS`` and shift up to
    ``TRAINING_SHIFT`` inter-ocular distances, mirrored where the face is flipped.

    A share ``score_time_fraction`` of the holes are instead exactly the holes drawn at score time (a
    margin of ``CANDIDATE_MARGINS``, no shift), so the network is trained on the masks it is used with,
    not only on their random neighbours."""
    holes = []
    for points, flip in zip(landmarks, flips, strict=True):
        if score_time_fraction > 0 and rng.random() < score_time_fraction:
            mask = hole_mask(points, size, float(rng.choice(CANDIDATE_MARGINS)))
        else:
            mask = hole_mask(
                points,
                size,
                float(rng.uniform(*TRAINING_MARGINS)),
                tuple(rng.uniform(-TRAINING_SHIFT, TRAINING_SHIFT, size=2)),
            )
        holes.append(mask[:, ::-1] if flip else mask)
    return torch.from_numpy(np.ascontiguousarray(np.stack(holes)))[:, None]


def inpainting_loss(composite: torch.Tensor, output_target: torch.Tensor, hole: torch.Tensor) -> torch.Tensor:
    """Weighted L1 in the hole plus (1 − SSIM) of the composite."""
    hole_l1 = ((composite - output_target).abs() * hole).sum() / (hole.sum() * 3).clamp_min(1)
    return HOLE_WEIGHT * hole_l1 + ssim_distance(composite, output_target).mean()


def _batches(count: int, batch_size: int, rng: np.random.Generator) -> Iterator[np.ndarray]:
    while True:
        order = rng.permutation(count)
        for start in range(0, count - batch_size + 1, batch_size):
            yield order[start : start + batch_size]


@dataclass
class InpaintingCheckpoint:
    """Training state that survives a restart: weights, optimizer, steps done and seconds spent.

    ``origin`` describes the weights the run started from (empty: random initialisation); ``step``
    and ``seconds`` count this run only."""

    model: InpaintingNet
    optimizer: torch.optim.Optimizer
    step: int
    seconds: float
    losses: list[float]
    origin: dict[str, Any] = field(default_factory=dict)


def _adam(model: InpaintingNet, learning_rate: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=learning_rate, betas=(0.9, 0.99))


def new_checkpoint(size: int, learning_rate: float) -> InpaintingCheckpoint:
    model = InpaintingNet(size=size)
    return InpaintingCheckpoint(model, _adam(model, learning_rate), 0, 0.0, [])


def checkpoint_from_weights(path: Path, learning_rate: float) -> InpaintingCheckpoint:
    """A new run that starts from saved fp16 weights (:func:`save_inpainter`), e.g. the shipped model,
    when its training state is gone: the weights back to float32, a fresh optimizer, step and time at
    0; ``origin`` records the file, its hash and the training it had."""
    from ml.registry import file_sha256

    model, metadata = load_inpainter(path)
    origin = {
        "weights": path.name,
        "sha256": file_sha256(path),
        "training": metadata.get("training", {}),
    }
    return InpaintingCheckpoint(model, _adam(model, learning_rate), 0, 0.0, [], origin)


def save_checkpoint(state: InpaintingCheckpoint, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(".tmp")
    torch.save(
        {
            "model": state.model.state_dict(),
            "config": state.model.config,
            "optimizer": state.optimizer.state_dict(),
            "step": state.step,
            "seconds": state.seconds,
            "losses": state.losses,
            "origin": state.origin,
        },
        temporary,
    )
    temporary.replace(path)


def load_checkpoint(path: Path, learning_rate: float) -> InpaintingCheckpoint:
    payload = torch.load(path, map_location="cpu", weights_only=True)
    model = InpaintingNet(**payload["config"])
    model.load_state_dict(payload["model"])
    optimizer = _adam(model, learning_rate)
    optimizer.load_state_dict(payload["optimizer"])
    return InpaintingCheckpoint(
        model,
        optimizer,
        payload["step"],
        payload["seconds"],
        list(payload["losses"]),
        dict(payload.get("origin", {})),
    )


def train_inpainter(
    faces: np.ndarray,
    landmarks: np.ndarray,
    state: InpaintingCheckpoint,
    max_seconds: float,
    batch_size: int = 16,
    learning_rate: float = 1e-3,
    seed: int = 0,
    checkpoint_every: float = 180.0,
    on_checkpoint: Callable[[InpaintingCheckpoint], None] | None = None,
    log: Callable[[str], None] | None = None,
    warmup_steps: int = 0,
    score_time_fraction: float = 0.0,
) -> InpaintingCheckpoint:
    """Train on aligned uint8 faces ``(N, S, S, 3)`` with their crop landmarks until ``max_seconds`` of
    training time (summed over restarts) are spent; cosine learning-rate decay on that time budget,
    after a linear warm-up over the first ``warmup_steps`` steps (a fresh optimizer's first, poorly
    scaled Adam steps would otherwise hit trained weights at the full rate). ``score_time_fraction``:
    see :func:`random_holes`.

    ``on_checkpoint`` runs every ``checkpoint_every`` seconds and at the end, so a stopped job keeps
    its progress and can resume from the saved state.
    """
    size = faces.shape[1]
    if state.model.size != size:
        raise ValueError(f"Faces are {size} px but the model is {state.model.size} px.")
    images = _faces_tensor(faces)
    rng = np.random.default_rng(seed + state.step)
    batches = _batches(len(images), min(batch_size, len(images)), rng)
    model, optimizer = state.model.train(), state.optimizer
    session_start, last_checkpoint = time.monotonic(), time.monotonic()
    spent_before = state.seconds
    while True:
        state.seconds = spent_before + time.monotonic() - session_start
        fraction = state.seconds / max_seconds
        if fraction >= 1:
            break
        warmup = min(1.0, (state.step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
        for group in optimizer.param_groups:
            group["lr"] = warmup * learning_rate * 0.5 * (1 + math.cos(math.pi * fraction))
        chosen = next(batches)
        flips = rng.random(len(chosen)) < 0.5
        batch = images[chosen]
        batch = torch.where(torch.from_numpy(flips).view(-1, 1, 1, 1), batch.flip(-1), batch)
        holes = random_holes(landmarks[chosen], size, flips, rng, score_time_fraction)
        loss = inpainting_loss(model(batch, holes), batch, holes)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        state.step += 1
        state.losses.append(float(loss.detach()))
        if log is not None and state.step % 25 == 0:
            log(f"step {state.step} loss {np.mean(state.losses[-25:]):.4f} ({state.seconds:.0f} s)")
        if on_checkpoint is not None and time.monotonic() - last_checkpoint >= checkpoint_every:
            model.eval()
            on_checkpoint(state)
            model.train()
            last_checkpoint = time.monotonic()
    model.eval()
    if on_checkpoint is not None:
        on_checkpoint(state)
    return state


@torch.no_grad()
def held_out_quality(model: InpaintingNet, faces: np.ndarray, landmarks: np.ndarray) -> dict[str, float]:
    """Mean L1 (8-bit levels) and PSNR inside the default hole on held-out faces."""
    errors, psnrs = [], []
    for start in range(0, len(faces), 32):
        batch = _faces_tensor(faces[start : start + 32])
        holes = torch.from_numpy(np.stack([hole_mask(p, model.size) for p in landmarks[start : start + 32]]))[
            :, None
        ]
        composite = model(batch, holes)
        difference = ((composite - batch) * 127.5) * holes
        pixels = holes.sum(dim=(1, 2, 3)) * 3
        errors.append(difference.abs().sum(dim=(1, 2, 3)) / pixels)
        mse = difference.pow(2).sum(dim=(1, 2, 3)) / pixels
        psnrs.append(10 * torch.log10(255.0**2 / mse.clamp_min(1e-6)))
    return {
        "hole_l1_levels": float(torch.cat(errors).mean()),
        "hole_psnr_db": float(torch.cat(psnrs).mean()),
        "faces": len(faces),
    }


def annotated_faces(
    data: Path, size: int, exclude: Collection[str] = ()
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """iBUG 300-W faces (AFW, HELEN train; all ages) aligned with their human landmarks, no detection.

    ``exclude``: photos to leave out, as paths relative to ``data`` (``landmarks300w/images/…``).
    """
    import json

    from ml.core.imageio import load_image
    from ml.normality.preprocess import align_face

    table = data / "landmarks300w" / "landmarks.json"
    if not table.is_file():
        raise FileNotFoundError(f"{table} not found: --data must hold landmarks300w/.")
    excluded = set(exclude)
    faces, points, sources = [], [], []
    for name, landmarks in sorted(json.loads(table.read_text())["faces"].items()):
        if f"landmarks300w/{name}" in excluded:
            continue
        aligned = align_face(load_image(data / "landmarks300w" / name), np.asarray(landmarks), size)
        faces.append(aligned.image)
        points.append(aligned.landmarks)
        sources.append(str(data / "landmarks300w" / name))
    return np.stack(faces), np.stack(points).astype(np.float32), sources
