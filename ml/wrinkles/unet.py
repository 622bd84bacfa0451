"""U-Net with an RGB + texture-map input and four outputs for (weighted) deep supervision.

Kim et al. 2023, Sec. 3.3 / Fig. 3: a U-Net whose input is the photo's three colour channels plus the
texture map (Eq. 1), and whose decoder stages each end in a 1×1 convolution: F1 at full resolution
(the segmentation) and F2, F3, F4 at 1/2, 1/4 and 1/8 (side outputs, used only by the loss).
The three ablation variants (plain, deep supervision, weighted deep supervision) share this network
and differ only in the loss (:func:`ml.wrinkles.losses.deep_supervision_loss`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ml.wrinkles.labeling import texture_map

INPUT_CHANNELS = 4
DEFAULT_BASE_WIDTH = 16
DOWNSAMPLINGS = 4
SIZE_MULTIPLE = 2**DOWNSAMPLINGS


class DoubleConv(nn.Sequential):
    """(3×3 conv → batch norm → ReLU) × 2."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
            nn.ReLU(inplace=True),
        )


class WrinkleUNet(nn.Module):
    """U-Net with 4 down- and 4 up-sampling stages; widths ``base_width · (1, 2, 4, 8, 16)``.

    ``forward`` takes ``(N, 4, H, W)`` with H and W multiples of 16 and returns the logits
    ``[F1, F2, F3, F4]`` of shapes ``(N, 1, H, W)``, ``(N, 1, H/2, W/2)``, ``(N, 1, H/4, W/4)`` and
    ``(N, 1, H/8, W/8)``.
    """

    def __init__(self, in_channels: int = INPUT_CHANNELS, base_width: int = DEFAULT_BASE_WIDTH) -> None:
        super().__init__()
        if base_width < 1:
            raise ValueError(f"base_width must be positive, got {base_width}.")
        self.in_channels = in_channels
        self.base_width = base_width
        widths = [base_width * 2**level for level in range(DOWNSAMPLINGS + 1)]
        self.encoders = nn.ModuleList([DoubleConv(in_channels, widths[0])])
        self.encoders.extend(DoubleConv(widths[level - 1], widths[level]) for level in range(1, len(widths)))
        self.pool = nn.MaxPool2d(2)
        # Decoder stages from the coarsest (output at 1/8) to the finest (output at full resolution).
        self.upsamplers = nn.ModuleList(
            nn.ConvTranspose2d(widths[level + 1], widths[level], 2, stride=2)
            for level in reversed(range(DOWNSAMPLINGS))
        )
        self.decoders = nn.ModuleList(
            DoubleConv(2 * widths[level], widths[level]) for level in reversed(range(DOWNSAMPLINGS))
        )
        self.heads = nn.ModuleList(nn.Conv2d(widths[level], 1, 1) for level in reversed(range(DOWNSAMPLINGS)))

    def forward(self, inputs: torch.Tensor) -> list[torch.Tensor]:
        height, width = inputs.shape[-2:]
        if height % SIZE_MULTIPLE or width % SIZE_MULTIPLE:
            raise ValueError(f"Input size {height}×{width} must be a multiple of {SIZE_MULTIPLE}.")
        skips = []
        features = inputs
        for level, encoder in enumerate(self.encoders):
            features = encoder(features if level == 0 else self.pool(features))
            skips.append(features)
        features = skips.pop()
        outputs_coarse_to_fine = []
        for upsampler, decoder, head in zip(self.upsamplers, self.decoders, self.heads, strict=True):
            features = decoder(torch.cat([skips.pop(), upsampler(features)], dim=1))
            outputs_coarse_to_fine.append(head(features))
        return outputs_coarse_to_fine[::-1]


def network_input(image: np.ndarray, texture: np.ndarray | None = None) -> torch.Tensor:
    """``(4, H, W)`` float tensor: RGB / 255 and the clipped texture map / 255 (Eq. 1)."""
    array = np.asarray(image)
    if array.ndim != 3 or array.shape[2] != 3:
        raise ValueError(f"Expected an RGB (H, W, 3) image, got shape {array.shape}.")
    texture = texture_map(array) if texture is None else np.asarray(texture)
    if texture.shape != array.shape[:2]:
        raise ValueError(f"Texture map shape {texture.shape} does not match the image {array.shape[:2]}.")
    stacked = (
        np.concatenate([array.astype(np.float32), texture[..., None].astype(np.float32)], axis=2) / 255.0
    )
    return torch.from_numpy(np.ascontiguousarray(stacked.transpose(2, 0, 1)))
