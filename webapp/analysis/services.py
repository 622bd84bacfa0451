"""Writes of the analysis app: queue a photo's analyses, record a job's result, upload a photo with its
analyses, the study's analysis settings, and the model versions jobs run.

The lifecycle every job shares with the other kinds of run (claim, progress, failure, cancel, retry)
is :mod:`webapp.runs.services`; jobs are sent to the workers through :mod:`webapp.runs.dispatch` only
after the transaction that created them commits, so a worker never picks up a job whose photo is not
yet visible, and a broker outage never loses an upload.
"""

import logging
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import UploadedFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.analysis.kinds import KIND_SPECS, model_is_usable
from webapp.analysis.models import AnalysisJob, ModelVersion, Result, ResultArtifact, StudyModelVersion
from webapp.analysis.pairs import pairs_assess_for_photo
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.runs import dispatch
from webapp.runs.models import ACTIVE_STATUSES, Run
from webapp.runs.services import run_succeed
from webapp.studies.ingest import CaptureFields, photo_ingest
from webapp.studies.models import LandmarkDetector, Photo, Study, Visit

logger = logging.getLogger(__name__)


def jobs_enqueue_for_photo(
    *, photo: Photo, requested_by: AbstractBaseUser | None = None
) -> list[AnalysisJob]:
    """Create one job per analysis the study runs and send each to its queue once the transaction commits."""
    jobs = []
    for kind in photo.study.analyses:
        spec = KIND_SPECS[kind]
        job, created = _job_get_or_create_active(
            photo=photo,
            kind=kind,
            model_name=spec.model_for(photo.study),
            queue=spec.queue,
            requested_by=requested_by,
        )
        if created:
            dispatch.send_run_on_commit(job)
        jobs.append(job)
    return jobs


@transaction.atomic
def photo_analyse_again(
    *, photo: Photo, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> list[AnalysisJob]:
    """Queue every analysis the study runs on the photo afresh, with the models active now: after a model
    upgrade, so that a pre/post pair reads results of one model version. An analysis already queued or
    running is kept, not doubled; the new results replace the old ones once they arrive."""
    before = set(photo.jobs.values_list("pk", flat=True))
    jobs = jobs_enqueue_for_photo(photo=photo, requested_by=actor)
    queued = [job.pk for job in jobs if job.pk not in before]
    audit_record(
        action=AuditAction.STATE,
        summary=f"Queued the analyses of photo {photo.pk} again",
        actor=actor,
        target=photo,
        request=request,
        details={"queued_jobs": queued, "kept_active_jobs": [job.pk for job in jobs if job.pk in before]},
    )
    return jobs


def _job_get_or_create_active(**fields: Any) -> tuple[AnalysisJob, bool]:
    lookup = {key: fields[key] for key in ("photo", "kind", "model_name")}
    existing = AnalysisJob.objects.filter(status__in=ACTIVE_STATUSES, **lookup).first()
    if existing:
        return existing, False
    try:
        with transaction.atomic():
            return AnalysisJob.objects.create(**fields), True
    except IntegrityError:
        # Another request created the same active job between our check and insert.
        return AnalysisJob.objects.get(status__in=ACTIVE_STATUSES, **lookup), False


def photo_upload(
    *,
    visit: Visit,
    view: str,
    upload: UploadedFile,
    uploaded_by: AbstractBaseUser,
    request: HttpRequest | None = None,
    capture: CaptureFields | None = None,
    source_format: str | None = None,
) -> Photo:
    """Ingest a photo (``webapp.studies.ingest``) and queue the study's analyses in the same transaction."""
    return photo_ingest(
        visit=visit,
        view=view,
        upload=upload,
        uploaded_by=uploaded_by,
        request=request,
        on_stored=lambda photo: jobs_enqueue_for_photo(photo=photo, requested_by=uploaded_by),
        capture=capture,
        source_format=source_format,
    )


@dataclass
class Artifact:
    name: str
    content: bytes
    extension: str
    content_type: str


def job_succeed(
    *,
    job_id: int,
    attempt: int,
    data: dict[str, Any],
    model: dict[str, Any],
    parameters: dict[str, Any],
    code_version: str,
    artifacts: list[Artifact] = (),
) -> Result | None:
    """Record the result of the claimed attempt and finish the job. A second call for the same job
    replaces, never duplicates; none is recorded when the job was cancelled or taken over meanwhile."""
    recorded: list[Result] = []

    def record(run: Run) -> None:
        result, _ = Result.objects.update_or_create(
            job=run,
            defaults={
                "data": data,
                "model_name": model["name"],
                "model_version": model["version"],
                "weights_sha256": model.get("weights_sha256") or "",
                "parameters": parameters,
                "code_version": code_version,
            },
        )
        for artifact in artifacts:
            result.artifacts.filter(name=artifact.name).delete()
            stored = ResultArtifact(result=result, name=artifact.name, content_type=artifact.content_type)
            name = f"{artifact.name}.{artifact.extension}"
            stored.file.save(name, ContentFile(artifact.content), save=False)
            stored.save()
        run.model_version = model["version"]
        recorded.append(result)

    run_succeed(AnalysisJob, run_id=job_id, attempt=attempt, record=record)
    if not recorded:
        return None
    # The comparisons of the photo read their measures and comparability from its latest results.
    pairs_assess_for_photo(recorded[0].job.photo_id)
    return recorded[0]


# Analysis settings of a study ---------------------------------------------------------------------------


def landmark_detector_set(
    *, study: Study, detector: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Study:
    """Choose the landmark model of a study's landmark analyses; one without weights is refused."""
    if detector not in LandmarkDetector.values:
        raise ValidationError(f"Unknown landmark detector '{detector}'.")
    if not model_is_usable(detector, study):
        raise ValidationError(
            f"The {detector} detector has no trained weights yet; run a landmark campaign first."
        )
    previous = study.landmark_detector
    study.landmark_detector = detector
    study.save(update_fields=["landmark_detector"])
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Landmark detector of study {study.pk} set to {detector}",
        actor=actor,
        target=study,
        request=request,
        details={"previous": previous, "detector": detector},
    )
    return study


@transaction.atomic
def model_version_register(
    *,
    name: str,
    task: str,
    version: str,
    source: str,
    weights_path: str = "",
    weights_sha256: str = "",
    metrics: dict[str, Any] | None = None,
    model_card: str = "",
    actor: AbstractBaseUser | None = None,
) -> ModelVersion:
    """Record a new version (inactive); re-registering the same name and version returns it unchanged."""
    model_version, created = ModelVersion.objects.get_or_create(
        name=name,
        version=version,
        defaults={
            "task": task,
            "source": source,
            "weights_path": weights_path,
            "weights_sha256": weights_sha256,
            "metrics": metrics or {},
            "model_card": model_card,
            "created_by": actor,
        },
    )
    if created:
        audit_record(
            action=AuditAction.CREATE,
            summary=f"Registered model {name} version {version}",
            actor=actor,
            target=model_version,
            via="worker" if actor is None else "",
            details={"source": source, "metrics": metrics or {}},
        )
    return model_version


@transaction.atomic
def model_version_activate(
    *, model_version: ModelVersion, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> ModelVersion:
    """Make this the site's version of its model (studies without a choice of their own run it); the
    previously active one is deactivated."""
    previous = (
        ModelVersion.objects.select_for_update()
        .filter(name=model_version.name, is_active=True)
        .exclude(pk=model_version.pk)
    )
    previous_versions = list(previous.values_list("version", flat=True))
    previous.update(is_active=False)
    model_version.is_active = True
    model_version.activated_at = timezone.now()
    model_version.save(update_fields=["is_active", "activated_at"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Activated model {model_version.name} version {model_version.version}",
        actor=actor,
        target=model_version,
        request=request,
        details={"previous": previous_versions},
    )
    return model_version


@transaction.atomic
def model_version_deactivate(
    *, model_version: ModelVersion, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> ModelVersion:
    """The site runs the shipped weights of this model again (studies that chose a version keep it)."""
    ModelVersion.objects.filter(pk=model_version.pk).update(is_active=False)
    model_version.refresh_from_db()
    audit_record(
        action=AuditAction.STATE,
        summary=f"Deactivated model {model_version.name} version {model_version.version}",
        actor=actor,
        target=model_version,
        request=request,
    )
    return model_version


@transaction.atomic
def study_model_version_set(
    *,
    study: Study,
    name: str,
    model_version: ModelVersion | None,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> StudyModelVersion | None:
    """Make ``model_version`` the version of model ``name`` that the study's jobs run from now on, or,
    with None, let the study follow the site's active version again."""
    if model_version is not None and model_version.name != name:
        raise ValidationError(
            f"Version {model_version.version} is a version of {model_version.name}, not {name}."
        )
    if model_version is not None and not model_version.weights_path:
        raise ValidationError(f"Version {model_version.version} has no weights file, so no job could run it.")
    previous = (
        StudyModelVersion.objects.filter(study=study, name=name).select_related("model_version").first()
    )
    choice = None
    if model_version is None:
        StudyModelVersion.objects.filter(study=study, name=name).delete()
    else:
        choice, _ = StudyModelVersion.objects.update_or_create(
            study=study, name=name, defaults={"model_version": model_version, "chosen_by": actor}
        )
    audit_record(
        action=AuditAction.STATE,
        summary=f"Study {study.pk} runs {name} "
        + (f"version {model_version.version}" if model_version else "as the site does"),
        actor=actor,
        target=study,
        request=request,
        details={
            "model": name,
            "version": model_version.version if model_version else None,
            "previous": previous.model_version.version if previous else None,
        },
    )
    return choice
