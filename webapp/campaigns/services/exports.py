"""Exporting a dataset version as YOLO-pose or COCO keypoints (a ZIP, images named ``photo-<id>`` only)."""

import io
import json
import re
import tempfile
import zipfile
from pathlib import Path

from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest

from ml.landmarks import formats
from ml.landmarks.formats import DatasetFormatError, KeypointDataset
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.campaigns.models import (
    KeypointDatasetVersion,
    Split,
)
from webapp.campaigns.services.errors import LandmarkDataError
from webapp.campaigns.services.versions import version_to_ml
from webapp.studies.models import Photo

EXPORT_FORMATS = ("yolo", "coco")


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
