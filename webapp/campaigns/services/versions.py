"""Datasets and their immutable versions: each write is a new version under a row lock on its dataset, so
two writers (a reviewer and a campaign, say) never produce the same version number."""

import datetime
import json
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ml.landmarks.formats import ImageRecord, Instance, KeypointDataset, Provenance
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.campaigns.models import (
    HUMAN,
    CampaignIteration,
    DatasetPhoto,
    KeypointDatasetVersion,
    KeypointInstance,
    Split,
    VersionSource,
)
from webapp.campaigns.models import KeypointDataset as DatasetRow
from webapp.campaigns.services.errors import LandmarkDataError, SplitRuleError
from webapp.studies.models import Photo, Study


def dataset_create(
    *, study: Study, name: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> DatasetRow:
    name = name.strip()
    if not name:
        raise LandmarkDataError("Give the dataset a name.")
    try:
        with transaction.atomic():
            dataset = DatasetRow.objects.create(study=study, name=name, created_by=actor)
    except IntegrityError as error:
        raise LandmarkDataError(f"This study already has a dataset named '{name}'.") from error
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created keypoint dataset '{name}'",
        actor=actor,
        target=dataset,
        request=request,
    )
    return dataset


def version_counts(dataset: DatasetRow, instances: Sequence[KeypointInstance]) -> dict[str, Any]:
    """Instance and photo counts per split and instance counts per provenance source."""
    splits = dict(DatasetPhoto.objects.filter(dataset=dataset).values_list("photo_id", "split"))
    counts: dict[str, Any] = {}
    for split in Split.values:
        in_split = [row for row in instances if splits.get(row.photo_id) == split]
        counts[f"{split}_instances"] = len(in_split)
        counts[f"{split}_labelled_photos"] = len({row.photo_id for row in in_split})
    counts["total_instances"] = len(instances)
    counts["human_instances"] = sum(1 for row in instances if row.source == HUMAN)
    counts["by_source"] = dict(sorted(Counter(row.source for row in instances).items()))
    return counts


def _version_write(
    *,
    dataset: DatasetRow,
    instances: Sequence[KeypointInstance],
    source: str,
    note: str,
    actor: AbstractBaseUser | None,
    parent: KeypointDatasetVersion | None,
    campaign_iteration: CampaignIteration | None = None,
    request: HttpRequest | None = None,
) -> KeypointDatasetVersion:
    """Write the next version of `dataset`; the caller holds the dataset's row lock."""
    latest = dataset.versions.order_by("-number").first()
    version = KeypointDatasetVersion.objects.create(
        dataset=dataset,
        number=latest.number + 1 if latest else 0,
        parent=parent,
        source=source,
        note=note[:300],
        counts=version_counts(dataset, instances),
        campaign_iteration=campaign_iteration,
        created_by=actor,
    )
    version.instances.set(instances)
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Wrote version {version.name} of keypoint dataset '{dataset.name}' ({source})",
        actor=actor,
        target=dataset,
        object_type="campaigns.keypointdatasetversion",
        object_id=version.pk,
        request=request,
        via="" if actor is not None else "worker",
        details={"note": note, "counts": version.counts, "parent": parent.number if parent else None},
    )
    return version


def _locked(dataset: DatasetRow) -> DatasetRow:
    return DatasetRow.objects.select_for_update().get(pk=dataset.pk)


def _round_points(points: Iterable[Iterable[float]]) -> list[list[float]]:
    return [[round(float(x), 3), round(float(y), 3)] for x, y in points]


def instance_to_ml(row: KeypointInstance) -> Instance:
    """The ml library's view of a stored instance (provenance human or model@version with confidence)."""
    if row.source == HUMAN:
        provenance = Provenance(
            HUMAN,
            author=row.labelled_by_name or None,
            created_at=row.labelled_at.isoformat(timespec="seconds") if row.labelled_at else None,
        )
    else:
        provenance = Provenance(row.source, confidence=row.confidence)
    return Instance(
        box=tuple(row.box),
        keypoints=np.asarray(row.keypoints, dtype=np.float64),
        visibility=np.asarray(row.visibility, dtype=np.int64),
        provenance=provenance,
    )


def _instance_row(
    *,
    dataset: DatasetRow,
    photo: Photo,
    instance: Instance,
    labelled_by: AbstractBaseUser | None = None,
    derived_from: KeypointInstance | None = None,
) -> KeypointInstance:
    provenance = instance.provenance
    human = provenance.is_human
    labelled_at = None
    if human:
        labelled_at = (
            datetime.datetime.fromisoformat(provenance.created_at)
            if provenance.created_at
            else timezone.now()
        )
    return KeypointInstance.objects.create(
        dataset=dataset,
        photo=photo,
        box=[round(float(value), 3) for value in instance.box],
        keypoints=_round_points(instance.keypoints),
        visibility=[int(value) for value in instance.visibility],
        source=provenance.source,
        confidence=provenance.confidence,
        labelled_by=labelled_by if human else None,
        labelled_by_name=(provenance.author or (labelled_by.get_username() if labelled_by else ""))
        if human
        else "",
        labelled_at=labelled_at,
        derived_from=derived_from,
    )


def _signature(instance: Instance) -> str:
    return json.dumps(instance.as_dict(), sort_keys=True)


def _fix_splits(dataset: DatasetRow, wanted: dict[int, str], *, new_photos_may_be_val: bool) -> None:
    """Record the split of photos new to the dataset; a known photo's split must not change."""
    known = dict(
        DatasetPhoto.objects.filter(dataset=dataset, photo_id__in=wanted).values_list("photo_id", "split")
    )
    for photo_id, split in wanted.items():
        if photo_id in known:
            if known[photo_id] != split:
                raise SplitRuleError(
                    f"Photo {photo_id} is in the {known[photo_id]} split of '{dataset.name}'; "
                    "a photo's split is fixed when it enters the dataset."
                )
        elif split == Split.VAL and not new_photos_may_be_val:
            raise SplitRuleError(
                f"Photo {photo_id} would enter the validation split with model labels; validation labels "
                "come only from people or the iteration-0 teacher."
            )
    DatasetPhoto.objects.bulk_create(
        [
            DatasetPhoto(dataset=dataset, photo_id=photo_id, split=split)
            for photo_id, split in wanted.items()
            if photo_id not in known
        ]
    )


def version_instances(version: KeypointDatasetVersion) -> QuerySet[KeypointInstance]:
    return version.instances.select_related("photo").order_by("photo_id", "pk")


def version_from_ml(
    *,
    dataset: DatasetRow,
    ml_dataset: KeypointDataset,
    photos: dict[str, Photo],
    parent: KeypointDatasetVersion | None,
    source: str,
    note: str,
    campaign_iteration: CampaignIteration | None = None,
) -> KeypointDatasetVersion:
    """Write a version that an ml step produced from `parent`, checking the campaign's bookkeeping.

    `photos` maps the ml record paths to photos. Instances equal to one of the parent's on the same photo
    keep their row; the others are new rows. Every instance of the parent must still be there (the merge
    keeps originals), new model labels may only sit on training photos, and a photo's split never changes.
    """
    with transaction.atomic():
        dataset = _locked(dataset)
        previous: dict[int, list[KeypointInstance]] = defaultdict(list)
        if parent is not None:
            for row in version_instances(parent):
                previous[row.photo_id].append(row)
        wanted_splits: dict[int, str] = {}
        new_rows: list[tuple[Photo, Instance]] = []
        kept: list[KeypointInstance] = []
        for record in ml_dataset.images:
            if record.path not in photos:
                raise LandmarkDataError(
                    f"The campaign returned an image the platform did not give it: {record.path}."
                )
            photo = photos[record.path]
            if record.instances:
                wanted_splits[photo.pk] = record.split
            available = {_signature(instance_to_ml(row)): row for row in previous.pop(photo.pk, [])}
            for instance in record.instances:
                match = available.pop(_signature(instance), None)
                if match is not None:
                    kept.append(match)
                else:
                    new_rows.append((photo, instance))
            if available:
                raise LandmarkDataError(
                    f"The campaign dropped {len(available)} existing label(s) of photo {photo.pk}; "
                    "original labels are always kept."
                )
        if any(previous.values()):
            missing = sorted(photo_id for photo_id, rows in previous.items() if rows)
            raise LandmarkDataError(
                f"The campaign dropped all labels of photo(s) {missing[:5]}; original labels are always kept."
            )
        _fix_splits(
            dataset,
            wanted_splits,
            new_photos_may_be_val=source in (VersionSource.TEACHER, VersionSource.IMPORT),
        )
        splits = dict(DatasetPhoto.objects.filter(dataset=dataset).values_list("photo_id", "split"))
        created = []
        for photo, instance in new_rows:
            if splits.get(photo.pk) == Split.VAL and source == VersionSource.CAMPAIGN:
                raise SplitRuleError(
                    f"Pseudo-labels were offered for validation photo {photo.pk}; the validation split is "
                    "never predicted into."
                )
            created.append(_instance_row(dataset=dataset, photo=photo, instance=instance))
        return _version_write(
            dataset=dataset,
            instances=kept + created,
            source=source,
            note=note,
            actor=None,
            parent=parent,
            campaign_iteration=campaign_iteration,
        )


def photo_file_name(photo: Photo) -> str:
    """Pseudonymous file name of a photo in exports and campaign folders."""
    return f"photo-{photo.pk}{Path(photo.image.name).suffix.lower() or '.png'}"


def version_to_ml(
    version: KeypointDatasetVersion, image_root: str | None = None, pool: Sequence[Photo] = ()
) -> tuple[KeypointDataset, dict[str, Photo]]:
    """The ml dataset of a version: its labelled photos (plus unlabelled `pool` photos as training images).

    Paths are the pseudonymous `photo-<id>.<ext>` names; returns the dataset and the path → photo map.
    """
    splits = dict(DatasetPhoto.objects.filter(dataset=version.dataset).values_list("photo_id", "split"))
    by_photo: dict[int, list[KeypointInstance]] = defaultdict(list)
    photos: dict[int, Photo] = {}
    for row in version_instances(version):
        by_photo[row.photo_id].append(row)
        photos[row.photo_id] = row.photo
    for photo in pool:
        if photo.pk not in photos and splits.get(photo.pk, Split.TRAIN) == Split.TRAIN:
            photos[photo.pk] = photo
    records, names = [], {}
    for photo_id in sorted(photos):
        photo = photos[photo_id]
        name = photo_file_name(photo)
        names[name] = photo
        records.append(
            ImageRecord(
                path=name,
                width=photo.width,
                height=photo.height,
                split=splits.get(photo_id, Split.TRAIN),
                instances=tuple(instance_to_ml(row) for row in by_photo.get(photo_id, [])),
            )
        )
    return KeypointDataset(tuple(records), image_root), names
