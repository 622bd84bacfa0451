"""Inversion (projection) and generator adaptation for personalized normalization.

* :func:`project_latent` — Hayajneh et al.'s Algorithm 1, the StyleGAN2 projector (Karras et al.
  2020, Appendix D: LPIPS distance, noise maps optimised with the multi-scale autocorrelation
  regulariser weighted α = 1e5 and renormalised after every step, learning-rate ramp-up and cosine
  ramp-down, decaying noise on w) combined with Boyaci et al.'s objective
  ``λ_sim · LPIPS(G(w), x) + λ_avg · mean|w − w_avg|`` (λ_sim = 10, λ_avg = 100, 500 iterations,
  w clipped to [−1, 1] with out-of-range components resampled, the best w kept). With λ_avg = 0
  it gives ``w_raw``; with λ_avg = 100 ``w_norm``, pulled towards the average (normal) face.
* :func:`adapt_generator` — Hayajneh et al.'s Algorithm 2: latent frozen, a copy of the generator
  fine-tuned with LPIPS + L2 to the input for 50 iterations, so identity details the latent space
  cannot express are recovered while the averageness of w_norm is kept.

Both take an optional ``observed`` mask ``(1, 1, H, W)`` in [0, 1]: where the aligned crop is padding
invented by the alignment (the face filled the frame), the target is replaced at every step by the
current output itself (:func:`observed_target`), so the loss there is zero whatever the distance and
the fit follows only the photo's own pixels.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Protocol

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ml.normality.perceptual import PerceptualDistance, load_perceptual

ProgressCallback = Callable[[float, str], None]
# Hayajneh et al., Algorithm 2: generator adaptation for 50 iterations.
HAYAJNEH_ADAPT_STEPS = 50
# With unobserved pixels, the encoder's start is re-encoded this many times from the photo with its
# unobserved pixels replaced by the previous decoding (first by the average face), so padding does not
# pull the starting latent.
ENCODER_FILL_ITERATIONS = 2


class LatentDecoder(Protocol):
    """A generator usable for inversion: decodes a latent (and optional noise maps) to an image in [−1, 1]."""

    size: int

    def decode(self, w: torch.Tensor, noise: list[torch.Tensor] | None = None) -> torch.Tensor: ...

    def noise_buffers(self) -> list[torch.Tensor]: ...


@dataclass(frozen=True)
class ProjectionConfig:
    """Hyper-parameters of :func:`project_latent` (defaults from the papers and the StyleGAN2 projector)."""

    steps: int = 500
    lambda_sim: float = 10.0
    lambda_avg: float = 100.0
    noise_regularize: float = 1e5
    initial_learning_rate: float = 0.1
    initial_noise_factor: float = 0.05
    noise_ramp_length: float = 0.75
    lr_rampdown_length: float = 0.25
    lr_rampup_length: float = 0.05
    clip: float | None = 1.0
    # "resample" (Boyaci et al.) or "clamp": for latents that live on the bound (a saturated tanh
    # latent), resampling every component a step pushes past it throws the starting latent away.
    clip_mode: str = "resample"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.clip_mode not in ("resample", "clamp"):
            raise ValueError(f"clip_mode must be 'resample' or 'clamp'; got {self.clip_mode!r}.")


@dataclass
class ProjectionResult:
    """The best latent and noise maps found, with the loss per iteration."""

    w: torch.Tensor
    noises: list[torch.Tensor]
    best_loss: float
    losses: list[float] = field(default_factory=list)


def noise_regularization(noises: list[torch.Tensor]) -> torch.Tensor:
    """Multi-scale autocorrelation penalty of the StyleGAN2 projector (Karras et al. 2020, Appendix D).

    For each noise map and each level of its 2×2 average-pooling pyramid down to 8×8, the squared
    mean of the map times itself shifted by one pixel horizontally and vertically (circularly).
    It is near 0 for white Gaussian noise and large for structured maps, which stops the optimiser
    from hiding image content in the noise inputs.
    """
    total = torch.zeros(())
    for noise in noises:
        level = noise.reshape(1, 1, noise.shape[-2], noise.shape[-1])
        while True:
            total = total + (level * torch.roll(level, shifts=1, dims=3)).mean() ** 2
            total = total + (level * torch.roll(level, shifts=1, dims=2)).mean() ** 2
            if level.shape[2] <= 8:
                break
            level = F.avg_pool2d(level, kernel_size=2)
    return total


@torch.no_grad()
def normalize_noise_(noises: list[torch.Tensor]) -> None:
    """Renormalise each noise map in place to zero mean and unit variance (StyleGAN2 projector)."""
    for noise in noises:
        mean = noise.mean()
        std = noise.std()
        noise.sub_(mean).div_(std.clamp_min(1e-8))


def learning_rate(step: int, config: ProjectionConfig) -> float:
    """StyleGAN2 projector schedule: linear ramp-up over the first 5 %, cosine ramp-down over the last 25 %"""
    t = step / config.steps
    ramp = min(1.0, (1.0 - t) / config.lr_rampdown_length)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    ramp = ramp * min(1.0, t / config.lr_rampup_length)
    return config.initial_learning_rate * ramp


@torch.no_grad()
def clip_and_resample_(w: torch.Tensor, clip: float, generator: torch.Generator) -> int:
    """Replace components of ``w`` outside ``[−clip, clip]`` by uniform samples in that range (Boyaci et al.).

    Returns how many components were resampled.
    """
    outside = w.abs() > clip
    count = int(outside.sum())
    if count:
        samples = (torch.rand(count, generator=generator) * 2 - 1) * clip
        w[outside] = samples.to(w.dtype).to(w.device)
    return count


def observed_target(
    target: torch.Tensor, output: torch.Tensor, observed: torch.Tensor | None
) -> torch.Tensor:
    """``target`` where observed, the (detached) ``output`` elsewhere: unobserved pixels cost nothing."""
    if observed is None:
        return target
    return observed * target + (1.0 - observed) * output.detach()


def project_latent(
    decoder: LatentDecoder,
    target: torch.Tensor,
    w_avg: torch.Tensor,
    w_std: float,
    perceptual: PerceptualDistance,
    config: ProjectionConfig = ProjectionConfig(),
    w_start: torch.Tensor | None = None,
    progress: ProgressCallback | None = None,
    observed: torch.Tensor | None = None,
) -> ProjectionResult:
    """Invert ``target`` ``(1, 3, H, W)`` in [−1, 1]: Hayajneh Algorithm 1 with Boyaci's objective.

    Loss per step: ``λ_sim · d(G(w̃, n), x) + λ_avg · mean|w − w_avg| + α · R(n)`` with
    ``w̃ = w + N(0, σ_t²)`` (σ_t decays from 0.05·w_std to 0 over the first 75 % of the steps), R the
    noise regulariser (:func:`noise_regularization`) and d the perceptual distance. After each Adam
    step noise maps are renormalised and, if ``config.clip`` is set, components of w outside
    ``[−clip, clip]`` are resampled. The w and noise of the lowest loss are returned. With
    ``observed``, d compares only the observed pixels (:func:`observed_target`).
    """
    if target.ndim != 4 or target.shape[0] != 1 or target.shape[1] != 3:
        raise ValueError(f"target must be a (1, 3, H, W) tensor; got {tuple(target.shape)}.")
    if config.steps < 1:
        raise ValueError("Projection needs at least one step.")
    random = torch.Generator().manual_seed(config.seed)
    w = (w_start if w_start is not None else w_avg).detach().clone().reshape(1, -1).requires_grad_(True)
    noises = [buffer.detach().clone() for buffer in decoder.noise_buffers()]
    for noise in noises:
        noise.copy_(torch.randn(noise.shape, generator=random))
        noise.requires_grad_(True)
    optimizer = torch.optim.Adam(
        [w, *noises], betas=(0.9, 0.999), lr=config.initial_learning_rate, fused=True
    )
    w_avg = w_avg.detach().reshape(1, -1)
    best = ProjectionResult(
        w=w.detach().clone(), noises=[n.detach().clone() for n in noises], best_loss=math.inf
    )
    for step in range(config.steps):
        t = step / config.steps
        noise_strength = (
            w_std * config.initial_noise_factor * max(0.0, 1.0 - t / config.noise_ramp_length) ** 2
        )
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        w_noisy = w + torch.randn(w.shape, generator=random).to(w.device) * noise_strength
        image = decoder.decode(w_noisy, noises or None)
        similarity = perceptual(image, observed_target(target, image, observed)).mean()
        averageness = (w - w_avg).abs().mean()
        loss = config.lambda_sim * similarity + config.lambda_avg * averageness
        if noises:
            loss = loss + config.noise_regularize * noise_regularization(noises)
        value = float(loss.detach())
        best.losses.append(value)
        if value < best.best_loss:
            best.best_loss = value
            best.w = w.detach().clone()
            best.noises = [n.detach().clone() for n in noises]
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        normalize_noise_(noises)
        if config.clip is not None and config.clip_mode == "clamp":
            w.data.clamp_(-config.clip, config.clip)
        elif config.clip is not None:
            clip_and_resample_(w.data, config.clip, random)
        if progress is not None:
            progress(
                (step + 1) / config.steps, f"projection step {step + 1}/{config.steps}, loss {value:.4f}"
            )
    return best


def adapt_generator(
    decoder: nn.Module,
    w: torch.Tensor,
    noises: list[torch.Tensor],
    target: torch.Tensor,
    perceptual: PerceptualDistance,
    steps: int = HAYAJNEH_ADAPT_STEPS,
    learning_rate: float = 3e-4,
    l2_weight: float = 1.0,
    progress: ProgressCallback | None = None,
    observed: torch.Tensor | None = None,
) -> nn.Module:
    """Hayajneh et al. Algorithm 2: fine-tune a copy of the generator with w and noise frozen.

    Loss ``d(G'(w), x) + l2_weight · ‖G'(w) − x‖²`` (mean squared error), Adam at
    ``learning_rate`` (3e-4, as in pivotal tuning); the caller's generator is left untouched. With
    ``observed``, both terms compare only the observed pixels (:func:`observed_target`).
    """
    adapted = copy.deepcopy(decoder).train()
    parameters = list(adapted.parameters())
    for parameter in parameters:
        parameter.requires_grad_(True)
    # One fused kernel per step instead of six element-wise ops per parameter: ~15 % of a normalization
    # on one CPU thread (bench.normality_job), the same update up to float rounding.
    optimizer = torch.optim.Adam(parameters, lr=learning_rate, fused=True)
    w = w.detach()
    frozen_noise = [n.detach() for n in noises] or None
    for step in range(steps):
        image = adapted.decode(w, frozen_noise)
        step_target = observed_target(target, image, observed)
        loss = perceptual(image, step_target).mean() + l2_weight * F.mse_loss(image, step_target)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if progress is not None:
            progress(
                (step + 1) / steps, f"adaptation step {step + 1}/{steps}, loss {float(loss.detach()):.4f}"
            )
    return adapted.eval()


def image_to_tensor(image: np.ndarray, size: int) -> torch.Tensor:
    """RGB uint8 ``(H, W, 3)`` → ``(1, 3, size, size)`` in [−1, 1] (area-resized when needed)."""
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an RGB uint8 (H, W, 3) image; got {getattr(image, 'shape', None)}.")
    tensor = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1)[None].float() / 127.5 - 1
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="area")
    return tensor


def mask_to_tensor(observed: np.ndarray | None, size: int) -> torch.Tensor | None:
    """Observed-pixel mask ``(H, W)`` → ``(1, 1, size, size)`` float in [0, 1] (area-resized), or ``None``."""
    if observed is None:
        return None
    mask = np.asarray(observed)
    if mask.ndim != 2:
        raise ValueError(f"The observed mask must be (H, W); got {mask.shape}.")
    tensor = torch.from_numpy(mask.astype(np.float32))[None, None]
    if tensor.shape[-2:] != (size, size):
        tensor = F.interpolate(tensor, size=(size, size), mode="area")
    return tensor


def tensor_to_image(tensor: torch.Tensor) -> np.ndarray:
    """``(1, 3, H, W)`` in [−1, 1] → RGB uint8 ``(H, W, 3)``."""
    array = ((tensor.detach()[0].permute(1, 2, 0).clamp(-1, 1) + 1) * 127.5).round()
    return array.to(torch.uint8).cpu().numpy()


@dataclass
class Normalization:
    """A normalized face and the latents it came from."""

    image: np.ndarray
    w_norm: np.ndarray
    w_raw: np.ndarray
    metric: str


class Normalizer(Protocol):
    """Anything that projects a face to a latent and produces its personalized normal version."""

    def project(self, image: np.ndarray) -> np.ndarray: ...

    def normalize(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...


def _stage(progress: ProgressCallback | None, start: float, end: float) -> ProgressCallback | None:
    if progress is None:
        return None
    return lambda fraction, message: progress(start + (end - start) * fraction, message)


class LatentNormalizer:
    """Normalizer over any :class:`LatentDecoder`: w_raw, w_norm, then adaptation.

    ``project(image)`` returns ``w_raw`` (λ_avg = 0). ``normalize(image)`` returns
    ``(normalized_image, w_norm, w_raw)``: w_norm projected with λ_avg, the normalized image rendered
    by the generator adapted (Algorithm 2) at w_norm. Images are aligned RGB uint8 faces; they are
    resized to the generator resolution and the result is returned at that resolution.
    ``w_start`` (an encoder's guess) may replace ``w_avg`` as the starting point. Every method takes
    an optional ``observed`` mask ``(H, W)`` of the crop pixels that are the photo's own
    (:attr:`ml.normality.preprocess.AlignedFace.observed`); the fit then ignores the others (``None``:
    every pixel counts).
    """

    def __init__(
        self,
        decoder: nn.Module,
        w_avg: torch.Tensor,
        w_std: float,
        config: ProjectionConfig = ProjectionConfig(),
        adapt_steps: int = HAYAJNEH_ADAPT_STEPS,
        perceptual: PerceptualDistance | None = None,
        encoder: Callable[[torch.Tensor], torch.Tensor] | None = None,
    ) -> None:
        self.decoder = decoder.eval()
        for parameter in self.decoder.parameters():
            parameter.requires_grad_(False)
        self.w_avg = w_avg.detach().reshape(1, -1)
        self.w_std = float(w_std)
        self.config = config
        self.adapt_steps = adapt_steps
        self.perceptual = perceptual or load_perceptual()
        self.encoder = encoder

    @property
    def metric(self) -> str:
        return self.perceptual.metric

    def _start(self, target: torch.Tensor, observed: torch.Tensor | None) -> torch.Tensor | None:
        if self.encoder is None:
            return None
        with torch.no_grad():
            if observed is None:
                return self.encoder(target).reshape(1, -1)
            # The unobserved pixels are first filled with the average face, then with each decoding.
            w = self.w_avg
            for _ in range(ENCODER_FILL_ITERATIONS + 1):
                w = self.encoder(observed_target(target, self.decoder.decode(w), observed)).reshape(1, -1)
            return w

    def _project(
        self,
        target: torch.Tensor,
        lambda_avg: float,
        progress: ProgressCallback | None,
        seed: int | None = None,
        observed: torch.Tensor | None = None,
    ) -> ProjectionResult:
        config = replace(self.config, lambda_avg=lambda_avg, seed=self.config.seed if seed is None else seed)
        return project_latent(
            self.decoder,
            target,
            self.w_avg,
            self.w_std,
            self.perceptual,
            config,
            w_start=self._start(target, observed),
            progress=progress,
            observed=observed,
        )

    def project(
        self, image: np.ndarray, progress: ProgressCallback | None = None, observed: np.ndarray | None = None
    ) -> np.ndarray:
        """``w_raw``: the projection without the averageness term."""
        target = image_to_tensor(image, self.decoder.size)
        mask = mask_to_tensor(observed, self.decoder.size)
        return self._project(target, 0.0, progress, observed=mask).w[0].numpy()

    def candidates(
        self,
        image: np.ndarray,
        count: int = 5,
        progress: ProgressCallback | None = None,
        observed: np.ndarray | None = None,
    ) -> tuple[np.ndarray, list[Normalization]]:
        """``w_raw`` and ``count`` normalized candidates (Boyaci et al. average features over K = 5).

        Candidates differ by the random seed of the projection (noise maps, latent noise and
        resampling); each gets its own adaptation (Algorithm 2) of a fresh generator copy.
        """
        if count < 1:
            raise ValueError("At least one normalized candidate is needed.")
        target = image_to_tensor(image, self.decoder.size)
        mask = mask_to_tensor(observed, self.decoder.size)
        share = 1.0 / (count + 1)
        raw = self._project(target, 0.0, _stage(progress, 0.0, share), self.config.seed, mask)
        results = []
        for index in range(count):
            start = share * (index + 1)
            norm = self._project(
                target,
                self.config.lambda_avg,
                _stage(progress, start, start + 0.7 * share),
                self.config.seed + index,
                mask,
            )
            decoder = self.decoder
            if self.adapt_steps > 0:
                decoder = adapt_generator(
                    self.decoder,
                    norm.w,
                    norm.noises,
                    target,
                    self.perceptual,
                    steps=self.adapt_steps,
                    progress=_stage(progress, start + 0.7 * share, start + share),
                    observed=mask,
                )
            with torch.no_grad():
                normalized = decoder.decode(norm.w, norm.noises or None)
            results.append(
                Normalization(
                    image=tensor_to_image(normalized),
                    w_norm=norm.w[0].numpy(),
                    w_raw=raw.w[0].numpy(),
                    metric=self.metric,
                )
            )
        return raw.w[0].numpy(), results

    def normalized_image(
        self, image: np.ndarray, progress: ProgressCallback | None = None, observed: np.ndarray | None = None
    ) -> np.ndarray:
        """Only the normalized face: the w_norm projection and adaptation, without the w_raw projection.

        For evaluations that need the image alone; one projection cheaper than :meth:`normalize`.
        """
        target = image_to_tensor(image, self.decoder.size)
        mask = mask_to_tensor(observed, self.decoder.size)
        norm = self._project(
            target, self.config.lambda_avg, _stage(progress, 0.0, 0.7), self.config.seed, mask
        )
        decoder = self.decoder
        if self.adapt_steps > 0:
            decoder = adapt_generator(
                self.decoder,
                norm.w,
                norm.noises,
                target,
                self.perceptual,
                steps=self.adapt_steps,
                progress=_stage(progress, 0.7, 1.0),
                observed=mask,
            )
        with torch.no_grad():
            return tensor_to_image(decoder.decode(norm.w, norm.noises or None))

    def normalize_full(
        self, image: np.ndarray, progress: ProgressCallback | None = None, observed: np.ndarray | None = None
    ) -> Normalization:
        """One normalized candidate with both latents and the perceptual metric used."""
        return self.candidates(image, 1, progress, observed)[1][0]

    def normalize(
        self, image: np.ndarray, progress: ProgressCallback | None = None
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """``(normalized_image, w_norm, w_raw)``."""
        result = self.normalize_full(image, progress)
        return result.image, result.w_norm, result.w_raw
