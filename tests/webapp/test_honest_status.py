"""Honest status (issue 16, item 3): badges say the verdict of a finished job, analyses that need a face
are "not applicable" on a photo without one and show no result, and every page warns while jobs of the
user's studies wait on a queue that no worker serves."""

import datetime
import re

import pytest
from django.urls import reverse
from django.utils import timezone

from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, Result
from webapp.runs.models import Queue, RunStatus, WorkerHeartbeat
from webapp.studies.models import AnalysisKind

pytestmark = pytest.mark.django_db

FACE = {
    "box": [60.0, 50.0, 200.0, 210.0],
    "score": 1.2,
    "detector": "yunet",
    "landmarks": [[100.0 + i, 100.0 + (i % 7)] for i in range(68)],
    "pose": {"yaw": 2.0, "pitch": -1.0, "roll": 0.5},
}


def finished_job(photo, kind: str, data: dict | None, *, status: str = RunStatus.SUCCEEDED) -> AnalysisJob:
    job = AnalysisJob.objects.create(
        kind=kind,
        photo=photo,
        queue=KIND_SPECS[kind].queue,
        model_name="m",
        status=status,
        progress=1.0,
        finished_at=timezone.now(),
    )
    if data is not None:
        Result.objects.create(job=job, data=data, model_name="m", model_version="1", code_version="test")
    return job


def landmarks_data(*, faces: list, ok: bool, reasons: list[str] | None = None) -> dict:
    return {
        "faces": faces,
        "quality": {"ok": ok, "reasons": reasons or [], "measures": {}},
        "model": {"name": "dlib-68", "version": "1"},
        "image": {"width": 256, "height": 256},
    }


ZONES_DATA = {
    "zones": [{"abbreviation": "Fh", "name": "Forehead", "number": 1, "area_px": 900}],
    "notes": [],
    "model": {},
}


def test_landmark_badges_say_the_quality_verdict_not_succeeded(make_photo, study_with_members):
    study = study_with_members["study"]
    passes = finished_job(make_photo(study), "landmarks", landmarks_data(faces=[FACE], ok=True))
    check = finished_job(
        make_photo(study), "landmarks", landmarks_data(faces=[FACE], ok=False, reasons=["Blurred."])
    )
    no_face = finished_job(
        make_photo(study), "landmarks", landmarks_data(faces=[], ok=False, reasons=["No face was found."])
    )
    assert (passes.badge().label, passes.badge().tone) == ("Quality passes", "ok")
    assert (check.badge().label, check.badge().tone) == ("Quality: check", "warn")
    assert (no_face.badge().label, no_face.badge().tone) == ("No face found", "bad")
    queued = AnalysisJob.objects.create(
        kind="landmarks", photo=make_photo(study), queue="quick", model_name="m"
    )
    assert (queued.badge().label, queued.badge().tone) == ("Queued", "queued")


def test_status_endpoint_and_subject_page_show_the_verdict(client, make_photo, study_with_members):
    study = study_with_members["study"]
    photo = make_photo(study)
    job = finished_job(photo, "landmarks", landmarks_data(faces=[], ok=False, reasons=["No face was found."]))
    client.force_login(study_with_members["clinician"])
    status = client.get(reverse("runs:status", args=["analysis", job.pk])).json()
    assert (status["status"], status["status_label"], status["badge"]) == (
        "succeeded",
        "No face found",
        "bad",
    )
    page = client.get(reverse("studies:subject_detail", args=[photo.visit.subject_id])).content.decode()
    assert "No face found" in page
    assert "landmarks ✓" not in page and "badge-succeeded" not in page and "badge-ok" not in page


def test_a_photo_without_a_face_shows_no_zone_result_and_says_not_applicable(
    client, make_photo, study_with_members
):
    study = study_with_members["study"]
    study.analyses = ["landmarks", "zones", "normality"]
    study.save()
    photo = make_photo(study)
    finished_job(photo, "landmarks", landmarks_data(faces=[], ok=False, reasons=["No face was found."]))
    # A zone model that draws zones on any image produced a result anyway; it must not be shown.
    zones_job = finished_job(photo, "zones", ZONES_DATA)
    normality_job = finished_job(photo, "normality", None, status=RunStatus.FAILED)
    client.force_login(study_with_members["clinician"])
    response = client.get(reverse("studies:photo_detail", args=[photo.pk]))
    page = response.content.decode()
    assert response.context["zones"] is None and response.context["zone_rows"] == []
    assert response.context["zones_overlay"] is None
    assert 'id="zones-card"' not in page and 'id="zone-stats"' not in page
    assert "Not applicable without a face: Facial zones, Normality score" in page
    assert "badge-succeeded" not in page and "badge-ok" not in page
    assert zones_job.badge().label == normality_job.badge().label == "Not applicable: no face"


def test_a_photo_with_a_face_shows_its_zones_and_a_passing_verdict(client, make_photo, study_with_members):
    study = study_with_members["study"]
    photo = make_photo(study)
    finished_job(photo, "landmarks", landmarks_data(faces=[FACE], ok=True))
    zones_job = finished_job(photo, "zones", ZONES_DATA)
    client.force_login(study_with_members["clinician"])
    response = client.get(reverse("studies:photo_detail", args=[photo.pk]))
    assert response.context["zones"] is not None and response.context["not_applicable"] == []
    assert "Quality passes" in response.content.decode()
    assert zones_job.badge().label == "Succeeded"


def heartbeat(name: str, queues: list[str], *, minutes_ago: float = 0) -> None:
    seen = timezone.now() - datetime.timedelta(minutes=minutes_ago)
    WorkerHeartbeat.objects.create(hostname=name, queues=queues, pid=1, started_at=seen, last_seen=seen)


def banner_of(client, url: str) -> str | None:
    response = client.get(url)
    assert response.status_code == 200
    return response.context["worker_banner"] or None


def test_every_page_warns_while_the_users_jobs_wait_on_a_queue_no_worker_serves(
    client, make_photo, study_with_members
):
    study = study_with_members["study"]
    photo = make_photo(study)
    AnalysisJob.objects.create(kind="landmarks", photo=photo, queue=Queue.QUICK, model_name="m")
    heartbeat("analysis@host", ["cpu", "gpu"])
    heartbeat("quick@host", ["quick"], minutes_ago=10)  # stopped sending heartbeats
    client.force_login(study_with_members["clinician"])
    pages = [
        reverse("studies:study_list"),
        reverse("studies:study_detail", args=[study.pk]),
        reverse("studies:subject_detail", args=[photo.visit.subject_id]),
        reverse("studies:photo_detail", args=[photo.pk]),
    ]
    for url in pages:
        banner = banner_of(client, url)
        assert banner and "No worker is running for the “quick” queue: 1 job(s)" in banner, url
    assert 'data-role="worker-banner"' in client.get(pages[-1]).content.decode()

    # A member of another study sees nothing about this study's jobs.
    client.force_login(study_with_members["outsider"])
    assert banner_of(client, reverse("studies:study_list")) is None

    # Once a healthy worker consumes the queue, the banner goes.
    heartbeat("quick2@host", ["quick"])
    client.force_login(study_with_members["clinician"])
    assert banner_of(client, pages[-1]) is None


def test_no_banner_without_waiting_jobs(client, make_photo, study_with_members):
    finished_job(make_photo(study_with_members["study"]), "landmarks", landmarks_data(faces=[FACE], ok=True))
    client.force_login(study_with_members["clinician"])
    assert banner_of(client, reverse("studies:study_list")) is None


def test_landmarks_run_on_the_quick_queue_apart_from_the_slow_kinds():
    assert KIND_SPECS[AnalysisKind.LANDMARKS].queue == Queue.QUICK
    slow = {
        KIND_SPECS[kind].queue for kind in (AnalysisKind.NORMALITY, AnalysisKind.WRINKLES, AnalysisKind.ZONES)
    }
    assert Queue.QUICK not in slow


def test_the_photo_page_suggests_the_view_the_head_pose_measured(
    client, make_photo, study_with_members, sent_runs
):
    study = study_with_members["study"]
    photo = make_photo(study)  # recorded as frontal
    turned = {**FACE, "pose": {"yaw": -43.0, "pitch": 1.0, "roll": 0.0}}
    finished_job(
        photo, "landmarks", landmarks_data(faces=[turned], ok=False, reasons=["Head is turned 43°."])
    )
    client.force_login(study_with_members["coordinator"])
    response = client.get(reverse("studies:photo_detail", args=[photo.pk]))
    assert response.context["suggested_view"] == {"view": "left45", "label": "Left 45°", "yaw": -43.0}
    page = response.content.decode()
    assert 'data-role="suggested-view"' in page and "Use Left 45°" in page
    client.post(reverse("studies:photo_edit", args=[photo.pk]), {"view": "left45", "visit": photo.visit_id})
    photo.refresh_from_db()
    assert photo.view == "left45"
    # A clinician without the right to correct records sees the suggestion but no button.
    client.force_login(study_with_members["clinician"])
    finished_job(photo, "landmarks", landmarks_data(faces=[{**turned, "pose": {"yaw": 3.0}}], ok=True))
    assert client.get(reverse("studies:photo_detail", args=[photo.pk])).context["suggested_view"] == {
        "view": "frontal",
        "label": "Frontal",
        "yaw": 3.0,
    }


def test_the_comparison_page_compares_no_result_of_a_photo_without_a_face(
    client, make_photo, study_with_members
):
    from webapp.studies.services import comparison_create

    study = study_with_members["study"]
    pre = make_photo(study, subject_code="C-1", visit_label="baseline", role="pre")
    post = make_photo(study, subject_code="C-1", visit_label="week 12", role="post")
    finished_job(pre, "landmarks", landmarks_data(faces=[FACE], ok=True))
    finished_job(post, "landmarks", landmarks_data(faces=[], ok=False, reasons=["No face was found."]))
    for photo, score in ((pre, 0.4), (post, 0.9)):
        finished_job(photo, "normality", {"score": score, "region": "face", "metric": {}})
    comparison = comparison_create(
        pre_visit=pre.visit, post_visit=post.visit, actor=study_with_members["coordinator"]
    )
    client.force_login(study_with_members["clinician"])
    response = client.get(reverse("studies:comparison_detail", args=[comparison.pk]))
    pair = response.context["pairs"][0]
    assert pair.normality is None
    assert "Not applicable: the landmark analysis found no face in the post photo." in pair.normality_notes


def test_make_run_and_docker_compose_give_the_quick_queue_a_worker_of_its_own():
    """Quick checks never wait behind slow jobs: a worker consumes the quick queue and nothing else."""
    import re
    import shlex
    from pathlib import Path

    import yaml

    root = Path(__file__).resolve().parents[2]
    compose = yaml.safe_load((root / "docker-compose.yml").read_text())
    queues_by_service = {
        name: service["command"][service["command"].index("-Q") + 1]
        for name, service in compose["services"].items()
        if "worker" in service.get("command", [])
    }
    assert queues_by_service["worker-quick"] == "quick"
    assert all("quick" not in queues for name, queues in queues_by_service.items() if name != "worker-quick")
    script = (root / "scripts" / "run_local.sh").read_text().replace("\\\n", " ")
    started = [
        shlex.split(line)[shlex.split(line).index("-Q") + 1]
        for line in script.splitlines()
        if re.search(r"celery\"? -A workers worker", line)
    ]
    assert sorted(started) == ["cpu,gpu", "quick"]


def test_a_job_finishing_while_the_photo_page_renders_is_shown_running_not_beside_the_old_verdict(
    client, make_photo, study_with_members, monkeypatch
):
    """The worker commits a landmark job's result and its status together, but the page reads the job
    list and the results in separate queries. A job that finishes between the two reads must appear still
    running (its watcher then reloads the section), never finished beside the previous verdict: that
    page would stay stale, as nothing watches a finished job."""
    from webapp.analysis import results

    study = study_with_members["study"]
    photo = make_photo(study)
    finished_job(photo, "landmarks", landmarks_data(faces=[FACE], ok=False, reasons=["Head is turned."]))
    rerun = AnalysisJob.objects.create(
        kind="landmarks",
        photo=photo,
        queue=KIND_SPECS["landmarks"].queue,
        model_name="m",
        status=RunStatus.RUNNING,
    )
    read_results = results.latest_result

    def worker_commits_after_the_results_are_read(photo_id: int, kind: str):
        found = read_results(photo_id, kind)
        if kind == "landmarks" and not Result.objects.filter(job=rerun).exists():
            Result.objects.create(
                job=rerun, data=landmarks_data(faces=[FACE], ok=True), model_name="m", model_version="1"
            )
            AnalysisJob.objects.filter(pk=rerun.pk).update(
                status=RunStatus.SUCCEEDED, progress=1.0, finished_at=timezone.now()
            )
        return found

    monkeypatch.setattr(results, "latest_result", worker_commits_after_the_results_are_read)
    client.force_login(study_with_members["clinician"])
    response = client.get(reverse("studies:photo_detail", args=[photo.pk]))
    assert not response.context["landmarks"].quality["ok"]  # the verdict read before the commit
    row = re.search(rf'<div class="job run"[^>]*data-run-id="{rerun.pk}"', response.content.decode())
    assert row and 'data-status="running"' in row.group(0)
