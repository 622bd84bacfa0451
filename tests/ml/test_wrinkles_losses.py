"""Weighted wrinkle map (Kim et al. 2023, Algorithm 1) and the (weighted) Dice losses (Eqs. 3–5)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from ml.wrinkles.losses import (
    deep_supervision_loss,
    dice_loss,
    downsample_target,
    downsample_weights,
    weighted_dice_loss,
    weighted_wrinkle_map,
)

GROUND_TRUTH = np.zeros((8, 8))
GROUND_TRUTH[0, 0] = GROUND_TRUTH[0, 1] = GROUND_TRUTH[5, 6] = 1


def test_weighted_map_scale_2_by_hand() -> None:
    # Block means: top-left 2×2 block 2/4, block (rows 4-5, cols 6-7) 1/4, others 0.
    # Mean of the upsampled map = (4·0.5 + 4·0.25) / 64 = 3/64 replaces the zeros; wrinkle pixels are 1.
    expected = np.full((8, 8), 3 / 64)
    expected[0:2, 0:2] = 0.5
    expected[4:6, 6:8] = 0.25
    expected[GROUND_TRUTH == 1] = 1.0
    np.testing.assert_allclose(weighted_wrinkle_map(GROUND_TRUTH, 2)[0, 0].numpy(), expected, rtol=1e-6)


def test_weighted_map_scale_4_by_hand() -> None:
    expected = np.full((8, 8), 3 / 64)
    expected[0:4, 0:4] = 2 / 16
    expected[4:8, 4:8] = 1 / 16
    expected[GROUND_TRUTH == 1] = 1.0
    np.testing.assert_allclose(weighted_wrinkle_map(GROUND_TRUTH, 4)[0, 0].numpy(), expected, rtol=1e-6)


def test_weighted_map_scale_8_is_uniform_apart_from_wrinkles() -> None:
    weights = weighted_wrinkle_map(GROUND_TRUTH, 8)[0, 0].numpy()
    np.testing.assert_allclose(weights[GROUND_TRUTH == 0], 3 / 64, rtol=1e-6)
    np.testing.assert_allclose(weights[GROUND_TRUTH == 1], 1.0)


def test_weighted_map_needs_divisible_size() -> None:
    with pytest.raises(ValueError, match="multiple"):
        weighted_wrinkle_map(np.zeros((6, 6)), 4)


def test_weighted_dice_equals_dice_with_unit_weights() -> None:
    generator = torch.Generator().manual_seed(0)
    prediction = torch.rand((2, 1, 16, 16), generator=generator)
    target = (torch.rand((2, 1, 16, 16), generator=generator) > 0.8).float()
    assert weighted_dice_loss(prediction, target, torch.ones_like(target)).item() == pytest.approx(
        dice_loss(prediction, target).item()
    )
    direct = 1 - (2 * (prediction * target).sum() + 1) / (prediction.sum() + target.sum() + 1)
    assert dice_loss(prediction, target).item() == pytest.approx(direct.item())


def test_weighted_dice_formula_and_perfect_prediction() -> None:
    prediction = torch.tensor([0.9, 0.2, 0.0, 1.0])
    target = torch.tensor([1.0, 0.0, 0.0, 1.0])
    weights = torch.tensor([1.0, 0.5, 0.1, 2.0])
    expected = 1 - (2 * (0.9 * 1 + 2.0) + 1) / ((0.9 + 0.1 + 2.0) + (1 + 2.0) + 1)
    assert weighted_dice_loss(prediction, target, weights).item() == pytest.approx(expected)
    assert weighted_dice_loss(target, target, weights, smooth=0.0).item() == pytest.approx(0.0)


def test_side_output_targets_keep_thin_lines() -> None:
    target = torch.from_numpy(GROUND_TRUTH).float()[None, None]
    assert downsample_target(target, 8).item() == 1.0
    weights = weighted_wrinkle_map(target, 4)
    pooled = downsample_weights(weights, 4)[0, 0]
    assert pooled[0, 0].item() == pytest.approx((2 * 1 + 14 * 2 / 16) / 16)


def test_deep_supervision_variants() -> None:
    target = torch.zeros((1, 1, 16, 16))
    target[0, 0, 8, 2:14] = 1
    perfect = [torch.where(downsample_target(target, s) > 0, 20.0, -20.0) for s in (1, 2, 4, 8)]
    for variant in ("unet", "unet-ds", "unet-wds"):
        assert deep_supervision_loss(perfect, target, variant).item() < 1e-3
    wrong = [-item for item in perfect]
    assert deep_supervision_loss(wrong, target, "unet").item() > 0.9
    assert deep_supervision_loss(wrong, target, "unet-wds").item() > 2.5
    with pytest.raises(ValueError, match="Unknown loss variant"):
        deep_supervision_loss(perfect, target, "dice")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="4 outputs"):
        deep_supervision_loss(perfect[:2], target, "unet-ds")
