"""Weighted wrinkle maps and (weighted) Dice losses with deep supervision.

Kim et al., "Facial wrinkle segmentation using weighted deep supervision and semi-automatic
labeling", Artificial Intelligence in Medicine 145 (2023): Algorithm 1 (weighted wrinkle map),
Eq. 3 (Dice loss), Eq. 4 (weighted Dice loss; the printed equation has a typo, the intended form is
``1 − 2Σpqw / (Σpw + Σqw)``) and Eq. 5 (total loss = Dice(F1) + Σ_k weighted Dice(F_k), k = 2..4).

Side outputs F2, F3, F4 have 1/2, 1/4 and 1/8 of the input resolution (scale s = 2, 4, 8). They are
compared with the ground truth brought down to their grid:

* target: ``max_pool(G, s)`` — a cell is wrinkle if any of its s×s pixels is, so one-pixel lines
  survive at 1/8 resolution;
* weight: ``avg_pool(W_s, s)`` — the mean over the cell of the full-resolution weighted map W_s of
  Algorithm 1, so cells with wrinkle pixels keep their higher weight and background cells keep the
  map mean.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as functional

SIDE_OUTPUT_SCALES: tuple[int, ...] = (2, 4, 8)
DICE_SMOOTH = 1.0
LossVariant = Literal["unet", "unet-ds", "unet-wds"]
LOSS_VARIANTS: tuple[str, ...] = ("unet", "unet-ds", "unet-wds")


def _as_batch(ground_truth: np.ndarray | torch.Tensor) -> torch.Tensor:
    tensor = torch.as_tensor(ground_truth).float()
    if tensor.ndim == 2:
        return tensor[None, None]
    if tensor.ndim == 3:
        return tensor[:, None]
    if tensor.ndim == 4 and tensor.shape[1] == 1:
        return tensor
    raise ValueError(
        f"Expected a mask of shape (H, W), (N, H, W) or (N, 1, H, W), got {tuple(tensor.shape)}."
    )


def weighted_wrinkle_map(ground_truth: np.ndarray | torch.Tensor, scale: int) -> torch.Tensor:
    """Weighted wrinkle map W_s of a binary ground truth G (Kim et al. 2023, Algorithm 1).

    1. mean of G over each non-overlapping ``scale × scale`` block;
    2. nearest-neighbour upsampling of the block means back to G's size;
    3. zeros replaced by the mean of that map (per image);
    4. pixels where G = 1 set to 1.

    Accepts ``(H, W)``, ``(N, H, W)`` or ``(N, 1, H, W)``; returns ``(N, 1, H, W)`` float32. H and W must
    be multiples of ``scale``.
    """
    target = (_as_batch(ground_truth) > 0.5).float()
    height, width = target.shape[-2:]
    if scale < 1 or height % scale or width % scale:
        raise ValueError(f"Mask size {height}×{width} is not a multiple of the scale {scale}.")
    block_means = functional.avg_pool2d(target, kernel_size=scale, stride=scale)
    upsampled = functional.interpolate(block_means, scale_factor=scale, mode="nearest")
    map_means = upsampled.mean(dim=(2, 3), keepdim=True).expand_as(upsampled)
    weights = torch.where(upsampled == 0, map_means, upsampled)
    return torch.where(target > 0, torch.ones_like(weights), weights)


def dice_loss(prediction: torch.Tensor, target: torch.Tensor, smooth: float = DICE_SMOOTH) -> torch.Tensor:
    """Dice loss 1 − (2Σpq + ε) / (Σp + Σq + ε) over the whole batch (Kim et al. 2023, Eq. 3).

    ``prediction`` holds probabilities in [0, 1]; ε (``smooth``) makes an empty prediction of an empty
    target a zero loss.
    """
    return weighted_dice_loss(prediction, target, torch.ones_like(target), smooth=smooth)


def weighted_dice_loss(
    prediction: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, smooth: float = DICE_SMOOTH
) -> torch.Tensor:
    """Weighted Dice loss 1 − (2Σpqw + ε) / (Σpw + Σqw + ε) (Kim et al. 2023, Eq. 4, typo corrected)."""
    if prediction.shape != target.shape or target.shape != weights.shape:
        raise ValueError(
            f"Shapes differ: prediction {tuple(prediction.shape)}, target {tuple(target.shape)}, "
            f"weights {tuple(weights.shape)}."
        )
    intersection = (prediction * target * weights).sum()
    total = (prediction * weights).sum() + (target * weights).sum()
    return 1.0 - (2.0 * intersection + smooth) / (total + smooth)


def downsample_target(ground_truth: torch.Tensor, scale: int) -> torch.Tensor:
    """Ground truth on a side output's grid: a cell is wrinkle if any of its pixels is (max pooling)."""
    return functional.max_pool2d(ground_truth, kernel_size=scale, stride=scale)


def downsample_weights(weights: torch.Tensor, scale: int) -> torch.Tensor:
    """Weighted map on a side output's grid: mean of W_s over each cell (average pooling)."""
    return functional.avg_pool2d(weights, kernel_size=scale, stride=scale)


def deep_supervision_loss(
    outputs: Sequence[torch.Tensor], ground_truth: torch.Tensor, variant: LossVariant = "unet-wds"
) -> torch.Tensor:
    """Training loss for the three ablation variants (Kim et al. 2023, Eq. 5 and Sec. 4.3).

    ``outputs`` are the logits F1..F4 at full, 1/2, 1/4 and 1/8 resolution; ``ground_truth`` is
    ``(N, 1, H, W)`` in {0, 1}.

    * ``"unet"``: Dice(F1) only (plain U-Net);
    * ``"unet-ds"``: Dice(F1) + Σ_k Dice(F_k) with downsampled targets (deep supervision);
    * ``"unet-wds"``: Dice(F1) + Σ_k weighted Dice(F_k, W_s) (weighted deep supervision).
    """
    if variant not in LOSS_VARIANTS:
        raise ValueError(f"Unknown loss variant '{variant}'; choose one of {', '.join(LOSS_VARIANTS)}.")
    target = _as_batch(ground_truth)
    loss = dice_loss(torch.sigmoid(outputs[0]), target)
    if variant == "unet":
        return loss
    if len(outputs) != 1 + len(SIDE_OUTPUT_SCALES):
        raise ValueError(f"Deep supervision needs 4 outputs F1..F4, got {len(outputs)}.")
    for side_output, scale in zip(outputs[1:], SIDE_OUTPUT_SCALES, strict=True):
        side_target = downsample_target(target, scale)
        if side_output.shape != side_target.shape:
            raise ValueError(
                f"Side output at 1/{scale} has shape {tuple(side_output.shape)}, "
                f"expected {tuple(side_target.shape)}."
            )
        probabilities = torch.sigmoid(side_output)
        if variant == "unet-ds":
            loss = loss + dice_loss(probabilities, side_target)
        else:
            side_weights = downsample_weights(weighted_wrinkle_map(target, scale), scale)
            loss = loss + weighted_dice_loss(probabilities, side_target, side_weights)
    return loss
