"""JSI and friends, leak-free k-fold splits and the filter baselines."""

from __future__ import annotations

import numpy as np
import pytest

from ml.wrinkles.baselines import fit_threshold, normalised_response, segment_with_filter
from ml.wrinkles.metrics import confusion, kfold_splits, summarize


def test_confusion_and_summary_pooled_versus_per_image() -> None:
    truth_a = np.array([[1, 1, 0, 0]])
    prediction_a = np.array([[1, 0, 1, 0]])
    counts_a = confusion(prediction_a, truth_a)
    assert (
        counts_a.true_positive,
        counts_a.false_positive,
        counts_a.false_negative,
        counts_a.true_negative,
    ) == (
        1,
        1,
        1,
        1,
    )
    counts_b = confusion(np.ones((1, 4)), np.ones((1, 4)))
    summary = summarize([counts_a, counts_b])
    assert summary["jsi"] == pytest.approx(5 / 7)
    assert summary["jsi_per_image"] == pytest.approx((1 / 3 + 1) / 2)
    assert summary["accuracy"] == pytest.approx(6 / 8)
    assert summary["sensitivity"] == pytest.approx(5 / 6)
    assert summary["specificity"] == pytest.approx(1 / 2)
    assert confusion(np.zeros((2, 2)), np.zeros((2, 2))).jsi == 1.0
    assert confusion(prediction_a, truth_a, region=np.array([[1, 1, 0, 0]])).false_positive == 0
    with pytest.raises(ValueError, match="shape"):
        confusion(np.zeros(3), np.zeros(4))


def test_kfold_keeps_groups_together_and_validation_out_of_test() -> None:
    groups = [f"face{index // 3}" for index in range(60)]
    folds = kfold_splits(groups, folds=5, seed=1)
    tested = sorted(index for fold in folds for index in fold.test)
    assert tested == list(range(60))
    for fold in folds:
        test_groups = {groups[index] for index in fold.test}
        validation_groups = {groups[index] for index in fold.validation}
        train_groups = {groups[index] for index in fold.train}
        assert validation_groups and not (validation_groups & test_groups)
        assert not (train_groups & test_groups) and not (train_groups & validation_groups)
    with pytest.raises(ValueError, match="too few"):
        kfold_splits(["a", "b", "c"], folds=5)


def _line_image() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    image = np.clip(rng.normal(180, 2, size=(64, 64, 3)), 0, 255).astype(np.uint8)
    truth = np.zeros((64, 64), dtype=bool)
    truth[31:33, 8:56] = True
    image[truth] = 120
    return image, truth


@pytest.mark.parametrize("method", ["frangi", "gabor"])
def test_filters_find_a_dark_line(method: str) -> None:
    image, truth = _line_image()
    response = normalised_response(image, method)
    assert response.min() >= 0 and response.max() <= 1
    assert response[truth].mean() > 3 * response[~truth].mean()
    threshold = fit_threshold([response], [truth])
    assert confusion(response > threshold, truth).jsi > 0.3
    assert segment_with_filter(image, method, threshold).shape == truth.shape
    with pytest.raises(ValueError, match="Unknown filter"):
        normalised_response(image, "sobel")  # type: ignore[arg-type]
