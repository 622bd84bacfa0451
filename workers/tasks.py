"""Celery tasks. They are thin: claim the job, run the kind's runner, record the outcome."""

import logging

from celery.exceptions import SoftTimeLimitExceeded
from django.db import DatabaseError, InterfaceError

from webapp.runs import task_names
from workers.celery import app

logger = logging.getLogger(__name__)

# Failures worth another attempt: the database or the storage being briefly unreachable.
TRANSIENT_ERRORS = (DatabaseError, InterfaceError, ConnectionError, TimeoutError)
MAX_RETRIES = 3


class JobCancelled(Exception):
    """Raised from the progress callback when someone cancelled the job."""


@app.task(
    bind=True, name=task_names.ANALYSIS, acks_late=True, reject_on_worker_lost=True, max_retries=MAX_RETRIES
)
def run_analysis_job(self, job_id: int) -> None:
    from ml.config import code_version
    from webapp.analysis import services
    from workers.runners import RUNNERS

    claim = services.job_claim(job_id=job_id, worker=self.request.hostname or "worker")
    if not claim.should_run:
        logger.info("Skipping job %s: %s", job_id, claim.reason)
        return
    job = claim.job

    def progress(fraction: float, message: str) -> None:
        if not services.job_report_progress(job_id=job_id, fraction=fraction, message=message):
            raise JobCancelled

    try:
        outcome = RUNNERS[job.kind](job, progress)
    except JobCancelled:
        logger.info("Job %s was cancelled while running", job_id)
    except SoftTimeLimitExceeded:
        services.job_fail(
            job_id=job_id, error="The analysis took longer than its time limit and was stopped."
        )
    except TRANSIENT_ERRORS as exc:
        will_retry = self.request.retries < MAX_RETRIES
        services.job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}", will_retry=will_retry)
        if will_retry:
            raise self.retry(exc=exc, countdown=5 * 2**self.request.retries) from exc
    except Exception as exc:
        logger.exception("Job %s failed", job_id)
        services.job_fail(job_id=job_id, error=f"{type(exc).__name__}: {exc}")
    else:
        services.job_succeed(
            job_id=job_id,
            data=outcome.data,
            model=outcome.model,
            parameters=outcome.parameters,
            code_version=code_version(),
            artifacts=outcome.artifacts,
        )
