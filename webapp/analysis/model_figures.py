"""The one figure that says how good a version of a model is, and the floor below which activating it
needs a warning: a trained wrinkle model with JSI 0.0000 must not replace the shipped one unnoticed.

Each model's figure is read from its metrics: a version's (``ModelVersion.metrics``, written by the
training, campaign or rating fit that made it) or the shipped weights' (their model card, through the
ml registry).
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml.model_names import NORMALITY_REGRESSOR, WRINKLES_UNET_WDS, YOLO_POSE68


def _nested(metrics: dict[str, Any], *path: str) -> float | None:
    value: Any = metrics
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _wrinkle_jsi(metrics: dict[str, Any]) -> float | None:
    # A Facet training's test folds pooled; the shipped card's test split.
    found = _nested(metrics, "cv", "pooled", "jsi")
    return found if found is not None else _nested(metrics, "jsi")


def _landmark_nme(metrics: dict[str, Any]) -> float | None:
    # A campaign version's validation NME; the shipped card's campaign validation.
    found = _nested(metrics, "nme")
    return found if found is not None else _nested(metrics, "campaign_validation", "nme_outer_eye_corners")


def _rating_r(metrics: dict[str, Any]) -> float | None:
    # A study's fit: out-of-fold Pearson r; the shipped card: the chosen regressor's cross-validated r.
    found = _nested(metrics, "cv_pearson_r")
    if found is not None:
        return found
    chosen = metrics.get("chosen")
    for entry in metrics.get("cross_validation") or []:
        if isinstance(entry, dict) and entry.get("name") == chosen:
            return _nested(entry, "pearson_r")
    return None


@dataclass(frozen=True)
class Headline:
    """How to read a model's figure and its floor (the worst value worth running)."""

    label: str
    higher_is_better: bool
    floor: float
    read: Callable[[dict[str, Any]], float | None]

    def below_floor(self, value: float) -> bool:
        return value < self.floor if self.higher_is_better else value > self.floor

    @property
    def floor_text(self) -> str:
        return f"{'≥' if self.higher_is_better else '≤'} {self.floor:g}"


HEADLINES: dict[str, Headline] = {
    # The shipped U-Net reaches 0.29 on its semi-synthetic test split; below 0.10 a mask is mostly noise.
    WRINKLES_UNET_WDS: Headline("JSI on test images", True, 0.10, _wrinkle_jsi),
    # The project's acceptance rule for a landmark detector (docs/landmark-campaign.md).
    YOLO_POSE68: Headline("NME on validation faces", False, 0.08, _landmark_nme),
    # The shipped regressor reaches r = 0.30; below 0.2 its rating says little more than the mean.
    NORMALITY_REGRESSOR: Headline("Pearson r (cross-validated)", True, 0.2, _rating_r),
}


@dataclass(frozen=True)
class Figure:
    """A model's figure for one set of weights, ready for a page."""

    label: str
    value: float | None
    floor_text: str
    below_floor: bool

    @property
    def text(self) -> str:
        return "not measured" if self.value is None else f"{self.label} {self.value:.4f}"


def figure(name: str, metrics: dict[str, Any] | None) -> Figure | None:
    """The figure of model ``name`` in ``metrics``; ``None`` for models without a headline figure. A
    version whose figure is missing counts as below the floor: nothing says it works."""
    headline = HEADLINES.get(name)
    if headline is None:
        return None
    value = headline.read(metrics or {})
    below = value is None or headline.below_floor(value)
    return Figure(label=headline.label, value=value, floor_text=headline.floor_text, below_floor=below)


def shipped_figure(name: str) -> Figure | None:
    """The figure of the weights shipped with Facet (their model card), ``None`` without any."""
    from ml.registry import registry

    try:
        description = registry.describe(name)
    except KeyError:
        return None
    if not description.get("trained"):
        return None
    return figure(name, description.get("metrics"))
