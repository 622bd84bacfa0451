"""Built background exports do not outlive their retention period nor the data they hold: expired after
FACET_EXPORT_RETENTION_HOURS (beat task and management command), purged at once when a subject, visit or
photo of theirs is deleted; each purge audited, and a purged export's download answers 410 on the page
and in the API. Results are fabricated TEST DATA (tests.webapp.exports_scene)."""

import datetime
import io

import pytest
from django.conf import settings
from django.core.files.storage import default_storage
from django.core.management import call_command
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from tests.webapp.exports_scene import make_subject
from webapp.audit.models import AuditAction, AuditEvent
from webapp.exports.models import ExportPurgeReason, StudyExport
from webapp.exports.services import study_export_request
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.records import record_delete
from workers.celery import app as worker_app
from workers.exports import build_study_export, purge_expired_exports

pytestmark = pytest.mark.django_db


@pytest.fixture
def scene(study_with_members, monkeypatch):
    # The task is sent after the commit; here each test runs it in-process instead.
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    coordinator = study_with_members["coordinator"]
    first = make_subject(study, "S-001", coordinator, seed=1)
    second = make_subject(study, "S-002", coordinator, seed=3)
    other = make_subject(study_with_members["other_study"], "O-001", study_with_members["outsider"], seed=5)
    return {**study_with_members, "first": first, "second": second, "other": other}


def built_export(study, actor, export_format: str = "csv", **options) -> StudyExport:
    export = study_export_request(study=study, format=export_format, options=options or None, actor=actor)
    build_study_export.apply(args=[export.pk]).get()
    export.refresh_from_db()
    assert export.status == RunStatus.SUCCEEDED and export.file, export.error
    assert default_storage.exists(export.file.name)
    return export


def built_hours_ago(export: StudyExport, hours: float) -> None:
    StudyExport.objects.filter(pk=export.pk).update(
        finished_at=timezone.now() - datetime.timedelta(hours=hours)
    )


def purge_events(export: StudyExport) -> list[AuditEvent]:
    return list(
        AuditEvent.objects.filter(
            action=AuditAction.PURGE, object_type="exports.studyexport", object_id=str(export.pk)
        )
    )


def assert_purged(export: StudyExport, reason: ExportPurgeReason) -> str:
    """The export is marked purged for ``reason`` and its file is gone; returns the file's old name."""
    name = export.file.name
    export.refresh_from_db()
    assert export.purged_at is not None and export.purge_reason == reason
    assert not export.file and not default_storage.exists(name)
    return name


def assert_kept(export: StudyExport) -> None:
    export.refresh_from_db()
    assert export.purged_at is None and default_storage.exists(export.file.name)
    assert not purge_events(export)


# Retention -----------------------------------------------------------------------------------------------


def test_the_command_purges_the_exports_past_their_retention_once(scene, django_capture_on_commit_callbacks):
    hours = settings.FACET_EXPORT_RETENTION_HOURS
    old = built_export(scene["study"], scene["coordinator"])
    recent = built_export(scene["study"], scene["coordinator"])
    built_hours_ago(old, hours + 1)
    built_hours_ago(recent, hours - 1)

    output = io.StringIO()
    with django_capture_on_commit_callbacks(execute=True):
        call_command("facet_purge_exports", stdout=output)

    assert f"Purged 1 export(s) built more than {hours} hours ago" in output.getvalue()
    assert_purged(old, ExportPurgeReason.EXPIRED)
    assert_kept(recent)
    [event] = purge_events(old)
    assert event.via == "cli" and event.study_id == scene["study"].pk
    assert event.details["reason"] == "expired" and event.details["retention_hours"] == hours

    output = io.StringIO()
    call_command("facet_purge_exports", stdout=output)
    assert "Purged 0 export(s)" in output.getvalue() and len(purge_events(old)) == 1


def test_the_retention_setting_decides_what_expires(scene, settings, django_capture_on_commit_callbacks):
    settings.FACET_EXPORT_RETENTION_HOURS = 2
    export = built_export(scene["study"], scene["coordinator"])
    built_hours_ago(export, 3)
    with django_capture_on_commit_callbacks(execute=True):
        assert purge_expired_exports.apply().get() == 1
    assert_purged(export, ExportPurgeReason.EXPIRED)
    assert purge_events(export)[0].via == "worker"


def test_celery_beat_schedules_the_purge_task_the_workers_know():
    entry = worker_app.conf.beat_schedule["purge-expired-exports"]
    assert entry["task"] in worker_app.tasks and entry["schedule"] == settings.FACET_EXPORT_PURGE_SECONDS


def test_a_purged_export_answers_410_on_its_page_and_in_the_api(scene, django_capture_on_commit_callbacks):
    export = built_export(scene["study"], scene["coordinator"])
    built_hours_ago(export, settings.FACET_EXPORT_RETENTION_HOURS + 1)
    with django_capture_on_commit_callbacks(execute=True):
        call_command("facet_purge_exports", stdout=io.StringIO())

    page = Client()
    page.force_login(scene["coordinator"])
    response = page.get(reverse("exports:export_download", args=[export.pk]))
    assert response.status_code == 410
    content = response.content.decode()
    assert 'id="export-purged"' in content and "kept for a limited time only" in content
    assert (
        'id="export-download"'
        not in page.get(reverse("exports:export_detail", args=[export.pk])).content.decode()
    )

    api = APIClient()
    api.force_authenticate(scene["coordinator"])
    state = api.get(f"/api/exports/{export.pk}/").json()
    assert state["download"] is None and state["purge_reason"] == "expired" and state["purged_at"]
    response = api.get(f"/api/exports/{export.pk}/download/")
    assert response.status_code == 410 and "kept for a limited time only" in response.json()["detail"]
    assert not AuditEvent.objects.filter(action=AuditAction.DOWNLOAD).exists()


# Withdrawal ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("withdrawn", ["subject", "visit", "photo"])
def test_deleting_a_record_purges_the_exports_that_may_hold_it(
    scene, withdrawn, django_capture_on_commit_callbacks
):
    coordinator = scene["coordinator"]
    measures = built_export(scene["study"], coordinator)
    whole_study = built_export(scene["study"], coordinator, "dicom")
    first_only = built_export(scene["study"], coordinator, "dicom", subject_id=scene["first"]["subject"].pk)
    second_only = built_export(scene["study"], coordinator, "dicom", subject_id=scene["second"]["subject"].pk)
    other_study = built_export(scene["other_study"], scene["outsider"])
    photo = scene["first"]["pre"]
    record = {"subject": photo.visit.subject, "visit": photo.visit, "photo": photo}[withdrawn]

    with django_capture_on_commit_callbacks(execute=True):
        record_delete(record=record, reason="consent withdrawn", actor=coordinator)

    for export in (measures, whole_study, first_only):
        assert_purged(export, ExportPurgeReason.WITHDRAWN)
        [event] = purge_events(export)
        assert event.actor == coordinator and event.details["reason"] == "withdrawn"
        assert photo.pk in event.details["photos"]
    assert_kept(second_only)
    assert_kept(other_study)
    export_page = Client()
    export_page.force_login(coordinator)
    response = export_page.get(reverse("exports:export_download", args=[measures.pk]))
    assert response.status_code == 410 and "was withdrawn" in response.content.decode()


def test_a_running_export_of_a_withdrawn_subject_is_cancelled(scene, django_capture_on_commit_callbacks):
    export = study_export_request(study=scene["study"], format="dicom", actor=scene["coordinator"])
    assert run_claim(StudyExport, run_id=export.pk, worker="test-worker").should_run
    with django_capture_on_commit_callbacks(execute=True):
        record_delete(
            record=scene["first"]["subject"], reason="consent withdrawn", actor=scene["coordinator"]
        )
    export.refresh_from_db()
    assert export.status == RunStatus.CANCELLED and not export.file


def test_deleting_a_study_deletes_its_export_files(scene, django_capture_on_commit_callbacks):
    export = built_export(scene["study"], scene["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        scene["study"].delete()
    assert not StudyExport.objects.filter(pk=export.pk).exists()
    assert not default_storage.exists(export.file.name)
