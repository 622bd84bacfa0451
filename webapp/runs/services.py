"""The life of every run, whatever its kind: claim, progress and heartbeat, success, failure with the
retry policy, cancel, retry, and the sweeper's take-over.

Workers call the ``run_*`` functions with the attempt number their claim returned: the attempt is a
fencing token, so a worker that lost its run (cancelled, or taken over after its heartbeat stopped)
can no longer write progress or a result. A task the broker delivers twice finds the run claimed or
finished and does nothing, so each run produces exactly one result.
"""

import datetime
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.runs import dispatch
from webapp.runs.models import ACTIVE_STATUSES, Run, RunStateError, RunStatus, WorkerHeartbeat

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RetryPolicy:
    """A transient failure (database, storage or network briefly away) is retried with exponential
    back-off until the run has had ``max_attempts`` attempts; any other failure is final."""

    max_attempts: int = 3
    first_delay_seconds: float = 5.0

    def delay(self, attempt: int) -> float | None:
        """Seconds to wait before attempt ``attempt + 1``, or None when no attempt is left."""
        if attempt >= self.max_attempts:
            return None
        return self.first_delay_seconds * 2 ** (attempt - 1)


RETRY_POLICY = RetryPolicy()


@dataclass(frozen=True)
class Claim:
    run: Run | None
    should_run: bool
    attempt: int = 0
    reason: str = ""


def _label(run: Run) -> str:
    return f"{run.run_label} {run.pk}"


def _audit_state(run: Run, summary: str, *, actor=None, request=None, via: str = "", **details: Any) -> None:
    audit_record(
        action=AuditAction.STATE,
        summary=summary,
        actor=actor,
        target=run,
        study_id=run.run_study().pk,
        request=request,
        via=via or ("" if request is not None else "worker"),
        details={"status": run.status, **details},
    )


def stale_before(now: datetime.datetime | None = None) -> datetime.datetime:
    """Running runs whose last heartbeat is older than this have lost their worker."""
    return (now or timezone.now()) - datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS)


def run_claim(model: type[Run], *, run_id: int, worker: str) -> Claim:
    """Start a queued run on ``worker``, or take over a running one whose worker stopped sending
    heartbeats. A run that is finished, or running with a live worker, is not run again."""
    with transaction.atomic():
        run = model.objects.select_for_update().filter(pk=run_id).first()
        if run is None:
            return Claim(None, False, reason="it no longer exists")
        taking_over = run.status == RunStatus.RUNNING and (
            run.heartbeat_at is None or run.heartbeat_at < stale_before()
        )
        if run.status != RunStatus.QUEUED and not taking_over:
            return Claim(run, False, run.attempts, reason=f"it is {run.status} (attempt {run.attempts})")
        previous_worker = run.worker
        now = timezone.now()
        run.attempts += 1
        run.status = RunStatus.RUNNING
        run.worker = worker
        run.started_at = now
        run.heartbeat_at = now
        run.finished_at = None
        run.progress = 0.0
        run.progress_message = "Starting"
        run.error = ""
        run.save()
        run.on_claim()
    summary = f"{_label(run)} started on {worker}"
    if taking_over:
        summary = (
            f"{_label(run)} taken over by {worker}: {previous_worker or 'its worker'} stopped responding"
        )
    _audit_state(run, summary, attempt=run.attempts)
    return Claim(run, True, run.attempts)


def run_progress(model: type[Run], *, run_id: int, attempt: int, fraction: float, message: str) -> bool:
    """Store the progress of the claimed attempt (it doubles as a heartbeat); False when the run was
    cancelled or taken over meanwhile, so the worker stops."""
    fraction = min(max(float(fraction), 0.0), 1.0)
    updated = model.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt).update(
        progress=fraction, progress_message=message[:200], heartbeat_at=timezone.now()
    )
    return updated == 1


def run_heartbeat(model: type[Run], *, run_id: int, attempt: int) -> bool:
    """The worker is alive and still on this attempt; False when the run is no longer its."""
    updated = model.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt).update(
        heartbeat_at=timezone.now()
    )
    return updated == 1


def run_succeed(
    model: type[Run],
    *,
    run_id: int,
    attempt: int,
    message: str = "Done",
    record: Callable[[Run], None] | None = None,
) -> Run | None:
    """Finish the claimed attempt: ``record(run)`` writes what the run produced (inside the same
    transaction, while the run is locked), then the run is marked succeeded. None, and nothing
    written, when the run was cancelled or taken over meanwhile."""
    with transaction.atomic():
        run = (
            model.objects.select_for_update()
            .filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt)
            .first()
        )
        if run is None:
            logger.info(
                "Not recording the result of %s %s attempt %s: no longer its run",
                model.__name__,
                run_id,
                attempt,
            )
            return None
        if record is not None:
            record(run)
        run.status = RunStatus.SUCCEEDED
        run.progress = 1.0
        run.progress_message = message[:200]
        run.finished_at = timezone.now()
        run.save()
        _audit_state(run, f"{_label(run)} succeeded", attempt=attempt)
    return run


def run_fail(
    model: type[Run], *, run_id: int, attempt: int, error: str, transient: bool = False
) -> float | None:
    """Record a failure of the claimed attempt. A transient one goes back to the queue while the retry
    policy allows (returns the delay in seconds; the caller sends it again); otherwise it is final."""
    delay = RETRY_POLICY.delay(attempt) if transient else None
    fields: dict[str, Any] = {"error": error[:5000]}
    if delay is None:
        fields.update(status=RunStatus.FAILED, progress_message="Failed", finished_at=timezone.now())
    else:
        fields.update(
            status=RunStatus.QUEUED,
            progress_message=f"Waiting to retry (attempt {attempt + 1} of {RETRY_POLICY.max_attempts})",
            dispatched_at=None,
        )
    updated = model.objects.filter(pk=run_id, status=RunStatus.RUNNING, attempts=attempt).update(**fields)
    if updated:
        run = model.objects.get(pk=run_id)
        _audit_state(
            run,
            f"{_label(run)} {'will retry' if delay is not None else 'failed'}",
            attempt=attempt,
            error=error[:500],
        )
    return delay if updated else None


def run_cancel(run: Run, *, actor: AbstractBaseUser, request: HttpRequest | None = None) -> Run:
    """Cancel a queued or running run; a running worker stops at its next progress report."""
    now = timezone.now()
    updated = (
        type(run)
        .objects.filter(pk=run.pk, status__in=ACTIVE_STATUSES)
        .update(
            status=RunStatus.CANCELLED, finished_at=now, cancel_requested_at=now, progress_message="Cancelled"
        )
    )
    if not updated:
        run.refresh_from_db()
        raise RunStateError(f"{_label(run)} is {run.status}; only queued or running jobs can be cancelled.")
    run.refresh_from_db()
    _audit_state(run, f"Cancelled {_label(run).lower()}", actor=actor, request=request)
    return run


def run_retry(run: Run, *, actor: AbstractBaseUser, request: HttpRequest | None = None) -> Run:
    """Queue a failed or cancelled run again and send it once the transaction commits."""
    try:
        with transaction.atomic():
            run = type(run).objects.select_for_update().get(pk=run.pk)
            if not run.can_retry:
                raise RunStateError(
                    f"{_label(run)} is {run.status}; only failed or cancelled jobs can be retried."
                )
            run.check_retry()
            _requeue(run, "Queued again")
            run.save()
    except IntegrityError as error:
        # A unique constraint on active runs (one analysis of a photo at a time, say) refused it.
        raise RunStateError(
            f"The same work as {_label(run).lower()} is already queued or running."
        ) from error
    _audit_state(run, f"Retried {_label(run).lower()}", actor=actor, request=request)
    dispatch.send_run_on_commit(run)
    return run


def _requeue(run: Run, message: str) -> None:
    run.status = RunStatus.QUEUED
    run.progress = 0.0
    run.progress_message = message
    run.error = ""
    run.worker = ""
    run.started_at = None
    run.finished_at = None
    run.cancel_requested_at = None
    run.heartbeat_at = None
    run.dispatched_at = None


def run_take_over(model: type[Run], *, run_id: int) -> Run | None:
    """Put a running run whose worker stopped sending heartbeats back in the queue (the sweeper calls
    this); after ``RETRY_POLICY.max_attempts`` lost workers it fails instead. None when the run has
    moved on meanwhile."""
    with transaction.atomic():
        run = (
            model.objects.select_for_update()
            .filter(pk=run_id, status=RunStatus.RUNNING, heartbeat_at__lt=stale_before())
            .first()
        )
        if run is None:
            return None
        lost = run.worker or "its worker"
        if run.attempts >= RETRY_POLICY.max_attempts:
            run.status = RunStatus.FAILED
            run.finished_at = timezone.now()
            run.progress_message = "Failed"
            run.error = (
                f"The worker running this job stopped responding {run.attempts} times (last: {lost}); it was "
                "not started again. A photo or settings that make the worker crash are the usual cause: "
                "check the worker log, then retry the job."
            )
            run.save()
            _audit_state(run, f"{_label(run)} failed: its worker {lost} stopped responding", via="sweeper")
            return run
        _requeue(run, f"Taken back from {lost}, which stopped responding; waiting for a worker")
        run.save()
    _audit_state(run, f"{_label(run)} taken back from {lost}, which stopped responding", via="sweeper")
    return run


def worker_heartbeat(
    *, hostname: str, queues: list[str], pid: int, started_at: datetime.datetime, concurrency: int
) -> None:
    """A worker is alive (its main process writes this every few seconds for the queue page)."""
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
