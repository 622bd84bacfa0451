"""Issue 16 item 8: 50 different photos and 10 racing copies of one more, uploaded at once over HTTP
through the API of a live server: every photo stored exactly once (51), the 9 late copies refused as
duplicates with a clear message, no 5xx, and every stored photo's files on disk."""

import io
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from PIL import Image

pytestmark = pytest.mark.integration

DISTINCT = 50
RACING_COPIES = 10


def photo_bytes(shade: int) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 320), (shade, 255 - shade, (shade * 7) % 256)).save(buffer, "PNG")
    return buffer.getvalue()


def test_concurrent_uploads_and_racing_duplicates(
    transactional_db, live_server, study_with_members, monkeypatch, isolated_media_root
):
    from django.core.files.storage import default_storage
    from rest_framework.authtoken.models import Token

    from webapp.studies.models import Photo, Subject, Visit

    # No broker traffic: this is about storing; sending is covered by the broker-outage tests.
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    clinician = study_with_members["clinician"]
    subject = Subject.objects.create(study=study_with_members["study"], code="LOAD-1")
    visit = Visit.objects.create(subject=subject, label="baseline", role="pre")
    token = Token.objects.create(user=clinician).key
    bodies = [photo_bytes(shade) for shade in range(DISTINCT)] + [photo_bytes(200)] * RACING_COPIES

    def upload(content: bytes) -> requests.Response:
        return requests.post(
            f"{live_server.url}/api/photos/",
            headers={"Authorization": f"Token {token}"},
            data={"visit": visit.pk, "view": "frontal"},
            files={"file": ("photo.png", content, "image/png")},
            timeout=120,
        )

    with ThreadPoolExecutor(max_workers=len(bodies)) as pool:
        responses = list(pool.map(upload, bodies))
    statuses = [response.status_code for response in responses]
    assert [status for status in statuses if status >= 500] == []
    assert statuses.count(201) == DISTINCT + 1
    refused = [response.json() for response in responses if response.status_code == 400]
    assert len(refused) == RACING_COPIES - 1
    assert {body["code"] for body in refused} == {"duplicate"}
    assert all("already" in body["file"][0] for body in refused)
    photos = Photo.objects.filter(visit=visit)
    assert photos.count() == DISTINCT + 1
    assert photos.values("content_hash").distinct().count() == DISTINCT + 1
    assert all(default_storage.exists(photo.image.name) for photo in photos)
    print(
        f"{len(bodies)} concurrent uploads: {statuses.count(201)} stored, "
        f"{len(refused)} duplicates refused, 0 5xx"
    )
