"""Importing 68-point labels (COCO keypoints, dlib XML, iBUG .pts) into the next version of a dataset.

The files are parsed from their bytes by ``ml.landmarks.formats``; nothing is written to disk."""

import io
import json
import re
import xml.etree.ElementTree as ElementTree
import zipfile
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.db import transaction
from django.http import HttpRequest

from ml.landmarks import formats
from ml.landmarks.formats import DatasetFormatError, ImageRecord, Instance
from webapp.campaigns.models import (
    DatasetPhoto,
    KeypointDatasetVersion,
    Split,
    VersionSource,
)
from webapp.campaigns.models import KeypointDataset as DatasetRow
from webapp.campaigns.services.errors import LandmarkDataError
from webapp.campaigns.services.versions import (
    _fix_splits,
    _instance_row,
    _locked,
    _version_write,
    photo_file_name,
    version_instances,
)
from webapp.studies.models import Photo, Study

IMPORT_FORMATS = ("coco", "dlib", "pts")


MAPPINGS = ("photo_id", "subject_visit_view")


PHOTO_NAME = re.compile(r"^(?:photo-)?(\d+)$")


FACE_SUFFIX = re.compile(r"_\d+$")


MAX_UNPACKED_LABEL_BYTES = 512 * 2**20


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


def _read_dlib(study: Study, content: bytes, mapping: str) -> list[tuple[Photo, ImageRecord, bool]]:
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
    dataset = formats.parse_dlib_xml(ElementTree.tostring(tree), "the dlib XML file")
    return [(photo, record, False) for photo, record in zip(photos, dataset.images, strict=True)]


def _read_pts_zip(
    study: Study, content: bytes, mapping: str, one_based: bool
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
        for name in names:
            photo = _photo_for_name(study, name, mapping)
            try:
                points = formats.parse_pts(archive.read(name), name, one_based=one_based)
            except DatasetFormatError as error:
                raise LandmarkDataError(str(error)) from error
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
    try:
        if fmt == "coco":
            rows = _read_coco(study, content, mapping)
        elif fmt == "dlib":
            rows = _read_dlib(study, content, mapping)
        else:
            rows = _read_pts_zip(study, content, mapping, one_based)
    except DatasetFormatError as error:
        raise LandmarkDataError(str(error)) from error
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
