"""Analysis job endpoints (status, cancel, retry, results, artifacts) and the admins' queue page."""

import datetime
from unittest import mock

import pytest
from django.core.files.base import ContentFile
from django.urls import reverse
from django.utils import timezone

from webapp.analysis.models import AnalysisJob, Result, ResultArtifact
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.models import RunStatus, WorkerHeartbeat

pytestmark = pytest.mark.django_db


@pytest.fixture
def job(study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    return AnalysisJob.objects.create(kind="landmarks", photo=photo, queue="cpu", model_name="dlib-68")


@pytest.fixture
def result_with_artifact(job):
    job.status = RunStatus.SUCCEEDED
    job.save()
    result = Result.objects.create(
        job=job,
        data={"faces": []},
        model_name="dlib-68",
        model_version="v1",
        weights_sha256="ab" * 32,
        parameters={"view": "frontal"},
        code_version="abc123",
    )
    artifact = ResultArtifact(result=result, name="aligned", content_type="image/jpeg")
    artifact.file.save("aligned.jpg", ContentFile(b"\xff\xd8jpeg-bytes"), save=False)
    artifact.save()
    return result, artifact


def test_job_status_for_member_and_404_for_outsider(client, study_with_members, job):
    url = reverse("runs:status", args=["analysis", job.pk])
    client.force_login(study_with_members["rater"])
    response = client.get(url)
    assert response.status_code == 200
    assert response.json()["status"] == "queued"
    assert response.json()["result_url"] is None
    assert "no-cache" in response["Cache-Control"] or "max-age=0" in response["Cache-Control"]
    client.force_login(study_with_members["outsider"])
    assert client.get(url).status_code == 404


def test_clinician_cancels_and_rater_cannot(client, study_with_members, job):
    url = reverse("runs:cancel", args=["analysis", job.pk])
    client.force_login(study_with_members["rater"])
    assert client.post(url, HTTP_ACCEPT="application/json").status_code == 403
    client.force_login(study_with_members["monitor"])
    assert client.post(url, HTTP_ACCEPT="application/json").status_code == 403
    client.force_login(study_with_members["clinician"])
    response = client.post(url, HTTP_ACCEPT="application/json")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert AuditEvent.objects.filter(
        action=AuditAction.STATE, object_id=str(job.pk), actor=study_with_members["clinician"]
    ).exists()
    again = client.post(url, HTTP_ACCEPT="application/json")
    assert again.status_code == 409
    assert "only queued or running" in again.json()["error"]


def test_retry_only_from_failed_or_cancelled_and_sends_to_worker(
    client, study_with_members, job, django_capture_on_commit_callbacks
):
    url = reverse("runs:retry", args=["analysis", job.pk])
    client.force_login(study_with_members["coordinator"])
    assert client.post(url, HTTP_ACCEPT="application/json").status_code == 409
    AnalysisJob.objects.filter(pk=job.pk).update(status=RunStatus.FAILED, error="boom")
    with (
        mock.patch("webapp.runs.dispatch.send_run") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        with_commit = client.post(url, HTTP_ACCEPT="application/json")
    assert with_commit.status_code == 200
    job.refresh_from_db()
    assert job.status == RunStatus.QUEUED and job.error == ""
    send.assert_called_once()
    assert send.call_args.args[0].pk == job.pk


def test_analyse_again_queues_the_studys_analyses_afresh_for_those_who_control_jobs(
    client, study_with_members, job, django_capture_on_commit_callbacks
):
    """After a model upgrade a photo's analyses run again, so a pre/post pair reads one model version."""
    url = reverse("studies:photo_analyse_again", args=[job.photo_id])
    client.force_login(study_with_members["rater"])
    assert client.post(url).status_code == 403
    assert list(AnalysisJob.objects.filter(photo_id=job.photo_id)) == [job]
    AnalysisJob.objects.filter(pk=job.pk).update(status=RunStatus.SUCCEEDED)
    client.force_login(study_with_members["clinician"])
    with (
        mock.patch("webapp.runs.dispatch.send_run") as send,
        django_capture_on_commit_callbacks(execute=True),
    ):
        response = client.post(url)
    assert response.status_code == 302
    assert response["Location"] == reverse("studies:photo_detail", args=[job.photo_id])
    queued = AnalysisJob.objects.filter(photo_id=job.photo_id, status=RunStatus.QUEUED)
    analyses = study_with_members["study"].analyses
    assert sorted(queued.values_list("kind", flat=True)) == sorted(analyses)
    assert send.call_count == len(analyses)
    event = AuditEvent.objects.get(summary=f"Queued the analyses of photo {job.photo_id} again")
    assert event.actor == study_with_members["clinician"]
    assert sorted(event.details["queued_jobs"]) == sorted(queued.values_list("pk", flat=True))
    with mock.patch("webapp.runs.dispatch.send_run"):
        client.post(url)  # the analyses still queued are kept, not doubled
    assert AnalysisJob.objects.filter(photo_id=job.photo_id, status=RunStatus.QUEUED).count() == len(analyses)


def test_html_cancel_redirects_back_to_the_photo(client, study_with_members, job):
    client.force_login(study_with_members["clinician"])
    response = client.post(reverse("runs:cancel", args=["analysis", job.pk]))
    assert response.status_code == 302
    assert response["Location"] == reverse("studies:photo_detail", args=[job.photo_id])


def test_result_json_is_audited(client, study_with_members, result_with_artifact):
    result, artifact = result_with_artifact
    client.force_login(study_with_members["monitor"])
    response = client.get(reverse("analysis:result_json", args=[result.pk]))
    assert response.status_code == 200
    payload = response.json()
    assert payload["provenance"]["weights_sha256"] == "ab" * 32
    assert payload["artifacts"][0]["name"] == "aligned"
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW,
        object_type="analysis.result",
        object_id=str(result.pk),
        actor=study_with_members["monitor"],
    ).exists()
    client.force_login(study_with_members["outsider"])
    assert client.get(reverse("analysis:result_json", args=[result.pk])).status_code == 404


def test_artifact_download_is_audited_and_not_cached(client, study_with_members, result_with_artifact):
    _, artifact = result_with_artifact
    client.force_login(study_with_members["clinician"])
    response = client.get(reverse("analysis:artifact", args=[artifact.pk]) + "?download=1")
    assert response.status_code == 200
    assert b"".join(response.streaming_content) == b"\xff\xd8jpeg-bytes"
    assert {"private", "no-store"} <= {part.strip() for part in response["Cache-Control"].split(",")}
    assert "attachment" in response["Content-Disposition"]
    event = AuditEvent.objects.get(action=AuditAction.DOWNLOAD, object_type="analysis.resultartifact")
    assert event.actor == study_with_members["clinician"]
    assert event.study_id == study_with_members["study"].pk
    assert event.ip_address == "127.0.0.1"


def test_queue_page_is_hidden_from_non_staff(client, study_with_members):
    client.force_login(study_with_members["coordinator"])
    assert client.get(reverse("runs:queue")).status_code == 404


def test_queue_page_shows_counts_worker_health_and_unserved_queue(client, make_user, job):
    now = timezone.now()
    WorkerHeartbeat.objects.create(
        hostname="fresh@host", queues=["cpu"], pid=10, started_at=now, last_seen=now
    )
    WorkerHeartbeat.objects.create(
        hostname="stale@host",
        queues=["gpu"],
        pid=11,
        started_at=now,
        last_seen=now - datetime.timedelta(minutes=10),
    )
    AnalysisJob.objects.create(kind="landmarks", photo=job.photo, queue="gpu", model_name="other-model")
    client.force_login(make_user("siteadmin", staff=True))
    response = client.get(reverse("runs:queue"))
    assert response.status_code == 200
    overview = response.context["overview"]
    assert overview.counts["queued"] == 2
    health = {worker.heartbeat.hostname: worker.healthy for worker in overview.workers}
    assert health == {"fresh@host": True, "stale@host": False}
    assert overview.warnings == [
        "2 queued job(s) have not reached the broker yet; they are sent again automatically.",
        "1 job(s) wait on the gpu queue, but no healthy worker consumes it.",
    ]
    filtered = client.get(reverse("runs:queue") + "?queue=gpu")
    assert [run.queue for run in filtered.context["runs"]] == ["gpu"]


def test_landmark_jobs_run_the_detector_the_study_chose(study_with_members, make_photo, monkeypatch):
    from webapp.analysis.services import jobs_enqueue_for_photo

    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    first = jobs_enqueue_for_photo(photo=make_photo(study, subject_code="S1"))
    assert {job.kind: job.model_name for job in first}["landmarks"] == "dlib-68"
    study.landmark_detector = "yolo-pose68"
    study.save()
    second = jobs_enqueue_for_photo(photo=make_photo(study, subject_code="S2"))
    assert {job.kind: job.model_name for job in second}["landmarks"] == "yolo-pose68"
