"""Review of model-made landmark suggestions: accept (as a human label) or reject, each a new version."""

from collections.abc import Sequence
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest
from django.utils import timezone

from ml.landmarks import formats
from ml.landmarks.formats import Instance
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.campaigns.models import (
    HUMAN,
    DatasetPhoto,
    KeypointDatasetVersion,
    KeypointInstance,
    Split,
    VersionSource,
)
from webapp.campaigns.models import KeypointDataset as DatasetRow
from webapp.campaigns.services.errors import LandmarkDataError, SplitRuleError
from webapp.campaigns.services.versions import (
    _fix_splits,
    _instance_row,
    _locked,
    _round_points,
    _version_write,
)
from webapp.studies.models import Photo

NUM_KEYPOINTS = formats.NUM_KEYPOINTS


def _validated_points(points: Any, photo: Photo) -> list[list[float]]:
    try:
        array = np.asarray(points, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise LandmarkDataError("The corrected points are not a list of numbers.") from error
    if array.shape != (NUM_KEYPOINTS, 2) or not np.isfinite(array).all():
        raise LandmarkDataError(f"A correction gives {NUM_KEYPOINTS} finite [x, y] points.")
    # Points of a partly visible face may lie a little outside the frame, but not far away.
    margin_x, margin_y = photo.width / 2, photo.height / 2
    if (
        (array[:, 0] < -margin_x)
        | (array[:, 0] > photo.width + margin_x)
        | (array[:, 1] < -margin_y)
        | (array[:, 1] > photo.height + margin_y)
    ).any():
        raise LandmarkDataError("Some corrected points lie far outside the photo.")
    return _round_points(array)


def _reviewable(dataset: DatasetRow, instance: KeypointInstance) -> KeypointDatasetVersion:
    latest = dataset.versions.order_by("-number").first()
    if latest is None or not latest.instances.filter(pk=instance.pk).exists():
        raise LandmarkDataError(
            "This suggestion is no longer in the dataset's latest version: someone has reviewed it already."
        )
    if instance.source == HUMAN:
        raise LandmarkDataError("This label is already a human label.")
    return latest


def review_accept(
    *,
    instance: KeypointInstance,
    actor: AbstractBaseUser,
    keypoints: Any = None,
    request: HttpRequest | None = None,
) -> KeypointInstance:
    """Accept a model suggestion, with corrected points if given: a new human instance and a new version.

    The suggestion row is left as it was (earlier versions still hold it); the new row names the
    reviewer, the time and the suggestion it derives from.
    """
    points = _validated_points(keypoints, instance.photo) if keypoints is not None else instance.keypoints
    moved = int((np.linalg.norm(np.asarray(points) - np.asarray(instance.keypoints), axis=1) > 0.5).sum())
    with transaction.atomic():
        dataset = _locked(instance.dataset)
        latest = _reviewable(dataset, instance)
        accepted = KeypointInstance.objects.create(
            dataset=dataset,
            photo=instance.photo,
            box=instance.box,
            keypoints=points,
            visibility=instance.visibility,
            source=HUMAN,
            labelled_by=actor,
            labelled_by_name=actor.get_username(),
            labelled_at=timezone.now(),
            derived_from=instance,
        )
        members = [row for row in latest.instances.all() if row.pk != instance.pk] + [accepted]
        _version_write(
            dataset=dataset,
            instances=members,
            source=VersionSource.REVIEW,
            note=f"{actor.get_username()} accepted instance {instance.pk} ({moved} point(s) moved) "
            f"as instance {accepted.pk}",
            actor=actor,
            parent=latest,
            request=request,
        )
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Accepted landmark suggestion {instance.pk} as human label {accepted.pk}",
        actor=actor,
        target=accepted,
        object_type="campaigns.keypointinstance",
        study_id=dataset.study_id,
        request=request,
        details={"suggestion": instance.pk, "source": instance.source, "points_moved": moved},
    )
    return accepted


def review_reject(
    *, instance: KeypointInstance, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> KeypointDatasetVersion:
    """Reject a model suggestion: the next version leaves it out (earlier versions keep it)."""
    with transaction.atomic():
        dataset = _locked(instance.dataset)
        latest = _reviewable(dataset, instance)
        version = _version_write(
            dataset=dataset,
            instances=[row for row in latest.instances.all() if row.pk != instance.pk],
            source=VersionSource.REVIEW,
            note=f"{actor.get_username()} rejected instance {instance.pk}",
            actor=actor,
            parent=latest,
            request=request,
        )
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Rejected landmark suggestion {instance.pk}",
        actor=actor,
        target=instance,
        study_id=dataset.study_id,
        request=request,
        details={"source": instance.source, "confidence": instance.confidence, "version": version.number},
    )
    return version


def suggestions_create(
    *, dataset: DatasetRow, photo: Photo, instances: Sequence[Instance], note: str
) -> KeypointDatasetVersion:
    """Add model-made instances on a training photo as the next version (used for model suggestions)."""
    if photo.study_id != dataset.study_id:
        raise LandmarkDataError("The photo belongs to another study.")
    if any(instance.provenance.is_human for instance in instances):
        raise LandmarkDataError("Suggestions are model labels; human labels are imported or reviewed.")
    with transaction.atomic():
        dataset = _locked(dataset)
        if DatasetPhoto.objects.filter(dataset=dataset, photo=photo, split=Split.VAL).exists():
            raise SplitRuleError(f"Photo {photo.pk} is a validation photo; model labels never enter it.")
        _fix_splits(dataset, {photo.pk: Split.TRAIN}, new_photos_may_be_val=False)
        parent = dataset.versions.order_by("-number").first()
        kept = list(parent.instances.all()) if parent else []
        created = [_instance_row(dataset=dataset, photo=photo, instance=instance) for instance in instances]
        return _version_write(
            dataset=dataset,
            instances=kept + created,
            source=VersionSource.CAMPAIGN,
            note=note,
            actor=None,
            parent=parent,
        )
