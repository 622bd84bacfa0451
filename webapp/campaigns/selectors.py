"""Reads of the landmark-campaign domain. Getters raise 404 for outsiders and 403 for missing capabilities."""

from dataclasses import dataclass

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import F, QuerySet

from webapp.campaigns.models import (
    HUMAN,
    Campaign,
    DatasetPhoto,
    KeypointDataset,
    KeypointDatasetVersion,
    KeypointInstance,
)
from webapp.studies.access import Capability, can, not_found, require
from webapp.studies.models import Study

User = AbstractBaseUser | AnonymousUser


def can_review(user: User, study: Study) -> bool:
    """Coordinators, clinicians and raters label landmarks; monitors look."""
    return can(user, study, Capability.LABEL)


def require_review(user: User, study: Study) -> None:
    require(user, study, Capability.LABEL)


def _check(user: User, study: Study, capability: Capability | None, what: str, object_id: int) -> None:
    require(
        user, study, Capability.LABEL if capability is None else capability, what=what, object_id=object_id
    )


def get_dataset(
    user: User, dataset_id: int, capability: Capability | None = Capability.VIEW
) -> KeypointDataset:
    """`capability=None` asks for the right to review landmarks."""
    dataset = KeypointDataset.objects.select_related("study").filter(pk=dataset_id).first()
    if dataset is None:
        raise not_found(user, "dataset", dataset_id)
    _check(user, dataset.study, capability, "dataset", dataset_id)
    return dataset


def get_version(
    user: User, version_id: int, capability: Capability | None = Capability.VIEW
) -> KeypointDatasetVersion:
    version = (
        KeypointDatasetVersion.objects.select_related("dataset__study", "parent")
        .filter(pk=version_id)
        .first()
    )
    if version is None:
        raise not_found(user, "dataset version", version_id)
    _check(user, version.dataset.study, capability, "dataset version", version_id)
    return version


def get_instance(
    user: User, instance_id: int, capability: Capability | None = Capability.VIEW
) -> KeypointInstance:
    instance = (
        KeypointInstance.objects.select_related("dataset__study", "photo__visit__subject", "derived_from")
        .filter(pk=instance_id)
        .first()
    )
    if instance is None:
        raise not_found(user, "instance", instance_id)
    _check(user, instance.dataset.study, capability, "instance", instance_id)
    return instance


def get_campaign(user: User, campaign_id: int, capability: Capability | None = Capability.VIEW) -> Campaign:
    campaign = (
        Campaign.objects.select_related("study", "dataset", "start_version").filter(pk=campaign_id).first()
    )
    if campaign is None:
        raise not_found(user, "campaign", campaign_id)
    _check(user, campaign.study, capability, "campaign", campaign_id)
    return campaign


def datasets_of_study(study: Study) -> QuerySet[KeypointDataset]:
    return KeypointDataset.objects.filter(study=study).order_by("name")


def campaigns_of_study(study: Study) -> QuerySet[Campaign]:
    return Campaign.objects.filter(study=study).select_related("dataset").order_by("-created_at")


def review_queue(dataset: KeypointDataset, limit: int = 200) -> QuerySet[KeypointInstance]:
    """Model-made instances of the latest version, least confident first (no confidence at all first)."""
    latest = dataset.latest_version
    if latest is None:
        return KeypointInstance.objects.none()
    return (
        latest.instances.exclude(source=HUMAN)
        .select_related("photo__visit__subject")
        .order_by(F("confidence").asc(nulls_first=True), "pk")[:limit]
    )


def next_in_queue(dataset: KeypointDataset) -> KeypointInstance | None:
    return review_queue(dataset, limit=1).first()


def instance_split(instance: KeypointInstance) -> str | None:
    return (
        DatasetPhoto.objects.filter(dataset=instance.dataset_id, photo=instance.photo_id)
        .values_list("split", flat=True)
        .first()
    )


@dataclass(frozen=True)
class InstanceState:
    """Where an instance stands in its dataset's latest version."""

    in_latest: bool
    replaced_by: KeypointInstance | None


def instance_state(instance: KeypointInstance) -> InstanceState:
    latest = instance.dataset.latest_version
    in_latest = bool(latest and latest.instances.filter(pk=instance.pk).exists())
    return InstanceState(in_latest=in_latest, replaced_by=instance.derivatives.order_by("-pk").first())
