"""The sweeper: the database is the truth about runs, the broker only carries them. Every
FACET_SWEEP_SECONDS each worker (``workers.celery.RunSweeperStep``) compares the two and repairs:

* a running run whose worker sent no heartbeat for FACET_RUN_STALE_SECONDS (a killed or frozen
  worker) goes back to the queue and is sent again; after ``RETRY_POLICY.max_attempts`` lost workers it
  fails with a message instead, so a photo that crashes workers cannot loop forever;
* a queued run the broker never took (it was down when the run was created) is sent again;
* a queued run whose task is no longer in the broker (a broker restarted without persistence lost it)
  is sent again, once it has waited FACET_RESEND_AFTER_SECONDS. Where the broker cannot be inspected
  (not Redis), only runs never taken are re-sent.

A run is only ever re-sent after a conditional update moved it, so two workers sweeping at once never
both send it, and a message delivered twice still runs once: the claim refuses a run that is not
queued (``webapp.runs.services.run_claim``).
"""

import datetime
import logging
from dataclasses import dataclass, field

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from webapp.runs import dispatch
from webapp.runs.kinds import run_models
from webapp.runs.models import Run, RunStatus
from webapp.runs.services import run_take_over, stale_before

logger = logging.getLogger(__name__)


@dataclass
class SweepReport:
    taken_over: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    resent: list[str] = field(default_factory=list)
    unsent: list[str] = field(default_factory=list)


def _name(run: Run) -> str:
    return f"{run.run_kind}-{run.pk}"


def _resend(run: Run, report: SweepReport) -> None:
    """Send a queued run again, if no other sweeper got to it first."""
    model = type(run)
    now = timezone.now()
    moved = model.objects.filter(
        pk=run.pk, status=RunStatus.QUEUED, task_id=run.task_id, dispatched_at=run.dispatched_at
    ).update(dispatched_at=now)
    if not moved:
        return
    run.dispatched_at = now
    if dispatch.send_run(run):
        report.resent.append(_name(run))
    else:
        model.objects.filter(pk=run.pk, status=RunStatus.QUEUED, dispatched_at=now).update(dispatched_at=None)
        report.unsent.append(_name(run))


def sweep(now: datetime.datetime | None = None) -> SweepReport:
    """One pass over every kind of run (see the module docstring)."""
    now = now or timezone.now()
    report = SweepReport()
    for model in run_models():
        lost = model.objects.filter(status=RunStatus.RUNNING).filter(
            Q(heartbeat_at__lt=stale_before(now)) | Q(heartbeat_at__isnull=True)
        )
        for run_id in lost.values_list("pk", flat=True):
            run = run_take_over(model, run_id=run_id)
            if run is None:
                continue
            if run.status == RunStatus.FAILED:
                report.failed.append(_name(run))
            else:
                report.taken_over.append(_name(run))
                _resend(run, report)
    grace = now - datetime.timedelta(seconds=settings.FACET_RESEND_AFTER_SECONDS)
    in_broker = dispatch.queued_task_ids()
    for model in run_models():
        queued = model.objects.filter(status=RunStatus.QUEUED)
        never_sent = queued.filter(
            dispatched_at__isnull=True, created_at__lt=now - datetime.timedelta(seconds=5)
        )
        for run in never_sent:
            _resend(run, report)
        if in_broker is None:
            continue
        for run in queued.filter(dispatched_at__lt=grace):
            if run.task_id not in in_broker:
                _resend(run, report)
    if report.taken_over or report.failed or report.resent:
        logger.warning(
            "Sweeper: took over %s, failed %s, re-sent %s, could not send %s",
            report.taken_over,
            report.failed,
            report.resent,
            report.unsent,
        )
    return report
