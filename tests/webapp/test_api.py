"""The REST API: token auth, CRUD flows, upload, job control, results and the OpenAPI schema."""

import datetime
import json

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from rest_framework.test import APIClient

from webapp.analysis import services as analysis_services
from webapp.analysis.models import AnalysisJob
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.models import Comparison, Photo, Role, StudyMembership, Subject, Visit, VisitRole
from webapp.studies.services import subject_create, visit_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # The default hasher takes about a second per user on this machine; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sent_to_worker(monkeypatch) -> list[int]:
    """Replace the broker: the ids of jobs that would have been sent to a worker."""
    sent: list[int] = []
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: sent.append(run.pk))
    return sent


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


@pytest.fixture
def visits(study_with_members):
    coordinator = study_with_members["coordinator"]
    subject = subject_create(study=study_with_members["study"], code="S-001", actor=coordinator)
    pre = visit_create(
        subject=subject,
        label="baseline",
        role=VisitRole.PRE,
        date=datetime.date(2026, 1, 5),
        actor=coordinator,
    )
    post = visit_create(
        subject=subject,
        label="week 12",
        role=VisitRole.POST,
        date=datetime.date(2026, 3, 30),
        actor=coordinator,
    )
    return {"subject": subject, "pre": pre, "post": post}


def upload(client: APIClient, visit: Visit, content: bytes, name: str = "photo.png", view: str = "frontal"):
    return client.post(
        "/api/photos/",
        {"visit": visit.pk, "view": view, "file": SimpleUploadedFile(name, content)},
        format="multipart",
    )


@pytest.fixture
def uploaded_photo(study_with_members, visits, png_bytes, sent_to_worker, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client_for(study_with_members["clinician"]), visits["pre"], png_bytes())
    assert response.status_code == 201, response.content
    return Photo.objects.get(pk=response.json()["id"])


def test_token_auth_issues_a_token_that_authenticates_and_audits_the_login(study_with_members):
    client = APIClient()
    response = client.post("/api/auth/token/", {"username": "clinician", "password": "correct horse battery"})
    assert response.status_code == 200
    token = response.json()["token"]

    assert client.get("/api/studies/").status_code == 401
    client.credentials(HTTP_AUTHORIZATION=f"Token {token}")
    listed = client.get("/api/studies/").json()
    assert [study["name"] for study in listed["results"]] == ["Filler study"]
    login = AuditEvent.objects.get(action=AuditAction.LOGIN, actor=study_with_members["clinician"])
    assert login.via == "api"


def test_token_auth_refuses_a_wrong_password_and_audits_it(study_with_members):
    response = APIClient().post("/api/auth/token/", {"username": "clinician", "password": "wrong"})
    assert response.status_code == 400
    assert "token" not in response.json()
    assert AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, details__username="clinician").exists()


def test_study_create_makes_the_creator_coordinator_and_lists_members(make_user):
    creator = make_user("creator")
    client = client_for(creator)
    response = client.post(
        "/api/studies/", {"name": "Botox pilot", "required_views": ["frontal", "left45"]}, format="json"
    )
    assert response.status_code == 201, response.content
    study_id = response.json()["id"]
    assert response.json()["required_views"] == ["frontal", "left45"]
    members = client.get(f"/api/studies/{study_id}/members/").json()
    assert members == [
        {
            "id": members[0]["id"],
            "username": "creator",
            "role": "coordinator",
            "created_at": members[0]["created_at"],
        }
    ]

    duplicate = client.post("/api/studies/", {"name": "Botox pilot"}, format="json")
    assert duplicate.status_code == 400
    assert "already exists" in duplicate.json()["name"][0]
    unknown_view = client.post("/api/studies/", {"name": "Other", "required_views": ["top"]}, format="json")
    assert unknown_view.status_code == 400
    assert "required_views" in unknown_view.json()


def test_study_partial_update_is_for_coordinators(study_with_members):
    study = study_with_members["study"]
    url = f"/api/studies/{study.pk}/"
    assert (
        client_for(study_with_members["clinician"]).patch(url, {"protocol": "x"}, format="json").status_code
        == 403
    )
    assert (
        client_for(study_with_members["outsider"]).patch(url, {"protocol": "x"}, format="json").status_code
        == 404
    )
    response = client_for(study_with_members["coordinator"]).patch(
        url, {"protocol": "12 weeks, 3 visits"}, format="json"
    )
    assert response.status_code == 200
    study.refresh_from_db()
    assert study.protocol == "12 weeks, 3 visits"
    assert AuditEvent.objects.filter(
        action=AuditAction.UPDATE, object_type="studies.study", via="api"
    ).exists()


def test_members_add_is_for_coordinators_and_grants_access(study_with_members):
    study, outsider = study_with_members["study"], study_with_members["outsider"]
    url = f"/api/studies/{study.pk}/members/"
    payload = {"username": "outsider", "role": "monitor"}
    assert client_for(study_with_members["clinician"]).post(url, payload, format="json").status_code == 403
    assert client_for(outsider).get(f"/api/studies/{study.pk}/").status_code == 404

    response = client_for(study_with_members["coordinator"]).post(url, payload, format="json")
    assert response.status_code == 201
    assert StudyMembership.objects.get(study=study, user=outsider).role == Role.MONITOR
    assert client_for(outsider).get(f"/api/studies/{study.pk}/").status_code == 200

    nobody = client_for(study_with_members["coordinator"]).post(
        url, {"username": "nobody", "role": "rater"}, format="json"
    )
    assert nobody.status_code == 400
    assert "nobody" in nobody.json()["username"][0]


def test_subject_create_validates_the_code_and_respects_roles(study_with_members):
    study = study_with_members["study"]
    clinician = client_for(study_with_members["clinician"])
    response = clinician.post("/api/subjects/", {"study": study.pk, "code": "P-017"}, format="json")
    assert response.status_code == 201
    assert Subject.objects.filter(study=study, code="P-017").exists()

    name_like = clinician.post("/api/subjects/", {"study": study.pk, "code": "John Smith"}, format="json")
    assert name_like.status_code == 400
    assert "pseudonymous" in name_like.json()["code"][0]
    again = clinician.post("/api/subjects/", {"study": study.pk, "code": "P-017"}, format="json")
    assert again.status_code == 400
    assert "already has a subject" in again.json()["code"][0]
    not_a_number = clinician.post("/api/subjects/", {"study": "first", "code": "P-018"}, format="json")
    assert not_a_number.status_code == 400

    payload = {"study": study.pk, "code": "P-099"}
    assert (
        client_for(study_with_members["monitor"]).post("/api/subjects/", payload, format="json").status_code
        == 403
    )
    assert (
        client_for(study_with_members["outsider"]).post("/api/subjects/", payload, format="json").status_code
        == 404
    )
    assert not Subject.objects.filter(code="P-099").exists()


def test_subject_and_visit_lists_filter_and_stay_in_the_users_studies(study_with_members, visits):
    study, other = study_with_members["study"], study_with_members["other_study"]
    subject_create(study=other, code="B-1", actor=study_with_members["outsider"])
    clinician = client_for(study_with_members["clinician"])
    codes = [row["code"] for row in clinician.get("/api/subjects/").json()["results"]]
    assert codes == ["S-001"]
    assert clinician.get(f"/api/subjects/?study={study.pk}").json()["count"] == 1
    assert clinician.get(f"/api/subjects/?study={other.pk}").json()["count"] == 0
    assert clinician.get("/api/subjects/?study=abc").status_code == 400

    labels = [
        row["label"]
        for row in clinician.get(f"/api/visits/?subject={visits['subject'].pk}").json()["results"]
    ]
    assert labels == ["baseline", "week 12"]
    detail = clinician.get(f"/api/visits/{visits['pre'].pk}/").json()
    assert detail["study"] == study.pk
    assert detail["role"] == "pre"


def test_visit_create_rejects_a_duplicate_label(study_with_members, visits):
    clinician = client_for(study_with_members["clinician"])
    payload = {"subject": visits["subject"].pk, "label": "month 6", "role": "follow_up", "date": "2026-07-01"}
    assert clinician.post("/api/visits/", payload, format="json").status_code == 201
    again = clinician.post("/api/visits/", payload, format="json")
    assert again.status_code == 400
    assert "already has a visit" in again.json()["label"][0]
    assert Visit.objects.filter(label="month 6").count() == 1


def test_visit_date_is_optional(study_with_members, visits):
    clinician = client_for(study_with_members["clinician"])
    response = clinician.post(
        "/api/visits/", {"subject": visits["subject"].pk, "label": "post-op", "role": "post"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert response.json()["date"] is None


def test_upload_of_a_real_face_queues_a_landmarks_job(
    study_with_members, visits, face_jpeg_bytes, sent_to_worker, django_capture_on_commit_callbacks
):
    client = client_for(study_with_members["clinician"])
    with django_capture_on_commit_callbacks(execute=True):
        response = upload(client, visits["pre"], face_jpeg_bytes, name="IMG_0001.jpg")
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["visit"] == visits["pre"].pk
    assert body["view"] == "frontal"
    assert [(job["kind"], job["status"]) for job in body["jobs"]] == [("landmarks", "queued")]
    assert sent_to_worker == [body["jobs"][0]["id"]]
    assert client.get(f"/api/jobs/?photo={body['id']}").json()["count"] == 1


def test_upload_of_a_bad_file_is_a_clear_400_and_leaves_nothing(study_with_members, visits, sent_to_worker):
    response = upload(
        client_for(study_with_members["clinician"]), visits["pre"], b"not an image at all", name="photo.jpg"
    )
    assert response.status_code == 400
    body = response.json()
    assert isinstance(body["file"][0], str) and len(body["file"][0]) > 10
    assert body["code"]
    assert not Photo.objects.exists()
    assert not AnalysisJob.objects.exists()
    assert sent_to_worker == []


def test_upload_is_refused_to_monitors_and_outsiders(study_with_members, visits, png_bytes, sent_to_worker):
    assert upload(client_for(study_with_members["monitor"]), visits["pre"], png_bytes()).status_code == 403
    assert upload(client_for(study_with_members["outsider"]), visits["pre"], png_bytes()).status_code == 404
    assert not Photo.objects.exists()


def test_photo_image_streams_privately_and_is_audited(study_with_members, uploaded_photo):
    client = client_for(study_with_members["monitor"])
    response = client.get(f"/api/photos/{uploaded_photo.pk}/image/")
    assert response.status_code == 200
    assert response["Content-Type"] == "image/png"
    assert response["Cache-Control"] == "private, no-store"
    assert b"".join(response.streaming_content).startswith(b"\x89PNG")
    event = AuditEvent.objects.get(action=AuditAction.DOWNLOAD, object_type="studies.photo")
    assert (event.actor, event.via, event.object_id) == (
        study_with_members["monitor"],
        "api",
        str(uploaded_photo.pk),
    )

    listed = client.get(f"/api/photos/?visit={uploaded_photo.visit_id}").json()
    assert [row["id"] for row in listed["results"]] == [uploaded_photo.pk]
    listing = AuditEvent.objects.get(action=AuditAction.VIEW, summary="Listed 1 photo(s)")
    assert (listing.details, listing.study_id) == (
        {"photo_ids": [uploaded_photo.pk]},
        uploaded_photo.study_id,
    )

    detail = client.get(f"/api/photos/{uploaded_photo.pk}/").json()
    assert detail["image_url"] == f"/api/photos/{uploaded_photo.pk}/image/"
    viewed = AuditEvent.objects.filter(action=AuditAction.VIEW, object_id=str(uploaded_photo.pk), via="api")
    assert viewed.count() == 1


def test_cancel_and_retry_follow_the_job_state_rules(study_with_members, uploaded_photo, sent_to_worker):
    job = uploaded_photo.jobs.get()
    clinician = client_for(study_with_members["clinician"])
    assert client_for(study_with_members["monitor"]).post(f"/api/jobs/{job.pk}/cancel/").status_code == 403

    retry_queued = clinician.post(f"/api/jobs/{job.pk}/retry/")
    assert retry_queued.status_code == 409
    assert "only failed or cancelled" in retry_queued.json()["detail"]

    cancelled = clinician.post(f"/api/jobs/{job.pk}/cancel/")
    assert cancelled.status_code == 200
    assert cancelled.json()["status"] == RunStatus.CANCELLED
    assert clinician.post(f"/api/jobs/{job.pk}/cancel/").status_code == 409

    retried = clinician.post(f"/api/jobs/{job.pk}/retry/")
    assert retried.status_code == 200
    assert retried.json()["status"] == RunStatus.QUEUED
    assert clinician.get(f"/api/jobs/?status=queued&study={uploaded_photo.study_id}").json()["count"] == 1
    assert clinician.get("/api/jobs/?status=lost").status_code == 400


def test_result_shows_data_provenance_and_artifacts_and_is_audited(study_with_members, uploaded_photo):
    job = uploaded_photo.jobs.get()
    result = analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test-worker").attempt,
        data={"faces": [], "quality": {"ok": False, "reasons": ["No face was found."]}},
        model={"name": "dlib-68", "version": "19.24", "weights_sha256": "ab" * 32},
        parameters={"upsample": 1},
        code_version="test",
        artifacts=[analysis_services.Artifact("aligned", b"\xff\xd8aligned", "jpg", "image/jpeg")],
    )
    client = client_for(study_with_members["rater"])
    job_body = client.get(f"/api/jobs/{job.pk}/").json()
    assert (job_body["status"], job_body["result"], job_body["model_version"]) == (
        "succeeded",
        result.pk,
        "19.24",
    )

    body = client.get(f"/api/results/{result.pk}/").json()
    assert body["data"]["quality"]["reasons"] == ["No face was found."]
    assert body["provenance"]["weights_sha256"] == "ab" * 32
    assert body["provenance"]["parameters"] == {"upsample": 1}
    assert body["artifacts"] == [
        {
            "name": "aligned",
            "content_type": "image/jpeg",
            "url": f"/api/results/{result.pk}/artifacts/aligned/",
        }
    ]
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW, object_type="analysis.result", via="api"
    ).exists()

    download = client.get(body["artifacts"][0]["url"])
    assert download.status_code == 200
    assert b"".join(download.streaming_content) == b"\xff\xd8aligned"
    assert download["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(
        action=AuditAction.DOWNLOAD, object_type="analysis.resultartifact", study_id=uploaded_photo.study_id
    ).exists()
    assert client.get(f"/api/results/{result.pk}/artifacts/overlay/").status_code == 404


def test_comparisons_validate_visits(study_with_members, visits):
    clinician = client_for(study_with_members["clinician"])
    response = clinician.post(
        "/api/comparisons/", {"pre_visit": visits["pre"].pk, "post_visit": visits["post"].pk}, format="json"
    )
    assert response.status_code == 201
    assert response.json()["subject"] == visits["subject"].pk

    same = clinician.post(
        "/api/comparisons/", {"pre_visit": visits["pre"].pk, "post_visit": visits["pre"].pk}, format="json"
    )
    assert same.status_code == 400
    assert same.json()["post_visit"] == ["Choose two different visits."]

    other_subject = subject_create(
        study=study_with_members["study"], code="S-002", actor=study_with_members["coordinator"]
    )
    other_visit = visit_create(
        subject=other_subject,
        label="baseline",
        role=VisitRole.PRE,
        date=None,
        actor=study_with_members["coordinator"],
    )
    mixed = clinician.post(
        "/api/comparisons/", {"pre_visit": visits["pre"].pk, "post_visit": other_visit.pk}, format="json"
    )
    assert mixed.status_code == 400
    assert "same subject" in mixed.json()["post_visit"][0]
    assert (
        client_for(study_with_members["monitor"])
        .post(
            "/api/comparisons/",
            {"pre_visit": visits["pre"].pk, "post_visit": visits["post"].pk},
            format="json",
        )
        .status_code
        == 403
    )
    assert Comparison.objects.count() == 1
    listed = clinician.get(f"/api/comparisons/?subject={visits['subject'].pk}").json()
    assert [row["id"] for row in listed["results"]] == [response.json()["id"]]


def test_lists_are_paginated_with_limit_and_offset(study_with_members):
    for number in range(3):
        subject_create(
            study=study_with_members["study"], code=f"P-{number}", actor=study_with_members["coordinator"]
        )
    page = client_for(study_with_members["monitor"]).get("/api/subjects/?limit=2&offset=1").json()
    assert page["count"] == 3
    assert [row["code"] for row in page["results"]] == ["P-1", "P-2"]


def test_schema_and_docs_need_a_login(client):
    for path in ("/api/schema/", "/api/docs/"):
        response = client.get(path)
        assert response.status_code == 401 and response["Content-Type"] == "application/json", path


def test_schema_is_valid_openapi_listing_every_resource(client, make_user):
    from drf_spectacular.validation import validate_schema

    client.force_login(make_user())
    response = client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json")
    assert response.status_code == 200
    schema = json.loads(response.content)
    validate_schema(schema)
    assert schema["openapi"].startswith("3.")
    for path in (
        "/api/studies/",
        "/api/studies/{id}/members/",
        "/api/subjects/",
        "/api/visits/",
        "/api/photos/",
        "/api/photos/{id}/image/",
        "/api/jobs/{id}/cancel/",
        "/api/jobs/{id}/retry/",
        "/api/results/{id}/",
        "/api/results/{id}/artifacts/{name}/",
        "/api/comparisons/",
        "/api/auth/token/",
    ):
        assert path in schema["paths"], path
    upload_body = schema["paths"]["/api/photos/"]["post"]["requestBody"]["content"]
    assert "multipart/form-data" in upload_body


def test_swagger_ui_loads_only_local_assets_and_no_inline_script(client, make_user):
    from django.contrib.staticfiles import finders
    from django.urls import NoReverseMatch, reverse

    try:
        url = reverse("api:docs")
    except NoReverseMatch:
        pytest.skip("Swagger UI is off: drf-spectacular-sidecar is not installed and configured")
    client.force_login(make_user())
    html = client.get(url).content.decode()
    assets = [part for part in html.split('"') if part.startswith("/static/")]
    assert assets
    assert all(finders.find(asset.removeprefix("/static/")) for asset in assets)
    assert "https://" not in html
    # The start-up script is a file of its own (Content-Security-Policy: script-src 'self').
    assert "<script>" not in html.replace(" ", "")
    assert client.get(url, {"script": ""}).status_code == 200
