"""The study exports in the REST API: request (audited with the options), follow, download (audited),
cancel; the pages' permissions (export right: coordinators and site admins). The worker's task runs
in-process here; tests/integration/test_worker_exports.py runs it on a real worker. Results are
fabricated TEST DATA (tests.webapp.exports_scene)."""

import csv
import io
import zipfile

import pytest
from django.urls import reverse
from pydicom import dcmread
from rest_framework.test import APIClient

from tests.webapp.exports_scene import make_subject
from webapp.audit.models import AuditAction, AuditEvent
from webapp.exports.models import StudyExport
from webapp.runs.models import RunStatus
from workers.exports import build_study_export

pytestmark = pytest.mark.django_db
EXPORTS = "/api/exports/"


@pytest.fixture
def scene(study_with_members, monkeypatch):
    # The task is sent after the commit; here each test runs it in-process instead.
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    first = make_subject(study, "S-001", study_with_members["coordinator"], seed=1)
    make_subject(study, "S-002", study_with_members["coordinator"], seed=3)
    return {**study_with_members, "first": first}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def built(client: APIClient, body: dict) -> dict:
    """Request an export, let the worker's task build it, and return its state."""
    requested = client.post(EXPORTS, body, format="json")
    assert requested.status_code == 202, requested.content
    assert requested.json()["status"] == RunStatus.QUEUED and requested.json()["download"] is None
    build_study_export.apply(args=[requested.json()["id"]]).get()
    state = client.get(f"{EXPORTS}{requested.json()['id']}/").json()
    assert state["status"] == RunStatus.SUCCEEDED, state["error"]
    return state


def downloaded(client: APIClient, state: dict) -> bytes:
    response = client.get(state["download"])
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    return b"".join(response.streaming_content)


@pytest.mark.parametrize("export_format", ["csv", "xlsx", "redcap"])
def test_measures_exports_through_the_api(scene, export_format):
    client = client_for(scene["coordinator"])
    state = built(client, {"study": scene["study"].pk, "format": export_format})
    assert state["download"] == reverse("api:export-download", args=[state["id"]])
    content = downloaded(client, state)
    if export_format == "csv":
        rows = list(csv.DictReader(io.StringIO(content.decode())))
        assert {row["subject_code"] for row in rows} == {"S-001", "S-002"}
    elif export_format == "xlsx":
        assert zipfile.ZipFile(io.BytesIO(content)).namelist()  # a workbook is a ZIP of XML parts
    else:
        names = zipfile.ZipFile(io.BytesIO(content)).namelist()
        assert any(name.endswith("redcap-dictionary.csv") for name in names)
    events = AuditEvent.objects.filter(details__export=state["id"])
    assert {(event.action, event.via) for event in events} >= {
        (AuditAction.EXPORT, "api"),
        (AuditAction.DOWNLOAD, "api"),
    }
    assert events.get(action=AuditAction.DOWNLOAD).details["rows"] == state["details"]["rows"] > 0


def test_deidentified_dicom_of_one_subject_through_the_api(scene):
    client = client_for(scene["coordinator"])
    subject = scene["first"]["subject"]
    state = built(
        client,
        {"study": scene["study"].pk, "format": "dicom", "subject": subject.pk, "deidentify": True},
    )
    assert state["options"] == {
        "subject_id": subject.pk,
        "deidentify": True,
        "method": "mask_eyes",
        "keep_subject_code": False,
    }
    archive = zipfile.ZipFile(io.BytesIO(downloaded(client, state)))
    datasets = [
        dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist() if name.endswith(".dcm")
    ]
    assert len(datasets) == 2 and {ds[0x0028, 0x0302].value for ds in datasets} == {"NO"}
    assert {ds.PatientID for ds in datasets} != {"S-001"}
    requested = AuditEvent.objects.get(action=AuditAction.EXPORT, details__export=state["id"])
    assert requested.details["deidentify"] is True and requested.details["subject_id"] == subject.pk


def test_export_requests_are_checked(scene):
    client = client_for(scene["coordinator"])
    study = scene["study"]
    other_subject = make_subject(scene["other_study"], "O-001", scene["outsider"], seed=5)["subject"]
    refusals = [
        {"study": study.pk, "format": "pdf"},
        {"study": study.pk, "format": "csv", "deidentify": True},
        {"study": study.pk, "format": "dicom", "subject": other_subject.pk},
        {"study": study.pk, "format": "dicom", "method": "blur"},
    ]
    for body in refusals:
        assert client.post(EXPORTS, body, format="json").status_code == 400, body
    assert not StudyExport.objects.exists()
    # A refusal names the accepted values, and the field of the request, not the service's option.
    assert client.post(EXPORTS, refusals[0], format="json").json() == {
        "format": ['"pdf" is not an export format; choose one of: xlsx, csv, redcap, dicom.']
    }
    assert client.post(EXPORTS, refusals[3], format="json").json() == {
        "method": ['"blur" is not a de-identification method; choose one of: mask_eyes, crop_below_eyes.']
    }
    foreign = client.post(EXPORTS, {"study": study.pk, "format": "dicom", "subject": other_subject.pk})
    assert foreign.json() == {"subject": [f"Subject {other_subject.pk} is not a subject of this study."]}
    queued = client.post(EXPORTS, {"study": study.pk, "format": "dicom"}, format="json").json()
    assert client.get(f"{EXPORTS}{queued['id']}/download/").status_code == 409
    cancelled = client.post(f"{EXPORTS}{queued['id']}/cancel/")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == RunStatus.CANCELLED
    assert client.post(f"{EXPORTS}{queued['id']}/cancel/").status_code == 409


@pytest.mark.parametrize(
    "role, status", [("clinician", 403), ("rater", 403), ("monitor", 403), ("outsider", 404)]
)
def test_api_exports_need_the_export_right(scene, role, status):
    export = built(client_for(scene["coordinator"]), {"study": scene["study"].pk, "format": "csv"})
    client = client_for(scene[role])
    assert client.post(EXPORTS, {"study": scene["study"].pk, "format": "csv"}).status_code == status
    for path in (f"{EXPORTS}{export['id']}/", f"{EXPORTS}{export['id']}/download/"):
        assert client.get(path).status_code == status, path
    assert client.post(f"{EXPORTS}{export['id']}/cancel/").status_code == status
    assert client.get(EXPORTS).json()["results"] == []  # lists hold only the exports one may download
    assert not AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).exists()


def test_dicom_export_of_a_study_without_photos_is_a_400_with_the_reason(study_with_members):
    client = client_for(study_with_members["coordinator"])
    response = client.post(
        EXPORTS, {"study": study_with_members["study"].pk, "format": "dicom"}, format="json"
    )
    assert response.status_code == 400
    assert "has no photos: there is nothing to export as DICOM" in str(response.json())
    assert not StudyExport.objects.exists()
