"""HRNetV2 zone-segmentation network: one backbone, three zone-set heads, a face-part head, deep supervision.

Backbone: timm ``hrnet_w18_small_v2`` (``features_only=True``, ``feature_location=''``: the four raw
HRNet branches at strides 4, 8, 16, 32; never pretrained here, nothing is downloaded). The HRNetV2
representation (Wang et al., "Deep High-Resolution Representation Learning for Visual Recognition",
TPAMI 2020, Sec. 3) upsamples every branch bilinearly to stride 4 and concatenates them; each head is a
1×1 conv-BN-ReLU followed by a 1×1 classifier, as in the HRNetV2 segmentation head used by Tuazon &
Mortezaei (Skin Res Technol 2024). An auxiliary head on the stride-16 branch predicts every task for
deep supervision (loss weight 0.4, see :mod:`ml.zones.train`).

``tasks`` maps a head name (``set1``, ``set2``, ``set3``, ``parts``) to its class count including
background; one network per sub-model is the same class built with a single zone task.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from ml.core.fp16 import float_state, half_state

BACKBONE = "hrnet_w18_small_v2"
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


def build_network(tasks: Mapping[str, int], backbone: str = BACKBONE) -> Any:
    """A :class:`torch.nn.Module` mapping images ``(N, 3, H, W)`` to ``{task: logits (N, C, H, W)}``.

    In training mode the output also holds ``aux:<task>`` logits from the auxiliary head.
    """
    import timm
    import torch
    from torch import nn
    from torch.nn import functional as F

    if not tasks:
        raise ValueError("A zone network needs at least one task.")
    for name, classes in tasks.items():
        if classes < 2:
            raise ValueError(f"Task '{name}' needs at least 2 classes (background + one), got {classes}.")

    def head(in_channels: int, classes: int) -> nn.Module:
        return nn.Sequential(
            nn.Conv2d(in_channels, in_channels, 1, bias=False),
            nn.BatchNorm2d(in_channels),
            nn.ReLU(inplace=True),
            nn.Conv2d(in_channels, classes, 1),
        )

    class ZoneSegNet(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.tasks = dict(tasks)
            self.backbone = timm.create_model(
                backbone, features_only=True, pretrained=False, feature_location="", out_indices=(1, 2, 3, 4)
            )
            channels = self.backbone.feature_info.channels()
            self.heads = nn.ModuleDict({name: head(sum(channels), n) for name, n in self.tasks.items()})
            self.aux_head = head(channels[2], sum(self.tasks.values()))

        def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
            size = images.shape[-2:]
            branches = self.backbone(images)
            high = branches[0].shape[-2:]
            fused = torch.cat(
                [branches[0]]
                + [F.interpolate(b, size=high, mode="bilinear", align_corners=False) for b in branches[1:]],
                dim=1,
            )
            outputs = {
                name: F.interpolate(module(fused), size=size, mode="bilinear", align_corners=False)
                for name, module in self.heads.items()
            }
            if self.training:
                aux = F.interpolate(
                    self.aux_head(branches[2]), size=size, mode="bilinear", align_corners=False
                )
                for name, chunk in zip(
                    self.tasks, torch.split(aux, list(self.tasks.values()), dim=1), strict=True
                ):
                    outputs[f"aux:{name}"] = chunk
            return outputs

    return ZoneSegNet()


def zone_tasks(sets: list[list[str]], with_parts: bool = True) -> dict[str, int]:
    """Task → class count for the zone sets (background + zones) and the six face parts."""
    tasks = {f"set{k}": len(zone_set) + 1 for k, zone_set in enumerate(sets, start=1)}
    if with_parts:
        tasks["parts"] = 6
    return tasks


def preprocess(image: np.ndarray, size: int) -> tuple[Any, tuple[int, int]]:
    """Resize an RGB ``uint8`` image to ``size``² and normalise it into a ``(1, 3, size, size)`` tensor."""
    import cv2
    import torch

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}.")
    resized = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    normalised = (resized - np.array(IMAGE_MEAN, dtype=np.float32)) / np.array(IMAGE_STD, dtype=np.float32)
    tensor = torch.from_numpy(normalised.transpose(2, 0, 1)).unsqueeze(0)
    return tensor, image.shape[:2]


def save_weights(network: Any, path: str, metadata: Mapping[str, Any]) -> None:
    """Save the state dict in fp16 (floating tensors only) with JSON-safe metadata."""
    import torch

    torch.save({"state_dict": half_state(network.state_dict()), "metadata": dict(metadata)}, path)


def load_weights(path: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(state_dict in fp32, metadata)`` from :func:`save_weights`."""
    import torch

    payload = torch.load(path, map_location="cpu", weights_only=True)
    return float_state(payload["state_dict"]), payload["metadata"]
