"""Issue 16 item 6: no answer of the API (nor the pages' JSON) names a server path: every GET route under
/api/ is walked with real objects (a photo with a result, an artifact and a comparison), and no body
may contain the media folder, the checkout or the var/ folder."""

import pytest
from django.conf import settings
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from webapp.analysis import services as analysis_services
from webapp.analysis.models import AnalysisJob
from webapp.exports.models import StudyExport
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.services import comparison_create

pytestmark = pytest.mark.django_db


def api_routes(patterns, prefix: str = "") -> list[tuple[str, str]]:
    found = []
    for entry in patterns:
        if isinstance(entry, URLResolver):
            found += api_routes(
                entry.url_patterns, f"{prefix}{entry.namespace}:" if entry.namespace else prefix
            )
        elif isinstance(entry, URLPattern) and entry.name:
            found.append((f"{prefix}{entry.name}", tuple(entry.pattern.regex.groupindex)))
    return found


@pytest.fixture
def world(study_with_members, make_photo):
    coordinator = study_with_members["coordinator"]
    pre = make_photo(study_with_members["study"], visit_label="baseline", role="pre")
    post = make_photo(study_with_members["study"], visit_label="week 12", role="post")
    job = AnalysisJob.objects.create(photo=pre, kind="landmarks", queue="cpu", model_name="dlib-68")
    result = analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={"faces": [], "quality": {"ok": False, "reasons": ["No face was found."]}},
        model={"name": "dlib-68", "version": "test"},
        parameters={},
        code_version="test",
        artifacts=[analysis_services.Artifact("aligned", b"\xff\xd8test", "jpg", "image/jpeg")],
    )
    comparison = comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=coordinator)
    export = StudyExport.objects.create(
        study=pre.study, format="csv", status=RunStatus.SUCCEEDED, filename="m.csv", content_type="text/csv"
    )
    export.file.save("m.csv", ContentFile(b"subject_code\nS-1\n"))
    return {
        "study": pre.study_id,
        "subject": pre.visit.subject_id,
        "visit": pre.visit_id,
        "photo": pre.pk,
        "job": job.pk,
        "result": result.pk,
        "comparison": comparison.pk,
        "artifact": result.artifacts.get().pk,
        "export": export.pk,
    }


def forbidden_fragments() -> list[str]:
    return [str(settings.MEDIA_ROOT), str(settings.BASE_DIR), str(settings.VAR_DIR), "/media-not-public/"]


def test_no_api_answer_names_a_server_path(client: Client, study_with_members, world):
    client.force_login(study_with_members["coordinator"])
    checked, leaks = 0, []
    for name, kwargs in api_routes(get_resolver().url_patterns):
        if not name.startswith("api:") or name in ("api:token", "api:not_found"):
            continue
        values = {}
        for kwarg in kwargs:
            if kwarg == "pk":
                values[kwarg] = world[name.split(":")[1].split("-")[0]]
            elif kwarg == "name":
                values[kwarg] = "aligned"
            elif kwarg == "format":
                values[kwarg] = "json"
        try:
            url = reverse(name, kwargs=values)
        except Exception:
            continue  # a route this walk cannot fill (the Swagger assets); it serves no study data
        response = client.get(url)
        checked += 1
        body = b"".join(response.streaming_content) if response.streaming else response.content
        text = body.decode("utf-8", "replace")
        leaks += [f"{url}: {fragment}" for fragment in forbidden_fragments() if fragment in text]
    for url in (
        reverse("analysis:result_json", args=[world["result"]]),
        reverse("runs:status", args=["analysis", world["job"]]),
        reverse("runs:status", args=["study-export", world["export"]]),
    ):
        text = client.get(url).content.decode()
        checked += 1
        leaks += [f"{url}: {fragment}" for fragment in forbidden_fragments() if fragment in text]
    assert checked >= 15
    assert leaks == []
