"""Human zone annotations: import CVAT exports into a study, and export a zone-training dataset.

Import reads "CVAT for images 1.1" XML (polygons and boxes; the XML alone or the ZIP CVAT downloads)
and "Segmentation mask 1.1" ZIPs with `ml.zones.cvat`. Every image name must identify a photo of the
study (`photo-<id>.<ext>`, the name Facet's exports use, or `<subject>/<visit>/<view>.<ext>`) at the
stored photo's size. An import is atomic: every problem is reported per image and nothing is stored
unless the whole file is valid. Each photo × zone becomes a new immutable `ZoneAnnotation` version.

The export is what `python -m ml zones build-dataset --faces DIR/photos --cvat-xml DIR/annotations.xml`
reads: the annotated photos named `photo-<id>.png` and their latest masks in a CVAT for images 1.1 XML.
"""

from __future__ import annotations

import hashlib
import io
import tempfile
import xml.etree.ElementTree as ET
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import PurePosixPath
from typing import IO

import numpy as np
from django.contrib.auth.models import AbstractBaseUser
from django.core.files.base import ContentFile
from django.db import transaction
from django.db.models import Max
from django.http import HttpRequest
from PIL import Image

from ml.zones.atlas import ZONE_ABBREVIATIONS
from ml.zones.cvat import CvatImportError, parse_cvat_images_xml, parse_labelmap, parse_segmentation_mask
from ml.zones.cvat import ZoneAnnotation as CvatZones
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.labeling.models import ZoneAnnotation, ZoneAnnotationFormat, ZoneAnnotationImport
from webapp.labeling.services import encode_png
from webapp.spreadsheets import SafeCsvWriter
from webapp.studies.models import Photo, Study

MAX_IMPORT_BYTES = 200 * 1024 * 1024
MAX_UNPACKED_BYTES = 1024 * 1024 * 1024
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")
CVAT_XML_NAME = "annotations.xml"
EXPORT_README = """Facet zone-training dataset (human zone annotations, latest version of each photo x zone).

photos/photo-<id>.png        the stored photos (metadata stripped)
annotations.xml              CVAT for images 1.1: every zone mask as <box> shapes that rasterise exactly
                             to the stored mask (pixel centres), labelled with the zone abbreviation
masks/photo-<id>/<ZONE>.png  the same masks as binary PNGs (0/255)
zone_annotations.csv         which annotation version each mask is, who imported it and when

Build a training dataset where these human zones replace the landmark pseudo-labels zone by zone:

    python -m ml zones build-dataset --faces photos --cvat-xml annotations.xml --out var/zones-study

(add --faces/--fasseg folders of other data as usual). Patient photos: research use under the study's
protocol only; do not copy them into a code repository.
"""


class ZoneImportError(ValueError):
    """A CVAT export that cannot be imported; `message` is a sentence, `problems` one line per item."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []


@dataclass(frozen=True)
class CvatImage:
    """The zones of one image of a CVAT export, under its full name in the export."""

    name: str
    zones: CvatZones


@dataclass
class ParsedExport:
    source_format: str
    images: list[CvatImage] = field(default_factory=list)


# Reading an uploaded CVAT export --------------------------------------------------------------------------


def _xml_images(content: bytes) -> list[CvatImage]:
    """Each <image> is read on its own by `ml.zones.cvat`, so names that share a stem
    (`S1/baseline/frontal.jpg`, `S2/baseline/frontal.jpg`) stay apart."""
    try:
        root = ET.fromstring(content)
    except ET.ParseError as error:
        raise ZoneImportError(f"The file is not readable XML: {error}.") from error
    elements = root.findall("image")
    if root.tag != "annotations" or not elements:
        raise ZoneImportError(
            "The XML is not a 'CVAT for images 1.1' export (no <annotations> with <image> elements)."
        )
    images = []
    problems = []
    for element in elements:
        single = ET.Element("annotations")
        single.append(element)
        try:
            (zones,) = parse_cvat_images_xml(ET.tostring(single)).values()
        except CvatImportError as error:
            problems.append(str(error))
            continue
        images.append(CvatImage(element.get("name", ""), zones))
    if problems:
        raise ZoneImportError("The CVAT XML has malformed shapes.", problems)
    return images


def _safe_member(name: str) -> PurePosixPath:
    path = PurePosixPath(name)
    if path.is_absolute() or ".." in path.parts:
        raise ZoneImportError(f"The ZIP holds an unsafe path '{name}'.")
    return path


def _mask_images(archive: zipfile.ZipFile, root: PurePosixPath) -> list[CvatImage]:
    """Each SegmentationClass PNG is read on its own by `ml.zones.cvat`."""
    try:
        colours = parse_labelmap(archive.read(str(root / "labelmap.txt")).decode("utf-8", errors="replace"))
    except CvatImportError as error:
        raise ZoneImportError("The labelmap.txt of the export cannot be read.", [str(error)]) from error
    class_dir = root / "SegmentationClass"
    members = sorted(
        name
        for name in archive.namelist()
        if name.lower().endswith(".png") and PurePosixPath(name).is_relative_to(class_dir)
    )
    images = []
    problems = []
    for name in members:
        try:
            zones = parse_segmentation_mask(archive.read(name), colours, PurePosixPath(name).name)
        except CvatImportError as error:
            problems.append(f"{name}: {error}")
            continue
        relative = PurePosixPath(name).relative_to(class_dir)
        images.append(CvatImage(str(relative), zones))
    if problems:
        raise ZoneImportError("The segmentation masks cannot be read.", problems)
    if not images:
        raise ZoneImportError("The Segmentation mask export holds no PNG under SegmentationClass/.")
    return images


def parse_cvat_export(content: bytes) -> ParsedExport:
    """The zones per image of a CVAT export: XML, a CVAT for images 1.1 ZIP or a Segmentation mask 1.1 ZIP."""
    if len(content) > MAX_IMPORT_BYTES:
        raise ZoneImportError(f"The file is larger than {MAX_IMPORT_BYTES // (1024 * 1024)} MB.")
    if not zipfile.is_zipfile(io.BytesIO(content)):
        return ParsedExport(ZoneAnnotationFormat.CVAT_IMAGES_XML, _xml_images(content))
    with zipfile.ZipFile(io.BytesIO(content)) as archive:
        names = [str(_safe_member(name)) for name in archive.namelist()]
        if sum(info.file_size for info in archive.infolist()) > MAX_UNPACKED_BYTES:
            raise ZoneImportError("The ZIP unpacks to more than 1 GB.")
        labelmaps = [PurePosixPath(n) for n in names if PurePosixPath(n).name == "labelmap.txt"]
        if labelmaps:
            root = min(labelmaps, key=lambda p: len(p.parts)).parent
            return ParsedExport(ZoneAnnotationFormat.CVAT_SEGMENTATION_MASK, _mask_images(archive, root))
        xmls = [n for n in names if PurePosixPath(n).name == CVAT_XML_NAME]
        if xmls:
            return ParsedExport(ZoneAnnotationFormat.CVAT_IMAGES_XML, _xml_images(archive.read(xmls[0])))
    raise ZoneImportError(
        "The ZIP is neither a 'Segmentation mask 1.1' export (labelmap.txt + SegmentationClass/) "
        "nor a 'CVAT for images 1.1' export (annotations.xml)."
    )


# Matching image names to photos ---------------------------------------------------------------------------


def _without_image_suffix(name: str) -> PurePosixPath:
    path = PurePosixPath(name.replace("\\", "/"))
    return path.with_suffix("") if path.suffix.lower() in IMAGE_SUFFIXES else path


def photo_for_image_name(study: Study, name: str) -> Photo | None:
    """The study's photo named `photo-<id>[.ext]` or `<subject>/<visit>/<view>[.ext]`, or None."""
    path = _without_image_suffix(name)
    if len(path.parts) == 1 and path.name.startswith("photo-") and path.name[6:].isdigit():
        return Photo.objects.filter(study=study, pk=int(path.name[6:])).first()
    if len(path.parts) == 3:
        subject, visit, view = path.parts
        photos = Photo.objects.filter(
            study=study, visit__subject__code=subject, visit__label=visit, view=view.lower()
        ).order_by("-uploaded_at")
        return photos.first()
    return None


@dataclass(frozen=True)
class MatchedImage:
    photo: Photo
    image: CvatImage
    zones: list[str]


def match_images(study: Study, images: Iterable[CvatImage]) -> tuple[list[MatchedImage], list[str]]:
    """Photos and annotated zones of each image, and the names of images without any zone shape.

    Raises ZoneImportError listing every unknown image, unknown label, size mismatch and duplicate."""
    matched: list[MatchedImage] = []
    skipped: list[str] = []
    problems: list[str] = []
    seen: dict[int, str] = {}
    for image in images:
        zones = [ZONE_ABBREVIATIONS[i] for i in np.nonzero(image.zones.annotated)[0]]
        # ml.zones.cvat lists shapes it cannot read as "<label> (<kind> shapes are not supported)".
        unsupported = [label for label in image.zones.unknown_labels if "shapes are not supported" in label]
        unknown = [label for label in image.zones.unknown_labels if label not in unsupported]
        if unknown:
            problems.append(
                f"{image.name}: labels that are not zone abbreviations: "
                f"{', '.join(unknown)} (rename them in CVAT to one of the 33 zones)."
            )
        if unsupported:
            problems.append(
                f"{image.name}: shapes other than polygons and boxes: {', '.join(unsupported)}; "
                "draw zones as polygons, or export a Segmentation mask 1.1 ZIP."
            )
        if not zones and not image.zones.unknown_labels:
            skipped.append(image.name)
            continue
        photo = photo_for_image_name(study, image.name)
        if photo is None:
            problems.append(
                f"{image.name}: no photo of this study has this name; name images 'photo-<id>.<ext>' "
                "(as Facet exports them) or '<subject>/<visit>/<view>.<ext>'."
            )
            continue
        height, width = image.zones.masks.shape[1:]
        if (width, height) != (photo.width, photo.height):
            problems.append(
                f"{image.name}: annotated at {width}×{height} px but photo {photo.pk} is "
                f"{photo.width}×{photo.height} px; annotate the photo at its stored size."
            )
            continue
        if photo.pk in seen:
            problems.append(f"{image.name}: photo {photo.pk} is also annotated as '{seen[photo.pk]}'.")
            continue
        seen[photo.pk] = image.name
        matched.append(MatchedImage(photo, image, zones))
    if problems:
        raise ZoneImportError(
            f"Nothing was imported: {len(problems)} problem{'s' if len(problems) > 1 else ''} in the export.",
            problems,
        )
    if not matched:
        raise ZoneImportError("Nothing was imported: the export holds no zone shapes.")
    return matched, skipped


# Storing -------------------------------------------------------------------------------------------------


def zone_annotations_import(
    *,
    study: Study,
    author: AbstractBaseUser,
    content: bytes,
    request: HttpRequest | None = None,
) -> ZoneAnnotationImport:
    """Import a CVAT export into `study` completely or not at all (ZoneImportError, nothing stored).

    Callers check Capability.MANAGE_STUDY."""
    parsed = parse_cvat_export(content)
    matched, skipped = match_images(study, parsed.images)
    with transaction.atomic():
        # Lock the photos so concurrent imports cannot take the same version number.
        list(Photo.objects.select_for_update().filter(pk__in=[m.photo.pk for m in matched]))
        newest = {
            (row["photo_id"], row["zone"]): row["newest"]
            for row in ZoneAnnotation.objects.filter(photo__in=[m.photo for m in matched])
            .values("photo_id", "zone")
            .annotate(newest=Max("version"))
        }
        batch = ZoneAnnotationImport.objects.create(
            study=study,
            source_format=parsed.source_format,
            file_sha256=hashlib.sha256(content).hexdigest(),
            photo_count=len(matched),
            annotation_count=sum(len(m.zones) for m in matched),
            skipped_images=skipped,
            author=author,
            author_username=author.get_username(),
        )
        created = []
        for item in matched:
            for zone in item.zones:
                mask = item.image.zones.masks[ZONE_ABBREVIATIONS.index(zone)]
                annotation = ZoneAnnotation(
                    annotation_import=batch,
                    photo=item.photo,
                    zone=zone,
                    version=newest.get((item.photo.pk, zone), 0) + 1,
                    pixels=int(mask.sum()),
                    source_format=parsed.source_format,
                    image_name=item.image.name[:255],
                    author=author,
                    author_username=author.get_username(),
                )
                png = encode_png(mask.astype(np.uint8) * 255)
                annotation.mask.save("mask.png", ContentFile(png), save=False)
                annotation.save()
                created.append(annotation)
        audit_record(
            action=AuditAction.CREATE,
            summary=f"Imported {len(created)} human zone annotations on {len(matched)} photos",
            actor=author,
            target=batch,
            request=request,
            details={
                "format": parsed.source_format,
                "file_sha256": batch.file_sha256,
                "annotations": [[a.pk, a.photo_id, a.zone, a.version] for a in created],
                "skipped_images": skipped,
            },
        )
    return batch


# Export --------------------------------------------------------------------------------------------------


def mask_to_boxes(mask: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Rectangles `(x0, y0, x1, y1)` (end-exclusive pixel indices) whose union is exactly `mask`.

    Row runs are merged downwards while they repeat unchanged, so blocky regions need few boxes."""
    boxes = []
    open_runs: dict[tuple[int, int], int] = {}
    height = mask.shape[0]
    for y in range(height + 1):
        runs: set[tuple[int, int]] = set()
        if y < height:
            row = np.concatenate([[False], mask[y], [False]]).astype(np.int8)
            edges = np.flatnonzero(np.diff(row))
            runs = {(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)}
        for run in [run for run in open_runs if run not in runs]:
            boxes.append((run[0], open_runs.pop(run), run[1], y))
        for run in runs:
            open_runs.setdefault(run, y)
    return sorted(boxes, key=lambda box: (box[1], box[0]))


def cvat_images_xml(items: list[tuple[str, int, int, dict[str, np.ndarray]]]) -> bytes:
    """A CVAT for images 1.1 XML of `(image name, width, height, {zone: mask})`, masks as <box> shapes.

    Box edges lie on pixel borders (±0.5 around pixel centres), so `ml.zones.cvat` rasterises them back
    to exactly the masks."""
    root = ET.Element("annotations")
    ET.SubElement(root, "version").text = "1.1"
    meta = ET.SubElement(ET.SubElement(ET.SubElement(root, "meta"), "task"), "labels")
    for zone in ZONE_ABBREVIATIONS:
        label = ET.SubElement(meta, "label")
        ET.SubElement(label, "name").text = zone
        ET.SubElement(label, "type").text = "any"
    for number, (name, width, height, masks) in enumerate(items):
        image = ET.SubElement(root, "image", id=str(number), name=name, width=str(width), height=str(height))
        for zone, mask in masks.items():
            for x0, y0, x1, y1 in mask_to_boxes(mask):
                ET.SubElement(
                    image,
                    "box",
                    label=zone,
                    source="manual",
                    occluded="0",
                    xtl=f"{x0 - 0.5:.1f}",
                    ytl=f"{y0 - 0.5:.1f}",
                    xbr=f"{x1 - 0.5:.1f}",
                    ybr=f"{y1 - 0.5:.1f}",
                    z_order="0",
                )
    ET.indent(root)
    return ET.tostring(root, encoding="utf-8", xml_declaration=True)


def _read_mask(annotation: ZoneAnnotation) -> np.ndarray:
    with annotation.mask.open("rb") as handle:
        return np.asarray(Image.open(handle).convert("L")) > 127


def write_zone_dataset_zip(annotations: Iterable[ZoneAnnotation], target: IO[bytes]) -> int:
    """Write the zone-training ZIP of these (latest) annotations into `target`; returns the photo count."""
    by_photo: dict[int, list[ZoneAnnotation]] = {}
    for annotation in annotations:
        by_photo.setdefault(annotation.photo_id, []).append(annotation)
    rows = io.StringIO()
    index = SafeCsvWriter(rows)
    index.writerow(
        [
            "image",
            "photo_id",
            "subject",
            "visit",
            "view",
            "zone",
            "version",
            "pixels",
            "annotation_id",
            "import_id",
            "source_format",
            "cvat_image_name",
            "author",
            "created_at",
        ]
    )
    items = []
    with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for photo_id, group in sorted(by_photo.items()):
            photo = group[0].photo
            name = f"photo-{photo_id}.png"
            with photo.image.open("rb") as handle:
                archive.writestr(f"photos/{name}", handle.read(), compress_type=zipfile.ZIP_STORED)
            masks = {}
            for annotation in sorted(group, key=lambda a: ZONE_ABBREVIATIONS.index(a.zone)):
                masks[annotation.zone] = _read_mask(annotation)
                with annotation.mask.open("rb") as handle:
                    archive.writestr(f"masks/photo-{photo_id}/{annotation.zone}.png", handle.read())
                index.writerow(
                    [
                        name,
                        photo_id,
                        photo.visit.subject.code,
                        photo.visit.label,
                        photo.view,
                        annotation.zone,
                        annotation.version,
                        annotation.pixels,
                        annotation.pk,
                        annotation.annotation_import_id,
                        annotation.source_format,
                        annotation.image_name,
                        annotation.author_username,
                        annotation.created_at.isoformat(),
                    ]
                )
            items.append((name, photo.width, photo.height, masks))
        archive.writestr(CVAT_XML_NAME, cvat_images_xml(items))
        archive.writestr("zone_annotations.csv", rows.getvalue())
        archive.writestr("README.txt", EXPORT_README)
    return len(items)


def zone_dataset_export(
    *, study: Study, annotations: list[ZoneAnnotation], actor: AbstractBaseUser, request: HttpRequest | None
) -> IO[bytes]:
    """The zone-training ZIP in a temporary file (rewound), audited as an EXPORT of the study.

    Callers check Capability.EXPORT."""
    # The response closes it once sent (FileResponse), so no context manager here.
    target = tempfile.TemporaryFile()  # noqa: SIM115
    photo_count = write_zone_dataset_zip(annotations, target)
    target.seek(0)
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported the zone-training dataset of {photo_count} photos",
        actor=actor,
        target=study,
        request=request,
        details={"annotations": [[a.pk, a.photo_id, a.zone, a.version] for a in annotations]},
    )
    return target
