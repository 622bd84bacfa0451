"""Analysis reacts to changes of the study records (webapp.studies.signals)."""

import contextlib

from django.db import transaction
from django.dispatch import receiver

from webapp.analysis.models import ACTIVE_STATUSES, AnalysisJob, JobStatus
from webapp.analysis.services import JobStateError, job_cancel, jobs_enqueue_for_photo
from webapp.studies.signals import photo_view_changed, photos_withdrawn


@receiver(photos_withdrawn, dispatch_uid="analysis-cancel-jobs-of-withdrawn-photos")
def cancel_jobs_of_withdrawn_photos(sender, photos, actor, request=None, **kwargs) -> None:
    """A deleted photo's queued and running analyses stop: nobody will look at their results."""
    for job in AnalysisJob.objects.filter(photo__in=photos, status__in=ACTIVE_STATUSES):
        with contextlib.suppress(JobStateError):  # it finished meanwhile
            job_cancel(job=job, actor=actor, request=request)


@receiver(photo_view_changed, dispatch_uid="analysis-rerun-after-view-change")
def rerun_after_view_change(sender, photo, old_view, actor, request=None, **kwargs) -> None:
    """The quality verdict (the expected head pose) depends on the view: the photo's analyses run again.
    A running job read the old view, so it is cancelled and queued afresh; a queued one reads the new
    view when it starts."""
    with transaction.atomic():
        for job in AnalysisJob.objects.filter(photo=photo, status=JobStatus.RUNNING):
            with contextlib.suppress(JobStateError):  # it finished meanwhile
                job_cancel(job=job, actor=actor, request=request)
        jobs_enqueue_for_photo(photo=photo, requested_by=actor)
