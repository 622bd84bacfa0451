"""U-Net shapes, input assembly and that training steps reduce the loss."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.wrinkles.losses import deep_supervision_loss
from ml.wrinkles.train import parameter_groups, random_patch, train_model
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


def test_random_patch_cuts_image_and_mask_at_the_same_place() -> None:
    rng = np.random.default_rng(0)
    stacked = np.arange(64 * 64 * 4, dtype=np.float32).reshape(64, 64, 4)
    mask = np.zeros((64, 64), dtype=bool)
    mask[::7, ::5] = True
    for _ in range(5):
        window, window_mask = random_patch(stacked, mask, 32, rng)
        assert window.shape == (32, 32, 4) and window_mask.shape == (32, 32)
        top, left = divmod(int(window[0, 0, 0]) // 4, 64)
        assert np.array_equal(window_mask, mask[top : top + 32, left : left + 32])


@pytest.mark.parametrize(
    ("options", "message"),
    [({"patch": 24}, "patch must be a multiple of 16"), ({"learning_rate": 0.0}, "learning_rate")],
)
def test_training_rejects_bad_patch_and_learning_rate(tmp_path, options: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        train_model(tmp_path, tmp_path / "ck.pt", size=32, **options)
