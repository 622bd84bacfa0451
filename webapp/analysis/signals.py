"""Analysis reacts to changes of the study records (webapp.studies.signals)."""

import contextlib

from django.dispatch import receiver

from webapp.analysis.models import ACTIVE_STATUSES, AnalysisJob
from webapp.analysis.services import JobStateError, job_cancel
from webapp.studies.signals import photos_withdrawn


@receiver(photos_withdrawn, dispatch_uid="analysis-cancel-jobs-of-withdrawn-photos")
def cancel_jobs_of_withdrawn_photos(sender, photos, actor, request=None, **kwargs) -> None:
    """A deleted photo's queued and running analyses stop: nobody will look at their results."""
    for job in AnalysisJob.objects.filter(photo__in=photos, status__in=ACTIVE_STATUSES):
        with contextlib.suppress(JobStateError):  # it finished meanwhile
            job_cancel(job=job, actor=actor, request=request)
