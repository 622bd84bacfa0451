"""Analysis kinds, the Celery queue each runs on, and which ml model each uses.

The model of a kind is chosen when its job is created (`KindSpec.model_for`) and recorded on the
job, so a job keeps the model it was queued with even when weights are trained or activated later.
Looking at the ml registry here only reads its descriptions; nothing is loaded in the web process.
"""

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ml.model_names import (
    DLIB_68,
    NORMALITY_AUTOENCODER,
    NORMALITY_REGRESSOR,
    WRINKLES_UNET_WDS,
    ZONES_HRNET,
    ZONES_LANDMARK,
)
from webapp.runs.models import Queue
from webapp.studies.models import AnalysisKind

# How to train each model whose weights are missing: shown on the study settings page and in the
# error of a job whose model is untrained.
TRAINING_COMMANDS: dict[str, str] = {
    ZONES_HRNET: "python -m ml zones build-dataset --out DIR, then python -m ml zones train --dataset DIR",
    WRINKLES_UNET_WDS: "python -m ml wrinkles synthesize --masks DIR --faces DIR --out DATA, then "
    "python -m ml wrinkles train (docs/wrinkles.md)",
    NORMALITY_AUTOENCODER: "python -m ml normality train-normalizer --data DIR",
    NORMALITY_REGRESSOR: "python -m ml normality extract-features --data DIR --out features.csv, then "
    "python -m ml normality fit-regressor --features features.csv",
}


def model_description(name: str) -> dict[str, Any]:
    from ml.registry import registry

    return registry.describe(name)


def model_is_usable(name: str, study: Any = None) -> bool:
    """Whether jobs of `name` can run (for `study`): the registry has trained weights, or a trained
    version is active for the study or the site.

    The landmark zone baseline has no weights by design (registry `trained` is False) and always runs.
    """
    if name in (ZONES_LANDMARK, DLIB_68):
        return True
    from webapp.analysis.selectors import active_model_version

    version = active_model_version(name, study)
    if version is not None and version.weights_path:
        return True
    return bool(model_description(name)["trained"])


def not_trained_message(name: str) -> str:
    """The sentence a job (or the settings page) shows for a model without weights."""
    command = TRAINING_COMMANDS.get(name, "see the model's documentation under docs/")
    return (
        f"The model '{name}' is not trained: no weights are installed and no trained version is active, "
        f"so this analysis produces no figures. Train it with `{command}` (or activate a trained "
        "version in the admin), then retry the job."
    )


def study_landmark_detector(study: Any) -> str:
    """The landmark detector the study chose (a study setting)."""
    return study.landmark_detector


@dataclass(frozen=True)
class KindSpec:
    queue: str
    preferred_model: str
    # The model this kind falls back to when the preferred one is untrained (or a study forces it).
    baseline_model: str = ""
    # For kinds whose model each study chooses (the landmark detector).
    chosen_by_study: Callable[[Any], str] | None = None

    def model_for(self, study: Any = None) -> str:
        """The model a new job of this kind runs for `study`, decided now and recorded on the job."""
        if study is not None and self.chosen_by_study is not None:
            return self.chosen_by_study(study)
        if self.baseline_model:
            if study is not None and getattr(study, "force_zone_baseline", False):
                return self.baseline_model
            if not model_is_usable(self.preferred_model, study):
                return self.baseline_model
        return self.preferred_model

    @property
    def required_models(self) -> tuple[str, ...]:
        """Models that must be trained for this kind to give results (none when a baseline exists)."""
        return () if self.baseline_model else (self.preferred_model,)


KIND_SPECS: dict[str, KindSpec] = {
    AnalysisKind.LANDMARKS: KindSpec(
        queue=Queue.QUICK, preferred_model=DLIB_68, chosen_by_study=study_landmark_detector
    ),
    AnalysisKind.ZONES: KindSpec(queue=Queue.CPU, preferred_model=ZONES_HRNET, baseline_model=ZONES_LANDMARK),
    AnalysisKind.WRINKLES: KindSpec(queue=Queue.GPU, preferred_model=WRINKLES_UNET_WDS),
    AnalysisKind.NORMALITY: KindSpec(queue=Queue.GPU, preferred_model=NORMALITY_AUTOENCODER),
}


def untrained_kinds() -> dict[str, str]:
    """Kinds that cannot give results now, each with the message saying which model to train and how."""
    missing = {}
    for kind, spec in KIND_SPECS.items():
        for name in spec.required_models:
            if not model_is_usable(name):
                missing[kind] = not_trained_message(name)
                break
    return missing
