"""D9 and D14: one "not found" for anything outside the user's studies, and refusals audited
(rate-limited so that a scanner cannot flood the trail)."""

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from rest_framework.test import APIClient

from webapp.audit.models import AuditAction, AuditEvent
from webapp.studies.models import Photo

pytestmark = pytest.mark.django_db
MISSING = 987_654_321


def api_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def upload(client, visit_id, png: bytes):
    file = SimpleUploadedFile("face.png", png, "image/png")
    return client.post(
        "/api/photos/", {"visit": visit_id, "view": "frontal", "file": file}, format="multipart"
    )


def test_upload_to_another_studys_visit_answers_as_a_missing_visit(study_with_members, make_photo, png_bytes):
    visit = make_photo(study_with_members["study"]).visit
    outsider = api_for(study_with_members["outsider"])
    foreign = upload(outsider, visit.pk, png_bytes(color=(1, 2, 3)))
    missing = upload(outsider, MISSING, png_bytes(color=(1, 2, 3)))
    assert foreign.status_code == missing.status_code == 404
    assert foreign.json() == missing.json() == {"detail": "No such visit.", "code": "not_found"}
    assert Photo.objects.count() == 1


@pytest.mark.parametrize("path", ["/api/photos/{}/", "/api/photos/{}/image/"])
def test_an_outsiders_api_request_is_audited_as_denied(path, study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    response = api_for(study_with_members["outsider"]).get(path.format(photo.pk), REMOTE_ADDR="192.0.2.5")
    assert response.status_code == 404
    event = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert event.actor == study_with_members["outsider"]
    assert (event.object_type, event.object_id, event.study_id) == ("photo", str(photo.pk), photo.study_id)
    assert event.ip_address == "192.0.2.5" and event.via == "api"
    assert "outside the user's studies" in event.summary


def test_an_outsiders_page_request_and_a_missing_id_are_audited(study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    client = Client()
    client.force_login(study_with_members["outsider"])
    assert client.get(reverse("studies:photo_detail", args=[photo.pk])).status_code == 404
    assert client.get(reverse("studies:photo_detail", args=[MISSING])).status_code == 404
    events = AuditEvent.objects.filter(action=AuditAction.DENIED).order_by("pk")
    assert [(e.via, e.object_id, e.details["reason"]) for e in events] == [
        ("web", str(photo.pk), "outside the user's studies"),
        ("web", str(MISSING), "no such id"),
    ]


def test_a_role_refusal_is_audited(study_with_members):
    study = study_with_members["study"]
    response = api_for(study_with_members["monitor"]).patch(f"/api/studies/{study.pk}/", {"name": "x"})
    assert response.status_code == 403
    event = AuditEvent.objects.get(action=AuditAction.DENIED)
    assert event.study_id == study.pk and "manage_study" in event.summary


def test_a_scanner_cannot_flood_the_trail(study_with_members, settings):
    settings.FACET_DENIED_AUDIT_PER_MINUTE = 30
    outsider = api_for(study_with_members["outsider"])
    for photo_id in range(1000, 1100):
        assert outsider.get(f"/api/photos/{photo_id}/").status_code == 404
    events = AuditEvent.objects.filter(action=AuditAction.DENIED).order_by("pk")
    assert events.count() == 30
    assert "further ones this minute are only logged" in events.last().details["note"]
    # Another user's refusals are still recorded.
    api_for(study_with_members["monitor"]).get(f"/api/photos/{MISSING}/")
    assert AuditEvent.objects.filter(action=AuditAction.DENIED, actor=study_with_members["monitor"]).exists()
