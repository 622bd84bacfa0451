"""Building the study's DICOM exports and importing DICOM photographs into a visit.

Reads go through `alive()` querysets (deleted subjects, visits and photos are never exported); the
callers (webapp.exports.views) check the user's capability and audit each export with its options.
"""

import contextlib
import csv
import datetime
import hashlib
import io
import re
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO

import numpy as np
from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files import File
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone
from PIL import Image

from ml.core.subject import subject_face
from webapp.analysis.models import Result
from webapp.analysis.pairs import latest_results
from webapp.analysis.services import photo_upload
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.exports import dicom, tabular
from webapp.exports.models import ExportFormat, ExportPurgeReason, StudyExport
from webapp.exports.tables import export_rows
from webapp.runs import dispatch
from webapp.runs.models import RunStateError, RunStatus
from webapp.runs.services import run_cancel, run_succeed
from webapp.stored_files import delete_on_commit
from webapp.studies.ingest import CaptureFields, IngestError
from webapp.studies.models import AnalysisKind, Photo, Study, Subject, Visit

# Above this size the archive is spooled to a temporary file instead of memory.
SPOOL_BYTES = 64 * 1024 * 1024


def photo_pixels(photo: Photo) -> np.ndarray:
    """The stored photo (a metadata-free 8-bit sRGB PNG) as an RGB uint8 array."""
    with photo.image.open("rb") as stored, Image.open(stored) as image:
        return np.asarray(image.convert("RGB"))


def _subject_landmarks(result) -> np.ndarray | None:
    faces = (result.data or {}).get("faces") or [] if result is not None else []
    if not faces:
        return None
    return np.asarray(subject_face(faces)["landmarks"], dtype=np.float64)


@dataclass
class DicomExport:
    """A ZIP of .dcm files and a manifest; `skipped` lists photos left out and why."""

    archive: tempfile.SpooledTemporaryFile
    files: int = 0
    skipped: list[dict] = field(default_factory=list)


def _safe_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._") or "visit"


def deidentified_patient_id(subject: Subject) -> str:
    """A stable pseudonym that differs from the study's subject code (which the recipient never sees)."""
    digest = hashlib.sha256(f"{settings.FACET_DICOM_UID_SEED}/deid-subject/{subject.pk}".encode()).hexdigest()
    return f"ANON-{digest[:10].upper()}"


def photo_identity(
    photo: Photo, *, series_number: int, instance_number: int, deidentified: bool, keep_subject_code: bool
) -> dicom.PhotoIdentity:
    """UIDs per subject (DICOM study), visit (series) and photo (instance), stable across exports; the
    de-identified ones derive from another salt so they cannot be matched to the identified ones."""
    seed = settings.FACET_DICOM_UID_SEED
    visit, subject = photo.visit, photo.visit.subject
    salt = "deidentified" if deidentified else "identified"
    identity = {
        "study_uid": dicom.stable_uid(seed, salt, "subject", subject.pk),
        "series_uid": dicom.stable_uid(seed, salt, "visit", visit.pk),
        "sop_uid": dicom.stable_uid(seed, salt, "photo", photo.pk),
        "series_number": series_number,
        "instance_number": instance_number,
    }
    if deidentified:
        patient_id = subject.code if keep_subject_code else deidentified_patient_id(subject)
        return dicom.PhotoIdentity(patient_id=patient_id, study_id="", **identity)
    return dicom.PhotoIdentity(
        patient_id=subject.code,
        study_id=f"F{photo.study_id}-S{subject.pk}"[:16],
        study_description=photo.study.name,
        series_description=f"{visit.label} ({visit.get_role_display()})",
        content_date=visit.date,
        acquisition_datetime=photo.capture_time,
        manufacturer=photo.camera_make,
        manufacturer_model=photo.camera_model,
        **identity,
    )


def dicom_photos(study: Study, subject_id: int | None = None) -> QuerySet[Photo]:
    """The living photos a DICOM export of ``study`` (or of one subject) holds, in the export's order."""
    photos = (
        Photo.objects.alive()
        .filter(study=study)
        .select_related("visit__subject", "study")
        .order_by("visit__subject__code", "visit__date", "visit__created_at", "visit_id", "uploaded_at", "pk")
    )
    return photos if subject_id is None else photos.filter(visit__subject_id=subject_id)


class NothingToExportError(ValueError):
    """A DICOM export that would be a ZIP without a photo: the study (or subject) has no living photo,
    or, de-identified, none with face landmarks to mask."""


def nothing_to_export(study: Study, subject_id: int | None) -> str:
    """Why a DICOM export of ``study`` (or of one subject) would hold no photo."""
    if subject_id is None:
        return f"The study {study.name!r} has no photos: there is nothing to export as DICOM."
    code = Subject.objects.filter(pk=subject_id).values_list("code", flat=True).first()
    return f"Subject {code} has no photos: there is nothing to export as DICOM."


def _landmarks_of(photos: QuerySet[Photo]) -> dict[int, Result]:
    """The latest landmark result of each of ``photos`` that has one."""
    return {
        photo_id: result
        for (photo_id, kind), result in latest_results(photos.values_list("pk", flat=True)).items()
        if kind == AnalysisKind.LANDMARKS
    }


def nothing_to_deidentify(photos: QuerySet[Photo]) -> str:
    """Why a de-identified export of ``photos`` would hold no photo (their faces cannot be masked)."""
    count = photos.count()
    return (
        f"None of the {count} photo{'s' if count != 1 else ''} has face landmarks to mask the eyes with: "
        "run the landmark analysis on them first, or export without de-identification."
    )


def dicom_export(
    study: Study,
    *,
    subject_id: int | None = None,
    deidentify: bool = False,
    method: str = dicom.DeidentifyMethod.MASK_EYES,
    keep_subject_code: bool = False,
    progress: Callable[[float, str], None] | None = None,
) -> DicomExport:
    """Every living photo of the study (or of one subject) as a VL Photographic Image in a ZIP;
    ``progress(fraction, message)`` hears of each photo (a background export's progress and cancel).

    De-identified, a photo without a face found by its landmark job is left out (listed in the
    manifest with the reason): Facet never writes an unmasked face into a de-identified export.
    """
    photos = dicom_photos(study, subject_id)
    if not photos.exists():
        # Deleted since the export was requested: a failed run says so, an empty ZIP would not.
        raise NothingToExportError(nothing_to_export(study, subject_id))
    landmarks = _landmarks_of(photos) if deidentify else {}
    # Handed to the response, which closes it when it has been sent.
    export = DicomExport(archive=tempfile.SpooledTemporaryFile(max_size=SPOOL_BYTES))  # noqa: SIM115
    manifest = io.StringIO()
    writer = csv.writer(manifest)
    writer.writerow(["file", "photo_id", "patient_id", "series_number", "instance_number", "status"])
    series: dict[int, int] = {}
    visits_per_subject: dict[int, int] = {}
    instances: dict[int, int] = {}
    total = photos.count() if progress is not None else 0
    with zipfile.ZipFile(export.archive, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        for done, photo in enumerate(photos):
            if progress is not None:
                progress(done / max(total, 1), f"Photo {done + 1} of {total}")
            visit, subject = photo.visit, photo.visit.subject
            if visit.pk not in series:
                visits_per_subject[subject.pk] = visits_per_subject.get(subject.pk, 0) + 1
                series[visit.pk] = visits_per_subject[subject.pk]
            instances[visit.pk] = instances.get(visit.pk, 0) + 1
            identity = photo_identity(
                photo,
                series_number=series[visit.pk],
                instance_number=instances[visit.pk],
                deidentified=deidentify,
                keep_subject_code=keep_subject_code,
            )
            pixels = photo_pixels(photo)
            if deidentify:
                points = _subject_landmarks(landmarks.get(photo.pk))
                if points is None:
                    reason = "left out: no face landmarks (run the landmark analysis) to mask the eyes with"
                    export.skipped.append({"photo_id": photo.pk, "reason": reason})
                    writer.writerow(["", photo.pk, identity.patient_id, "", "", reason])
                    continue
                pixels = dicom.deidentify_pixels(pixels, points, method)
                folder = f"{identity.patient_id}/visit-{identity.series_number}"
            else:
                folder = f"{_safe_name(subject.code)}/{_safe_name(visit.label)}"
            name = f"{folder}/{photo.view}-{identity.instance_number}.dcm"
            dataset = dicom.photo_dataset(pixels, identity, deidentified=method if deidentify else None)
            archive.writestr(name, dicom.dataset_bytes(dataset))
            writer.writerow(
                [name, photo.pk, identity.patient_id, identity.series_number, identity.instance_number, "ok"]
            )
            export.files += 1
        if not export.files:
            # Landmarks deleted or failed since the request: a ZIP of a manifest alone is no export.
            raise NothingToExportError(nothing_to_deidentify(photos))
        archive.writestr("manifest.csv", manifest.getvalue())
    export.archive.seek(0)
    return export


def dicom_import(
    *,
    visit: Visit,
    view: str,
    upload: UploadedFile,
    uploaded_by: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> Photo:
    """Import a VL Photographic image from a clinic camera into `visit`: the DICOM file is checked and
    decoded here, then the pixels go through the photo upload with all its checks (size, pixels,
    duplicates), metadata stripped; only capture time, camera make and model are kept.

    A file whose Patient ID is the code of another subject of the study is refused: it was meant for
    that subject. Any other Patient ID (a hospital number) is neither checked nor stored."""
    max_bytes = settings.FACET_MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > max_bytes:
        raise IngestError(
            f"The file is {upload.size / 1e6:.1f} MB, more than the limit of {max_bytes / 1e6:.1f} MB.",
            "file_too_large",
        )
    upload.seek(0)
    try:
        photo = dicom.read_vl_photo(upload.read(), max_pixels=settings.FACET_MAX_PIXELS)
    except dicom.DicomImportError as error:
        raise IngestError(error.message, error.code) from error
    subject = visit.subject
    other = (
        Subject.objects.alive()
        .filter(study=subject.study, code=photo.patient_id)
        .exclude(pk=subject.pk)
        .first()
    )
    if other is not None:
        raise IngestError(
            f"The DICOM file's Patient ID is {other.code}, another subject of this study; import it into "
            f"a visit of {other.code}, not of {subject.code}.",
            "other_subject",
        )
    buffer = io.BytesIO()
    Image.fromarray(photo.pixels, "RGB").save(buffer, format="PNG", compress_level=1)
    return photo_upload(
        visit=visit,
        view=view,
        upload=SimpleUploadedFile("dicom-import.png", buffer.getvalue(), content_type="image/png"),
        uploaded_by=uploaded_by,
        request=request,
        capture=CaptureFields(
            capture_time=photo.capture_time, camera_make=photo.camera_make, camera_model=photo.camera_model
        ),
        source_format="DICOM",
    )


@dataclass
class BuiltExport:
    """An export's file, the name and type it is downloaded with, and what the audit trail records of it."""

    content: IO[bytes]
    filename: str
    content_type: str
    details: dict


def measures_export(study: Study, chosen: str, *, exported_by: str) -> BuiltExport:
    """The measures table as CSV, XLSX or a zipped REDCap import (data and data dictionary)."""
    rows = export_rows(study)
    stem = f"study-{study.pk}-measures"
    details = {"format": chosen, "rows": len(rows), "pairs": len({row.pair_id for row in rows})}
    if chosen == ExportFormat.CSV:
        content = tabular.measures_csv(study, rows).encode()
        return BuiltExport(io.BytesIO(content), f"{stem}.csv", tabular.CSV_CONTENT_TYPE, details)
    if chosen == ExportFormat.XLSX:
        context = tabular.ExportContext(
            study=study, exported_by=exported_by, exported_at=timezone.now(), options={"format": chosen}
        )
        workbook = tabular.measures_xlsx(rows, context)
        return BuiltExport(io.BytesIO(workbook), f"{stem}.xlsx", tabular.XLSX_CONTENT_TYPE, details)
    fields = tabular.redcap_fields(rows)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(f"{stem}-redcap-data.csv", tabular.redcap_records_csv(rows, fields))
        archive.writestr(f"{stem}-redcap-dictionary.csv", tabular.redcap_dictionary_csv(fields))
    buffer.seek(0)
    return BuiltExport(buffer, f"{stem}-redcap.zip", "application/zip", {**details, "fields": len(fields)})


def dicom_options(
    study: Study,
    *,
    subject_id: int | None = None,
    deidentify: bool = False,
    method: str = dicom.DeidentifyMethod.MASK_EYES,
    keep_subject_code: bool = False,
) -> dict:
    """The DICOM export's options, checked: a living subject of ``study`` (or None: all) with photos to
    export, a known method."""
    if subject_id is not None and not study.subjects.alive().filter(pk=subject_id).exists():
        raise ValidationError({"subject_id": f"Subject {subject_id} is not a subject of this study."})
    photos = dicom_photos(study, subject_id)
    if not photos.exists():
        # Refused up front: a run would only build a ZIP without a single photo.
        raise ValidationError(nothing_to_export(study, subject_id))
    if deidentify and not any(
        _subject_landmarks(result) is not None for result in _landmarks_of(photos).values()
    ):
        raise ValidationError(nothing_to_deidentify(photos))
    methods = [choice.value for choice in dicom.DeidentifyMethod]
    if method not in methods:
        raise ValidationError({"method": f"Choose one of: {', '.join(methods)}."})
    return {
        "subject_id": subject_id,
        "deidentify": bool(deidentify),
        "method": str(method),
        "keep_subject_code": bool(keep_subject_code),
    }


def dicom_export_built(
    study: Study, options: dict, progress: Callable[[float, str], None] | None = None
) -> BuiltExport:
    """:func:`dicom_export` with ``options`` (:func:`dicom_options`), as a file to download."""
    export = dicom_export(study, **options, progress=progress)
    suffix = "-deidentified" if options["deidentify"] else ""
    subject = f"-subject-{options['subject_id']}" if options["subject_id"] is not None else ""
    return BuiltExport(
        export.archive,
        f"study-{study.pk}{subject}-dicom{suffix}.zip",
        "application/zip",
        {"format": ExportFormat.DICOM.value, **options, "files": export.files, "skipped": export.skipped},
    )


def study_export_request(
    *,
    study: Study,
    format: str,
    options: dict | None = None,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
    via: str = "",
) -> StudyExport:
    """Queue a background export of ``study`` (audited with its options); the worker builds the file."""
    if format not in ExportFormat.values:
        raise ValidationError({"format": f"Choose one of: {', '.join(ExportFormat.values)}."})
    checked = dicom_options(study, **(options or {})) if format == ExportFormat.DICOM else {}
    export = StudyExport.objects.create(study=study, format=format, options=checked, requested_by=actor)
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Requested export {export.pk} of {study.name!r}: {export.get_format_display()}",
        actor=actor,
        target=study,
        request=request,
        via=via,
        details={"export": export.pk, "format": format, **checked},
    )
    dispatch.send_run_on_commit(export)
    return export


def study_export_build(export: StudyExport, progress: Callable[[float, str], None]) -> BuiltExport:
    """Build the file of a background export (the worker's work)."""
    if export.format == ExportFormat.DICOM:
        return dicom_export_built(export.study, export.options, progress)
    progress(0.0, "Reading the measures")
    exported_by = export.requested_by.get_username() if export.requested_by else ""
    return measures_export(export.study, export.format, exported_by=exported_by)


def study_export_succeed(*, export_id: int, attempt: int, built: BuiltExport) -> StudyExport | None:
    """Store the built file on the export and mark it succeeded (None when the attempt lost the run)."""

    def record(export: StudyExport) -> None:
        built.content.seek(0)
        export.file.save(built.filename, File(built.content), save=False)
        export.filename = built.filename
        export.content_type = built.content_type
        export.size_bytes = export.file.size
        export.details = built.details

    message = f"Ready: {built.filename}"
    return run_succeed(StudyExport, run_id=export_id, attempt=attempt, message=message, record=record)


def study_export_downloaded(
    export: StudyExport, *, actor: AbstractBaseUser, request: HttpRequest | None = None, via: str = ""
) -> None:
    """Audit a download of a built export, with its options."""
    audit_record(
        action=AuditAction.DOWNLOAD,
        summary=f"Downloaded export {export.pk} of {export.study.name!r}: {export.get_format_display()}",
        actor=actor,
        target=export.study,
        request=request,
        via=via,
        details={
            "export": export.pk,
            "format": export.format,
            **export.options,
            **export.details,
            "bytes": export.size_bytes,
        },
    )


# --- retention and withdrawal ---------------------------------------------------------------------------


def _study_export_purge(
    export_id: int,
    *,
    reason: ExportPurgeReason,
    summary: str,
    details: dict,
    actor: AbstractBaseUser | None = None,
    request: HttpRequest | None = None,
    via: str = "",
) -> bool:
    """Delete a built export's file (once the transaction commits), mark the export purged and audit it;
    False when it was purged meanwhile (the beat task and the command may run at once)."""
    with transaction.atomic():
        export = StudyExport.objects.select_for_update().select_related("study").get(pk=export_id)
        if export.purged_at is not None or not export.file:
            return False
        stored = (export.file.storage, export.file.name)
        built_at = export.finished_at
        export.file = ""
        export.purged_at = timezone.now()
        export.purge_reason = reason
        export.save(update_fields=["file", "purged_at", "purge_reason"])
        audit_record(
            action=AuditAction.PURGE,
            summary=f"Purged export {export.pk} of {export.study.name!r} "
            f"({export.get_format_display()}): {summary}",
            actor=actor,
            target=export,
            request=request,
            via=via,
            details={
                "export": export.pk,
                "format": export.format,
                "reason": reason.value,
                "filename": export.filename,
                "built_at": built_at.isoformat() if built_at else None,
                **details,
            },
        )
        delete_on_commit([stored])
    return True


def export_expiry_cutoff(now: datetime.datetime | None = None) -> datetime.datetime:
    """Exports built before this moment are past FACET_EXPORT_RETENTION_HOURS."""
    return (now or timezone.now()) - datetime.timedelta(hours=settings.FACET_EXPORT_RETENTION_HOURS)


def purge_expired_exports(*, now: datetime.datetime | None = None, via: str = "") -> int:
    """Delete the files of the exports built more than FACET_EXPORT_RETENTION_HOURS ago; one audit event
    per export. Returns how many were purged."""
    hours = settings.FACET_EXPORT_RETENTION_HOURS
    expired = StudyExport.objects.filter(
        status=RunStatus.SUCCEEDED, purged_at__isnull=True, finished_at__lte=export_expiry_cutoff(now)
    ).exclude(file="")
    return sum(
        _study_export_purge(
            export_id,
            reason=ExportPurgeReason.EXPIRED,
            summary=f"built more than {hours} hours ago",
            details={"retention_hours": hours},
            via=via,
        )
        for export_id in expired.order_by("pk").values_list("pk", flat=True)
    )


def purge_exports_of_withdrawn_photos(
    photos: list[Photo], *, actor: AbstractBaseUser | None, request: HttpRequest | None = None
) -> int:
    """Withdrawn photos (their subject, visit or themselves deleted) leave no export behind: every built
    export of their studies that may hold them (all of the study's, but a one-subject DICOM export of
    another subject) loses its file at once, audited; a running one, which may have read them already,
    is cancelled. Returns how many were purged.

    Exports record no list of what they hold, so "may hold" is the study: a measures table carries every
    subject's measures and a whole-study DICOM export every subject's photos."""
    subject_ids = set(
        Visit.objects.filter(pk__in={photo.visit_id for photo in photos}).values_list("subject_id", flat=True)
    )
    exports = StudyExport.objects.filter(
        study_id__in={photo.study_id for photo in photos},
        status__in=(RunStatus.SUCCEEDED, RunStatus.RUNNING),
        purged_at__isnull=True,
    ).order_by("pk")
    purged = 0
    for export in exports:
        one_subject = export.options.get("subject_id") if export.format == ExportFormat.DICOM else None
        if one_subject is not None and one_subject not in subject_ids:
            continue
        if export.status == RunStatus.RUNNING:
            # Cancelled, its worker cannot store the file; one that finished meanwhile is purged below.
            with contextlib.suppress(RunStateError):
                run_cancel(export, actor=actor, request=request)
                continue
        withdrawn = sorted(photo.pk for photo in photos if photo.study_id == export.study_id)
        purged += _study_export_purge(
            export.pk,
            reason=ExportPurgeReason.WITHDRAWN,
            summary=f"it may hold withdrawn photos {', '.join(map(str, withdrawn))}",
            details={"photos": withdrawn},
            actor=actor,
            request=request,
        )
    return purged
