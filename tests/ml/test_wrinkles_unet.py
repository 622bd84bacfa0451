"""U-Net shapes, input assembly and that training steps reduce the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.wrinkles.losses import deep_supervision_loss
from ml.wrinkles.train import parameter_groups
from ml.wrinkles.unet import WrinkleUNet, network_input


def test_four_outputs_at_full_half_quarter_and_eighth_resolution() -> None:
    model = WrinkleUNet(base_width=4)
    outputs = model(torch.zeros((2, 4, 32, 48)))
    assert [tuple(item.shape) for item in outputs] == [
        (2, 1, 32, 48),
        (2, 1, 16, 24),
        (2, 1, 8, 12),
        (2, 1, 4, 6),
    ]
    with pytest.raises(ValueError, match="multiple of 16"):
        model(torch.zeros((1, 4, 30, 32)))


def test_network_input_stacks_rgb_and_texture() -> None:
    image = np.full((16, 16, 3), 200, dtype=np.uint8)
    image[8, :] = 50
    stacked = network_input(image)
    assert stacked.shape == (4, 16, 16)
    assert stacked[0, 0, 0].item() == pytest.approx(200 / 255)
    assert stacked[3, 8, 8].item() > stacked[3, 0, 0].item()


def test_weight_decay_only_on_weights() -> None:
    groups = parameter_groups(WrinkleUNet(base_width=2))
    assert all(parameter.ndim > 1 for parameter in groups[0]["params"])
    assert all(parameter.ndim == 1 for parameter in groups[1]["params"])
    assert groups[0]["weight_decay"] == 1e-4 and groups[1]["weight_decay"] == 0.0


def test_a_few_steps_reduce_the_loss() -> None:
    torch.manual_seed(0)
    inputs = torch.rand((2, 4, 32, 32))
    target = torch.zeros((2, 1, 32, 32))
    target[:, :, 15:17, 4:28] = 1
    inputs[:, :, 15:17, 4:28] = 0.0  # the "wrinkle" is dark, so it is learnable
    model = WrinkleUNet(base_width=4)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    losses = []
    for _ in range(10):
        loss = deep_supervision_loss(model(inputs), target, "unet-wds")
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < 0.75 * losses[0]
