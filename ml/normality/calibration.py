"""Calibrating the 1–7 rating regressor on human ratings of photos (issue 14).

Given photos and their raters' mean ratings: Boyaci's features of every photo (averaged over K normalized
candidates, :mod:`ml.normality.features`), the six regressors tuned by TPE with 5-fold CV
(:mod:`ml.normality.regression`), folds and the optional held-out test part split by *group* (a person:
never the same person in fit and test), and the split-half ceiling of the ratings beside the figures.

Features depend only on the photo, the normalizer's weights and the K/step settings, so they are cached
per photo (SHA-256 of the file) in a JSON-lines file: a refit, or a fit on another survey of the same
photos, costs no normalization.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.normality.features import FEATURE_NAMES, candidate_features, feature_vector
from ml.normality.regression import (
    REGRESSOR_NAMES,
    RegressorReport,
    make_regressor,
    pearson_and_mae,
    tune_and_evaluate,
)

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".JPG", ".JPEG", ".PNG")
NORMALITY_SCALE = (1.0, 7.0)


class NoFaceFound(ValueError):
    """The photo shows no face, so it has no features."""


def images_for_item(folders: Sequence[Path], item: str) -> list[Path]:
    """Every ``FOLDER/<item>.<jpg|jpeg|png>`` that exists, folder by folder."""
    found = []
    for folder in folders:
        for suffix in IMAGE_SUFFIXES:
            path = Path(folder) / f"{item}{suffix}"
            if path.is_file():
                found.append(path)
                break
    return found


def rescale(values: np.ndarray | float, low: float, high: float) -> np.ndarray:
    """Linear map of a ``[low, high]`` scale onto the normality scale 1–7."""
    target_low, target_high = NORMALITY_SCALE
    return target_low + (np.asarray(values, dtype=np.float64) - low) * (target_high - target_low) / (
        high - low
    )


class FeatureCache:
    """Features per photo content and normalizer setting, appended to ``features.jsonl`` in a folder."""

    def __init__(self, folder: Path | None, setting: Mapping[str, Any]) -> None:
        from ml.normality.preprocess import ALIGNMENT_VERSION

        self.path = Path(folder) / "features.jsonl" if folder else None
        # Features of another alignment are another setting: entries of an older one are never reused.
        keyed = {**setting, "alignment_version": ALIGNMENT_VERSION}
        self.setting_key = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:16]
        self._entries: dict[str, dict[str, float] | None] = {}
        if self.path and self.path.is_file():
            for line in self.path.read_text().splitlines():
                entry = json.loads(line)
                if entry.get("setting") == self.setting_key:
                    self._entries[entry["image_sha256"]] = entry["features"]

    def get(self, digest: str) -> dict[str, float] | None | bool:
        """The cached features, ``None`` for a photo known to have no face, ``False`` when not cached."""
        return self._entries.get(digest, False)

    def put(self, digest: str, features: dict[str, float] | None) -> None:
        self._entries[digest] = features
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a") as handle:
                record = {"setting": self.setting_key, "image_sha256": digest, "features": features}
                handle.write(json.dumps(record) + "\n")


def photo_features(
    image: np.ndarray, normalizer: Any, candidates: int, fit_pixels: str = "all"
) -> dict[str, float]:
    """Boyaci's five features of a photo's largest face, averaged over ``candidates`` normalizations
    fitted on ``fit_pixels`` (:data:`ml.normality.analysis.FIT_PIXELS`), as the normality job does."""
    from ml.normality.analysis import fit_pixels_mask
    from ml.normality.autoencoder import largest_face_landmarks
    from ml.normality.preprocess import align_face

    landmarks = largest_face_landmarks(image)
    if landmarks is None:
        raise NoFaceFound("No face was found in the photo.")
    aligned = align_face(image, landmarks, normalizer.decoder.size)
    fit_mask = fit_pixels_mask(aligned.observed, aligned.landmarks, fit_pixels)
    w_raw, normalized = normalizer.candidates(aligned.image, candidates, observed=fit_mask)
    return candidate_features(
        aligned.image, [(c.image, c.w_norm) for c in normalized], w_raw, normalizer.perceptual, fit_mask
    )


def features_for_images(
    paths: Sequence[Path],
    normalizer: Any,
    candidates: int,
    cache: FeatureCache,
    log: Callable[[str], None] = lambda message: None,
    fit_pixels: str = "all",
) -> dict[Path, dict[str, float] | None]:
    """Features of each photo file (``None`` where no face was found), from the cache where possible."""
    return features_for_contents(
        [(path, lambda path=path: Path(path).read_bytes()) for path in paths],
        normalizer,
        candidates,
        cache,
        log,
        fit_pixels,
    )


def features_for_contents(
    sources: Sequence[tuple[Any, Callable[[], bytes]]],
    normalizer: Any,
    candidates: int,
    cache: FeatureCache,
    log: Callable[[str], None] = lambda message: None,
    fit_pixels: str = "all",
) -> dict[Any, dict[str, float] | None]:
    """Features of each ``(key, read_bytes)`` photo (``None`` where no face was found), cached by content
    (the cache's setting must name ``fit_pixels``).

    Photos are decoded as the normality job decodes them (large JPEGs at reduced size), so the features
    a regressor is fitted on are those the study's jobs compute."""
    from ml.normality.analysis import load_photo

    found: dict[Any, dict[str, float] | None] = {}
    for index, (key, read) in enumerate(sources):
        content = read()
        digest = hashlib.sha256(content).hexdigest()
        cached = cache.get(digest)
        if cached is not False:
            found[key] = cached
            continue
        try:
            features: dict[str, float] | None = photo_features(
                load_photo(content)[0], normalizer, candidates, fit_pixels
            )
        except NoFaceFound:
            features = None
        cache.put(digest, features)
        found[key] = features
        log(
            f"features {index + 1}/{len(sources)} {getattr(key, 'name', key)}"
            + ("" if features else ": no face")
        )
    return found


@dataclass
class Sample:
    """One photo's features with the mean rating of its item and the item's group (a person)."""

    item: str
    group: str
    features: np.ndarray
    target: float


def group_holdout(groups: Sequence[str], fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (fit, test): a random ``fraction`` of the distinct groups goes to the test part."""
    distinct = sorted(set(groups))
    rng = np.random.default_rng(seed)
    chosen = set(rng.permutation(distinct)[: max(1, round(fraction * len(distinct)))].tolist())
    test = np.array([group in chosen for group in groups])
    return ~test, test


@dataclass
class Calibration:
    """A fitted regressor and how well it does."""

    pipeline: Any
    chosen: RegressorReport
    cross_validation: list[RegressorReport]
    fit_samples: int
    fit_groups: int
    test: dict[str, Any] | None
    test_predictions: dict[str, list[float]] | None

    def metrics(self) -> dict[str, Any]:
        return {
            "chosen": self.chosen.name,
            "cv_pearson_r": self.chosen.pearson_r,
            "cv_mae": self.chosen.mae,
            "fit_samples": self.fit_samples,
            "fit_groups": self.fit_groups,
            "cross_validation": [asdict(report) for report in self.cross_validation],
            "test": self.test,
        }


def calibrate(
    samples: Sequence[Sample],
    regressors: Sequence[str] = REGRESSOR_NAMES,
    trials: int = 30,
    folds: int = 5,
    holdout: float = 0.0,
    seed: int = 0,
) -> Calibration:
    """TPE-tune each regressor with grouped ``folds``-fold CV on the fit part, keep the lowest CV MAE, refit
    it on the whole fit part and, with ``holdout`` > 0, measure R and MAE on the held-out groups."""
    groups = [sample.group for sample in samples]
    features = np.stack([sample.features for sample in samples])
    targets = np.array([sample.target for sample in samples], dtype=np.float64)
    fit, test = (np.ones(len(samples), bool), np.zeros(len(samples), bool))
    if holdout > 0:
        fit, test = group_holdout(groups, holdout, seed)
    fit_groups = np.array(groups)[fit]
    folds = min(folds, len(set(fit_groups.tolist())))
    reports = [
        tune_and_evaluate(
            name, features[fit], targets[fit], trials=trials, folds=folds, seed=seed, groups=fit_groups
        )
        for name in regressors
    ]
    best = min(reports, key=lambda report: report.mae)
    pipeline = make_regressor(best.name, best.params, seed).fit(features[fit], targets[fit])
    test_figures, predictions = None, None
    if test.any():
        predicted = pipeline.predict(features[test])
        r, mae = pearson_and_mae(predicted, targets[test])
        constant = float(np.mean(np.abs(targets[test] - targets[fit].mean())))
        test_figures = {
            "pearson_r": r,
            "mae": mae,
            "mae_of_fit_mean": constant,
            "samples": int(test.sum()),
            "groups": len(set(np.array(groups)[test].tolist())),
        }
        items = [sample.item for sample, held in zip(samples, test, strict=True) if held]
        predictions = {"item": items, "predicted": predicted.tolist(), "target": targets[test].tolist()}
    return Calibration(
        pipeline=pipeline,
        chosen=best,
        cross_validation=reports,
        fit_samples=int(fit.sum()),
        fit_groups=len(set(fit_groups.tolist())),
        test=test_figures,
        test_predictions=predictions,
    )


def out_of_fold_predictions(
    calibration: Calibration, samples: Sequence[Sample], folds: int = 5, seed: int = 0
) -> np.ndarray:
    """Predictions of the chosen regressor for every sample from a model that never saw its group."""
    from sklearn.model_selection import GroupKFold, cross_val_predict

    groups = np.array([sample.group for sample in samples])
    folds = min(folds, len(set(groups.tolist())))
    return cross_val_predict(
        make_regressor(calibration.chosen.name, calibration.chosen.params, seed),
        np.stack([sample.features for sample in samples]),
        np.array([sample.target for sample in samples]),
        groups=groups,
        cv=GroupKFold(folds, shuffle=True, random_state=seed),
    )


def regressor_document(
    calibration: Calibration,
    *,
    trained_on: str,
    normalizer_settings: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> dict[str, Any]:
    """What ``fit-regressor`` saves with joblib and ``score --regressor`` (and the worker) loads."""
    return {
        "pipeline": calibration.pipeline,
        "name": calibration.chosen.name,
        "params": calibration.chosen.params,
        "trained_on": trained_on,
        "candidates": int(normalizer_settings["candidates"]),
        "normalizer_settings": dict(normalizer_settings),
        "feature_names": list(FEATURE_NAMES),
        "scale": "1-7 (7 = most normal)",
        "metrics": dict(metrics),
    }


def predict_rating(regressor: Mapping[str, Any], features: Mapping[str, float]) -> float:
    """The regressor's 1–7 rating of one photo's features, clipped to the scale."""
    predicted = float(regressor["pipeline"].predict(feature_vector(dict(features))[None])[0])
    return float(np.clip(predicted, *NORMALITY_SCALE))
