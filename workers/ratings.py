"""The "fit rating regressor" task (GPU queue, where the normality models live): Boyaci's features of every
rated photo of a survey, the six regressors tuned by TPE with 5-fold cross-validation split by subject,
then registration of a `normality-rating-regressor` model version with R, MAE, n, the ratings'
reliability and the split-half ceiling. A coordinator then activates it for the study. The fit is a run
(``webapp.runs``): ``workers.runs.execute`` claims it, keeps its heartbeat and records failures.

The weights are a joblib file under `MEDIA_ROOT/models/normality/` (workers that run normality jobs must
share that folder); features are cached per photo content under `VAR_DIR/cache/normality-features`.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.model_names import NORMALITY_AUTOENCODER, NORMALITY_REGRESSOR
from webapp.runs import task_names
from workers.celery import app

if TYPE_CHECKING:
    from webapp.ratings.models import RegressorFit
    from workers.runs import RunContext

SOFT_TIME_LIMIT_SECONDS = int(os.environ.get("FACET_FIT_SOFT_TIME_LIMIT", str(3 * 3600)))


def _survey_samples(fit: RegressorFit) -> tuple[list[Any], Any, dict[str, Any]]:
    """Included ratings' mean per photo, the photos (by item code) and the ratings' reliability."""
    from ml.ratings.reliability import reliability
    from webapp.ratings import selectors
    from webapp.ratings.models import ItemKind

    ratings = selectors.survey_ratings(fit.survey)
    frame = ratings.included
    items = {
        item.code: item
        for item in fit.survey.items.filter(kind=ItemKind.PHOTO, photo__isnull=False).select_related(
            "photo__visit__subject"
        )
    }
    frame = frame[frame["item"].isin(set(items))]
    report = reliability(frame, scale=fit.survey.scale)
    return list(items.values()), frame, report.details()


def run_regressor_fit(fit: RegressorFit, report: Callable[[float, str], None]) -> dict[str, Any]:
    """Features, calibration, pre/post agreement and registration. Returns metrics and the model version."""
    import joblib
    import numpy as np
    from django.conf import settings

    from ml.normality.analysis import default_fit_pixels
    from ml.normality.autoencoder import autoencoder_normalizer
    from ml.normality.calibration import (
        FeatureCache,
        Sample,
        calibrate,
        feature_vector,
        features_for_contents,
        out_of_fold_predictions,
        regressor_document,
        rescale,
    )
    from ml.normality.projection import ProjectionConfig
    from ml.normality.regression import REGRESSOR_NAMES
    from ml.normality.settings import DEFAULT_ADAPT_STEPS, DEFAULT_PROJECTION_STEPS
    from ml.ratings.agreement import sign_agreement
    from ml.registry import registry
    from webapp.analysis.services import model_version_register
    from webapp.studies.models import Comparison
    from workers.runners import study_weights

    survey = fit.survey
    items, frame, reliability = _survey_samples(fit)
    means = frame.groupby("item")["rating"].mean()
    rated = [item for item in items if item.code in means.index]
    if len(rated) < 10:
        raise ValueError(f"Only {len(rated)} photos of the study have included ratings; a fit needs 10.")
    candidates = int(fit.parameters.get("candidates", 1))
    trials = int(fit.parameters.get("trials", 20))
    report(0.02, "Loading the normalizer")
    # The normalizer the study's normality jobs run, so that the regressor sees the features they compute.
    normalizer_weights = study_weights(NORMALITY_AUTOENCODER, survey.study)
    autoencoder = registry.load(NORMALITY_AUTOENCODER, normalizer_weights.path)
    normalizer_description = normalizer_weights.provenance
    normalizer = autoencoder_normalizer(
        autoencoder, ProjectionConfig(steps=DEFAULT_PROJECTION_STEPS), DEFAULT_ADAPT_STEPS
    )
    settings_used = {
        "candidates": candidates,
        "projection_steps": normalizer.config.steps,
        "adapt_steps": normalizer.adapt_steps,
        "fit_pixels": default_fit_pixels(NORMALITY_AUTOENCODER),
        # The analysis computes the rating's features with the weights the regressor records.
        "weights_sha256": normalizer_description.get("weights_sha256"),
    }
    cache = FeatureCache(
        Path(settings.VAR_DIR) / "cache" / "normality-features",
        {**settings_used, "model": NORMALITY_AUTOENCODER, "perceptual": normalizer.metric},
    )
    done = {"count": 0}

    def read(item: Any) -> Callable[[], bytes]:
        def load() -> bytes:
            done["count"] += 1
            report(
                0.05 + 0.75 * done["count"] / len(rated), f"Features of photo {done['count']}/{len(rated)}"
            )
            with item.photo.image.open("rb") as handle:
                return handle.read()

        return load

    features = features_for_contents(
        [(item.code, read(item)) for item in rated],
        normalizer,
        candidates,
        cache,
        fit_pixels=settings_used["fit_pixels"],
    )
    low, high = survey.scale_min, survey.scale_max
    samples = [
        Sample(
            item=item.code,
            group=item.photo.visit.subject.code,
            features=feature_vector(features[item.code]),
            target=float(rescale(means[item.code], low, high)),
        )
        for item in rated
        if features[item.code] is not None
    ]
    subjects = len({sample.group for sample in samples})
    if len(samples) < 10 or subjects < 2:
        raise ValueError(
            f"Faces were found in {len(samples)} rated photo(s) of {subjects} subject(s); "
            "a fit needs 10 photos of at least 2 subjects."
        )
    report(0.82, f"Tuning six regressors ({trials} TPE trials each, 5-fold CV by subject)")
    calibration = calibrate(
        samples, regressors=fit.parameters.get("regressors") or REGRESSOR_NAMES, trials=trials
    )
    predicted = dict(
        zip([sample.item for sample in samples], out_of_fold_predictions(calibration, samples), strict=True)
    )
    targets = {sample.item: sample.target for sample in samples}
    changes = []
    for comparison in Comparison.objects.filter(subject__study=survey.study).prefetch_related(
        "pre_visit__photos", "post_visit__photos"
    ):
        pre = {photo.view: f"photo-{photo.pk}" for photo in comparison.pre_visit.photos.all()}
        post = {photo.view: f"photo-{photo.pk}" for photo in comparison.post_visit.photos.all()}
        for view in set(pre) & set(post):
            if pre[view] in predicted and post[view] in predicted:
                changes.append(
                    (
                        targets[post[view]] - targets[pre[view]],
                        float(predicted[post[view]] - predicted[pre[view]]),
                    )
                )
    agreement = sign_agreement(changes) if changes else None
    trained_on = (
        f"Mean ratings ({survey.question!r}, {low}-{high}) of {len(samples)} photos from survey "
        f"{survey.title!r} of study {survey.study.name!r}"
    )
    metrics = {
        "target": trained_on,
        "items": len(samples),
        "groups": len({sample.group for sample in samples}),
        "photos_without_face": sum(1 for value in features.values() if value is None),
        **calibration.metrics(),
        "out_of_fold_mae": float(np.mean(np.abs(np.array([predicted[s.item] - s.target for s in samples])))),
        "reliability": reliability,
        "prepost_agreement": (
            {
                "agree": agreement.agree,
                "usable": agreement.usable,
                "pairs": agreement.pairs,
                "share": agreement.share,
            }
            if agreement
            else None
        ),
        "normalizer": normalizer_description.get("name"),
        "normalizer_weights_sha256": normalizer_description.get("weights_sha256"),
        "normalizer_settings": settings_used,
        "perceptual_metric": normalizer.metric,
        "survey": survey.pk,
    }
    report(0.97, "Registering the model version")
    folder = Path(settings.MEDIA_ROOT) / "models" / "normality"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"rating-regressor-fit-{fit.pk}.joblib"
    joblib.dump(
        regressor_document(
            calibration, trained_on=trained_on, normalizer_settings=settings_used, metrics=metrics
        ),
        path,
    )
    model_version = model_version_register(
        name=NORMALITY_REGRESSOR,
        task="normality",
        version=f"study-{survey.study_id}-fit-{fit.pk}",
        source=f"fitted by rating-regressor fit {fit.pk} on survey {survey.pk} of study {survey.study_id}",
        weights_path=str(path),
        weights_sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        metrics=metrics,
        model_card=_model_card(metrics),
    )
    return {"metrics": metrics, "model_version": model_version}


def _model_card(metrics: dict[str, Any]) -> str:
    reliability = metrics["reliability"]
    candidates = metrics["normalizer_settings"]["candidates"]
    return (
        f"Rating regressor ({metrics['chosen']}) on Boyaci features, K = {candidates}"
        f" normalized candidates ({metrics['normalizer']}, {metrics['perceptual_metric']}).\n"
        f"Target: {metrics['target']}.\n"
        f"5-fold cross-validation split by subject: Pearson R {metrics['cv_pearson_r']:.3f}, "
        f"MAE {metrics['cv_mae']:.3f} on {metrics['items']} photos of {metrics['groups']} subjects.\n"
        f"Ratings' reliability: {json.dumps({k: reliability.get(k) for k in ('icc2_k', 'alpha_ordinal')})}; "
        f"split-half ceiling {reliability.get('split_half')} "
        f"(Spearman-Brown {reliability.get('spearman_brown')}).\n"
        "Few photos give unreliable figures; check them before activating this version."
    )


@app.task(
    bind=True,
    name=task_names.RATING_REGRESSOR_FIT,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=SOFT_TIME_LIMIT_SECONDS,
    time_limit=SOFT_TIME_LIMIT_SECONDS + 300,
)
def fit_rating_regressor(self, fit_id: int) -> None:
    from webapp.ratings.models import RegressorFit
    from workers.runs import execute

    execute(RegressorFit, fit_id, self.request.hostname or "worker", fit)


def fit(context: RunContext) -> None:
    from webapp.ratings import services

    outcome = run_regressor_fit(context.run, context.progress)
    services.fit_succeed(
        fit_id=context.run.pk,
        attempt=context.attempt,
        metrics=outcome["metrics"],
        model_version=outcome["model_version"],
    )
