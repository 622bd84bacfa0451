"""A study's regressor fitted on its own ratings, activated per study, and used by its normality jobs."""

import hashlib
import io
from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from PIL import Image

from ml.model_names import NORMALITY_AUTOENCODER, NORMALITY_REGRESSOR
from webapp.analysis.models import AnalysisJob, ModelVersion
from webapp.analysis.services import study_model_version_set
from webapp.audit.models import AuditEvent
from webapp.ratings import services
from webapp.ratings.models import RegressorFit
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.models import AnalysisKind, Comparison, Photo, Subject, Visit

pytestmark = [pytest.mark.django_db, pytest.mark.data, pytest.mark.slow]


def _face_photo(study, path: Path, subject_code: str, visit_label: str, role: str) -> Photo:
    image = Image.open(path).convert("RGB")
    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    content = buffer.getvalue()
    subject, _ = Subject.objects.get_or_create(study=study, code=subject_code)
    visit, _ = Visit.objects.get_or_create(subject=subject, label=visit_label, defaults={"role": role})
    digest = hashlib.sha256(content).hexdigest()
    photo = Photo(
        study=study,
        visit=visit,
        view="frontal",
        content_hash=digest,
        image_hash=digest,
        source_format="PNG",
        width=image.width,
        height=image.height,
    )
    photo.image.save("p.png", ContentFile(content), save=False)
    photo.thumbnail.save("t.jpg", ContentFile(content), save=False)
    photo.save()
    return photo


def test_fit_register_activate_and_rate_with_provenance(study_with_members, face_photo_paths, monkeypatch):
    from workers.ratings import run_regressor_fit
    from workers.runners import model_weights, run_normality

    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    # Five subjects, each with a pre and a post photo (different real faces stand in for the two visits).
    photos = []
    for index, path in enumerate(face_photo_paths[:10]):
        subject, pre = f"S{index // 2:02d}", index % 2 == 0
        photos.append(
            _face_photo(study, path, subject, "baseline" if pre else "week-12", "pre" if pre else "post")
        )
    for subject in Subject.objects.filter(study=study):
        visits = subject.visits.order_by("label")
        Comparison.objects.create(subject=subject, pre_visit=visits[0], post_visit=visits[1])
    rows = ["item,rater,rating"] + [
        f"photo-{photo.pk},r{rater},{1 + (index * 5 + rater) % 7}"
        for index, photo in enumerate(photos)
        for rater in range(4)
    ]
    outcome = services.ratings_import(
        study=study,
        content="\n".join(rows).encode(),
        title="Normality ratings",
        item_column="item",
        rater_column="rater",
        rating_column="rating",
        scale_min=1,
        scale_max=7,
        actor=coordinator,
    )
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    fit = services.fit_start(
        survey=outcome.survey,
        parameters={"candidates": 1, "trials": 2, "regressors": ["ridge"]},
        actor=coordinator,
    )
    with pytest.raises(services.RatingStateError, match="already queued"):
        services.fit_start(survey=outcome.survey, parameters={}, actor=coordinator)
    claim = run_claim(RegressorFit, run_id=fit.pk, worker="test")
    progress = []
    result = run_regressor_fit(claim.run, lambda fraction, message: progress.append((fraction, message)))
    assert services.fit_succeed(
        fit_id=fit.pk, attempt=claim.attempt, metrics=result["metrics"], model_version=result["model_version"]
    )
    fit.refresh_from_db()
    assert fit.status == RunStatus.SUCCEEDED and fit.model_version is not None
    version = ModelVersion.objects.get(
        name="normality-rating-regressor", version=f"study-{study.pk}-fit-{fit.pk}"
    )
    metrics = version.metrics
    assert metrics["items"] == 10 and metrics["groups"] == 5
    assert {"cv_pearson_r", "cv_mae", "reliability"} <= set(metrics)
    assert metrics["reliability"]["icc2_k"] is not None and metrics["reliability"]["split_half"] is not None
    assert metrics["prepost_agreement"]["pairs"] == 5
    assert progress and progress[-1][0] >= 0.97 and len(version.weights_sha256) == 64

    study_model_version_set(study=study, name=NORMALITY_REGRESSOR, model_version=version, actor=coordinator)
    assert AuditEvent.objects.filter(summary__contains=f"runs {NORMALITY_REGRESSOR} version").exists()
    job = AnalysisJob.objects.create(
        photo=photos[0],
        kind=AnalysisKind.NORMALITY,
        queue="gpu",
        model_name=NORMALITY_AUTOENCODER,
        status=RunStatus.RUNNING,
    )
    assert model_weights(NORMALITY_REGRESSOR, job).version == version
    outcome = run_normality(job, lambda fraction, message: None)
    rating = outcome.data["rating"]
    assert rating["model_version"] == version.version and rating["weights_sha256"] == version.weights_sha256
    assert "Normality ratings" in rating["trained_on"] and "this study's own human ratings" in rating["note"]
    assert outcome.data["metric"]["candidates"] == 1
    # Its features came from the study's own normalizer, the one the job scored S with.
    assert rating["features_normalizer"]["weights_sha256"] == outcome.data["model"]["weights_sha256"]
    # Back to the shipped regressor for this study: the MEBeauty note returns.
    study_model_version_set(study=study, name=NORMALITY_REGRESSOR, model_version=None, actor=coordinator)
    assert model_weights(NORMALITY_REGRESSOR, job).version is None
