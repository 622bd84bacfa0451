"""Boyaci et al.'s distance features between a raw face and its normalized versions.

Image distances (Boyaci, Serpedin & Stotland, Sci Rep 2020): perceptual ``d_xperc`` (LPIPS),
structural ``d_xstr = (1 − MS-SSIM) / 2`` and ``d_xpsnr`` (PSNR); latent distances between
``w_raw`` (projection without the averageness term) and ``w_norm``: Bray–Curtis and correlation.
Each feature is averaged over the K (default 5) normalized candidates of one face.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ml.normality.perceptual import PerceptualDistance, ssim_components

FEATURE_NAMES: tuple[str, ...] = ("d_xperc", "d_xstr", "d_xpsnr", "d_braycurtis", "d_correlation")
# Wang, Simoncelli & Bovik (2003), Table 1: relative importance of the 5 scales.
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def ms_ssim(first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0) -> torch.Tensor:
    """Multi-scale SSIM (Wang, Simoncelli & Bovik 2003, Eq. 7) of two ``(B, C, H, W)`` batches.

    Five scales with the standard weights; contrast-structure terms of scales 1–4 and the full SSIM
    of scale 5 are multiplied. Negative terms are clipped at 0 (as in common implementations) so the
    fractional powers are defined. The Gaussian window shrinks at coarse scales of small images.
    """
    if first.shape != second.shape or first.ndim != 4:
        raise ValueError(
            f"ms_ssim needs two (B, C, H, W) tensors of equal shape; got {first.shape}, {second.shape}."
        )
    if min(first.shape[-2:]) < 2 ** (len(MS_SSIM_WEIGHTS) - 1):
        raise ValueError(
            f"Images of {tuple(first.shape[-2:])} px are too small for 5-scale MS-SSIM (need ≥ 16)."
        )
    weights = torch.tensor(MS_SSIM_WEIGHTS, dtype=first.dtype, device=first.device)
    terms = []
    for scale in range(len(MS_SSIM_WEIGHTS)):
        ssim_map, contrast_structure = ssim_components(first, second, data_range)
        if scale == len(MS_SSIM_WEIGHTS) - 1:
            terms.append(torch.relu(ssim_map.mean(dim=(1, 2, 3))))
        else:
            terms.append(torch.relu(contrast_structure.mean(dim=(1, 2, 3))))
            first = torch.nn.functional.avg_pool2d(first, 2)
            second = torch.nn.functional.avg_pool2d(second, 2)
    stacked = torch.stack(terms, dim=1)
    return torch.prod(stacked ** weights.view(1, -1), dim=1)


def psnr(first: np.ndarray, second: np.ndarray, data_range: float = 255.0) -> float:
    """Peak signal-to-noise ratio in dB; capped at 100 dB for identical images."""
    mse = float(np.mean((first.astype(np.float64) - second.astype(np.float64)) ** 2))
    if mse == 0:
        return 100.0
    return float(min(100.0, 10 * np.log10(data_range**2 / mse)))


def bray_curtis(first: np.ndarray, second: np.ndarray) -> float:
    """Bray–Curtis distance ``Σ|u − v| / Σ|u + v|`` (as ``scipy.spatial.distance.braycurtis``)."""
    u, v = np.ravel(first).astype(np.float64), np.ravel(second).astype(np.float64)
    denominator = np.abs(u + v).sum()
    if denominator == 0:
        raise ValueError("Bray–Curtis distance is undefined when u + v is zero everywhere.")
    return float(np.abs(u - v).sum() / denominator)


def correlation_distance(first: np.ndarray, second: np.ndarray) -> float:
    """Correlation distance ``1 − Pearson r`` (as ``scipy.spatial.distance.correlation``)."""
    u, v = np.ravel(first).astype(np.float64), np.ravel(second).astype(np.float64)
    u, v = u - u.mean(), v - v.mean()
    denominator = np.linalg.norm(u) * np.linalg.norm(v)
    if denominator == 0:
        raise ValueError("Correlation distance is undefined for a constant vector.")
    return float(1.0 - np.dot(u, v) / denominator)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an RGB uint8 (H, W, 3) image; got {image.dtype} {image.shape}.")
    return torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255.0


def pair_features(
    raw: np.ndarray,
    normalized: np.ndarray,
    w_raw: np.ndarray,
    w_norm: np.ndarray,
    perceptual: PerceptualDistance,
) -> dict[str, float]:
    """The five features of one (raw, normalized) pair; images RGB uint8, latents any equal shape."""
    if raw.shape != normalized.shape:
        raise ValueError(f"Raw and normalized images differ in shape: {raw.shape} vs {normalized.shape}.")
    raw_t, norm_t = _to_tensor(raw), _to_tensor(normalized)
    with torch.no_grad():
        perceptual_distance = float(perceptual(raw_t * 2 - 1, norm_t * 2 - 1).mean())
        structural = float((1 - ms_ssim(raw_t, norm_t)) / 2)
    return {
        "d_xperc": perceptual_distance,
        "d_xstr": structural,
        "d_xpsnr": psnr(raw, normalized),
        "d_braycurtis": bray_curtis(w_raw, w_norm),
        "d_correlation": correlation_distance(w_raw, w_norm),
    }


def average_features(per_candidate: Sequence[dict[str, float]]) -> dict[str, float]:
    """Mean of each feature over the K normalized candidates of one face (Boyaci et al.)."""
    if not per_candidate:
        raise ValueError("No normalized candidates to average over.")
    return {name: float(np.mean([features[name] for features in per_candidate])) for name in per_candidate[0]}


def candidate_features(
    raw: np.ndarray,
    candidates: Sequence[tuple[np.ndarray, np.ndarray]],
    w_raw: np.ndarray,
    perceptual: PerceptualDistance,
    fit_mask: np.ndarray | None = None,
) -> dict[str, float]:
    """Features averaged over K candidates, each ``(normalized_image, w_norm)``, against one ``w_raw``.

    With the ``fit_mask`` the candidates were fitted with (pixels > 0 were fitted), the pixels the fit
    ignored are taken from ``raw``: the normalizer was free to draw anything there, so they are not
    compared."""
    if fit_mask is not None:
        fitted = np.asarray(fit_mask) > 0
        candidates = [(np.where(fitted[..., None], image, raw), w_norm) for image, w_norm in candidates]
    return average_features(
        [pair_features(raw, image, w_raw, w_norm, perceptual) for image, w_norm in candidates]
    )


def feature_vector(features: dict[str, float]) -> np.ndarray:
    """Features in the fixed :data:`FEATURE_NAMES` order, for the regressors."""
    missing = [name for name in FEATURE_NAMES if name not in features]
    if missing:
        raise ValueError(f"Missing features: {', '.join(missing)}.")
    return np.array([features[name] for name in FEATURE_NAMES], dtype=np.float64)
