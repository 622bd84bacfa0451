"""Segmentation metrics of Kim et al. 2023 (Sec. 4.2) and leak-free k-fold splits.

JSI (Jaccard similarity index) = TP / (TP + FP + FN). The paper pools the confusion counts over all
pixels of all test images ("pooled"); the mean of per-image JSIs ("per image") is reported as well
because one large image otherwise dominates. An image whose prediction and ground truth are both
empty has a per-image JSI of 1.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Confusion:
    """Pixel counts of one image or of a pooled set."""

    true_positive: int
    false_positive: int
    false_negative: int
    true_negative: int

    def __add__(self, other: Confusion) -> Confusion:
        return Confusion(
            self.true_positive + other.true_positive,
            self.false_positive + other.false_positive,
            self.false_negative + other.false_negative,
            self.true_negative + other.true_negative,
        )

    @property
    def jsi(self) -> float:
        union = self.true_positive + self.false_positive + self.false_negative
        return 1.0 if union == 0 else self.true_positive / union

    @property
    def accuracy(self) -> float:
        total = self.true_positive + self.false_positive + self.false_negative + self.true_negative
        return (self.true_positive + self.true_negative) / total if total else float("nan")

    @property
    def sensitivity(self) -> float:
        positives = self.true_positive + self.false_negative
        return self.true_positive / positives if positives else float("nan")

    @property
    def specificity(self) -> float:
        negatives = self.true_negative + self.false_positive
        return self.true_negative / negatives if negatives else float("nan")


def confusion(prediction: np.ndarray, truth: np.ndarray, region: np.ndarray | None = None) -> Confusion:
    """Confusion counts of two binary masks, optionally only inside ``region``."""
    predicted = np.asarray(prediction).astype(bool)
    actual = np.asarray(truth).astype(bool)
    if predicted.shape != actual.shape:
        raise ValueError(f"Prediction shape {predicted.shape} differs from ground truth {actual.shape}.")
    if region is not None:
        inside = np.asarray(region).astype(bool)
        if inside.shape != actual.shape:
            raise ValueError(f"Region shape {inside.shape} differs from ground truth {actual.shape}.")
        predicted, actual = predicted[inside], actual[inside]
    true_positive = int(np.count_nonzero(predicted & actual))
    false_positive = int(np.count_nonzero(predicted & ~actual))
    false_negative = int(np.count_nonzero(~predicted & actual))
    true_negative = int(predicted.size - true_positive - false_positive - false_negative)
    return Confusion(true_positive, false_positive, false_negative, true_negative)


def pool(confusions: Sequence[Confusion]) -> Confusion:
    """The counts of several images (or folds) added up, as the paper pools them."""
    if not confusions:
        raise ValueError("No images to summarise.")
    return sum(confusions[1:], confusions[0])


def summarize(confusions: Sequence[Confusion]) -> dict[str, float]:
    """JSI pooled and per image, pooled accuracy, sensitivity and specificity, and the image count."""
    pooled = pool(confusions)
    return {
        "jsi": pooled.jsi,
        "jsi_per_image": float(np.mean([item.jsi for item in confusions])),
        "accuracy": pooled.accuracy,
        "sensitivity": pooled.sensitivity,
        "specificity": pooled.specificity,
        "images": len(confusions),
    }


@dataclass(frozen=True)
class Fold:
    """Item indices of one cross-validation fold; ``validation`` is carved out of the training folds."""

    train: list[int]
    validation: list[int]
    test: list[int]


def kfold_splits(
    groups: Iterable[str], folds: int = 5, validation_fraction: float = 0.15, seed: int = 0
) -> list[Fold]:
    """k-fold splits by group, with a validation set taken from the training folds only.

    ``groups`` gives one key per item (for semi-synthetic images: the source face), so that all images
    of one face land in the same fold. Each group is in exactly one test fold. Checkpoints and
    thresholds are to be chosen on ``validation``, never on ``test`` (the authors' code selects on the
    test fold).
    """
    keys = list(groups)
    unique = sorted(set(keys))
    if folds < 2:
        raise ValueError(f"folds must be at least 2, got {folds}.")
    if len(unique) < folds + 1:
        raise ValueError(f"{len(unique)} groups are too few for {folds} folds plus a validation set.")
    if not 0 < validation_fraction < 1:
        raise ValueError(f"validation_fraction must be in (0, 1), got {validation_fraction}.")
    order = np.random.default_rng(seed).permutation(len(unique))
    fold_of_group = {unique[index]: position % folds for position, index in enumerate(order)}
    result = []
    for fold in range(folds):
        training_groups = [group for group in unique if fold_of_group[group] != fold]
        rng = np.random.default_rng(seed + 1 + fold)
        count = max(1, round(validation_fraction * len(training_groups)))
        validation_groups = set(rng.choice(training_groups, size=count, replace=False).tolist())
        train, validation, test = [], [], []
        for index, key in enumerate(keys):
            if fold_of_group[key] == fold:
                test.append(index)
            elif key in validation_groups:
                validation.append(index)
            else:
                train.append(index)
        result.append(Fold(train=train, validation=validation, test=test))
    return result
