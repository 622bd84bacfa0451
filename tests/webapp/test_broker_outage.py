"""Uploads never depend on the broker (issue 17, D1): with the broker down the photo, its job and its
files are kept, the request succeeds, and the job waits in the database to be sent."""

import datetime
import socket

import kombu
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from kombu.exceptions import OperationalError
from rest_framework.test import APIClient

from webapp.analysis.models import AnalysisJob
from webapp.runs import dispatch
from webapp.runs.models import RunStatus
from webapp.studies.models import Photo, VisitRole
from webapp.studies.services import subject_create, visit_create

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def visit(study_with_members):
    coordinator = study_with_members["coordinator"]
    subject = subject_create(study=study_with_members["study"], code="S-001", actor=coordinator)
    return visit_create(
        subject=subject,
        label="baseline",
        role=VisitRole.PRE,
        date=datetime.date(2026, 1, 5),
        actor=coordinator,
    )


@pytest.fixture
def clinician_api(study_with_members) -> APIClient:
    client = APIClient()
    client.force_authenticate(study_with_members["clinician"])
    return client


def upload(client: APIClient, visit, content: bytes):
    return client.post(
        "/api/photos/",
        {"visit": visit.pk, "view": "frontal", "file": SimpleUploadedFile("photo.png", content)},
        format="multipart",
    )


def assert_photo_kept_and_job_queued(response, client: APIClient, visit, content: bytes) -> None:
    assert response.status_code == 201, response.content
    photo = Photo.objects.get(pk=response.json()["id"])
    assert photo.image.storage.exists(photo.image.name)
    assert photo.thumbnail.storage.exists(photo.thumbnail.name)
    image = client.get(f"/api/photos/{photo.pk}/image/")
    assert image.status_code == 200 and b"".join(image.streaming_content).startswith(b"\x89PNG")
    job = AnalysisJob.objects.get(photo=photo)
    assert job.status == RunStatus.QUEUED
    again = upload(client, visit, content)
    assert again.status_code == 400 and again.json()["code"] == "duplicate"


def test_upload_when_every_publish_fails_keeps_the_photo_and_its_queued_job(
    visit, clinician_api, png_bytes, monkeypatch
):
    def broker_down(*args, **kwargs):
        raise OperationalError("Error 111 connecting to 127.0.0.1:6379. Connection refused.")

    monkeypatch.setattr(kombu.Producer, "publish", broker_down)
    content = png_bytes()
    response = upload(clinician_api, visit, content)
    assert_photo_kept_and_job_queued(response, clinician_api, visit, content)


def test_upload_with_an_unreachable_broker_keeps_the_photo_and_its_queued_job(
    visit, clinician_api, png_bytes, settings
):
    settings.CELERY_BROKER_URL = f"redis://127.0.0.1:{free_port()}/0"
    assert dispatch.send_task("facet.no-such-task", args=[1], queue="cpu") is None
    content = png_bytes(color=(10, 200, 30))
    response = upload(clinician_api, visit, content)
    assert_photo_kept_and_job_queued(response, clinician_api, visit, content)


def test_a_rolled_back_upload_still_deletes_its_files(visit, study_with_members, png_bytes, monkeypatch):
    """Files are kept only when the transaction committed: a failure before the commit removes them."""
    from webapp.studies import ingest

    stored: list[str] = []
    original_save_unique = ingest._save_unique

    def save_then_fail(photo):
        stored.extend([photo.image.name, photo.thumbnail.name])
        original_save_unique(photo)
        raise RuntimeError("database went away")

    monkeypatch.setattr(ingest, "_save_unique", save_then_fail)
    with pytest.raises(RuntimeError):
        ingest.photo_ingest(
            visit=visit,
            view="frontal",
            upload=SimpleUploadedFile("photo.png", png_bytes()),
            uploaded_by=study_with_members["clinician"],
        )
    assert not Photo.objects.exists()
    from django.core.files.storage import default_storage

    assert stored and not any(default_storage.exists(name) for name in stored)
