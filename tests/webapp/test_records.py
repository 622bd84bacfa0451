"""Editing, reversible deletion, restoration and purge of subjects, visits and photos (issue 16 item 2)."""

import datetime

import pytest
from django.core.management import call_command
from django.urls import reverse
from django.utils import timezone

from webapp.analysis import services as analysis_services
from webapp.analysis.models import AnalysisJob
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.services import run_claim
from webapp.studies.models import Photo, PhotoView, Subject, Visit

pytestmark = pytest.mark.django_db


def test_a_clinician_corrects_a_photos_view_and_visit(client, study_with_members, make_photo):
    study = study_with_members["study"]
    photo = make_photo(study)
    later = Visit.objects.create(subject=photo.visit.subject, label="week 12", role="post")
    client.force_login(study_with_members["clinician"])
    response = client.post(
        reverse("studies:photo_edit", args=[photo.pk]), {"view": PhotoView.LEFT_45, "visit": later.pk}
    )
    assert response.status_code == 302
    photo.refresh_from_db()
    assert (photo.view, photo.visit_id) == (PhotoView.LEFT_45, later.pk)
    event = AuditEvent.objects.get(action=AuditAction.UPDATE, object_type="studies.photo")
    assert event.details["changes"]["view"] == {"old": "frontal", "new": "left45"}
    assert event.details["changes"]["visit"]["new"]["id"] == later.pk


def test_a_photo_cannot_move_to_another_studys_visit(client, study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    elsewhere = make_photo(study_with_members["other_study"]).visit
    client.force_login(study_with_members["coordinator"])
    client.post(reverse("studies:photo_edit", args=[photo.pk]), {"view": "frontal", "visit": elsewhere.pk})
    photo.refresh_from_db()
    assert photo.visit_id != elsewhere.pk


def test_raters_and_monitors_cannot_edit_or_delete(client, study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    for role in ("rater", "monitor"):
        client.force_login(study_with_members[role])
        edit = client.post(
            reverse("studies:photo_edit", args=[photo.pk]), {"view": "left45", "visit": photo.visit_id}
        )
        delete = client.post(reverse("studies:photo_delete", args=[photo.pk]), {"reason": "x"})
        assert (edit.status_code, delete.status_code) == (403, 403)
    client.force_login(study_with_members["outsider"])
    assert client.post(reverse("studies:photo_delete", args=[photo.pk]), {"reason": "x"}).status_code == 404
    photo.refresh_from_db()
    assert photo.view == "frontal" and not photo.is_deleted


def test_edit_subject_code_and_visit_with_old_and_new_values(client, study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    subject, visit = photo.visit.subject, photo.visit
    client.force_login(study_with_members["coordinator"])
    client.post(reverse("studies:subject_edit", args=[subject.pk]), {"code": "S-002"})
    client.post(
        reverse("studies:visit_edit", args=[visit.pk]),
        {"label": "day 0", "date": "2026-01-05", "role": "pre"},
    )
    subject.refresh_from_db()
    visit.refresh_from_db()
    assert subject.code == "S-002" and visit.label == "day 0" and visit.date == datetime.date(2026, 1, 5)
    changes = [event.details["changes"] for event in AuditEvent.objects.filter(action=AuditAction.UPDATE)]
    assert {"code": {"old": "S001", "new": "S-002"}} in changes
    assert any(change.get("date") == {"old": None, "new": "2026-01-05"} for change in changes)


def test_a_deletion_needs_a_reason(client, study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    client.force_login(study_with_members["coordinator"])
    client.post(reverse("studies:photo_delete", args=[photo.pk]), {"reason": "   "})
    photo.refresh_from_db()
    assert not photo.is_deleted


def test_a_deleted_subject_disappears_everywhere_and_comes_back(client, study_with_members, make_photo):
    study = study_with_members["study"]
    photo = make_photo(study)
    subject = photo.visit.subject
    job = AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="cpu", model_name="dlib-68")
    result = analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={"faces": []},
        model={"name": "dlib-68", "version": "t"},
        parameters={},
        code_version="t",
    )
    client.force_login(study_with_members["coordinator"])
    response = client.post(
        reverse("studies:subject_delete", args=[subject.pk]), {"reason": "consent withdrawn"}
    )
    assert response.status_code == 302
    subject.refresh_from_db()
    assert subject.is_deleted and subject.deletion_reason == "consent withdrawn"
    hidden = [
        reverse("studies:subject_detail", args=[subject.pk]),
        reverse("studies:photo_detail", args=[photo.pk]),
        reverse("studies:photo_image", args=[photo.pk]),
        f"/api/photos/{photo.pk}/",
        f"/api/subjects/{subject.pk}/",
        f"/api/jobs/{job.pk}/",
        f"/api/results/{result.pk}/",
        reverse("analysis:result_json", args=[result.pk]),
    ]
    assert [client.get(url).status_code for url in hidden] == [404] * len(hidden)
    assert subject.code not in client.get(reverse("studies:study_detail", args=[study.pk])).content.decode()
    assert client.get("/api/photos/").json()["count"] == 0
    assert client.get("/api/jobs/").json()["count"] == 0
    listed = client.get(reverse("studies:deleted_records", args=[study.pk]))
    assert "consent withdrawn" in listed.content.decode()
    client.post(reverse("studies:subject_restore", args=[subject.pk]))
    assert client.get(reverse("studies:photo_detail", args=[photo.pk])).status_code == 200
    actions = list(
        AuditEvent.objects.filter(object_type="studies.subject", object_id=str(subject.pk))
        .order_by("id")
        .values_list("action", flat=True)
    )
    assert actions[-2:] == [AuditAction.DELETE, AuditAction.RESTORE]


def test_a_visit_of_a_deleted_subject_is_restored_only_after_it(study_with_members, make_photo):
    from django.core.exceptions import ValidationError

    from webapp.studies.records import record_delete, record_restore

    coordinator = study_with_members["coordinator"]
    photo = make_photo(study_with_members["study"])
    record_delete(record=photo.visit, reason="wrong date", actor=coordinator)
    record_delete(record=photo.visit.subject, reason="duplicate subject", actor=coordinator)
    with pytest.raises(ValidationError, match="restore that first"):
        record_restore(record=Visit.objects.get(pk=photo.visit_id), actor=coordinator)


def test_deleting_a_photo_cancels_its_queued_analyses(
    study_with_members, make_photo, django_capture_on_commit_callbacks
):
    from webapp.analysis.models import AnalysisJob
    from webapp.runs.models import RunStatus
    from webapp.studies.records import record_delete

    photo = make_photo(study_with_members["study"])
    job = AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="cpu", model_name="dlib-68")
    with django_capture_on_commit_callbacks(execute=True):
        record_delete(record=photo, reason="blurred duplicate", actor=study_with_members["coordinator"])
    job.refresh_from_db()
    assert job.status == RunStatus.CANCELLED


def test_purge_after_the_retention_period_takes_rows_and_files(
    settings, study_with_members, make_photo, django_capture_on_commit_callbacks
):
    from django.core.files.storage import default_storage

    from webapp.studies.records import record_delete

    settings.FACET_DELETED_RETENTION_DAYS = 30
    coordinator = study_with_members["coordinator"]
    old, recent, kept = (
        make_photo(study_with_members["study"], subject_code=code) for code in ("A", "B", "C")
    )
    record_delete(record=old.visit.subject, reason="consent withdrawn", actor=coordinator)
    record_delete(record=recent, reason="wrong subject", actor=coordinator)
    Subject.objects.filter(pk=old.visit.subject_id).update(
        deleted_at=timezone.now() - datetime.timedelta(days=31)
    )
    files = [old.image.name, old.thumbnail.name]
    assert all(default_storage.exists(name) for name in files)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("facet_purge_deleted")
    assert not Photo.objects.filter(pk=old.pk).exists()
    assert not Subject.objects.filter(pk=old.visit.subject_id).exists()
    assert not any(default_storage.exists(name) for name in files)
    assert Photo.objects.filter(pk__in=[recent.pk, kept.pk]).count() == 2
    purge = AuditEvent.objects.get(action=AuditAction.PURGE)
    assert purge.details["photos"] == [old.pk] and purge.details["reason"] == "consent withdrawn"


def test_study_list_and_subject_list_search_and_page(client, settings, study_with_members, make_user):
    from webapp.studies.models import Subject

    study = study_with_members["study"]
    Subject.objects.bulk_create([Subject(study=study, code=f"S{number:03d}") for number in range(60)])
    client.force_login(study_with_members["coordinator"])
    first = client.get(reverse("studies:study_detail", args=[study.pk]))
    assert len(first.context["subject_rows"]) == 25 and first.context["subject_page"].paginator.count == 60
    third = client.get(reverse("studies:study_detail", args=[study.pk]), {"page": 3})
    assert [row.subject.code for row in third.context["subject_rows"]][-1] == "S059"
    found = client.get(reverse("studies:study_detail", args=[study.pk]), {"q": "s05"})
    assert [row.subject.code for row in found.context["subject_rows"]] == [f"S05{n}" for n in range(10)]
    listed = client.get(reverse("studies:study_list"), {"q": "filler"})
    assert [s.name for s in listed.context["studies"]] == ["Filler study"]


def test_study_creation_is_a_setting(client, settings, make_user):
    from django.contrib.auth.models import Permission

    user = make_user("dr.new")
    client.force_login(user)
    settings.FACET_STUDY_CREATORS = "permitted"
    assert client.get(reverse("studies:study_create")).status_code == 403
    user.user_permissions.add(Permission.objects.get(codename="add_study"))
    client.force_login(type(user).objects.get(pk=user.pk))
    assert client.get(reverse("studies:study_create")).status_code == 200
    other = make_user("dr.other")
    client.force_login(other)
    settings.FACET_STUDY_CREATORS = "everyone"
    assert client.get(reverse("studies:study_create")).status_code == 200


def test_a_corrected_view_queues_the_analyses_again(
    study_with_members, make_photo, sent_runs, django_capture_on_commit_callbacks
):
    from webapp.runs.models import RunStatus
    from webapp.studies.records import photo_update

    sent = sent_runs
    photo = make_photo(study_with_members["study"])
    done = AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="cpu", model_name="dlib-68")
    claim = run_claim(AnalysisJob, run_id=done.pk, worker="test")
    analysis_services.job_succeed(
        job_id=done.pk,
        attempt=claim.attempt,
        data={"faces": []},
        model={"name": "dlib-68", "version": "t"},
        parameters={},
        code_version="t",
    )
    with django_capture_on_commit_callbacks(execute=True):
        photo_update(
            photo=photo, view=PhotoView.LEFT_45, visit=photo.visit, actor=study_with_members["coordinator"]
        )
    again = AnalysisJob.objects.filter(photo=photo, status=RunStatus.QUEUED)
    assert [job.kind for job in again] == list(photo.study.analyses)
    assert [job.pk for job in sent] == [job.pk for job in again]
    # Moving it to another visit without changing the view reruns nothing.
    with django_capture_on_commit_callbacks(execute=True):
        photo_update(
            photo=photo,
            view=PhotoView.LEFT_45,
            visit=Visit.objects.create(subject=photo.visit.subject, label="w4", role="post"),
            actor=study_with_members["coordinator"],
        )
    assert AnalysisJob.objects.filter(photo=photo).count() == 2


def test_a_view_changed_in_the_admin_also_reruns_the_analyses(
    client, make_user, study_with_members, make_photo, sent_runs, django_capture_on_commit_callbacks
):
    root = make_user("root", staff=True)
    root.is_superuser = True
    root.save()
    photo = make_photo(study_with_members["study"])
    client.force_login(root)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("admin:studies_photo_change", args=[photo.pk]), {"view": "right45", "deletion_reason": ""}
        )
    assert response.status_code == 302, response.content.decode()[:2000]
    photo.refresh_from_db()
    assert photo.view == "right45"
    assert AnalysisJob.objects.filter(photo=photo, status="queued").count() == len(photo.study.analyses)
    event = AuditEvent.objects.get(action=AuditAction.UPDATE, via="admin", object_type="studies.photo")
    assert event.details["changes"]["view"] == {"old": "frontal", "new": "right45"}
