"""Read queries for analysis jobs, their results and the model versions jobs run."""

from collections.abc import Iterable

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, QuerySet

from webapp.analysis.models import AnalysisJob, ModelVersion, Result, ResultArtifact, StudyModelVersion
from webapp.runs.models import RunStatus
from webapp.studies.access import Capability, not_found, require
from webapp.studies.models import Photo, Study
from webapp.studies.selectors import study_ids_for_user

User = AbstractBaseUser | AnonymousUser


def jobs_for_user(user: User) -> QuerySet[AnalysisJob]:
    return AnalysisJob.objects.filter(
        photo__study_id__in=study_ids_for_user(user), photo__in=Photo.objects.alive()
    ).select_related("photo__visit__subject", "photo__study")


def get_job(user: User, job_id: int, capability: Capability = Capability.VIEW) -> AnalysisJob:
    job = (
        AnalysisJob.objects.select_related("photo__study", "photo__visit__subject")
        .filter(pk=job_id, photo__in=Photo.objects.alive())
        .first()
    )
    if job is None:
        raise not_found(user, "job", job_id)
    require(user, job.photo.study, capability, what="job", object_id=job_id)
    return job


def results_for_user(user: User) -> QuerySet[Result]:
    """Results of the live photos of the user's studies."""
    return Result.objects.filter(
        job__photo__study_id__in=study_ids_for_user(user), job__photo__in=Photo.objects.alive()
    ).select_related("job__photo")


def get_result(user: User, result_id: int) -> Result:
    result = (
        Result.objects.select_related("job__photo__study")
        .filter(pk=result_id, job__photo__in=Photo.objects.alive())
        .first()
    )
    if result is None:
        raise not_found(user, "result", result_id)
    require(user, result.job.photo.study, Capability.VIEW, what="result", object_id=result_id)
    return result


def get_artifact(user: User, artifact_id: int) -> ResultArtifact:
    artifact = (
        ResultArtifact.objects.select_related("result__job__photo__study")
        .filter(pk=artifact_id, result__job__photo__in=Photo.objects.alive())
        .first()
    )
    if artifact is None:
        raise not_found(user, "artifact", artifact_id)
    require(user, artifact.result.job.photo.study, Capability.VIEW, what="artifact", object_id=artifact_id)
    return artifact


def latest_result(photo_id: int, kind: str) -> Result | None:
    return (
        Result.objects.filter(job__photo_id=photo_id, job__kind=kind, job__status=RunStatus.SUCCEEDED)
        .order_by("-job__finished_at")
        .first()
    )


def latest_results(photo_ids: Iterable[int], kinds: Iterable[str]) -> dict[tuple[int, str], Result]:
    """The latest succeeded result of each of ``kinds`` for each photo, keyed by (photo id, kind), in one
    query (PostgreSQL's DISTINCT ON); a (photo, kind) without a result has no key. The same choice as
    ``latest_result`` for each pair."""
    found = (
        Result.objects.filter(
            job__photo_id__in=list(photo_ids), job__kind__in=list(kinds), job__status=RunStatus.SUCCEEDED
        )
        .annotate(photo_id=F("job__photo_id"), kind=F("job__kind"))
        .order_by("job__photo_id", "job__kind", "-job__finished_at")
        .distinct("job__photo_id", "job__kind")
    )
    return {(result.photo_id, result.kind): result for result in found}


def active_model_version(name: str, study: Study | None = None) -> ModelVersion | None:
    """The version of model `name` that jobs of `study` run: the study's choice, else the site's active
    version; None when the registry's shipped weights apply."""
    if study is not None:
        chosen = (
            StudyModelVersion.objects.filter(study=study, name=name).select_related("model_version").first()
        )
        if chosen is not None:
            return chosen.model_version
    return ModelVersion.objects.filter(name=name, is_active=True).first()


def model_versions(name: str | None = None) -> QuerySet[ModelVersion]:
    """Registered versions (of model `name`), newest first."""
    versions = ModelVersion.objects.order_by("name", "-created_at")
    return versions.filter(name=name) if name else versions


def study_model_choices(study: Study) -> dict[str, ModelVersion]:
    """The versions the study chose, by model name."""
    return {
        choice.name: choice.model_version
        for choice in StudyModelVersion.objects.filter(study=study).select_related("model_version")
    }
