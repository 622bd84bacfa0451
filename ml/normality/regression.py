"""Rating regression (Boyaci et al.) and the split-half inter-rater ceiling.

Regressors: an MLP with one hidden layer of 6 ELU units (written in torch, since scikit-learn's
``MLPRegressor`` has no ELU), linear, Huber, SVR, ridge and lasso, each behind a standard scaler.
Hyper-parameters are searched with TPE (optuna's ``TPESampler``) minimising the 5-fold
cross-validated MAE; the reported Pearson R and MAE come from 5-fold cross-validated predictions
with the chosen hyper-parameters (a different fold split than the search, but the same data, so
the figures are mildly optimistic).

Until real 1–7 normality ratings exist, development uses MEBeauty's attractiveness ratings
(1–10 scale): every figure from them is an attractiveness figure, not a normality one.
"""

from __future__ import annotations

import contextlib
import csv
from collections import defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from sklearn.base import BaseEstimator, RegressorMixin
from sklearn.linear_model import HuberRegressor, Lasso, LinearRegression, Ridge
from sklearn.model_selection import GroupKFold, KFold, cross_val_predict
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVR

REGRESSOR_NAMES: tuple[str, ...] = ("mlp", "linear", "huber", "svr", "ridge", "lasso")


@contextlib.contextmanager
def _single_thread() -> Iterator[None]:
    """A 6-unit network gains nothing from intra-op threads, and on a busy machine they cost 10–50×."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


class TorchMLPRegressor(RegressorMixin, BaseEstimator):
    """One hidden layer of ``hidden_units`` ELU units (Boyaci et al.: 6), trained with Adam on MSE.

    scikit-learn compatible (``fit``/``predict``/``get_params``), full-batch, deterministic per ``seed``.
    """

    def __init__(
        self,
        hidden_units: int = 6,
        learning_rate: float = 0.01,
        weight_decay: float = 1e-4,
        epochs: int = 500,
        seed: int = 0,
    ) -> None:
        self.hidden_units = hidden_units
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.epochs = epochs
        self.seed = seed

    def fit(self, features: np.ndarray, targets: np.ndarray) -> TorchMLPRegressor:
        inputs = torch.as_tensor(np.asarray(features, dtype=np.float32))
        outputs = torch.as_tensor(np.asarray(targets, dtype=np.float32)).reshape(-1, 1)
        if inputs.ndim != 2 or inputs.shape[0] != outputs.shape[0]:
            raise ValueError(
                f"Expected features (n, d) and n targets; got {tuple(inputs.shape)}, {len(outputs)}."
            )
        self.target_mean_ = float(outputs.mean())
        self.target_scale_ = float(outputs.std()) or 1.0
        scaled = (outputs - self.target_mean_) / self.target_scale_
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            self.model_ = torch.nn.Sequential(
                torch.nn.Linear(inputs.shape[1], self.hidden_units),
                torch.nn.ELU(),
                torch.nn.Linear(self.hidden_units, 1),
            )
        optimizer = torch.optim.Adam(
            self.model_.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay
        )
        with _single_thread():
            for _ in range(self.epochs):
                loss = torch.nn.functional.mse_loss(self.model_(inputs), scaled)
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        self.n_features_in_ = inputs.shape[1]
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        inputs = torch.as_tensor(np.asarray(features, dtype=np.float32))
        with torch.no_grad():
            scaled = self.model_(inputs).numpy().ravel()
        return scaled * self.target_scale_ + self.target_mean_


SearchSpace = Callable[[Any], dict[str, Any]]


def _space(name: str) -> SearchSpace:
    spaces: dict[str, SearchSpace] = {
        "mlp": lambda trial: {
            "learning_rate": trial.suggest_float("learning_rate", 1e-3, 1e-1, log=True),
            "weight_decay": trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
            "epochs": trial.suggest_int("epochs", 100, 1000, step=100),
        },
        "linear": lambda trial: {},
        "huber": lambda trial: {
            "epsilon": trial.suggest_float("epsilon", 1.05, 2.5),
            "alpha": trial.suggest_float("alpha", 1e-6, 1.0, log=True),
        },
        "svr": lambda trial: {
            "C": trial.suggest_float("C", 1e-2, 1e2, log=True),
            "epsilon": trial.suggest_float("epsilon", 1e-3, 1.0, log=True),
            "gamma": trial.suggest_float("gamma", 1e-3, 1.0, log=True),
        },
        "ridge": lambda trial: {"alpha": trial.suggest_float("alpha", 1e-4, 1e3, log=True)},
        "lasso": lambda trial: {"alpha": trial.suggest_float("alpha", 1e-5, 1.0, log=True)},
    }
    if name not in spaces:
        raise ValueError(f"Unknown regressor '{name}'; choose from {', '.join(REGRESSOR_NAMES)}.")
    return spaces[name]


def make_regressor(name: str, params: dict[str, Any] | None = None, seed: int = 0) -> Pipeline:
    """A standard-scaled regressor of the given name with these hyper-parameters."""
    params = dict(params or {})
    factories: dict[str, Callable[[], Any]] = {
        "mlp": lambda: TorchMLPRegressor(seed=seed, **params),
        "linear": lambda: LinearRegression(**params),
        "huber": lambda: HuberRegressor(max_iter=1000, **params),
        "svr": lambda: SVR(kernel="rbf", **params),
        "ridge": lambda: Ridge(**params),
        "lasso": lambda: Lasso(max_iter=10_000, **({"alpha": 0.01} | params)),
    }
    if name not in factories:
        raise ValueError(f"Unknown regressor '{name}'; choose from {', '.join(REGRESSOR_NAMES)}.")
    return make_pipeline(StandardScaler(), factories[name]())


def pearson_and_mae(predicted: np.ndarray, actual: np.ndarray) -> tuple[float, float]:
    """Pearson R and mean absolute error."""
    return float(stats.pearsonr(predicted, actual)[0]), float(np.mean(np.abs(np.asarray(predicted) - actual)))


@dataclass
class RegressorReport:
    """Cross-validated performance of one tuned regressor."""

    name: str
    params: dict[str, Any]
    pearson_r: float
    mae: float
    trials: int


def _optuna() -> Any:
    try:
        import optuna
    except ImportError as error:
        raise RuntimeError(
            "TPE hyper-parameter search needs optuna (listed in requirements.txt): pip install optuna"
        ) from error
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def _folds(folds: int, seed: int, groups: np.ndarray | None) -> KFold | GroupKFold:
    if groups is None:
        return KFold(folds, shuffle=True, random_state=seed)
    return GroupKFold(folds, shuffle=True, random_state=seed)


def tune_and_evaluate(
    name: str,
    features: np.ndarray,
    targets: np.ndarray,
    trials: int = 30,
    folds: int = 5,
    seed: int = 0,
    groups: np.ndarray | None = None,
) -> RegressorReport:
    """TPE search (optuna) minimising 5-fold CV MAE, then 5-fold CV Pearson R and MAE of the best setting.

    With ``groups`` (e.g. the person of each photo) the folds never split a group.
    """
    features = np.asarray(features, dtype=np.float64)
    targets = np.asarray(targets, dtype=np.float64)
    if len(features) < 2 * folds:
        raise ValueError(
            f"Need at least {2 * folds} samples for {folds}-fold cross-validation; got {len(features)}."
        )
    space = _space(name)
    search_folds = _folds(folds, seed, groups)

    def objective(trial: Any) -> float:
        predicted = cross_val_predict(
            make_regressor(name, space(trial), seed), features, targets, cv=search_folds, groups=groups
        )
        return float(np.mean(np.abs(predicted - targets)))

    n_trials = 1 if name == "linear" else trials
    optuna = _optuna()
    study = optuna.create_study(direction="minimize", sampler=optuna.samplers.TPESampler(seed=seed))
    study.optimize(objective, n_trials=n_trials)
    best = dict(study.best_params)
    report_folds = _folds(folds, seed + 1, groups)
    predicted = cross_val_predict(
        make_regressor(name, best, seed), features, targets, cv=report_folds, groups=groups
    )
    r, mae = pearson_and_mae(predicted, targets)
    return RegressorReport(name=name, params=best, pearson_r=r, mae=mae, trials=n_trials)


def read_ratings(path: Path) -> dict[str, list[float]]:
    """``image → individual ratings`` from a ``image,rater,rating`` CSV (MEBeauty ``ratings.csv``)."""
    if not path.is_file():
        raise FileNotFoundError(f"No ratings file at {path}.")
    ratings: dict[str, list[float]] = defaultdict(list)
    with path.open(newline="") as handle:
        reader = csv.DictReader(handle)
        missing = {"image", "rating"} - set(reader.fieldnames or ())
        if missing:
            raise ValueError(f"{path} lacks the column(s) {', '.join(sorted(missing))}.")
        for row in reader:
            ratings[row["image"]].append(float(row["rating"]))
    return dict(ratings)


@dataclass
class Ceiling:
    """Split-half inter-rater reliability: mean and SD over random splits."""

    split_half_r: float
    split_half_r_sd: float
    spearman_brown_r: float
    spearman_brown_r_sd: float
    faces: int
    repeats: int
    median_raters: float


def spearman_brown(r: float) -> float:
    """Reliability of the full panel from the correlation of two half panels: 2r / (1 + r)."""
    return 2 * r / (1 + r)


def split_half_ceiling(ratings: dict[str, list[float]], repeats: int = 100, seed: int = 0) -> Ceiling:
    """Randomly split each face's raters into two halves, correlate the half means across faces
    (Pearson), correct with Spearman–Brown; repeated ``repeats`` times. Faces with < 2 raters are skipped.
    """
    usable = [np.asarray(values, dtype=np.float64) for values in ratings.values() if len(values) >= 2]
    if len(usable) < 3:
        raise ValueError("Need at least 3 faces with 2 or more ratings for a split-half ceiling.")
    rng = np.random.default_rng(seed)
    raw, corrected = [], []
    for _ in range(repeats):
        first, second = np.empty(len(usable)), np.empty(len(usable))
        for index, values in enumerate(usable):
            order = rng.permutation(len(values))
            half = len(values) // 2
            first[index], second[index] = values[order[:half]].mean(), values[order[half:]].mean()
        r = float(stats.pearsonr(first, second)[0])
        raw.append(r)
        corrected.append(spearman_brown(r))
    return Ceiling(
        split_half_r=float(np.mean(raw)),
        split_half_r_sd=float(np.std(raw)),
        spearman_brown_r=float(np.mean(corrected)),
        spearman_brown_r_sd=float(np.std(corrected)),
        faces=len(usable),
        repeats=repeats,
        median_raters=float(np.median([len(v) for v in usable])),
    )


def rescale_to_normality_scale(
    rating: np.ndarray | float, low: float = 1.0, high: float = 10.0
) -> np.ndarray:
    """Linear map of a ``[low, high]`` rating onto the papers' 1–7 scale (7 = most normal)."""
    return 1.0 + (np.asarray(rating, dtype=np.float64) - low) * 6.0 / (high - low)
