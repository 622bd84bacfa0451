"""A real Celery worker runs the landmark job of a face photo uploaded through the HTTP API.

The worker is a separate `celery worker` process on the test database and the test broker (Redis
when REDIS_URL is set); uploads go over HTTP to `live_server`, authenticated with an API token.
"""

import time
from dataclasses import dataclass

import numpy as np
import pytest
import requests

from webapp.analysis.models import AnalysisJob, Result
from webapp.runs.models import RunStatus

pytestmark = [pytest.mark.integration, pytest.mark.data, pytest.mark.slow]

PASSWORD = "integration test password"
HTTP_TIMEOUT = 60


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@dataclass
class ApiClient:
    base_url: str
    session: requests.Session

    def upload(
        self, visit_id: int, content: bytes, filename: str, content_type: str, view: str = "frontal"
    ) -> dict:
        response = self.session.post(
            f"{self.base_url}/api/photos/",
            data={"visit": str(visit_id), "view": view},
            files={"file": (filename, content, content_type)},
            timeout=HTTP_TIMEOUT,
        )
        assert response.status_code == 201, response.text
        return response.json()

    def get(self, path: str) -> dict:
        response = self.session.get(f"{self.base_url}{path}", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()

    def post(self, path: str) -> dict:
        response = self.session.post(f"{self.base_url}{path}", timeout=HTTP_TIMEOUT)
        assert response.status_code == 200, response.text
        return response.json()


@pytest.fixture
def clinic(live_server, make_user):
    """A coordinator's study with one subject and a baseline visit, and an API client holding their token."""
    from webapp.studies.models import VisitRole
    from webapp.studies.services import study_create, subject_create, visit_create

    coordinator = make_user("coordinator", password=PASSWORD)
    study = study_create(name="Integration study", creator=coordinator)
    subject = subject_create(study=study, code="S001", actor=coordinator)
    visit = visit_create(subject=subject, label="baseline", role=VisitRole.PRE, date=None, actor=coordinator)
    response = requests.post(
        f"{live_server.url}/api/auth/token/",
        data={"username": "coordinator", "password": PASSWORD},
        timeout=HTTP_TIMEOUT,
    )
    assert response.status_code == 200, response.text
    session = requests.Session()
    session.headers["Authorization"] = f"Token {response.json()['token']}"
    return {"visit": visit, "api": ApiClient(live_server.url, session)}


def landmarks_job_id(photo: dict) -> int:
    jobs = [job for job in photo["jobs"] if job["kind"] == "landmarks"]
    assert len(jobs) == 1, photo["jobs"]
    return jobs[0]["id"]


def wait_for_log(worker, text: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in worker.log():
        if time.monotonic() > deadline:
            pytest.fail(f"The worker never logged {text!r}:\n{worker.log_tail()}")
        time.sleep(0.2)


def test_uploaded_face_gets_landmarks_from_the_worker(clinic, celery_worker, wait_for_job, face_jpeg_bytes):
    from ml.config import code_version
    from ml.core.imageio import load_image
    from ml.landmarks.analysis import analyze_landmarks
    from ml.registry import registry

    api = clinic["api"]
    photo = api.upload(clinic["visit"].pk, face_jpeg_bytes, "face.jpg", "image/jpeg")
    job_id = landmarks_job_id(photo)
    assert photo["jobs"][0]["status"] in (RunStatus.QUEUED, RunStatus.RUNNING, RunStatus.SUCCEEDED)

    job = wait_for_job(job_id)
    assert job.attempts == 1
    assert job.worker == celery_worker.hostname
    assert job.created_at <= job.started_at <= job.finished_at
    assert job.progress == 1.0

    result = Result.objects.get(job=job)
    faces = result.data["faces"]
    assert len(faces) == 1
    face = faces[0]
    landmarks = np.asarray(face["landmarks"], dtype=float)
    assert landmarks.shape == (68, 2)
    x0, y0, x1, y1 = face["box"]
    margin_x, margin_y = 0.25 * (x1 - x0), 0.25 * (y1 - y0)
    assert np.all((landmarks[:, 0] > x0 - margin_x) & (landmarks[:, 0] < x1 + margin_x))
    assert np.all((landmarks[:, 1] > y0 - margin_y) & (landmarks[:, 1] < y1 + margin_y))
    assert result.data["image"] == {"width": photo["width"], "height": photo["height"]}

    with job.photo.image.open("rb") as handle:
        direct = analyze_landmarks(load_image(handle.read()), expected_yaw=job.photo.expected_yaw)
    assert len(direct["faces"]) == 1
    mean_distance = np.linalg.norm(landmarks - np.asarray(direct["faces"][0]["landmarks"]), axis=1).mean()
    assert mean_distance < 1.0

    quality = result.data["quality"]
    assert isinstance(quality["ok"], bool)
    assert isinstance(quality["reasons"], list)
    assert quality["ok"] or quality["reasons"]

    model = registry.describe("dlib-68")
    assert result.model_name == "dlib-68"
    assert result.model_version == model["version"] == job.model_version
    assert len(result.weights_sha256) == 64 and result.weights_sha256 == model["weights_sha256"]
    assert result.code_version == code_version()
    assert result.parameters["view"] == "frontal"
    assert result.artifacts.filter(name="aligned").exists()

    job_json = api.get(f"/api/jobs/{job_id}/")
    assert job_json["status"] == "succeeded"
    assert job_json["attempts"] == 1
    assert job_json["result"] == result.pk
    assert job_json["started_at"] and job_json["finished_at"]
    result_json = api.get(f"/api/results/{result.pk}/")
    assert result_json["data"]["faces"][0]["landmarks"] == face["landmarks"]
    assert result_json["provenance"]["weights_sha256"] == model["weights_sha256"]


def test_redelivered_task_neither_runs_again_nor_duplicates_the_result(
    clinic, celery_worker, wait_for_job, face_jpeg_bytes
):
    from workers.tasks import run_analysis_job

    photo = clinic["api"].upload(clinic["visit"].pk, face_jpeg_bytes, "face.jpg", "image/jpeg")
    job = wait_for_job(landmarks_job_id(photo))
    result = Result.objects.get(job=job)

    run_analysis_job.apply_async(args=[job.pk], queue="quick")
    wait_for_log(celery_worker, f"Not running AnalysisJob {job.pk}: it is succeeded")

    again = AnalysisJob.objects.get(pk=job.pk)
    assert (again.status, again.attempts, again.started_at, again.finished_at) == (
        RunStatus.SUCCEEDED,
        1,
        job.started_at,
        job.finished_at,
    )
    assert Result.objects.filter(job=job).count() == 1
    stored = Result.objects.get(job=job)
    assert (stored.pk, stored.created_at, stored.data) == (result.pk, result.created_at, result.data)


def test_photo_without_face_succeeds_with_failed_quality_and_worker_keeps_going(
    clinic, celery_worker, wait_for_job, png_bytes, face_jpeg_bytes
):
    api = clinic["api"]
    blank = api.upload(clinic["visit"].pk, png_bytes(size=(320, 240)), "blank.png", "image/png")
    job = wait_for_job(landmarks_job_id(blank))
    data = Result.objects.get(job=job).data
    assert data["faces"] == []
    assert data["quality"]["ok"] is False
    assert any("No face" in reason for reason in data["quality"]["reasons"])
    assert not job.result.artifacts.exists()

    assert celery_worker.is_alive()
    face = api.upload(clinic["visit"].pk, face_jpeg_bytes, "face.jpg", "image/jpeg", view="left45")
    following = wait_for_job(landmarks_job_id(face))
    assert following.attempts == 1


def test_job_cancelled_before_any_worker_takes_it_never_runs(
    clinic, start_celery_worker, wait_for_job, face_photo_paths
):
    api = clinic["api"]
    first = api.upload(clinic["visit"].pk, face_photo_paths[0].read_bytes(), "a.jpg", "image/jpeg")
    cancelled_id = landmarks_job_id(first)
    assert api.post(f"/api/jobs/{cancelled_id}/cancel/")["status"] == "cancelled"
    second = api.upload(
        clinic["visit"].pk, face_photo_paths[1].read_bytes(), "b.jpg", "image/jpeg", view="right45"
    )

    worker = start_celery_worker()
    wait_for_job(landmarks_job_id(second))
    wait_for_log(worker, f"Not running AnalysisJob {cancelled_id}: it is cancelled")

    cancelled = AnalysisJob.objects.get(pk=cancelled_id)
    assert cancelled.status == RunStatus.CANCELLED
    assert cancelled.attempts == 0
    assert cancelled.started_at is None
    assert not Result.objects.filter(job=cancelled).exists()
