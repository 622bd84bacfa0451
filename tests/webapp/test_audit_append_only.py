"""The audit trail is append-only through every path, records old and new values of every change (the
admin's included), and writes one event per page view, the page's images included (issue 16 item 7)."""

import pytest
from django.contrib import admin
from django.db import DatabaseError, connection, transaction
from django.urls import reverse

from webapp.audit.admin import AuditedModelAdmin
from webapp.audit.models import AppendOnlyError, AuditAction, AuditEvent
from webapp.audit.services import audit_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(make_user):
    return audit_record(action=AuditAction.VIEW, summary="Viewed photo 1", actor=make_user("reader"))


def test_the_orm_refuses_to_change_or_delete_an_event(event):
    event.summary = "rewritten"
    with pytest.raises(AppendOnlyError):
        event.save()
    with pytest.raises(AppendOnlyError):
        event.delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).update(summary="rewritten")
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.filter(pk=event.pk).delete()
    with pytest.raises(AppendOnlyError):
        AuditEvent.objects.bulk_update([event], ["summary"])
    assert AuditEvent.objects.get(pk=event.pk).summary == "Viewed photo 1"


@pytest.mark.skipif(connection.vendor != "postgresql", reason="the trigger is PostgreSQL's")
@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET summary = 'rewritten' WHERE id = %s",
        "UPDATE audit_auditevent SET actor_id = NULL WHERE id = %s",
        "DELETE FROM audit_auditevent WHERE id = %s",
    ],
)
def test_the_database_refuses_raw_updates_and_deletes(event, statement):
    refused = pytest.raises(DatabaseError, match="append-only")
    with refused, transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(statement, [event.pk])
    assert AuditEvent.objects.filter(pk=event.pk, summary="Viewed photo 1").exists()


def test_an_account_named_in_the_trail_cannot_be_deleted_only_deactivated(event):
    from django.db.models import ProtectedError

    with pytest.raises(ProtectedError):
        event.actor.delete()


def test_the_admin_offers_no_change_or_delete_of_events(client, make_user, event):
    client.force_login(make_user("root", staff=True))
    client.get("/")  # any page
    admin_user = make_user("superroot", staff=True)
    admin_user.is_superuser = True
    admin_user.save()
    client.force_login(admin_user)
    change = client.post(reverse("admin:audit_auditevent_change", args=[event.pk]), {"summary": "rewritten"})
    assert change.status_code in (302, 403)
    delete = client.post(reverse("admin:audit_auditevent_delete", args=[event.pk]), {"post": "yes"})
    assert delete.status_code in (302, 403)
    assert AuditEvent.objects.get(pk=event.pk).summary == "Viewed photo 1"


def test_every_admin_that_can_change_data_is_audited():
    """An admin either records its changes (AuditedModelAdmin) or can neither change nor delete."""
    from django.test import RequestFactory

    request = RequestFactory().get("/")
    request.user = type("Root", (), {"is_active": True, "is_staff": True, "has_perm": lambda *a: True})()
    unaudited = [
        model._meta.label
        for model, model_admin in admin.site._registry.items()
        if not isinstance(model_admin, AuditedModelAdmin)
        and model is not AuditEvent
        and (model_admin.has_change_permission(request) or model_admin.has_delete_permission(request))
    ]
    assert unaudited == []


def test_an_admin_edit_records_old_and_new_values(client, make_user, study_with_members):
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    client.force_login(root)
    study = study_with_members["study"]
    url = reverse("admin:studies_study_change", args=[study.pk])
    form = client.get(url).context["adminform"].form
    data = {name: form[name].value() for name in form.fields if form[name].value() is not None}
    data.update(
        {
            "name": "Renamed study",
            "required_views": '["frontal"]',
            "analyses": '["landmarks"]',
            "zones_of_interest": '["FFA"]',
            "memberships-TOTAL_FORMS": "0",
            "memberships-INITIAL_FORMS": "0",
        }
    )
    data.pop("force_zone_baseline", None)
    response = client.post(url, data)
    assert response.status_code == 302, response.content.decode()[:2000]
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, via="admin", object_id=str(study.pk)).get()
    assert event.details["changes"]["name"] == {"old": "Filler study", "new": "Renamed study"}


def test_a_user_edited_in_the_admin_records_old_and_new_values(client, make_user):
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    target = make_user("dr.who")
    client.force_login(root)
    url = reverse("admin:auth_user_change", args=[target.pk])
    response = client.post(
        url,
        {
            "username": "dr.who",
            "email": "new@example.org",
            "is_active": "on",
            "date_joined_0": "2026-01-01",
            "date_joined_1": "00:00:00",
            "initial-date_joined_0": "2026-01-01",
            "initial-date_joined_1": "00:00:00",
        },
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    event = AuditEvent.objects.get(action=AuditAction.UPDATE, via="admin", object_type="auth.user")
    assert event.details["changes"]["email"] == {"old": "dr.who@example.org", "new": "new@example.org"}
    assert not admin.site._registry[type(target)].has_delete_permission(None)


def test_a_settings_change_records_old_and_new_values(study_with_members):
    from webapp.studies.services import study_update

    study = study_with_members["study"]
    study_update(study=study, actor=study_with_members["coordinator"], normality_region="face_no_eyes")
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, object_type="studies.study").latest("id")
    assert event.details["changes"]["normality_region"] == {"old": "mouth_nose", "new": "face_no_eyes"}


def test_a_photo_page_with_its_image_is_one_event(client, study_with_members, make_photo):
    study = study_with_members["study"]
    photo = make_photo(study)
    client.force_login(study_with_members["clinician"])
    before = AuditEvent.objects.filter(action=AuditAction.VIEW).count()
    page = client.get(reverse("studies:photo_detail", args=[photo.pk]))
    assert page.status_code == 200
    image_url = page.context["view_grant"] and (
        reverse("studies:photo_image", args=[photo.pk]) + "?seen=" + page.context["view_grant"]
    )
    assert image_url in page.content.decode().replace("%3A", ":")
    assert client.get(image_url).status_code == 200
    events = list(AuditEvent.objects.filter(action=AuditAction.VIEW).order_by("id")[before:])
    assert [(event.action, event.object_type) for event in events] == [("view", "studies.photo")]
    assert events[0].details["photos"] == [photo.pk]
    # Without the page's grant (or with someone else's), the image is its own audited view.
    client.force_login(study_with_members["coordinator"])
    assert client.get(image_url).status_code == 200
    assert AuditEvent.objects.filter(action=AuditAction.VIEW).count() == before + 2


def test_a_grant_covers_only_the_photos_its_page_showed(client, study_with_members, make_photo):
    study = study_with_members["study"]
    shown, other = make_photo(study), make_photo(study, visit_label="week 12")
    client.force_login(study_with_members["clinician"])
    grant = client.get(reverse("studies:photo_detail", args=[shown.pk])).context["view_grant"]
    before = AuditEvent.objects.count()
    client.get(reverse("studies:photo_image", args=[other.pk]), {"seen": grant})
    client.get(reverse("studies:photo_image", args=[shown.pk]), {"seen": grant, "download": "1"})
    client.get(reverse("studies:photo_image", args=[shown.pk]), {"seen": grant + "x"})
    assert AuditEvent.objects.count() == before + 3


def test_a_subject_page_with_its_thumbnails_is_one_event(client, study_with_members, make_photo):
    study = study_with_members["study"]
    photos = [make_photo(study), make_photo(study, visit_label="week 12")]
    client.force_login(study_with_members["clinician"])
    before = AuditEvent.objects.count()
    page = client.get(reverse("studies:subject_detail", args=[photos[0].visit.subject_id]))
    for photo in photos:
        response = client.get(
            reverse("studies:photo_thumbnail", args=[photo.pk]), {"seen": page.context["view_grant"]}
        )
        assert response.status_code == 200
    events = list(AuditEvent.objects.order_by("id")[before:])
    assert len(events) == 1
    assert sorted(events[0].details["photos"]) == sorted(photo.pk for photo in photos)
