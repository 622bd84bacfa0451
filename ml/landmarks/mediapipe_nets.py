"""MediaPipe's BlazeFace detector and FaceMesh landmark network in PyTorch, for the converted state dicts.

Both are written from the published architectures — Bazarevsky et al., "BlazeFace: Sub-millisecond
Neural Face Detection on Mobile GPUs" (CVPR-W 2019) and Kartynnik et al., "Real-time Facial Surface
Geometry from Monocular Video on Mobile GPUs" (CVPR-W 2019) — and the parameter names and shapes of the
state dicts converted from MediaPipe's TFLite files by zmurez/MediaPipePyTorch (Apache-2.0). TFLite folded
batch normalisation into the convolutions (every convolution has a bias) and pads stride-2 layers
"SAME" on the bottom/right only, which is reproduced with explicit padding; inputs are RGB in [0, 1].

* :class:`BlazeFaceNet`: 128×128 input, 896 anchors (512 at stride 8, 384 at stride 16), per anchor a
  box and six points (right eye, left eye, nose tip, mouth centre, right and left ear tragion) and a logit.
* :class:`FaceMeshNet`: 192×192 face crop, 468 points ``(x, y, z)`` in crop pixels (``z`` in the same
  units as ``x``, smaller is nearer the camera) and a face-presence logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class BlazeBlock(nn.Module):
    """Depthwise ``k×k`` + pointwise ``1×1`` convolution with a residual connection.

    Stride 2 halves the resolution; the residual is then max-pooled. Extra output channels of the
    residual are zero (channel padding), as in the paper.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1, prelu: bool = False
    ) -> None:
        super().__init__()
        self.stride = stride
        self.kernel_size = kernel_size
        self.extra_channels = out_channels - in_channels
        padding = 0 if stride == 2 else (kernel_size - 1) // 2
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, in_channels, kernel_size, stride, padding, groups=in_channels),
            nn.Conv2d(in_channels, out_channels, 1),
        )
        self.act: nn.Module = nn.PReLU(out_channels) if prelu else nn.ReLU(inplace=True)
        self.pool = nn.MaxPool2d(2, 2) if stride == 2 else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is not None:
            # TFLite "SAME" padding of a stride-2 depthwise convolution: all of it on the bottom/right
            # for 3×3 kernels, one before and two after for 5×5.
            before = 0 if self.kernel_size == 3 else 1
            branch = F.pad(x, (before, 2, before, 2))
            x = self.pool(x)
        else:
            branch = x
        if self.extra_channels > 0:
            x = F.pad(x, (0, 0, 0, 0, 0, self.extra_channels))
        return self.act(self.convs(branch) + x)


class BlazeFaceNet(nn.Module):
    """Short-range BlazeFace: raw box regressions ``(B, 896, 16)`` and logits ``(B, 896)``."""

    input_size = 128

    def __init__(self) -> None:
        super().__init__()
        widths = [(24, 24), (24, 28), (28, 32, 2), (32, 36), (36, 42), (42, 48, 2), (48, 56), (56, 64)]
        widths += [(64, 72), (72, 80), (80, 88)]
        self.backbone1 = nn.Sequential(
            nn.Conv2d(3, 24, 5, 2, 0),
            nn.ReLU(inplace=True),
            *(BlazeBlock(spec[0], spec[1], 3, spec[2] if len(spec) == 3 else 1) for spec in widths),
        )
        self.backbone2 = nn.Sequential(BlazeBlock(88, 96, 3, 2), *(BlazeBlock(96, 96) for _ in range(4)))
        self.classifier_8 = nn.Conv2d(88, 2, 1)
        self.classifier_16 = nn.Conv2d(96, 6, 1)
        self.regressor_8 = nn.Conv2d(88, 32, 1)
        self.regressor_16 = nn.Conv2d(96, 96, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        batch = x.shape[0]
        x = F.pad(x, (1, 2, 1, 2))  # TFLite "SAME" padding of the 5×5 stride-2 stem
        fine = self.backbone1(x)  # (B, 88, 16, 16)
        coarse = self.backbone2(fine)  # (B, 96, 8, 8)

        # TFLite is channels-last: anchors run over (row, column, anchor-in-cell).
        def flat(tensor: torch.Tensor, width: int) -> torch.Tensor:
            return tensor.permute(0, 2, 3, 1).reshape(batch, -1, width)

        logits = torch.cat([flat(self.classifier_8(fine), 1), flat(self.classifier_16(coarse), 1)], dim=1)
        boxes = torch.cat([flat(self.regressor_8(fine), 16), flat(self.regressor_16(coarse), 16)], dim=1)
        return boxes, logits.squeeze(-1)


class FaceMeshNet(nn.Module):
    """FaceMesh: ``(B, 468, 3)`` points in 192-px crop pixels and a face-presence logit ``(B,)``."""

    input_size = 192
    points = 468

    def __init__(self) -> None:
        super().__init__()

        def block(in_channels: int, out_channels: int, stride: int = 1) -> BlazeBlock:
            return BlazeBlock(in_channels, out_channels, 3, stride, prelu=True)

        self.backbone1 = nn.Sequential(
            nn.Conv2d(3, 16, 3, 2, 0),
            nn.PReLU(16),
            block(16, 16),
            block(16, 16),
            block(16, 32, 2),
            block(32, 32),
            block(32, 32),
            block(32, 64, 2),
            block(64, 64),
            block(64, 64),
            block(64, 128, 2),
            block(128, 128),
            block(128, 128),
            block(128, 128, 2),
            block(128, 128),
            block(128, 128),
        )
        self.backbone2a = nn.Sequential(
            block(128, 128, 2),
            block(128, 128),
            block(128, 128),
            nn.Conv2d(128, 32, 1),
            nn.PReLU(32),
            block(32, 32),
            nn.Conv2d(32, self.points * 3, 3),
        )
        self.backbone2b = nn.Sequential(
            block(128, 128, 2),
            nn.Conv2d(128, 32, 1),
            nn.PReLU(32),
            block(32, 32),
            nn.Conv2d(32, 1, 3),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.pad(x, (0, 1, 0, 1))  # TFLite "SAME" padding of the 3×3 stride-2 stem
        features = self.backbone1(x)
        mesh = self.backbone2a(features).reshape(-1, self.points, 3)
        presence = self.backbone2b(features).reshape(-1)
        return mesh, presence
