"""A real Celery worker builds a whole-study DICOM export that a coordinator started on the exports page;
the coordinator follows it on its page and downloads the ZIP (audited). Results are fabricated TEST DATA
(tests.webapp.exports_scene)."""

import io
import time
import zipfile

import pytest
from django.db import close_old_connections
from django.test import Client
from django.urls import reverse
from pydicom import dcmread

from webapp.audit.models import AuditAction, AuditEvent
from webapp.exports.models import StudyExport
from webapp.runs.models import ACTIVE_STATUSES, RunStatus

pytestmark = [pytest.mark.integration, pytest.mark.slow]
TIMEOUT_SECONDS = 120.0


@pytest.fixture
def dicom_scene(transactional_db, make_user):
    from tests.webapp.exports_scene import make_subject
    from webapp.studies.services import study_create

    coordinator = make_user("export.coord")
    study = study_create(name="Background export study", creator=coordinator)
    for index, seed in enumerate((21, 23, 25)):
        make_subject(study, f"BG-{index:03d}", coordinator, seed=seed)
    return {"study": study, "coordinator": coordinator}


def wait_for_export(export_id: int) -> StudyExport:
    deadline = time.monotonic() + TIMEOUT_SECONDS
    while True:
        close_old_connections()
        export = StudyExport.objects.get(pk=export_id)
        if export.status not in ACTIVE_STATUSES:
            return export
        if time.monotonic() > deadline:
            pytest.fail(f"Export {export_id} is still {export.status} ({export.progress_message!r}).")
        time.sleep(0.2)


def test_a_worker_builds_the_whole_study_dicom_export(dicom_scene, celery_worker):
    client = Client()
    client.force_login(dicom_scene["coordinator"])
    study = dicom_scene["study"]
    started = client.post(reverse("exports:study_dicom", args=[study.pk]), {"deidentify": "on"})
    export = StudyExport.objects.get(study=study)
    assert started.status_code == 302 and started.url == reverse("exports:export_detail", args=[export.pk])
    status = client.get(reverse("runs:status", args=[export.run_kind, export.pk])).json()
    assert status["run_kind"] == "study-export" and status["download_url"] is None

    export = wait_for_export(export.pk)
    assert export.status == RunStatus.SUCCEEDED, export.error
    assert export.worker == celery_worker.hostname and export.details["files"] == 6
    status = client.get(reverse("runs:status", args=[export.run_kind, export.pk])).json()
    assert status["download_url"] == reverse("exports:export_download", args=[export.pk])

    download = client.get(status["download_url"])
    assert download.status_code == 200 and download["Cache-Control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(download.streaming_content)))
    datasets = [
        dcmread(io.BytesIO(archive.read(name))) for name in archive.namelist() if name.endswith(".dcm")
    ]
    assert len(datasets) == 6 and {ds[0x0028, 0x0302].value for ds in datasets} == {"NO"}
    assert not any(ds.PatientID.startswith("BG-") for ds in datasets)
    events = AuditEvent.objects.filter(study_id=study.pk, details__export=export.pk)
    assert {event.action for event in events} >= {AuditAction.EXPORT, AuditAction.DOWNLOAD}
