"""Writes of the landmark-campaign domain: datasets, immutable versions, import/export, review, campaigns.

Every function that changes state is audited. Versions are written under a row lock on their dataset,
so two writers (a reviewer and a campaign, say) never produce the same version number, and each new
version is derived from the latest one.
"""

import datetime
import hashlib
import io
import json
import math
import re
import tempfile
import xml.etree.ElementTree as ElementTree
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone

from ml.landmarks import formats
from ml.landmarks.formats import DatasetFormatError, ImageRecord, Instance, KeypointDataset, Provenance
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.campaigns.models import (
    CAMPAIGN_ACTIVE,
    HUMAN,
    Campaign,
    CampaignIteration,
    CampaignStatus,
    DatasetPhoto,
    KeypointDatasetVersion,
    KeypointInstance,
    LandmarkDetector,
    Split,
    StudyLandmarkSettings,
    VersionSource,
)
from webapp.campaigns.models import (
    KeypointDataset as DatasetRow,
)
from webapp.runs import dispatch, task_names
from webapp.studies.models import Photo, Study

NUM_KEYPOINTS = formats.NUM_KEYPOINTS
IMPORT_FORMATS = ("coco", "dlib", "pts")
EXPORT_FORMATS = ("yolo", "coco")
MAPPINGS = ("photo_id", "subject_visit_view")
PHOTO_NAME = re.compile(r"^(?:photo-)?(\d+)$")
FACE_SUFFIX = re.compile(r"_\d+$")
MAX_UNPACKED_LABEL_BYTES = 512 * 2**20


class LandmarkDataError(ValueError):
    """Bad input or a broken rule; `message` is a sentence for the user."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class SplitRuleError(LandmarkDataError):
    """Model labels offered for a validation photo, or a photo's fixed split changed."""


# Detector per study ---------------------------------------------------------------------------------


def detector_is_trained(name: str) -> bool:
    """Whether `name` has weights: shipped ones (ml registry; loads no model) or an active trained version."""
    from ml.registry import registry
    from webapp.analysis.selectors import active_model_version

    return bool(registry.describe(name).get("trained")) or active_model_version(name) is not None


def detector_set(
    *, study: Study, detector: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> StudyLandmarkSettings:
    """Choose the landmark detector of a study's landmark analyses; an untrained model is refused."""
    if detector not in LandmarkDetector.values:
        raise LandmarkDataError(f"Unknown landmark detector '{detector}'.")
    if detector != LandmarkDetector.DLIB_68 and not detector_is_trained(detector):
        raise LandmarkDataError(
            f"The {detector} detector has no trained weights yet; run a landmark campaign first."
        )
    study_settings, _ = StudyLandmarkSettings.objects.get_or_create(study=study)
    previous = study_settings.detector
    study_settings.detector = detector
    study_settings.updated_by = actor
    study_settings.save()
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Landmark detector of study {study.pk} set to {detector}",
        actor=actor,
        target=study,
        request=request,
        details={"previous": previous, "detector": detector},
    )
    return study_settings


# Datasets and versions ------------------------------------------------------------------------------


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


# Import ---------------------------------------------------------------------------------------------


def _photo_for_name(study: Study, file_name: str, mapping: str) -> Photo:
    """The study photo a label file names: `photo-<id>` / `<id>`, or `<subject>/<visit>/<view>`."""
    path = Path(file_name.replace("\\", "/"))
    if mapping == "photo_id":
        match = PHOTO_NAME.match(path.stem) or PHOTO_NAME.match(FACE_SUFFIX.sub("", path.stem))
        photo = Photo.objects.filter(study=study, pk=int(match.group(1))).first() if match else None
        if photo is None:
            raise LandmarkDataError(
                f"'{file_name}' names no photo of this study (expected photo-<id> or <id>, e.g. photo-12.png)"
            )
        return photo
    parts = path.with_suffix("").parts
    if len(parts) < 3:
        raise LandmarkDataError(
            f"'{file_name}' is not <subject code>/<visit label>/<view> (e.g. S001/baseline/frontal.jpg)."
        )
    subject, visit, view = parts[-3], parts[-2], FACE_SUFFIX.sub("", parts[-1])
    matches = list(
        Photo.objects.filter(study=study, visit__subject__code=subject, visit__label=visit, view=view)[:2]
    )
    if len(matches) != 1:
        problem = "no photo" if not matches else "more than one photo"
        raise LandmarkDataError(
            f"'{file_name}': this study has {problem} for subject {subject}, visit '{visit}', view {view}."
        )
    return matches[0]


def _check_size(photo: Photo, width: int, height: int, file_name: str) -> None:
    if (width, height) != (photo.width, photo.height):
        raise LandmarkDataError(
            f"'{file_name}' gives the image as {width}×{height} px but photo {photo.pk} is stored as "
            f"{photo.width}×{photo.height} px; labels must be in the stored photo's pixel frame."
        )


def _check_unpacked_size(archive: zipfile.ZipFile, names: Sequence[str]) -> None:
    # A small ZIP can unpack to gigabytes; label files are small.
    if sum(archive.getinfo(name).file_size for name in names) > MAX_UNPACKED_LABEL_BYTES:
        raise LandmarkDataError(
            f"The label files in the ZIP unpack to more than {MAX_UNPACKED_LABEL_BYTES // 2**20} MB."
        )


def _read_coco(study: Study, content: bytes, mapping: str) -> list[tuple[Photo, ImageRecord, bool]]:
    if content[:2] == b"PK":
        with zipfile.ZipFile(io.BytesIO(content)) as archive:
            json_names = [name for name in archive.namelist() if name.endswith(".json")]
            if len(json_names) != 1:
                raise LandmarkDataError("A COCO ZIP must hold exactly one .json file.")
            _check_unpacked_size(archive, json_names)
            content = archive.read(json_names[0])
    try:
        document = json.loads(content)
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise LandmarkDataError(f"The COCO file is not valid JSON ({error}).") from error
    if not isinstance(document, dict):
        raise LandmarkDataError("The COCO file must hold a JSON object with 'images' and 'annotations'.")
    has_split = {image.get("id"): "facet_split" in image for image in document.get("images", [])}
    dataset = formats.from_coco(document)
    rows = []
    for image, record in zip(document["images"], dataset.images, strict=True):
        photo = _photo_for_name(study, record.path, mapping)
        _check_size(photo, record.width, record.height, record.path)
        rows.append((photo, record, has_split.get(image.get("id"), False)))
    return rows


def _read_dlib(
    study: Study, content: bytes, mapping: str, folder: Path
) -> list[tuple[Photo, ImageRecord, bool]]:
    try:
        tree = ElementTree.fromstring(content)
    except ElementTree.ParseError as error:
        raise LandmarkDataError(f"The dlib XML file is not valid XML ({error}).") from error
    photos = []
    for image in tree.iter("image"):
        file_name = image.get("file") or ""
        photo = _photo_for_name(study, file_name, mapping)
        if image.get("width") and image.get("height"):
            _check_size(photo, int(image.get("width")), int(image.get("height")), file_name)
        # The platform knows each photo's size, so the ml reader need not open image files.
        image.set("width", str(photo.width))
        image.set("height", str(photo.height))
        photos.append(photo)
    path = folder / "labels.xml"
    ElementTree.ElementTree(tree).write(path)
    dataset = formats.read_dlib_xml(path)
    return [(photo, record, False) for photo, record in zip(photos, dataset.images, strict=True)]


def _read_pts_zip(
    study: Study, content: bytes, mapping: str, folder: Path, one_based: bool
) -> list[tuple[Photo, ImageRecord, bool]]:
    try:
        archive = zipfile.ZipFile(io.BytesIO(content))
    except zipfile.BadZipFile as error:
        raise LandmarkDataError("iBUG .pts labels are uploaded as one ZIP of .pts files.") from error
    by_photo: dict[int, list[Instance]] = defaultdict(list)
    photos: dict[int, Photo] = {}
    with archive:
        names = sorted(name for name in archive.namelist() if name.lower().endswith(".pts"))
        if not names:
            raise LandmarkDataError("The ZIP holds no .pts file.")
        _check_unpacked_size(archive, names)
        for index, name in enumerate(names):
            target = folder / f"{index}.pts"
            target.write_bytes(archive.read(name))
            photo = _photo_for_name(study, name, mapping)
            try:
                points = formats.read_pts(target, one_based=one_based)
            except DatasetFormatError as error:
                raise LandmarkDataError(f"{name}: {str(error).split(': ', 1)[-1]}") from error
            photos[photo.pk] = photo
            by_photo[photo.pk].append(Instance.from_points(points))
    return [
        (
            photos[photo_id],
            ImageRecord(
                photo_file_name(photos[photo_id]),
                photos[photo_id].width,
                photos[photo_id].height,
                "train",
                tuple(instances),
            ),
            False,
        )
        for photo_id, instances in sorted(by_photo.items())
    ]


def labels_import(
    *,
    dataset: DatasetRow,
    fmt: str,
    content: bytes,
    mapping: str,
    actor: AbstractBaseUser,
    val_fraction: float = 0.2,
    one_based: bool = True,
    seed: int = 0,
    request: HttpRequest | None = None,
) -> KeypointDatasetVersion:
    """Import 68-point labels for photos of the dataset's study and write them as the next version.

    The imported labels replace the latest version's labels of the same photos (earlier versions keep
    them). Photos new to the dataset get a split: a COCO file's `facet_split`, else a seeded draw with
    `val_fraction`; photos already in the dataset keep theirs, and a `facet_split` contradicting it is an
    error.
    """
    if fmt not in IMPORT_FORMATS:
        raise LandmarkDataError(f"Unknown import format '{fmt}'; use one of {', '.join(IMPORT_FORMATS)}.")
    if mapping not in MAPPINGS:
        raise LandmarkDataError(f"Unknown file-name mapping '{mapping}'.")
    if not 0.0 <= val_fraction < 1.0:
        raise LandmarkDataError("The validation fraction must lie in [0, 1).")
    study = dataset.study
    with tempfile.TemporaryDirectory(prefix="facet-import-") as folder:
        try:
            if fmt == "coco":
                rows = _read_coco(study, content, mapping)
            elif fmt == "dlib":
                rows = _read_dlib(study, content, mapping, Path(folder))
            else:
                rows = _read_pts_zip(study, content, mapping, Path(folder), one_based)
        except DatasetFormatError as error:
            raise LandmarkDataError(str(error).replace(folder, "upload")) from error
    rows = [row for row in rows if row[1].instances]
    if not rows:
        raise LandmarkDataError("The file holds no labelled face.")
    if len({photo.pk for photo, _, _ in rows}) != len(rows):
        raise LandmarkDataError("The file lists a photo more than once.")
    with transaction.atomic():
        dataset = _locked(dataset)
        known = dict(DatasetPhoto.objects.filter(dataset=dataset).values_list("photo_id", "split"))
        new = [photo for photo, _, _ in rows if photo.pk not in known]
        drawn: dict[int, str] = {}
        unsplit = [photo for photo, record, has_split in rows if photo.pk not in known and not has_split]
        if len(unsplit) >= 2 and val_fraction > 0:
            from ml.landmarks.campaign import assign_split

            drawn = {
                int(key): value
                for key, value in assign_split(
                    [str(photo.pk) for photo in unsplit], val_fraction, seed
                ).items()
            }
        wanted = {}
        for photo, record, has_split in rows:
            if has_split:  # an explicit split that contradicts a fixed one is refused, not ignored
                wanted[photo.pk] = record.split
            elif photo in new:
                wanted[photo.pk] = drawn.get(photo.pk, Split.TRAIN)
        _fix_splits(dataset, wanted, new_photos_may_be_val=True)
        parent = dataset.versions.order_by("-number").first()
        covered = {photo.pk for photo, _, _ in rows}
        kept = [row for row in version_instances(parent) if row.photo_id not in covered] if parent else []
        created = [
            _instance_row(dataset=dataset, photo=photo, instance=instance, labelled_by=actor)
            for photo, record, _ in rows
            for instance in record.instances
        ]
        version = _version_write(
            dataset=dataset,
            instances=kept + created,
            source=VersionSource.IMPORT,
            note=f"import of {len(created)} face(s) on {len(rows)} photo(s) from {fmt}",
            actor=actor,
            parent=parent,
            request=request,
        )
    return version


# Export ---------------------------------------------------------------------------------------------


def _copy_photo(photo: Photo, target: Path) -> None:
    with photo.image.open("rb") as source:
        target.write_bytes(source.read())


def version_export(
    *, version: KeypointDatasetVersion, fmt: str, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> tuple[str, bytes]:
    """A ZIP of a version in YOLO-pose or COCO keypoints, images named `photo-<id>` only; audited EXPORT."""
    if fmt not in EXPORT_FORMATS:
        raise LandmarkDataError(f"Unknown export format '{fmt}'; use one of {', '.join(EXPORT_FORMATS)}.")
    dataset = version.dataset
    buffer = io.BytesIO()
    with tempfile.TemporaryDirectory(prefix="facet-export-") as folder:
        root = Path(folder)
        images = root / "images"
        images.mkdir()
        ml_dataset, photos = version_to_ml(version, image_root=str(images))
        if not ml_dataset.images:
            raise LandmarkDataError(f"Version {version.name} holds no label to export.")
        for name, photo in photos.items():
            _copy_photo(photo, images / name)
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            if fmt == "coco":
                document = formats.to_coco(KeypointDataset(ml_dataset.images, None))
                archive.writestr("annotations.json", json.dumps(document, indent=1))
                for name in photos:
                    archive.write(images / name, f"images/{name}")
            else:
                try:
                    data_yaml = formats.export_yolo_pose(ml_dataset, root / "yolo")
                except DatasetFormatError as error:
                    raise LandmarkDataError(str(error)) from error
                _zip_yolo(archive, data_yaml)
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported version {version.name} of keypoint dataset '{dataset.name}' as {fmt}",
        actor=actor,
        target=dataset,
        request=request,
        details={"version": version.number, "format": fmt, "photos": len(photos)},
    )
    return f"facet-{dataset.study_id}-{slug(dataset.name)}-{version.name}-{fmt}.zip", buffer.getvalue()


def _zip_yolo(archive: zipfile.ZipFile, data_yaml: Path) -> None:
    """Store a YOLO export with real image files and paths relative to the folder it unpacks into."""
    base = data_yaml.parent
    lines = [line for line in data_yaml.read_text().splitlines() if not line.startswith("path:")]
    # Without `path`, Ultralytics resolves the split lists against data.yaml's own folder.
    archive.writestr("data.yaml", "\n".join(lines) + "\n")
    for split in Split.values:
        entries = (base / f"{split}.txt").read_text().split()
        archive.writestr(f"{split}.txt", "".join(f"./{Path(entry).relative_to(base)}\n" for entry in entries))
        for entry in entries:
            image = Path(entry)
            relative = image.relative_to(base)
            archive.write(image.resolve(), str(relative))
            label = base / "labels" / split / image.with_suffix(".txt").name
            archive.write(label, str(label.relative_to(base)))


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "-", text).strip("-")[:40] or "dataset"


# Review ---------------------------------------------------------------------------------------------


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


# Campaigns ------------------------------------------------------------------------------------------


def campaign_run_dir(campaign: Campaign) -> Path:
    """A new folder per campaign run (ml campaigns refuse a folder that already holds versions)."""
    base = Path(getattr(settings, "FACET_CAMPAIGN_DIR", settings.VAR_DIR / "campaigns"))
    return (
        base / f"study-{campaign.study_id}" / f"{campaign.name}-{campaign.pk}-{timezone.now():%Y%m%d%H%M%S}"
    )


def _send_campaign(campaign: Campaign) -> None:
    dispatch.send_task(task_names.LANDMARK_CAMPAIGN, args=[campaign.pk], queue=campaign.queue)


def campaign_create(
    *,
    study: Study,
    dataset: DatasetRow,
    name: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
    **options: Any,
) -> Campaign:
    """Create a campaign and send it to its queue once the transaction commits.

    Without `teacher_model` it starts from the dataset's latest version, which needs labelled training
    and validation photos; with a teacher the dataset must still be empty (the teacher's labels are v0).
    """
    if dataset.study_id != study.pk:
        raise LandmarkDataError("The dataset belongs to another study.")
    if Campaign.objects.filter(dataset=dataset, status__in=CAMPAIGN_ACTIVE).exists():
        raise LandmarkDataError("A campaign on this dataset is already queued or running.")
    latest = dataset.latest_version
    teacher = options.get("teacher_model") or ""
    if teacher:
        if latest is not None:
            raise LandmarkDataError(
                "A teacher labels an empty dataset; this one has versions already. "
                "Start from its labels instead, or create a new dataset."
            )
        if not Photo.objects.filter(study=study).count() >= 2:
            raise LandmarkDataError("A teacher campaign needs at least two photos in the study.")
    else:
        if latest is None:
            raise LandmarkDataError("The dataset has no labels yet: import labels or choose a teacher model.")
        counts = latest.counts
        if not counts.get("train_instances") or not counts.get("val_instances"):
            raise LandmarkDataError(
                f"Version {latest.name} needs labels in both splits "
                f"(train {counts.get('train_instances', 0)}, "
                f"val {counts.get('val_instances', 0)})."
            )
    for field, low, high in (
        ("min_confidence", 0.0, 1.0),
        ("max_iou", 0.0, 1.0),
        ("labelled_fraction", 0.0, 1.0),
        ("val_fraction", 0.0, 0.9),
    ):
        if field in options and not low < float(options[field]) <= high:
            raise LandmarkDataError(f"{field.replace('_', ' ')} must lie in ({low}, {high}].")
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                study=study,
                dataset=dataset,
                name=name,
                start_version=None if teacher else latest,
                requested_by=actor,
                **options,
            )
    except IntegrityError as error:
        raise LandmarkDataError(f"This study already has a campaign named '{name}'.") from error
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Queued landmark campaign '{name}'",
        actor=actor,
        target=campaign,
        request=request,
        details={"options": options, "start": latest.name if latest and not teacher else None},
    )
    transaction.on_commit(lambda: _send_campaign(campaign))
    return campaign


def campaign_cancel(
    *, campaign: Campaign, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> Campaign:
    """Cancel a queued or running campaign; a running one stops at its next epoch end."""
    updated = Campaign.objects.filter(pk=campaign.pk, status__in=CAMPAIGN_ACTIVE).update(
        status=CampaignStatus.CANCELLED, finished_at=timezone.now(), progress_message="Cancelled"
    )
    if not updated:
        raise LandmarkDataError("Only a queued or running campaign can be cancelled.")
    audit_record(
        action=AuditAction.STATE,
        summary=f"Cancelled landmark campaign '{campaign.name}'",
        actor=actor,
        target=campaign,
        request=request,
        details={"status": CampaignStatus.CANCELLED},
    )
    campaign.refresh_from_db()
    return campaign


def campaign_claim(*, campaign_id: int, worker: str) -> Campaign | None:
    """Mark a queued campaign running; None when it was cancelled, finished or deleted meanwhile."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status != CampaignStatus.QUEUED:
            return None
        campaign.status = CampaignStatus.RUNNING
        campaign.worker = worker
        campaign.started_at = timezone.now()
        campaign.progress_message = "Starting"
        campaign.save(update_fields=["status", "worker", "started_at", "progress_message"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Landmark campaign '{campaign.name}' started on {worker}",
        target=campaign,
        via="worker",
        details={"status": CampaignStatus.RUNNING},
    )
    return campaign


def campaign_report_progress(
    *, campaign_id: int, fraction: float, message: str, epoch: dict[str, Any] | None = None
) -> bool:
    """Store progress (and an epoch's losses); False when the campaign was cancelled meanwhile."""
    with transaction.atomic():
        campaign = Campaign.objects.select_for_update().filter(pk=campaign_id).first()
        if campaign is None or campaign.status != CampaignStatus.RUNNING:
            return False
        campaign.progress = min(max(float(fraction), 0.0), 1.0)
        campaign.progress_message = message[:200]
        fields = ["progress", "progress_message"]
        if epoch is not None:
            campaign.epoch_log = [*campaign.epoch_log, epoch]
            fields.append("epoch_log")
        campaign.save(update_fields=fields)
    return True


def campaign_set_run_dir(*, campaign: Campaign, run_dir: Path) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(run_dir=str(run_dir))


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def campaign_record_iteration(
    *,
    campaign: Campaign,
    report: dict[str, Any],
    version_in: KeypointDatasetVersion | None,
) -> CampaignIteration:
    """Store one iteration's report row (`ml.landmarks.campaign.IterationReport` as a dict)."""
    counts, metrics = report["counts"], report["metrics"]
    return CampaignIteration.objects.create(
        campaign=campaign,
        k=report["iteration"],
        version_in=version_in,
        train_labels=counts["train_instances"],
        val_labels=counts["val_instances"],
        total_labels=counts["total_instances"],
        pseudo_labels_added=report.get("pseudo_labels_added"),
        precision=_metric(metrics, "pose_precision"),
        recall=_metric(metrics, "pose_recall"),
        ap50=_metric(metrics, "pose_ap50"),
        ap50_95=_metric(metrics, "pose_ap50_95"),
        keypoint_mse_px2=_metric(metrics, "keypoint_mse_px2"),
        keypoint_mean_error_px=_metric(metrics, "keypoint_mean_error_px"),
        nme=_metric(metrics, "nme_outer_eye_corners"),
        metrics=metrics,
        epochs=int(report.get("epochs") or 0),
        seconds=float(report.get("seconds") or 0.0),
        weights_path=str(report.get("weights") or ""),
    )


def campaign_attach_output(*, iteration: CampaignIteration, version_out: KeypointDatasetVersion) -> None:
    CampaignIteration.objects.filter(pk=iteration.pk).update(version_out=version_out)
    KeypointDatasetVersion.objects.filter(pk=version_out.pk).update(campaign_iteration=iteration)


def campaign_finish(*, campaign_id: int, status: str, error: str = "", message: str = "") -> None:
    """Record the end of a run; a cancelled campaign stays cancelled."""
    fields: dict[str, Any] = {"status": status, "finished_at": timezone.now(), "error": error[:5000]}
    if status == CampaignStatus.SUCCEEDED:
        fields.update(progress=1.0, progress_message=f"Finished. {message}"[:200])
    updated = Campaign.objects.filter(pk=campaign_id, status=CampaignStatus.RUNNING).update(**fields)
    if updated:
        campaign = Campaign.objects.get(pk=campaign_id)
        audit_record(
            action=AuditAction.STATE,
            summary=f"Landmark campaign '{campaign.name}' {status}",
            target=campaign,
            via="worker",
            details={"status": status, "error": error[:500]},
        )


def campaign_register_model(*, campaign: Campaign) -> str:
    """Offer the last iteration's weights as an inactive yolo-pose68 version that admins may activate.

    A model that matched no validation face is not offered. Returns a sentence saying what happened.
    """
    from webapp.analysis.services import model_version_register

    last = campaign.iteration_rows.order_by("-k").first()
    if last is None or not last.weights_path or not Path(last.weights_path).is_file():
        return "No weights were written, so no detector version was registered."
    if not last.metrics.get("val_faces_matched"):
        return (
            "The final model found none of the validation faces, so it was not offered as a detector; "
            "train longer or on more labels."
        )
    figures = {
        key: getattr(last, key)
        for key in (
            "precision",
            "recall",
            "ap50",
            "ap50_95",
            "nme",
            "keypoint_mean_error_px",
            "keypoint_mse_px2",
        )
    }
    version = f"campaign-{campaign.pk}-{campaign.name}-iter{last.k}"
    model_version_register(
        name=LandmarkDetector.YOLO_POSE_68,
        task="landmarks",
        version=version,
        source=f"landmark campaign {campaign.pk} ({campaign.name}) of study {campaign.study_id}",
        weights_path=last.weights_path,
        weights_sha256=hashlib.sha256(Path(last.weights_path).read_bytes()).hexdigest(),
        metrics={
            **figures,
            "val_faces": last.metrics.get("val_faces"),
            "val_faces_matched": last.metrics.get("val_faces_matched"),
        },
        model_card=(
            f"YOLOv8-pose 68-point detector trained by landmark campaign '{campaign.name}' "
            f"(iteration {last.k}, {last.total_labels} labels, {last.val_labels} of them validation labels). "
            f"On its validation split: pose AP50 {figures['ap50']}, NME {figures['nme']} over "
            f"{last.metrics.get('val_faces_matched')}/{last.metrics.get('val_faces')} matched faces. "
            "Pseudo-labels are model output, not all reviewed: check these figures before activating it."
        ),
    )
    return f"Registered yolo-pose68 version {version} (inactive) for site admins to review and activate."
