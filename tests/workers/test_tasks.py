"""`run_analysis_job` semantics, run in-process (eagerly): results, idempotency, cancel, retries, limits."""

import logging

import pytest
from celery.exceptions import SoftTimeLimitExceeded
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import DatabaseError

from webapp.analysis.models import AnalysisJob, Result
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.models import RunStatus
from webapp.runs.services import RETRY_POLICY, run_cancel
from workers import runners
from workers.tasks import run_analysis_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    # study_with_members creates six users; the production hasher takes about a second each here.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def synthetic_job(study_with_members, make_photo) -> AnalysisJob:
    """A queued landmarks job of a synthetic photo without a face."""
    photo = make_photo(study_with_members["study"])
    return AnalysisJob.objects.create(kind="landmarks", photo=photo, queue="cpu", model_name="dlib-68")


@pytest.fixture
def face_job(study_with_members, face_jpeg_bytes, monkeypatch) -> AnalysisJob:
    """The landmarks job that ingesting a real face photo queues (not sent to any broker)."""
    from webapp.analysis.services import photo_upload
    from webapp.studies.models import Subject, Visit, VisitRole

    sent = []
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: sent.append(run))
    study = study_with_members["study"]
    subject = Subject.objects.create(study=study, code="S100")
    visit = Visit.objects.create(subject=subject, label="baseline", role=VisitRole.PRE)
    photo = photo_upload(
        visit=visit,
        view="frontal",
        uploaded_by=study_with_members["coordinator"],
        upload=SimpleUploadedFile("face.jpg", face_jpeg_bytes, content_type="image/jpeg"),
    )
    return AnalysisJob.objects.get(photo=photo, kind="landmarks")


def outcome_for(job: AnalysisJob) -> runners.RunOutcome:
    return runners.RunOutcome(
        data={"faces": [], "quality": {"ok": False, "reasons": ["No face was found."]}},
        model={"name": "dlib-68", "version": "test-1", "weights_sha256": "cd" * 32},
        parameters={"view": job.photo.view},
    )


def test_real_face_job_records_result_with_provenance(face_job):
    from ml.config import code_version
    from ml.registry import registry

    run_analysis_job.apply(args=[face_job.pk])

    face_job.refresh_from_db()
    assert face_job.status == RunStatus.SUCCEEDED
    assert face_job.attempts == 1
    assert face_job.progress == 1.0
    assert face_job.started_at <= face_job.finished_at
    result = Result.objects.get(job=face_job)
    assert len(result.data["faces"]) == 1
    assert len(result.data["faces"][0]["landmarks"]) == 68
    described = registry.describe("dlib-68")
    assert (result.model_name, result.model_version) == ("dlib-68", described["version"])
    assert result.weights_sha256 == described["weights_sha256"] and len(result.weights_sha256) == 64
    assert result.code_version == code_version()
    assert result.parameters == {"view": "frontal", "expected_yaw": 0.0}
    assert list(result.artifacts.values_list("name", flat=True)) == ["aligned"]


def test_photo_without_face_succeeds_with_a_failed_quality_verdict(synthetic_job):
    run_analysis_job.apply(args=[synthetic_job.pk])

    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.SUCCEEDED
    data = synthetic_job.result.data
    assert data["faces"] == []
    assert data["quality"]["ok"] is False
    assert data["quality"]["reasons"] == ["No face was found."]
    assert not synthetic_job.result.artifacts.exists()


def test_second_delivery_of_a_finished_job_is_a_no_op(synthetic_job, monkeypatch):
    calls = []

    def runner(job, progress):
        calls.append(job.pk)
        return outcome_for(job)

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])
    first = Result.objects.get(job=synthetic_job)
    synthetic_job.refresh_from_db()
    finished_at = synthetic_job.finished_at

    run_analysis_job.apply(args=[synthetic_job.pk])

    assert calls == [synthetic_job.pk]
    synthetic_job.refresh_from_db()
    assert (synthetic_job.status, synthetic_job.attempts, synthetic_job.finished_at) == (
        RunStatus.SUCCEEDED,
        1,
        finished_at,
    )
    assert list(Result.objects.filter(job=synthetic_job)) == [first]


def test_job_that_no_longer_exists_is_skipped(monkeypatch):
    monkeypatch.setitem(runners.RUNNERS, "landmarks", lambda job, progress: pytest.fail("must not run"))
    run_analysis_job.apply(args=[987654])
    assert not AnalysisJob.objects.filter(pk=987654).exists()


def test_cancelled_queued_job_never_runs(synthetic_job, study_with_members, monkeypatch):
    monkeypatch.setitem(runners.RUNNERS, "landmarks", lambda job, progress: pytest.fail("must not run"))
    run_cancel(synthetic_job, actor=study_with_members["clinician"])
    run_analysis_job.apply(args=[synthetic_job.pk])
    synthetic_job.refresh_from_db()
    assert (synthetic_job.status, synthetic_job.attempts) == (RunStatus.CANCELLED, 0)


def test_cancel_during_progress_stops_without_a_result(synthetic_job, study_with_members, monkeypatch):
    reached = []

    def runner(job, progress):
        progress(0.3, "Halfway")
        run_cancel(job, actor=study_with_members["clinician"])
        progress(0.6, "Still going")
        reached.append("after cancel")
        return outcome_for(job)

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])

    assert reached == []
    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.CANCELLED
    assert synthetic_job.progress == pytest.approx(0.3)
    assert not Result.objects.filter(job=synthetic_job).exists()


def test_transient_database_error_is_retried_and_attempts_counted(synthetic_job, sent_runs, monkeypatch):
    statuses_seen = []

    def runner(job, progress):
        statuses_seen.append(AnalysisJob.objects.get(pk=job.pk).status)
        if len(statuses_seen) == 1:
            raise DatabaseError("server closed the connection unexpectedly")
        return outcome_for(job)

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])
    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.QUEUED and "Waiting to retry" in synthetic_job.progress_message
    assert [run.pk for run in sent_runs] == [synthetic_job.pk]  # sent again, with the back-off delay

    run_analysis_job.apply(args=[synthetic_job.pk])  # the broker delivers the retry
    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.SUCCEEDED
    assert synthetic_job.attempts == 2
    assert synthetic_job.error == ""
    assert statuses_seen == [RunStatus.RUNNING, RunStatus.RUNNING]
    requeued = AuditEvent.objects.get(
        action=AuditAction.STATE, summary=f"Analysis job {synthetic_job.pk} will retry"
    )
    assert requeued.details["status"] == RunStatus.QUEUED
    assert "server closed the connection" in requeued.details["error"]
    assert Result.objects.filter(job=synthetic_job).count() == 1


def test_transient_error_that_persists_fails_after_the_last_attempt(synthetic_job, sent_runs, monkeypatch):
    def runner(job, progress):
        raise DatabaseError("could not connect to server")

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    for _ in range(RETRY_POLICY.max_attempts):
        run_analysis_job.apply(args=[synthetic_job.pk])

    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.FAILED
    assert synthetic_job.attempts == RETRY_POLICY.max_attempts
    assert "lost contact with the database" in synthetic_job.error
    assert "could not connect to server" in synthetic_job.error and "DatabaseError" not in synthetic_job.error
    assert synthetic_job.finished_at is not None
    retries = AuditEvent.objects.filter(summary=f"Analysis job {synthetic_job.pk} will retry").count()
    assert retries == RETRY_POLICY.max_attempts - 1 == len(sent_runs)
    assert not Result.objects.filter(job=synthetic_job).exists()


def test_permanent_error_fails_at_once_with_its_message(synthetic_job, monkeypatch):
    def runner(job, progress):
        raise ValueError("The image has no pixels.")

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])

    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.FAILED
    assert synthetic_job.attempts == 1
    assert synthetic_job.error == "The image has no pixels."
    assert synthetic_job.progress_message == "Failed"
    assert not Result.objects.filter(job=synthetic_job).exists()


def test_an_unexpected_error_reads_as_a_sentence_without_its_class(synthetic_job, monkeypatch):
    def runner(job, progress):
        raise KeyError("faces")

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])
    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.FAILED
    assert "KeyError" not in synthetic_job.error and "worker's log" in synthetic_job.error


def test_a_photo_without_a_face_is_a_warning_without_traceback_and_a_crash_an_error_with_one(
    synthetic_job, monkeypatch, caplog
):
    from ml.core.subject import NoFaceError

    def no_face(job, progress):
        raise NoFaceError("No face was found in the photo, so there is nothing to analyse.")

    monkeypatch.setitem(runners.RUNNERS, "landmarks", no_face)
    with caplog.at_level(logging.INFO, logger="workers.runs"):
        run_analysis_job.apply(args=[synthetic_job.pk])
    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.FAILED and synthetic_job.error.startswith("No face was found")
    [record] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "No face was found" in record.getMessage()

    caplog.clear()
    crashed = AnalysisJob.objects.create(
        kind="landmarks", photo=synthetic_job.photo, queue="cpu", model_name="dlib-68"
    )

    def crash(job, progress):
        raise KeyError("faces")

    monkeypatch.setitem(runners.RUNNERS, "landmarks", crash)
    with caplog.at_level(logging.INFO, logger="workers.runs"):
        run_analysis_job.apply(args=[crashed.pk])
    [record] = [record for record in caplog.records if record.levelno >= logging.WARNING]
    assert record.levelno == logging.ERROR and record.exc_info is not None


def test_soft_time_limit_fails_with_a_clear_message(synthetic_job, monkeypatch):
    def runner(job, progress):
        progress(0.5, "Detecting faces and landmarks")
        raise SoftTimeLimitExceeded()

    monkeypatch.setitem(runners.RUNNERS, "landmarks", runner)
    run_analysis_job.apply(args=[synthetic_job.pk])

    synthetic_job.refresh_from_db()
    assert synthetic_job.status == RunStatus.FAILED
    assert synthetic_job.attempts == 1
    assert "longer than its time limit" in synthetic_job.error
    assert not Result.objects.filter(job=synthetic_job).exists()
