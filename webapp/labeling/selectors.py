"""Read queries of the labeling app, scoped by study access (404 for outsiders, 403 for missing rights).

Who may label: coordinators, clinicians and raters — members holding Capability.UPLOAD (they bring the
photos) or Capability.RATE (grading wrinkles is a rater's job). Monitors may look at labels but not
save them. Exporting needs Capability.EXPORT (coordinators, site admins); starting or cancelling a
training job needs Capability.MANAGE_STUDY (coordinators, site admins); activating a model version is
for site admins only.
"""

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import OuterRef, QuerySet, Subquery

from webapp.labeling.models import TrainingJob, WrinkleLabel
from webapp.studies.access import Capability, can, not_found, require
from webapp.studies.models import Photo, Study

User = AbstractBaseUser | AnonymousUser


def can_label(user: User, study: Study) -> bool:
    return can(user, study, Capability.LABEL)


def require_label(user: User, study: Study) -> None:
    """Http404 for outsiders, PermissionDenied for members who may not label (monitors)."""
    require(user, study, Capability.LABEL)


def get_label(user: User, label_id: int) -> WrinkleLabel:
    label = (
        WrinkleLabel.objects.select_related("photo__study", "photo__visit__subject")
        .filter(pk=label_id)
        .first()
    )
    if label is None:
        raise not_found(user, "label", label_id)
    require(user, label.photo.study, Capability.VIEW, what="label", object_id=label_id)
    return label


def labels_of_photo(photo: Photo) -> QuerySet[WrinkleLabel]:
    return WrinkleLabel.objects.filter(photo=photo).order_by("-version")


def latest_labels(study: Study, photo_ids: list[int] | None = None) -> QuerySet[WrinkleLabel]:
    """The newest label version of each labeled photo of the study (optionally of some photos only)."""
    newest = WrinkleLabel.objects.filter(photo=OuterRef("photo")).order_by("-version").values("version")[:1]
    labels = WrinkleLabel.objects.filter(photo__study=study, version=Subquery(newest))
    if photo_ids is not None:
        labels = labels.filter(photo_id__in=photo_ids)
    return labels.select_related("photo__visit__subject").order_by(
        "photo__visit__subject__code", "photo__visit__date", "photo__visit__label", "photo__view", "photo_id"
    )


def labels_by_ids(study: Study, label_ids: list[int]) -> list[WrinkleLabel]:
    return list(
        WrinkleLabel.objects.filter(photo__study=study, pk__in=label_ids)
        .select_related("photo__visit__subject")
        .order_by("photo_id", "version")
    )


def get_training_job(
    user: User, training_job_id: int, capability: Capability = Capability.VIEW
) -> TrainingJob:
    job = TrainingJob.objects.select_related("study", "model_version").filter(pk=training_job_id).first()
    if job is None:
        raise not_found(user, "training job", training_job_id)
    require(user, job.study, capability, what="training job", object_id=training_job_id)
    return job


def training_jobs_of_study(study: Study) -> QuerySet[TrainingJob]:
    return TrainingJob.objects.filter(study=study).select_related("model_version", "requested_by")
