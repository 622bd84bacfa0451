"""D10, D15, D16 (API part), issue 16 item 6: every error under /api/ is a JSON answer with a clear
message, never a 500 or an HTML page; list sizes are capped; the schema and docs need a login."""

import pytest
from django.test import Client
from rest_framework.test import APIClient

pytestmark = pytest.mark.django_db


@pytest.fixture
def api(study_with_members) -> APIClient:
    client = APIClient(raise_request_exception=False)
    client.force_authenticate(study_with_members["coordinator"])
    return client


def assert_json_error(response, status_code: int) -> dict:
    assert response.status_code == status_code, response.content[:300]
    assert response["Content-Type"].startswith("application/json"), response["Content-Type"]
    body = response.json()
    assert body["detail"] and body["code"]
    return body


@pytest.mark.parametrize("path", ["/api/studies/", "/api/auth/token/", "/api/subjects/"])
def test_deeply_nested_json_is_a_400(path, api):
    body = "[" * 100_000 + "]" * 100_000
    error = assert_json_error(api.post(path, body, content_type="application/json"), 400)
    assert "nested too deeply" in error["detail"]


def test_oversize_json_is_a_400_naming_the_limit(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    body = '{"name": "' + "a" * 5000 + '"}'
    error = assert_json_error(api.post("/api/studies/", body, content_type="application/json"), 400)
    assert "larger than" in error["detail"]


def test_oversize_form_body_is_a_json_400(api, settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = api.post("/api/studies/", {"name": "a" * 5000}, format="multipart")
    assert "larger than" in assert_json_error(response, 400)["detail"]


def test_too_many_files_is_a_json_400(api, settings, png_bytes):
    from django.core.files.uploadedfile import SimpleUploadedFile

    settings.DATA_UPLOAD_MAX_NUMBER_FILES = 2
    files = [SimpleUploadedFile(f"{n}.png", png_bytes(), "image/png") for n in range(3)]
    response = api.post("/api/photos/", {"file": files, "view": "frontal", "visit": 1}, format="multipart")
    assert "more than 2 files" in assert_json_error(response, 400)["detail"]


@pytest.mark.parametrize("path", ["/api/", "/api/nothing/", "/api/photos/1/nothing/", "/api/" + "a" * 5000])
def test_unknown_api_paths_are_json_404s(path, api, settings):
    settings.DEBUG = True  # not even the debug page, which lists the URL patterns
    assert_json_error(api.get(path), 404)


def test_unauthenticated_is_json():
    assert_json_error(Client().get("/api/studies/"), 401)


def test_an_unexpected_fault_is_a_json_500(api, monkeypatch):
    from webapp.studies import selectors

    def broken(*args, **kwargs):
        raise RuntimeError("boom")

    monkeypatch.setattr(selectors, "studies_for_user", broken)
    error = assert_json_error(api.get("/api/studies/"), 500)
    assert "boom" not in error["detail"]


def test_limit_is_capped(api, study_with_members, settings):
    from webapp.studies.services import subject_create

    settings.FACET_API_MAX_PAGE_SIZE = 2
    for number in range(3):
        subject_create(
            study=study_with_members["study"], code=f"P-{number}", actor=study_with_members["coordinator"]
        )
    page = api.get("/api/subjects/?limit=100000").json()
    assert page["count"] == 3 and len(page["results"]) == 2 and page["next"]
