"""Analysis reacts to changes of the study records (webapp.studies.signals) through the runs services."""

import contextlib

from django.db import transaction
from django.dispatch import receiver

from webapp.analysis.models import AnalysisJob
from webapp.analysis.services import jobs_enqueue_for_photo
from webapp.runs.models import ACTIVE_STATUSES, RunStateError, RunStatus
from webapp.runs.services import run_cancel
from webapp.studies.signals import photo_view_changed, photos_withdrawn


@receiver(photos_withdrawn, dispatch_uid="analysis-cancel-jobs-of-withdrawn-photos")
def cancel_jobs_of_withdrawn_photos(sender, photos, actor, request=None, **kwargs) -> None:
    """A deleted photo's queued and running analyses stop: nobody will look at their results."""
    for job in AnalysisJob.objects.filter(photo__in=photos, status__in=ACTIVE_STATUSES):
        with contextlib.suppress(RunStateError):  # it finished meanwhile
            run_cancel(job, actor=actor, request=request)


@receiver(photo_view_changed, dispatch_uid="analysis-rerun-after-view-change")
def rerun_after_view_change(sender, photo, old_view, actor, request=None, **kwargs) -> None:
    """The quality verdict (the expected head pose) depends on the view: the photo's analyses run again.
    A running job read the old view, so it is cancelled and queued afresh; a queued one reads the new
    view when it starts. New jobs are sent after commit (webapp.runs.dispatch)."""
    with transaction.atomic():
        for job in AnalysisJob.objects.filter(photo=photo, status=RunStatus.RUNNING):
            with contextlib.suppress(RunStateError):  # it finished meanwhile
                run_cancel(job, actor=actor, request=request)
        jobs_enqueue_for_photo(photo=photo, requested_by=actor)
