"""The life of an analysis job: enqueue, start, progress, success, failure, cancel, retry.

Jobs are enqueued only after the transaction that created them commits, so a worker never picks
up a job whose photo is not yet visible. Workers call the `job_*` functions below; they are
idempotent, so a task the broker delivers twice neither runs a finished job again nor records a
second result.
"""

import datetime
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import (
    ACTIVE_STATUSES,
    AnalysisJob,
    JobStatus,
    ModelVersion,
    Result,
    ResultArtifact,
    TrackedRun,
    WorkerHeartbeat,
)
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.runs import dispatch, task_names
from webapp.studies.models import Photo

logger = logging.getLogger(__name__)


class JobStateError(Exception):
    """The job is not in a state that allows the requested change."""


def _send_to_worker(job: AnalysisJob) -> None:
    dispatch.send_task(task_names.ANALYSIS, args=[job.pk], queue=job.queue)


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
            transaction.on_commit(lambda job=job: _send_to_worker(job))
        jobs.append(job)
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


@dataclass(frozen=True)
class JobClaim:
    job: AnalysisJob
    should_run: bool
    reason: str = ""


def job_claim(*, job_id: int, worker: str) -> JobClaim:
    """Mark a queued (or re-delivered running) job as running on `worker`; finished jobs are not run again."""
    with transaction.atomic():
        job = AnalysisJob.objects.select_for_update().select_related("photo").filter(pk=job_id).first()
        if job is None:
            return JobClaim(job=AnalysisJob(pk=job_id), should_run=False, reason="job no longer exists")
        if job.status not in ACTIVE_STATUSES:
            return JobClaim(job=job, should_run=False, reason=f"job is already {job.status}")
        job.attempts += 1
        run_mark_running(job, worker=worker, extra_fields=("attempts",))
    audit_record(
        action=AuditAction.STATE,
        summary=f"Job {job.pk} started on {worker}",
        target=job,
        via="worker",
        details={"status": JobStatus.RUNNING, "attempt": job.attempts},
    )
    return JobClaim(job=job, should_run=True)


def run_mark_running(run: TrackedRun, *, worker: str, extra_fields: Sequence[str] = ()) -> None:
    """Start a claimed job of any kind (locked by the caller) on `worker`, clearing a previous attempt."""
    run.status = JobStatus.RUNNING
    run.worker = worker
    run.started_at = timezone.now()
    run.finished_at = None
    run.progress = 0.0
    run.progress_message = "Starting"
    run.error = ""
    run.save(
        update_fields=[
            "status",
            "worker",
            "started_at",
            "finished_at",
            "progress",
            "progress_message",
            "error",
            *extra_fields,
        ]
    )


def run_report_progress(model: type[TrackedRun], *, run_id: int, fraction: float, message: str) -> bool:
    """Store a running job's progress; False when it was cancelled meanwhile, so the worker can stop."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    updated = model.objects.filter(pk=run_id, status=JobStatus.RUNNING).update(
        progress=fraction, progress_message=message[:200]
    )
    return updated == 1


def run_cancel(
    run: TrackedRun,
    *,
    label: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
    error: type[Exception] | None = None,
) -> TrackedRun:
    """Cancel a queued or running job of any kind; a running worker stops at its next progress report."""
    updated = (
        type(run)
        .objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES)
        .update(status=JobStatus.CANCELLED, finished_at=timezone.now(), progress_message="Cancelled")
    )
    if not updated:
        raise (error or JobStateError)(
            f"{label} {run.pk} is {run.status}; only queued or running jobs can be cancelled."
        )
    run.refresh_from_db()
    audit_record(
        action=AuditAction.STATE,
        summary=f"Cancelled {label.lower()} {run.pk}",
        actor=actor,
        target=run,
        request=request,
        details={"status": JobStatus.CANCELLED},
    )
    return run


def job_report_progress(*, job_id: int, fraction: float, message: str) -> bool:
    """Store progress; returns False when the job was cancelled meanwhile, so the worker can stop."""
    return run_report_progress(AnalysisJob, run_id=job_id, fraction=fraction, message=message)


def job_is_cancelled(job_id: int) -> bool:
    return AnalysisJob.objects.filter(pk=job_id, status=JobStatus.CANCELLED).exists()


@dataclass
class Artifact:
    name: str
    content: bytes
    extension: str
    content_type: str


@transaction.atomic
def job_succeed(
    *,
    job_id: int,
    data: dict[str, Any],
    model: dict[str, Any],
    parameters: dict[str, Any],
    code_version: str,
    artifacts: list[Artifact] = (),
) -> Result | None:
    """Record the result and finish the job. A second call for the same job replaces, never duplicates."""
    job = AnalysisJob.objects.select_for_update().get(pk=job_id)
    if job.status != JobStatus.RUNNING:
        logger.info("Not recording a result for job %s: it is %s", job_id, job.status)
        return None
    result, _ = Result.objects.update_or_create(
        job=job,
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
        stored.file.save(f"{artifact.name}.{artifact.extension}", ContentFile(artifact.content), save=False)
        stored.save()
    job.status = JobStatus.SUCCEEDED
    job.model_version = model["version"]
    job.progress = 1.0
    job.progress_message = "Done"
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "model_version", "progress", "progress_message", "finished_at"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Job {job.pk} succeeded",
        target=job,
        via="worker",
        details={"status": JobStatus.SUCCEEDED, "model": model["name"], "version": model["version"]},
    )
    return result


def job_fail(*, job_id: int, error: str, will_retry: bool = False) -> None:
    """Record a failure. With `will_retry` the job goes back to the queue instead of failing."""
    status = JobStatus.QUEUED if will_retry else JobStatus.FAILED
    updated = AnalysisJob.objects.filter(pk=job_id, status=JobStatus.RUNNING).update(
        status=status,
        error=error[:5000],
        progress_message="Waiting to retry" if will_retry else "Failed",
        finished_at=None if will_retry else timezone.now(),
    )
    if updated:
        audit_record(
            action=AuditAction.STATE,
            summary=f"Job {job_id} {'will retry' if will_retry else 'failed'}",
            object_type="analysis.analysisjob",
            object_id=job_id,
            study_id=AnalysisJob.objects.filter(pk=job_id).values_list("photo__study_id", flat=True).first(),
            via="worker",
            details={"status": status, "error": error[:500]},
        )


def job_cancel(
    *, job: AnalysisJob, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> AnalysisJob:
    """Cancel a queued or running job. A running worker notices at its next progress report and stops."""
    return run_cancel(job, label="Job", actor=actor, request=request)


@transaction.atomic
def job_retry(
    *, job: AnalysisJob, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> AnalysisJob:
    """Queue a failed or cancelled job again."""
    job = AnalysisJob.objects.select_for_update().get(pk=job.pk)
    if job.status not in (JobStatus.FAILED, JobStatus.CANCELLED):
        raise JobStateError(f"Job {job.pk} is {job.status}; only failed or cancelled jobs can be retried.")
    if AnalysisJob.objects.filter(
        photo=job.photo, kind=job.kind, model_name=job.model_name, status__in=ACTIVE_STATUSES
    ).exists():
        raise JobStateError("The same analysis of this photo is already queued or running.")
    job.status = JobStatus.QUEUED
    job.progress = 0.0
    job.progress_message = "Queued again"
    job.error = ""
    job.started_at = None
    job.finished_at = None
    job.save(update_fields=["status", "progress", "progress_message", "error", "started_at", "finished_at"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Retried job {job.pk}",
        actor=actor,
        target=job,
        request=request,
        details={"status": JobStatus.QUEUED},
    )
    transaction.on_commit(lambda: _send_to_worker(job))
    return job


def worker_heartbeat(
    *, hostname: str, queues: list[str], pid: int, started_at: datetime.datetime, concurrency: int
) -> None:
    WorkerHeartbeat.objects.update_or_create(
        hostname=hostname,
        defaults={
            "queues": queues,
            "pid": pid,
            "started_at": started_at,
            "last_seen": timezone.now(),
            "concurrency": concurrency,
        },
    )


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
    """Make this the version new jobs of its model run; the previously active one is deactivated."""
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
