"""Perceptual distances used for inversion, adaptation and features.

LPIPS (Zhang et al., CVPR 2018) needs the torchvision AlexNet backbone weights, which Facet never
downloads. When ``$TORCH_HOME/hub/checkpoints/alexnet-owt-7be5be79.pth`` is present the real
``lpips-alex`` metric is used. Without it the default is a differentiable SSIM distance
(``ssim-fallback``), also used when ``lpips`` cannot be imported. Why not LPIPS on a random
backbone: LPIPS's linear heads were calibrated on the *trained* AlexNet's channels, so on random
features they weight meaningless channels, and Zhang et al. report randomly initialised networks
well below trained ones on their perceptual judgements; it is also about 4× slower than SSIM on
CPU. It stays available, named ``lpips-alex-random-backbone``, only when asked for
(``allow_random_backbone=True`` or ``FACET_LPIPS_RANDOM_BACKBONE=1``). Every output names the metric
it used.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

ALEXNET_CHECKPOINT = "alexnet-owt-7be5be79.pth"
METRIC_LPIPS = "lpips-alex"
METRIC_LPIPS_RANDOM = "lpips-alex-random-backbone"
METRIC_SSIM_FALLBACK = "ssim-fallback"
RANDOM_BACKBONE_ENV = "FACET_LPIPS_RANDOM_BACKBONE"


def alexnet_checkpoint_path() -> Path:
    """Where torchvision looks for the AlexNet weights (``torch.hub.get_dir()/checkpoints``)."""
    return Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_CHECKPOINT


def gaussian_window(size: int = 11, sigma: float = 1.5, device: torch.device | None = None) -> torch.Tensor:
    """Normalised 1-D Gaussian window of ``size`` taps."""
    coords = torch.arange(size, dtype=torch.float32, device=device) - (size - 1) / 2
    window = torch.exp(-(coords**2) / (2 * sigma**2))
    return window / window.sum()


def _filter(images: torch.Tensor, window: torch.Tensor) -> torch.Tensor:
    """Separable depthwise Gaussian filtering without padding ("valid" convolution)."""
    channels = images.shape[1]
    horizontal = window.view(1, 1, 1, -1).repeat(channels, 1, 1, 1)
    vertical = window.view(1, 1, -1, 1).repeat(channels, 1, 1, 1)
    return F.conv2d(F.conv2d(images, horizontal, groups=channels), vertical, groups=channels)


def ssim_components(
    first: torch.Tensor, second: torch.Tensor, data_range: float = 1.0, window_size: int = 11
) -> tuple[torch.Tensor, torch.Tensor]:
    """SSIM map and contrast-structure map (Wang et al. 2004, Eq. 13) of two ``(B, C, H, W)`` batches.

    The window shrinks to the image size for small images so the maps are never empty.
    """
    window_size = min(window_size, first.shape[-1], first.shape[-2])
    window = gaussian_window(window_size, 1.5 * window_size / 11, device=first.device).to(first.dtype)
    c1 = (0.01 * data_range) ** 2
    c2 = (0.03 * data_range) ** 2
    # The five local statistics filtered in one grouped convolution: half the time of five (the
    # projection and adaptation call this every step), bit-identical.
    statistics = _filter(
        torch.cat([first, second, first * first, second * second, first * second], 1), window
    )
    mu1, mu2, mean11, mean22, mean12 = statistics.split(first.shape[1], 1)
    sigma1 = mean11 - mu1**2
    sigma2 = mean22 - mu2**2
    sigma12 = mean12 - mu1 * mu2
    contrast_structure = (2 * sigma12 + c2) / (sigma1 + sigma2 + c2)
    luminance = (2 * mu1 * mu2 + c1) / (mu1**2 + mu2**2 + c1)
    return luminance * contrast_structure, contrast_structure


def ssim_distance(first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
    """Per-image ``1 − SSIM`` of two batches in ``[-1, 1]``; a differentiable LPIPS stand-in."""
    ssim_map, _ = ssim_components((first + 1) / 2, (second + 1) / 2)
    return 1 - ssim_map.mean(dim=(1, 2, 3))


@dataclass
class PerceptualDistance:
    """A differentiable image distance ``(B,3,H,W) × (B,3,H,W) → (B,)`` on images in ``[-1, 1]``.

    ``metric`` names what is actually computed; ``spatial`` (when available) returns a
    ``(B,1,H,W)`` heatmap instead.
    """

    metric: str
    distance: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    spatial: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None = None

    def __call__(self, first: torch.Tensor, second: torch.Tensor) -> torch.Tensor:
        return self.distance(first, second)


def _ssim_fallback() -> PerceptualDistance:
    return PerceptualDistance(metric=METRIC_SSIM_FALLBACK, distance=ssim_distance)


def load_perceptual(
    allow_lpips: bool = True, allow_random_backbone: bool | None = None
) -> PerceptualDistance:
    """The best perceptual distance available offline (see the module docstring), cached per process.

    ``allow_random_backbone`` defaults to ``$FACET_LPIPS_RANDOM_BACKBONE == "1"``.
    """
    if allow_random_backbone is None:
        allow_random_backbone = os.environ.get(RANDOM_BACKBONE_ENV) == "1"
    has_backbone = alexnet_checkpoint_path().is_file()
    if not allow_lpips or not (has_backbone or allow_random_backbone):
        return _ssim_fallback()
    return _load_lpips(has_backbone)


@functools.lru_cache(maxsize=2)
def _load_lpips(has_backbone: bool) -> PerceptualDistance:
    try:
        import lpips  # lazy: needs a working torchvision
    except Exception:  # noqa: BLE001 - any import failure means "no LPIPS here"
        return _ssim_fallback()
    models = []
    for spatial in (False, True):
        # A random backbone must be the same in every process: seed its initialisation.
        with torch.random.fork_rng():
            torch.manual_seed(0)
            models.append(lpips.LPIPS(net="alex", pnet_rand=not has_backbone, spatial=spatial, verbose=False))
    scalar_model, spatial_model = (model.eval() for model in models)
    for model in (scalar_model, spatial_model):
        for parameter in model.parameters():
            parameter.requires_grad_(False)
    return PerceptualDistance(
        metric=METRIC_LPIPS if has_backbone else METRIC_LPIPS_RANDOM,
        distance=lambda first, second: scalar_model(first, second).flatten(),
        spatial=lambda first, second: spatial_model(first, second),
    )
