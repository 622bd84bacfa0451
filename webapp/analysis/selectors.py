"""Read queries for jobs, results and worker health."""

import datetime
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Min, QuerySet
from django.http import Http404
from django.utils import timezone

from webapp.analysis.models import (
    AnalysisJob,
    JobStatus,
    ModelVersion,
    Result,
    ResultArtifact,
    WorkerHeartbeat,
)
from webapp.studies.access import Capability, require
from webapp.studies.selectors import study_ids_for_user

User = AbstractBaseUser | AnonymousUser


def jobs_for_user(user: User) -> QuerySet[AnalysisJob]:
    return AnalysisJob.objects.filter(photo__study_id__in=study_ids_for_user(user)).select_related(
        "photo__visit__subject", "photo__study"
    )


def get_job(user: User, job_id: int, capability: Capability = Capability.VIEW) -> AnalysisJob:
    job = (
        AnalysisJob.objects.select_related("photo__study", "photo__visit__subject").filter(pk=job_id).first()
    )
    if job is None:
        raise Http404("No such job.")
    require(user, job.photo.study, capability)
    return job


def get_result(user: User, result_id: int) -> Result:
    result = Result.objects.select_related("job__photo__study").filter(pk=result_id).first()
    if result is None:
        raise Http404("No such result.")
    require(user, result.job.photo.study, Capability.VIEW)
    return result


def get_artifact(user: User, artifact_id: int) -> ResultArtifact:
    artifact = (
        ResultArtifact.objects.select_related("result__job__photo__study").filter(pk=artifact_id).first()
    )
    if artifact is None:
        raise Http404("No such artifact.")
    require(user, artifact.result.job.photo.study, Capability.VIEW)
    return artifact


def latest_result(photo_id: int, kind: str) -> Result | None:
    return (
        Result.objects.filter(job__photo_id=photo_id, job__kind=kind, job__status=JobStatus.SUCCEEDED)
        .order_by("-job__finished_at")
        .first()
    )


@dataclass(frozen=True)
class WorkerHealth:
    heartbeat: WorkerHeartbeat
    healthy: bool
    seconds_since_seen: float


@dataclass(frozen=True)
class QueueOverview:
    counts: dict[str, int]
    workers: list[WorkerHealth]
    oldest_queued_at: datetime.datetime | None
    warnings: list[str]


def queue_overview(now: datetime.datetime | None = None) -> QueueOverview:
    """Job counts by status, worker health, and warnings about queues that nobody consumes."""
    now = now or timezone.now()
    counts = {status: 0 for status in JobStatus.values}
    counts.update(dict(AnalysisJob.objects.values_list("status").annotate(n=Count("id")).order_by()))
    stale_after = 3 * settings.FACET_WORKER_HEARTBEAT_SECONDS
    workers = [
        WorkerHealth(
            beat,
            (now - beat.last_seen).total_seconds() <= stale_after,
            (now - beat.last_seen).total_seconds(),
        )
        for beat in WorkerHeartbeat.objects.all()
    ]
    served_queues = {queue for worker in workers if worker.healthy for queue in worker.heartbeat.queues}
    warnings = []
    waiting = AnalysisJob.objects.filter(status=JobStatus.QUEUED)
    for queue, n in waiting.values_list("queue").annotate(n=Count("id")).order_by("queue"):
        if queue not in served_queues:
            warnings.append(f"{n} job(s) wait on the {queue} queue, but no healthy worker consumes it.")
    oldest = waiting.aggregate(oldest=Min("created_at"))["oldest"]
    return QueueOverview(counts=counts, workers=workers, oldest_queued_at=oldest, warnings=warnings)


def jobs_filtered(
    *, status: str = "", kind: str = "", queue: str = "", study_id: int | None = None
) -> QuerySet:
    jobs = AnalysisJob.objects.select_related("photo__study", "photo__visit__subject").order_by("-created_at")
    if status:
        jobs = jobs.filter(status=status)
    if kind:
        jobs = jobs.filter(kind=kind)
    if queue:
        jobs = jobs.filter(queue=queue)
    if study_id:
        jobs = jobs.filter(photo__study_id=study_id)
    return jobs


def active_model_version(name: str, study: object = None) -> ModelVersion | None:
    """The version of `name` that jobs (of `study`) run, or None when the registry's shipped weights apply."""
    return ModelVersion.objects.filter(name=name, is_active=True).first()
