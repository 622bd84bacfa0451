"""Exports of the study's measures (CSV, XLSX, REDCap) and photos (DICOM, identified and de-identified),
DICOM import, and the before/after report. Results are fabricated TEST DATA
(tests/webapp/exports_scene.py)."""

import csv
import datetime
import io
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from openpyxl import load_workbook
from PIL import Image
from pydicom import dcmread
from pypdf import PdfReader

from tests.webapp.exports_scene import WEIGHTS_SHA, make_subject, synthetic_landmarks
from webapp.audit.models import AuditAction, AuditEvent
from webapp.exports import dicom
from webapp.exports.models import StudyExport
from webapp.exports.services import photo_pixels, study_export_request
from webapp.exports.tabular import REDCAP_DICTIONARY_COLUMNS, redcap_name, redcap_name_is_valid
from webapp.runs.models import RunStatus
from webapp.studies.ingest import IngestError
from webapp.studies.models import Photo, Subject, Visit, VisitRole
from workers.exports import build_study_export

pytestmark = pytest.mark.django_db


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def scene(study_with_members):
    study = study_with_members["study"]
    coordinator = study_with_members["coordinator"]
    first = make_subject(study, "S-001", coordinator, seed=1)
    second = make_subject(study, "S-002", coordinator, seed=3)
    return {**study_with_members, "first": first, "second": second}


def measures_export(scene, export_format: str):
    client = client_for(scene["coordinator"])
    url = reverse("exports:study_measures", args=[scene["study"].pk])
    return client.get(url, {"format": export_format})


# Measures ------------------------------------------------------------------------------------------------


def test_csv_export_carries_ids_dates_measures_and_provenance(scene):
    response = measures_export(scene, "csv")
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    first = scene["first"]
    mine = [row for row in rows if row["subject_code"] == "S-001"]
    score = next(row for row in mine if row["measure"] == "normality_score")
    assert score["comparison_id"] == str(first["comparison"].pk)
    assert score["pre_photo_id"] == str(first["pre"].pk) and score["post_photo_id"] == str(first["post"].pk)
    assert score["pre_visit_date"] == "2026-01-05" and score["post_visit_date"] == "2026-04-01"
    assert float(score["pre"]) == pytest.approx(-1.2) and float(score["change"]) == pytest.approx(0.4)
    assert score["post_model_name"] == "test-normality-model" and score["post_model_version"] == "v-test"
    assert score["post_weights_sha256"] == WEIGHTS_SHA["normality"]
    forehead = next(row for row in mine if row["measure"] == "wrinkle_area:FFA")
    assert float(forehead["change"]) == pytest.approx(-20.0)
    assert forehead["pre_weights_sha256"] == WEIGHTS_SHA["wrinkles"]
    # Landmark-derived measures come from the landmark results.
    assert any(
        row["analysis"] == "landmarks" and row["pre_weights_sha256"] == WEIGHTS_SHA["landmarks"]
        for row in mine
    )
    event = AuditEvent.objects.get(action=AuditAction.EXPORT, study_id=scene["study"].pk)
    assert event.details["format"] == "csv" and event.details["rows"] == len(rows)


def test_xlsx_export_has_the_pairs_measures_and_provenance(scene):
    response = measures_export(scene, "xlsx")
    assert response.status_code == 200 and response["Content-Disposition"].endswith('.xlsx"')
    workbook = load_workbook(io.BytesIO(response.content), read_only=True)
    assert workbook.sheetnames == ["Pairs", "Measures", "Provenance", "Models", "About"]
    pairs = list(workbook["Pairs"].iter_rows(values_only=True))
    header = pairs[0]
    assert len(pairs) == 1 + 2
    second = dict(zip(header, next(row for row in pairs[1:] if row[1] == "S-002"), strict=True))
    assert second["normality_score post"] == pytest.approx(-0.8)
    assert second["normality_score change"] == pytest.approx(0.4)
    assert second["wrinkle_area:FFA change"] == pytest.approx(-20.0)
    assert second["pre_visit_date"].year == 2026 and second["post_photo_id"] == scene["second"]["post"].pk
    measures = {row[0]: row for row in workbook["Measures"].iter_rows(min_row=2, values_only=True)}
    assert measures["normality_score"][1] == "Normality score S"
    provenance = list(workbook["Provenance"].iter_rows(min_row=2, values_only=True))
    assert (second["pair_id"], "S-002", "post", scene["second"]["post"].pk, "wrinkles") in {
        row[:5] for row in provenance
    }
    assert all(row[8] == WEIGHTS_SHA[row[4]] for row in provenance)
    models = {row[0]: row for row in workbook["Models"].iter_rows(min_row=2, values_only=True)}
    assert models["test-wrinkles-model"][2] == WEIGHTS_SHA["wrinkles"]
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, details__format="xlsx").count() == 1


def test_xlsx_writes_a_hostile_visit_label_as_text(scene):
    visit = scene["first"]["pre"].visit
    visit.label = '=HYPERLINK("http://evil")'
    visit.save()
    workbook = load_workbook(io.BytesIO(measures_export(scene, "xlsx").content))
    labels = [row[8] for row in workbook["Pairs"].iter_rows(min_row=2, values_only=True)]
    assert '\'=HYPERLINK("http://evil")' in labels


def test_redcap_export_matches_its_data_dictionary(scene):
    response = measures_export(scene, "redcap")
    archive = zipfile.ZipFile(io.BytesIO(response.content))
    names = sorted(archive.namelist())
    data_name = next(name for name in names if name.endswith("redcap-data.csv"))
    dictionary_name = next(name for name in names if name.endswith("redcap-dictionary.csv"))
    dictionary = list(csv.reader(io.StringIO(archive.read(dictionary_name).decode())))
    assert dictionary[0] == REDCAP_DICTIONARY_COLUMNS
    variables = [row[0] for row in dictionary[1:]]
    assert variables[0] == "record_id" and all(redcap_name_is_valid(name) for name in variables)
    assert len(set(variables)) == len(variables)
    records = list(csv.DictReader(io.StringIO(archive.read(data_name).decode())))
    assert list(records[0].keys()) == variables  # the data columns are the dictionary's fields, in order
    assert len(records) == 2
    first = next(record for record in records if record["subject_code"] == "S-001")
    assert first["pre_visit_date"] == "2026-01-05" and first["included"] in {"0", "1"}
    assert float(first[redcap_name("normality_score", "_chg")]) == pytest.approx(0.4)
    assert first[redcap_name("normality", "_sha256")] == WEIGHTS_SHA["normality"]
    validation = {row[0]: row[7] for row in dictionary[1:]}
    assert (
        validation["pre_visit_date"] == "date_ymd"
        and validation[redcap_name("normality_score", "_pre")] == "number"
    )
    identifiers = {row[0] for row in dictionary[1:] if row[10] == "y"}
    assert identifiers == {"pre_visit_date", "post_visit_date"}


def test_redcap_names_are_short_valid_and_distinct():
    long_keys = [f"wrinkle_length:{zone}" for zone in ("LMS", "RMS")] + ["a" * 60, "a" * 60 + "b"]
    names = [redcap_name(key, "_chg") for key in long_keys]
    assert all(redcap_name_is_valid(name) for name in names) and len(set(names)) == len(names)


def test_exports_leave_out_deleted_subjects(scene):
    subject = scene["second"]["subject"]
    subject.deleted_at = timezone.now()
    subject.save()
    rows = list(csv.DictReader(io.StringIO(measures_export(scene, "csv").content.decode())))
    assert rows and {row["subject_code"] for row in rows} == {"S-001"}
    archive = zipfile.ZipFile(io.BytesIO(b"".join(_dicom_zip(scene).streaming_content)))
    assert not any(name.startswith("S-002/") for name in archive.namelist())


@pytest.mark.parametrize(
    "role, status", [("clinician", 403), ("rater", 403), ("monitor", 403), ("outsider", 404)]
)
def test_study_exports_need_the_export_capability(scene, role, status):
    client = client_for(scene[role])
    study = scene["study"]
    for name, query in (
        ("exports:study_exports", {}),
        ("exports:study_measures", {"format": "csv"}),
        ("exports:study_dicom", {}),
    ):
        assert client.get(reverse(name, args=[study.pk]), query).status_code == status
    assert client.post(reverse("exports:study_dicom", args=[study.pk])).status_code == status
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()
    export = study_export_request(study=study, format="csv", actor=scene["coordinator"])
    build_study_export.apply(args=[export.pk]).get()
    for name in ("exports:export_detail", "exports:export_download"):
        assert client.get(reverse(name, args=[export.pk])).status_code == status
    assert not AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).exists()


def test_a_background_export_is_cancelled_before_its_worker_builds_it(scene):
    from webapp.runs.services import run_cancel

    export = study_export_request(study=scene["study"], format="dicom", actor=scene["coordinator"])
    run_cancel(export, actor=scene["coordinator"])
    build_study_export.apply(args=[export.pk]).get()
    export.refresh_from_db()
    assert export.status == RunStatus.CANCELLED and not export.file
    client = client_for(scene["coordinator"])
    # Its download link answers on the export's page why there is no file, not with a bare "Not Found".
    response = client.get(reverse("exports:export_download", args=[export.pk]))
    assert response.status_code == 409
    assert f"Export {export.pk} is cancelled; it has no file to download." in response.content.decode()
    assert not AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).exists()


def test_export_page_lists_the_exports(scene):
    page = client_for(scene["coordinator"]).get(reverse("exports:study_exports", args=[scene["study"].pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'id="measures-export"' in content and 'id="dicom-export"' in content


# DICOM ---------------------------------------------------------------------------------------------------


def _dicom_zip(scene, **query):
    """The DICOM ZIP as the coordinator gets it: one subject's at once; the whole study's from a
    background export, built here by the worker's task (run in-process) and downloaded from its page."""
    client = client_for(scene["coordinator"])
    url = reverse("exports:study_dicom", args=[scene["study"].pk])
    if "subject" in query:
        response = client.post(url, query)
        assert response.status_code == 200, response
        return response
    started = client.post(url, query)
    export = StudyExport.objects.latest("pk")
    assert started.status_code == 302 and started.url == reverse("exports:export_detail", args=[export.pk])
    assert export.status == RunStatus.QUEUED and export.options["subject_id"] is None
    build_study_export.apply(args=[export.pk]).get()
    export.refresh_from_db()
    assert export.status == RunStatus.SUCCEEDED, export.error
    page = client.get(reverse("exports:export_detail", args=[export.pk])).content.decode()
    assert 'id="export-download"' in page
    response = client.get(reverse("exports:export_download", args=[export.pk]))
    assert response.status_code == 200, response
    return response


def _datasets(response) -> dict[str, object]:
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    return {
        name: dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist() if name.endswith(".dcm")
    } | {"manifest.csv": archive.read("manifest.csv").decode()}


def test_dicom_export_is_vl_photographic_with_stable_uids_and_the_stored_pixels(scene):
    first = _datasets(_dicom_zip(scene))
    second = _datasets(_dicom_zip(scene))
    manifest = first.pop("manifest.csv")
    second.pop("manifest.csv")
    assert len(first) == 4
    photos = {photo.pk: photo for photo in Photo.objects.all()}
    by_photo = {row["photo_id"]: row["file"] for row in csv.DictReader(io.StringIO(manifest))}
    for photo_id, name in by_photo.items():
        ds, again = first[name], second[name]
        photo = photos[int(photo_id)]
        assert ds.SOPClassUID == dicom.VL_PHOTOGRAPHIC_IMAGE_STORAGE
        assert ds.file_meta.MediaStorageSOPClassUID == dicom.VL_PHOTOGRAPHIC_IMAGE_STORAGE
        assert ds.PatientID == photo.visit.subject.code and ds.Modality == "XC"
        assert ds[0x0028, 0x0302].value == "YES"
        assert (ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID) == (
            again.StudyInstanceUID,
            again.SeriesInstanceUID,
            again.SOPInstanceUID,
        )
        assert np.array_equal(ds.pixel_array, photo_pixels(photo))
        assert ds.ContentDate == photo.visit.date.strftime("%Y%m%d")
    # One DICOM study per subject, one series per visit, one instance per photo.
    datasets = list(first.values())
    assert len({ds.StudyInstanceUID for ds in datasets}) == 2
    assert len({ds.SeriesInstanceUID for ds in datasets}) == 4
    assert len({ds.SOPInstanceUID for ds in datasets}) == 4
    requested = AuditEvent.objects.filter(action=AuditAction.EXPORT, details__format="dicom").first()
    assert requested.details["deidentify"] is False and requested.details["subject_id"] is None
    downloaded = AuditEvent.objects.filter(action=AuditAction.DOWNLOAD, details__format="dicom").first()
    assert downloaded.details["export"] == requested.details["export"] and downloaded.details["files"] == 4


def test_deidentified_dicom_masks_the_eyes_and_strips_metadata(scene):
    identified = _datasets(_dicom_zip(scene, subject=scene["first"]["subject"].pk))
    identified.pop("manifest.csv")
    shared = _datasets(_dicom_zip(scene, subject=scene["first"]["subject"].pk, deidentify="on"))
    manifest = list(csv.DictReader(io.StringIO(shared.pop("manifest.csv"))))
    assert len(shared) == 2 and all(row["status"] == "ok" for row in manifest)
    photo = scene["first"]["pre"]
    name = next(row["file"] for row in manifest if row["photo_id"] == str(photo.pk))
    ds = shared[name]
    assert ds.SOPClassUID == dicom.VL_PHOTOGRAPHIC_IMAGE_STORAGE
    assert ds[0x0028, 0x0302].value == "NO"
    assert ds.PatientIdentityRemoved == "YES" and ds.PatientID != "S-001" and "S-001" not in name
    assert [item.CodeValue for item in ds.DeidentificationMethodCodeSequence] == ["113100", "113102"]
    for keyword in (
        "StudyDate",
        "ContentDate",
        "StudyDescription",
        "SeriesDescription",
        "AcquisitionDateTime",
    ):
        assert not ds.get(keyword)
    assert not ds.Manufacturer and "ManufacturerModelName" not in ds
    identified_uids = {uid for d in identified.values() for uid in (d.StudyInstanceUID, d.SOPInstanceUID)}
    assert ds.StudyInstanceUID not in identified_uids and ds.SOPInstanceUID not in identified_uids
    stored = photo_pixels(photo)
    x0, y0, x1, y1 = dicom.eye_box(synthetic_landmarks(), stored.shape)
    eyes = (slice(y0, y1), slice(x0, x1))
    assert not np.array_equal(ds.pixel_array[eyes], stored[eyes])
    assert (ds.pixel_array[eyes] == 0).all()
    outside = ds.pixel_array.copy()
    outside[eyes] = stored[eyes]
    assert np.array_equal(outside, stored)  # only the eye region changed
    event = AuditEvent.objects.filter(action=AuditAction.EXPORT, details__deidentify=True).get()
    assert event.details["method"] == "mask_eyes" and event.details["keep_subject_code"] is False


def test_deidentified_crop_keeps_only_the_face_below_the_eyes(scene):
    shared = _datasets(_dicom_zip(scene, deidentify="on", method="crop_below_eyes", keep_subject_code="on"))
    shared.pop("manifest.csv")
    ds = next(ds for ds in shared.values() if ds.PatientID == "S-001")
    x0, y0, x1, y1 = dicom.eye_box(synthetic_landmarks(), (400, 320))
    assert ds.Rows < 400 - y1 + 1 and ds[0x0028, 0x0302].value == "NO"


def test_deidentified_export_leaves_out_photos_without_landmarks(study_with_members):
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    make_subject(study, "S-001", coordinator, seed=1)
    make_subject(study, "S-009", coordinator, seed=9, landmarks=False)
    shared = _datasets(_dicom_zip(study_with_members, deidentify="on"))
    manifest = list(csv.DictReader(io.StringIO(shared.pop("manifest.csv"))))
    assert len(shared) == 2 and len(manifest) == 4
    left_out = [row for row in manifest if row["status"] != "ok"]
    assert len(left_out) == 2 and all("no face landmarks" in row["status"] for row in left_out)


def test_deidentified_export_without_any_landmarks_is_refused_up_front(study_with_members):
    """A ZIP holding only a manifest is no export: the coordinator is told what to run instead."""
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    make_subject(study, "S-009", coordinator, seed=9, landmarks=False)
    client = client_for(coordinator)
    url = reverse("exports:study_dicom", args=[study.pk])
    refused = client.post(url, {"deidentify": "on"}, follow=True)
    assert refused.redirect_chain == [(reverse("exports:study_exports", args=[study.pk]), 302)]
    assert "None of the 2 photos has face landmarks to mask the eyes with" in refused.content.decode()
    assert not StudyExport.objects.exists()
    # Without de-identification the same photos export.
    assert client.post(url, {}).status_code == 302 and StudyExport.objects.count() == 1


def test_dicom_export_without_photos_is_refused_up_front(study_with_members):
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    client = client_for(coordinator)
    url = reverse("exports:study_dicom", args=[study.pk])
    refused = client.post(url, {}, follow=True)
    assert refused.redirect_chain == [(reverse("exports:study_exports", args=[study.pk]), 302)]
    assert "has no photos: there is nothing to export as DICOM" in refused.content.decode()
    # A subject without photos (the "subject" filter) is refused as well, at once or in the background.
    subject = Subject.objects.create(study=study, code="S-000")
    refused = client.post(url, {"subject": subject.pk}, follow=True)
    assert "Subject S-000 has no photos" in refused.content.decode()
    assert not StudyExport.objects.exists()


def test_a_background_dicom_export_whose_photos_went_meanwhile_fails_without_a_file(scene):
    export = study_export_request(study=scene["study"], format="dicom", actor=scene["coordinator"])
    Photo.objects.update(deleted_at=timezone.now())
    build_study_export.apply(args=[export.pk]).get()
    export.refresh_from_db()
    assert export.status == RunStatus.FAILED and not export.file
    assert "has no photos: there is nothing to export as DICOM" in export.error


def _dicom_file(photo, **changes) -> SimpleUploadedFile:
    identity = dicom.PhotoIdentity(
        patient_id=changes.pop("patient_id", "HOSPITAL-12345"),
        study_uid=dicom.stable_uid("test", 1),
        series_uid=dicom.stable_uid("test", 2),
        sop_uid=dicom.stable_uid("test", photo.pk),
        study_id="1",
        series_number=1,
        instance_number=1,
        manufacturer="ClinicCam",
        manufacturer_model="CC-1",
        acquisition_datetime=datetime.datetime(2026, 3, 1, 10, 30, tzinfo=datetime.UTC),
    )
    ds = dicom.photo_dataset(photo_pixels(photo), identity)
    for keyword, value in changes.items():
        setattr(ds, keyword, value)
    return SimpleUploadedFile("IMG0001.dcm", dicom.dataset_bytes(ds), content_type="application/dicom")


def test_dicom_import_round_trip(scene):
    source = scene["first"]["pre"]
    visit = Visit.objects.create(subject=source.visit.subject, label="week 24", role=VisitRole.FOLLOW_UP)
    client = client_for(scene["clinician"])
    url = reverse("exports:visit_dicom_import", args=[visit.pk])
    response = client.post(url, {"view": "frontal", "file": _dicom_file(source)})
    assert response.status_code == 302
    photo = Photo.objects.get(visit=visit)
    assert np.array_equal(photo_pixels(photo), photo_pixels(source))
    assert (
        photo.source_format == "DICOM" and photo.camera_make == "ClinicCam" and photo.camera_model == "CC-1"
    )
    assert photo.capture_time.year == 2026 and photo.capture_time.month == 3
    assert photo.jobs.exists()  # the study's analyses are queued as for an upload
    with Image.open(photo.image.open("rb")) as stored:
        assert not stored.info.get("exif")
    created = AuditEvent.objects.get(
        action=AuditAction.CREATE, object_type="studies.photo", object_id=str(photo.pk)
    )
    assert "HOSPITAL-12345" not in str(created.details)
    # The same file again is a duplicate, refused with the reason.
    again = client.post(url, {"view": "frontal", "file": _dicom_file(source)})
    assert again.status_code == 400 and "already in the study" in again.content.decode()


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"SOPClassUID": "1.2.840.10008.5.1.4.1.1.2"}, "not a VL Photographic Image"),
        ({"patient_id": "S-002"}, "another subject of this study"),
    ],
)
def test_dicom_import_refuses_with_a_reason(scene, changes, message):
    visit = scene["first"]["post"].visit
    response = client_for(scene["coordinator"]).post(
        reverse("exports:visit_dicom_import", args=[visit.pk]),
        {"view": "left45", "file": _dicom_file(scene["first"]["pre"], **changes)},
    )
    assert response.status_code == 400 and message in response.content.decode()
    assert not Photo.objects.filter(visit=visit, view="left45").exists()


def test_dicom_import_refuses_a_file_that_is_not_dicom(scene, png_bytes):
    from webapp.exports.services import dicom_import

    with pytest.raises(IngestError, match="not a readable DICOM file"):
        dicom_import(
            visit=scene["first"]["post"].visit,
            view="frontal",
            upload=SimpleUploadedFile("photo.dcm", png_bytes()),
            uploaded_by=scene["coordinator"],
        )


def test_dicom_import_needs_the_upload_capability(scene):
    visit = scene["first"]["post"].visit
    url = reverse("exports:visit_dicom_import", args=[visit.pk])
    assert client_for(scene["monitor"]).get(url).status_code == 403
    assert client_for(scene["outsider"]).get(url).status_code == 404


# Reports -------------------------------------------------------------------------------------------------


def test_subject_report_page_and_pdf_show_every_measure(scene):
    comparison = scene["first"]["comparison"]
    client = client_for(scene["clinician"])
    page = client.get(reverse("exports:comparison_report", args=[comparison.pk]))
    assert page.status_code == 200
    content = page.content.decode()
    assert 'data-measure="normality_score"' in content and 'data-measure="wrinkle_area:FFA"' in content
    assert content.count("data:image/jpeg;base64,") == 2
    pdf = client.get(reverse("exports:comparison_report_pdf", args=[comparison.pk]))
    assert pdf.status_code == 200 and pdf["Content-Type"] == "application/pdf"
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf.content)).pages)
    assert "S-001" in text and "Normality score S" in text and "Noise floor" in text
    assert "0.4" in text  # the normality score's change, −1.2 → −0.8
    assert "Registration: scale" in text
    formats = set(
        AuditEvent.objects.filter(action=AuditAction.EXPORT, object_id=str(comparison.pk)).values_list(
            "details__format", flat=True
        )
    )
    assert formats == {"page", "pdf"}


def test_subject_report_needs_the_compare_capability(scene):
    comparison = scene["first"]["comparison"]
    assert (
        client_for(scene["monitor"])
        .get(reverse("exports:comparison_report_pdf", args=[comparison.pk]))
        .status_code
        == 403
    )
    assert (
        client_for(scene["outsider"])
        .get(reverse("exports:comparison_report", args=[comparison.pk]))
        .status_code
        == 404
    )


def test_cohort_report_pdf_has_the_statistics_and_charts(scene):
    study = scene["study"]
    make_subject(study, "S-003", scene["coordinator"], seed=5)
    client = client_for(scene["coordinator"])
    response = client.get(reverse("exports:study_cohort_report", args=[study.pk]), {"method": "fdr_bh"})
    assert response.status_code == 200 and response["Content-Type"] == "application/pdf"
    reader = PdfReader(io.BytesIO(response.content))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Cohort report" in text and "3 subjects" in text and "Benjamini" in text
    assert "Normality score S" in text and "Wilcoxon p" in text and "Lower vermilion height" in text
    assert "pre → post per subject" in text and "Dots: each subject's change" in text
    images = sum(len(page.images) for page in reader.pages)
    assert images >= 2  # at least one group's distribution and slope charts
    event = AuditEvent.objects.get(action=AuditAction.EXPORT, details__format="pdf", study_id=study.pk)
    assert event.details["method"] == "fdr_bh" and event.details["measures"] > 0
    assert (
        client_for(scene["clinician"])
        .get(reverse("exports:study_cohort_report", args=[study.pk]))
        .status_code
        == 403
    )


def test_stable_uids_are_valid_dicom_uids_and_differ_per_object():
    import re

    uids = {dicom.stable_uid("seed", kind, 7) for kind in ("subject", "visit", "photo")}
    assert len(uids) == 3 and dicom.stable_uid("seed", "photo", 7) in uids
    assert dicom.stable_uid("other seed", "photo", 7) not in uids
    for uid in uids:
        assert len(uid) <= 64 and uid.startswith("2.25.")
        assert re.fullmatch(r"(0|[1-9]\d*)(\.(0|[1-9]\d*))*", uid)
