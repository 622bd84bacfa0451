"""Analysis reacts to changes of the study records (webapp.studies.signals) through the runs services."""

import contextlib

from django.db import transaction
from django.db.models import Q
from django.db.models.signals import post_save
from django.dispatch import receiver

from webapp.analysis.models import AnalysisJob
from webapp.analysis.pairs import comparison_pairs_ensure
from webapp.analysis.services import jobs_enqueue_for_photo
from webapp.runs.models import ACTIVE_STATUSES, RunStateError, RunStatus
from webapp.runs.services import run_cancel
from webapp.studies.models import Comparison, Photo
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


@receiver(post_save, sender=Comparison, dispatch_uid="analysis-pairs-of-new-comparison")
def pairs_of_new_comparison(sender, instance: Comparison, created: bool, **kwargs) -> None:
    """A new comparison compares the latest photo of each view photographed at both visits."""
    if created:
        comparison_pairs_ensure(instance)


@receiver(post_save, sender=Photo, dispatch_uid="analysis-pairs-of-new-photo")
def pairs_of_new_photo(sender, instance: Photo, created: bool, **kwargs) -> None:
    """A photo of a view a comparison had no pair for yet completes that pair."""
    if not created:
        return
    comparisons = Comparison.objects.alive().filter(
        Q(pre_visit_id=instance.visit_id) | Q(post_visit_id=instance.visit_id)
    )
    for comparison in comparisons.select_related("subject__study", "pre_visit", "post_visit"):
        comparison_pairs_ensure(comparison)
