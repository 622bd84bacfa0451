"""The audit trail: recording, filtering, CSV export, read-only admin, log-in events."""

import csv
import io

import pytest
from django.urls import reverse

from webapp.audit.models import AuditAction, AuditEvent
from webapp.audit.services import audit_record

pytestmark = pytest.mark.django_db


def test_changes_of_state_are_recorded_with_study(study_with_members):
    study = study_with_members["study"]
    created = AuditEvent.objects.filter(action=AuditAction.CREATE, study_id=study.pk)
    assert created.filter(object_type="studies.study").count() == 1
    assert created.filter(object_type="studies.studymembership").count() == 3


def test_login_and_failed_login_are_recorded(client, make_user):
    make_user("alice", password="a long enough password")
    assert not client.login(username="alice", password="wrong")
    assert client.login(username="alice", password="a long enough password")
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, details__username="alice").exists()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN, actor_username="alice").exists()


def test_event_list_is_for_site_admins_only(client, study_with_members):
    client.force_login(study_with_members["coordinator"])
    assert client.get(reverse("audit:event_list")).status_code == 404
    assert client.get(reverse("audit:event_export")).status_code == 404


def test_event_list_filters(client, make_user, study_with_members):
    admin = make_user("siteadmin", staff=True)
    audit_record(
        action=AuditAction.VIEW,
        summary="Viewed photo 42",
        actor=study_with_members["rater"],
        object_type="studies.photo",
        object_id=42,
        study_id=study_with_members["study"].pk,
    )
    client.force_login(admin)
    response = client.get(reverse("audit:event_list"), {"actor": "rater", "action": "view"})
    assert response.status_code == 200
    assert [event.summary for event in response.context["page"]] == ["Viewed photo 42"]
    by_text = client.get(reverse("audit:event_list"), {"text": "42"})
    assert [event.object_id for event in by_text.context["page"]] == ["42"]
    by_study = client.get(reverse("audit:event_list"), {"study": study_with_members["other_study"].pk})
    assert {event.study_id for event in by_study.context["page"]} == {study_with_members["other_study"].pk}


def test_csv_export_contains_filtered_events_and_is_itself_audited(client, make_user, study_with_members):
    admin = make_user("siteadmin", staff=True)
    client.force_login(admin)
    response = client.get(reverse("audit:event_export"), {"action": "create"})
    assert response.status_code == 200
    assert response["Cache-Control"] == "private, no-store"
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows and {row["action"] for row in rows} == {"create"}
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, actor=admin).exists()


def test_admin_cannot_edit_or_delete_audit_events(client, make_user, study_with_members):
    superuser = make_user("root", staff=True)
    superuser.is_superuser = True
    superuser.save()
    client.force_login(superuser)
    event = AuditEvent.objects.first()
    change_url = reverse("admin:audit_auditevent_change", args=[event.pk])
    response = client.post(change_url, {"summary": "tampered"})
    event.refresh_from_db()
    assert event.summary != "tampered"
    assert response.status_code in (403, 302, 200)
    client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    assert AuditEvent.objects.filter(pk=event.pk).exists()
