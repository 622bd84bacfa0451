"""Every page and API endpoint refuses a member of another study, and read-only members cannot write.

The routes are not listed by hand: the test walks the project's URL patterns, so a new route is
checked the day it is added. A route whose URL arguments the table below cannot fill makes the test
fail, so nobody adds an unchecked page silently; public routes are named explicitly.
"""

import datetime
import io
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest
from django.apps import apps
from django.core.files.base import ContentFile
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.urls.exceptions import NoReverseMatch
from PIL import Image

from ml.landmarks.formats import Instance, Provenance
from webapp.analysis import services as analysis_services
from webapp.analysis.models import AnalysisJob
from webapp.analysis.services import photo_upload
from webapp.campaigns import services as campaign_services
from webapp.campaigns.models import Campaign
from webapp.exports.models import StudyExport
from webapp.labeling.models import TrainingJob
from webapp.labeling.services import encode_png, label_save
from webapp.ratings import services as rating_services
from webapp.ratings.models import RegressorFit
from webapp.runs.models import RunStatus
from webapp.runs.services import run_claim
from webapp.studies.models import (
    Comparison,
    Invitation,
    Photo,
    Role,
    Study,
    StudyMembership,
    Subject,
    Visit,
    VisitRole,
)
from webapp.studies.services import comparison_create, subject_create, visit_create

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_password_hashing(settings) -> None:
    # The default hasher takes about a second per user on this machine; these tests are not about hashing.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


# Routes anyone may open, logged in or not: they show nothing of any study.
PUBLIC_ROUTES = {
    "login",
    "logout",
    "password_reset",
    "password_reset_done",
    "password_reset_confirm",
    "password_reset_complete",
    "healthz",
    "api:schema",
    "api:docs",
    "api:token",
    "api:not_found",
    # An invitation link (a secret token) and the accounts' own two-factor pages show nothing of a study.
    "studies:invitation_accept",
    "login_verify",
    "two_factor",
    # The blinded rater's pages: they answer only a browser bound to a rater by an invitation link (or a
    # member's own start), show that rater's survey alone, and 404 (410 for a bad link) otherwise.
    "rate:page",
    "rate:claim",
    "rate:state",
    "rate:image",
    "rate:submit",
    "rate:undo",
}
# Pages for site admins only: everyone else gets 404, study coordinators included.
STAFF_ONLY_NAMESPACES = {"audit"}
STAFF_ONLY_ROUTES = {"runs:queue", "analysis:model_versions", "user_list", "user_edit"}

# URL argument name → which object of the world fills it.
KWARG_TARGETS = {
    "study_id": "study",
    "subject_id": "subject",
    "visit_id": "visit",
    "photo_id": "photo",
    "job_id": "job",
    "result_id": "result",
    "artifact_id": "artifact",
    "comparison_id": "comparison",
    "pair_id": "comparison_pair",
    "membership_id": "membership",
    "name": "artifact_name",
    "label_id": "wrinkle_label",
    "training_job_id": "training_job",
    "dataset_id": "keypoint_dataset",
    "version_id": "keypoint_version",
    "instance_id": "keypoint_instance",
    "campaign_id": "landmark_campaign",
    "user_id": "user",
    "invitation_id": "invitation",
    # The generic run endpoints (/jobs/<run_kind>/<run_id>/...) are checked here with analysis jobs;
    # tests/webapp/test_runs.py checks them for every kind of run.
    "run_kind": "run_kind",
    "run_id": "job",
    "survey_id": "rating_survey",
    "rater_id": "survey_rater",
    "fit_id": "regressor_fit",
    "export_id": "study_export",
}
# `pk` is filled by the API router's basename (route names "api:<basename>-<action>").
API_PK_TARGETS = {
    "study": "study",
    "subject": "subject",
    "visit": "visit",
    "photo": "photo",
    "job": "job",
    "result": "result",
    "comparison": "comparison",
    "export": "study_export",
}
# API list filters that take object ids; each is tried with study A's ids.
API_LIST_FILTERS = {"study": "study", "subject": "subject", "visit": "visit", "photo": "photo"}
MISSING_ID = 987_654_321
OBJECT_METHODS = ("get", "post")
API_OBJECT_METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Route:
    namespace: str
    name: str | None
    pattern: str
    kwargs: tuple[str, ...]

    @property
    def is_api(self) -> bool:
        return self.namespace == "api"


def walk_routes(patterns: list, namespace: str = "", prefix: str = "", kwargs: tuple = ()) -> Iterator[Route]:
    for entry in patterns:
        names = tuple(entry.pattern.regex.groupindex)
        if isinstance(entry, URLResolver):
            inner = ":".join(part for part in (namespace, entry.namespace) if part)
            yield from walk_routes(entry.url_patterns, inner, prefix + str(entry.pattern), kwargs + names)
        elif isinstance(entry, URLPattern):
            name = f"{namespace}:{entry.name}" if namespace and entry.name else entry.name
            yield Route(namespace, name, prefix + str(entry.pattern), kwargs + names)


def all_routes() -> list[Route]:
    return list(walk_routes(get_resolver().url_patterns))


@dataclass
class World:
    study: Study
    subject: Subject
    visit: Visit
    post_visit: Visit
    photo: Photo
    job: AnalysisJob
    result_id: int
    artifact_id: int
    comparison: Comparison
    membership: StudyMembership
    markers: list[str]
    wrinkle_label_id: int
    training_job_id: int
    landmark_ids: dict[str, int]
    invitation_id: int
    rating_ids: dict[str, int]
    export_id: int

    def value(self, target: str) -> Any:
        return {
            "study": self.study.pk,
            "subject": self.subject.pk,
            "visit": self.visit.pk,
            "photo": self.photo.pk,
            "job": self.job.pk,
            "result": self.result_id,
            "artifact": self.artifact_id,
            "comparison": self.comparison.pk,
            "comparison_pair": self.comparison.pairs.get().pk,
            "membership": self.membership.pk,
            "artifact_name": "aligned",
            "run_kind": "analysis",
            "wrinkle_label": self.wrinkle_label_id,
            "training_job": self.training_job_id,
            "user": self.membership.user_id,
            "invitation": self.invitation_id,
            "study_export": self.export_id,
            **self.landmark_ids,
            **self.rating_ids,
        }[target]


def missing_value(target: str) -> Any:
    return {"artifact_name": "no-such-artifact", "run_kind": "analysis"}.get(target, MISSING_ID)


def png(color: tuple[int, int, int]) -> SimpleUploadedFile:
    buffer = io.BytesIO()
    Image.new("RGB", (320, 320), color).save(buffer, format="PNG")
    return SimpleUploadedFile("photo.png", buffer.getvalue(), content_type="image/png")


def build_landmark_world(study: Study, coordinator, photo: Photo, tag: str) -> dict[str, int]:
    """A keypoint dataset with a model suggestion (test data, "yolo-pose68@test") and a finished campaign."""
    dataset = campaign_services.dataset_create(study=study, name=f"{tag} landmarks", actor=coordinator)
    points = np.column_stack([np.linspace(60, 260, 68), np.linspace(80, 240, 68)])
    version = campaign_services.suggestions_create(
        dataset=dataset,
        photo=photo,
        instances=[Instance.from_points(points, Provenance("yolo-pose68@test", confidence=0.8))],
        note=f"{tag} suggestion",
    )
    campaign = Campaign.objects.create(
        study=study, dataset=dataset, name=f"{tag.lower()}-run", start_version=version, status="succeeded"
    )
    return {
        "keypoint_dataset": dataset.pk,
        "keypoint_version": version.pk,
        "keypoint_instance": version.instances.get().pk,
        "landmark_campaign": campaign.pk,
    }


def build_rating_world(study: Study, coordinator, photos: list[Photo], tag: str) -> dict[str, int]:
    """An open rating survey of the photos with one external rater, and a queued regressor fit."""
    survey = rating_services.survey_create(
        study=study,
        actor=coordinator,
        title=f"{tag} survey",
        photos=photos,
        question=f"{tag} question",
        anchors=[],
        region="whole",
        repeat_share=0,
        attention_checks=0,
        target_ratings_per_photo=3,
    )
    rating_services.survey_open(survey=survey, actor=coordinator)
    rater = rating_services.invitations_create(survey=survey, count=1, actor=coordinator)[0].rater
    fit = RegressorFit.objects.create(study=study, survey=survey, parameters={})
    return {"rating_survey": survey.pk, "survey_rater": rater.pk, "regressor_fit": fit.pk}


def build_world(study: Study, coordinator, tag: str, shade: int) -> World:
    """A subject with two visits, photos, a queued job, a succeeded job with a result and artifact, and a
    comparison, all in `study`, named with `tag` so their names can be searched for in responses."""
    subject = subject_create(study=study, code=f"{tag}-SUBJ", actor=coordinator)
    pre = visit_create(
        subject=subject,
        label=f"{tag} baseline",
        role=VisitRole.PRE,
        date=datetime.date(2026, 1, 5),
        actor=coordinator,
    )
    post = visit_create(
        subject=subject,
        label=f"{tag} week 12",
        role=VisitRole.POST,
        date=datetime.date(2026, 3, 30),
        actor=coordinator,
    )
    analysed = photo_upload(visit=pre, view="frontal", upload=png((shade, 120, 100)), uploaded_by=coordinator)
    queued = photo_upload(visit=post, view="frontal", upload=png((shade, 90, 140)), uploaded_by=coordinator)
    finished_job = analysed.jobs.get()
    result = analysis_services.job_succeed(
        job_id=finished_job.pk,
        attempt=run_claim(AnalysisJob, run_id=finished_job.pk, worker="test-worker").attempt,
        data={"faces": [], "quality": {"ok": False, "reasons": [f"{tag} reason"]}},
        model={"name": "dlib-68", "version": "test"},
        parameters={},
        code_version="test",
        artifacts=[analysis_services.Artifact("aligned", b"\xff\xd8" + tag.encode(), "jpg", "image/jpeg")],
    )
    comparison = comparison_create(pre_visit=pre, post_visit=post, actor=coordinator)
    membership = StudyMembership.objects.filter(study=study).exclude(user=coordinator).first() or (
        StudyMembership.objects.get(study=study, user=coordinator)
    )
    rough = Image.new("L", (320, 320), 0)
    rough.paste(255, (40, 40, 280, 200))
    wrinkle_label = label_save(
        photo=queued,
        author=coordinator,
        rough_mask_png=encode_png(np.asarray(rough)),
        region_kind="whole",
        landmarks_result_id=None,
        method="bradley-roth",
        parameters={"window": 15, "percent": 15.0},
        note=f"{tag} label note",
    )
    training_job = TrainingJob.objects.create(study=study, parameters={}, label_ids=[wrinkle_label.pk])
    return World(
        study=study,
        subject=subject,
        visit=pre,
        post_visit=post,
        photo=queued,
        job=queued.jobs.get(),
        result_id=result.pk,
        artifact_id=result.artifacts.get().pk,
        comparison=comparison,
        membership=membership,
        markers=[
            study.name,
            subject.code,
            pre.label,
            post.label,
            analysed.content_hash,
            queued.content_hash,
            f"{tag} reason",
            f"{tag} label note",
            f"{tag} survey",
        ],
        wrinkle_label_id=wrinkle_label.pk,
        training_job_id=training_job.pk,
        landmark_ids=build_landmark_world(study, coordinator, queued, tag),
        invitation_id=Invitation.objects.create(
            study=study,
            email=f"{tag.lower()}@invited.example",
            role=Role.RATER,
            token_sha256=f"{tag:0<64}"[:64],
            invited_by=coordinator,
            expires_at=datetime.datetime(2099, 1, 1, tzinfo=datetime.UTC),
        ).pk,
        rating_ids=build_rating_world(study, coordinator, [analysed, queued], tag),
        export_id=build_export(study, tag),
    )


def build_export(study: Study, tag: str) -> int:
    """A built background export of the study's measures (its file names the study's subject)."""
    export = StudyExport.objects.create(
        study=study, format="csv", status=RunStatus.SUCCEEDED, filename="m.csv", content_type="text/csv"
    )
    export.file.save("m.csv", ContentFile(f"subject_code\n{tag}-SUBJ\n".encode()))
    return export.pk


@pytest.fixture
def worlds(study_with_members, monkeypatch) -> dict[str, World]:
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    a = build_world(study_with_members["study"], study_with_members["coordinator"], "ASECRET", 200)
    b = build_world(study_with_members["other_study"], study_with_members["outsider"], "BOWN", 40)
    return {"a": a, "b": b}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def object_targets(route: Route) -> dict[str, str]:
    """URL argument → world object, or an AssertionError naming the route the table cannot fill."""
    targets = {}
    for kwarg in route.kwargs:
        if kwarg in KWARG_TARGETS:
            targets[kwarg] = KWARG_TARGETS[kwarg]
        elif kwarg == "pk" and route.is_api and route.name.split(":")[1].split("-")[0] in API_PK_TARGETS:
            targets[kwarg] = API_PK_TARGETS[route.name.split(":")[1].split("-")[0]]
        else:
            raise AssertionError(
                f"Route {route.name or route.pattern!r} takes {kwarg!r}, which the permission test cannot "
                "fill: add it to KWARG_TARGETS (or PUBLIC_ROUTES if it shows nothing of any study)."
            )
    return targets


def url_of(route: Route, values: dict[str, Any]) -> str:
    return reverse(route.name, kwargs=values)


def request(client: Client, method: str, url: str, data: dict[str, Any] | None = None):
    if method in ("get", "delete"):
        return getattr(client, method)(url)
    if method == "post":
        return client.post(url, data or {})
    return getattr(client, method)(url, data or {}, content_type="application/json")


def leaked_markers(response, world: World) -> list[str]:
    content = b"".join(response.streaming_content) if response.streaming else response.content
    return [marker for marker in world.markers if marker.encode() in content]


def foreign_body(world: World) -> dict[str, Any]:
    """Form fields that name study A's objects: a view must never act on them for an outsider."""
    return {
        "study": world.study.pk,
        "subject": world.subject.pk,
        "visit": world.visit.pk,
        "pre_visit": world.visit.pk,
        "post_visit": world.post_visit.pk,
        "photo": world.photo.pk,
        "job": world.job.pk,
        "code": "INTRUDER",
        "label": "intruder",
        "role": "pre",
        "view": "frontal",
        "username": "outsider",
        "name": "Intruder study",
    }


def study_a_state(world: World) -> dict[str, Any]:
    study = Study.objects.get(pk=world.study.pk)
    return {
        "study": (study.name, study.protocol, study.required_views, study.analyses),
        "members": sorted(StudyMembership.objects.filter(study=study).values_list("user__username", "role")),
        "subjects": sorted(Subject.objects.filter(study=study).values_list("code", flat=True)),
        "visits": sorted(Visit.objects.filter(subject__study=study).values_list("label", flat=True)),
        "photos": sorted(Photo.objects.filter(study=study).values_list("pk", flat=True)),
        "comparisons": sorted(Comparison.objects.filter(subject__study=study).values_list("pk", flat=True)),
        "jobs": sorted(AnalysisJob.objects.filter(photo__study=study).values_list("pk", "status")),
        "exports": sorted(StudyExport.objects.filter(study=study).values_list("pk", "status")),
    }


def is_admin_route(route: Route) -> bool:
    return route.namespace == "admin"


def is_staff_only(route: Route) -> bool:
    return route.namespace in STAFF_ONLY_NAMESPACES or route.name in STAFF_ONLY_ROUTES


def study_routes() -> list[Route]:
    """Routes that must apply study access: all but public, admin-site and staff-only ones."""
    routes = []
    for route in all_routes():
        if is_admin_route(route) or route.name in PUBLIC_ROUTES:
            continue
        assert route.name, (
            f"Route {route.pattern!r} has no name; name it so the permission test can check it."
        )
        if not is_staff_only(route):
            routes.append(route)
    return routes


def test_every_route_is_known_to_the_permission_table():
    for route in study_routes():
        object_targets(route)
    names = {route.name for route in all_routes()}
    assert {"api:study-detail", "api:photo-image", "api:result-artifact", "api:job-cancel"} <= names


def test_a_route_with_an_argument_the_table_cannot_fill_fails_the_suite():
    unknown = Route("studies", "studies:widget_detail", "widgets/<int:widget_id>/", ("widget_id",))
    with pytest.raises(AssertionError, match="widget_id"):
        object_targets(unknown)
    unknown_api = Route("api", "api:widget-detail", "api/widgets/(?P<pk>[0-9]+)/", ("pk",))
    with pytest.raises(AssertionError, match="pk"):
        object_targets(unknown_api)


def test_outsider_gets_404_for_every_object_of_another_study(study_with_members, worlds):
    a, b = worlds["a"], worlds["b"]
    outsider = client_for(study_with_members["outsider"])
    before = study_a_state(a)
    failures = []
    checked = 0
    for route in study_routes():
        targets = object_targets(route)
        if not targets:
            continue
        # All of A's objects, and each of A's objects among the outsider's own (cross-object references).
        fillings = [{kwarg: a.value(target) for kwarg, target in targets.items()}]
        if len(targets) > 1:
            for foreign, target in targets.items():
                if a.value(target) == b.value(target):
                    continue  # e.g. an artifact name: the same in both studies, so not a foreign object
                fillings.append(
                    {kwarg: (a if kwarg == foreign else b).value(target) for kwarg, target in targets.items()}
                )
        missing = {kwarg: missing_value(target) for kwarg, target in targets.items()}
        for method in API_OBJECT_METHODS if route.is_api else OBJECT_METHODS:
            absent_response = request(outsider, method, url_of(route, missing), foreign_body(a))
            absent = absent_response.status_code
            for values in fillings:
                url = url_of(route, values)
                response = request(outsider, method, url, foreign_body(a))
                checked += 1
                if response.status_code not in (404, 405) or response.status_code != absent:
                    failures.append(
                        f"{method.upper()} {url} ({route.name}) → {response.status_code}, "
                        f"for a missing object {absent}"
                    )
                elif response.content != absent_response.content:  # D9: no existence oracle
                    failures.append(
                        f"{method.upper()} {url} ({route.name}) answers {response.content[:120]!r}, "
                        f"a missing object {absent_response.content[:120]!r}"
                    )
                elif leaks := leaked_markers(response, a):
                    failures.append(f"{method.upper()} {url} ({route.name}) shows {leaks}")
    assert checked > 50
    assert not failures, "Outsiders reached study A:\n" + "\n".join(failures)
    assert study_a_state(a) == before


def api_rows_by_study(route: Route, response) -> list[int]:
    """The study of every object an API list returned (each API object names its study)."""
    rows = response.json()
    rows = rows["results"] if isinstance(rows, dict) else rows
    return [row["id"] if route.name == "api:study-list" else row["study"] for row in rows]


def test_lists_and_pages_without_ids_show_nothing_of_another_study(study_with_members, worlds):
    a, b = worlds["a"], worlds["b"]
    outsider = client_for(study_with_members["outsider"])
    failures = []
    for route in study_routes():
        if object_targets(route):
            continue
        urls = [reverse(route.name)]
        if route.is_api:
            urls += [
                f"{reverse(route.name)}?{name}={a.value(target)}" for name, target in API_LIST_FILTERS.items()
            ]
        for url in urls:
            response = outsider.get(url)
            if response.status_code >= 500:
                failures.append(f"GET {url} ({route.name}) → {response.status_code}")
            elif leaks := leaked_markers(response, a):
                failures.append(f"GET {url} ({route.name}) shows {leaks}")
            elif (
                route.is_api
                and response.status_code == 200
                and a.study.pk in api_rows_by_study(route, response)
            ):
                failures.append(f"GET {url} ({route.name}) lists objects of study A")
        if route.is_api and b.study.pk not in api_rows_by_study(route, outsider.get(reverse(route.name))):
            failures.append(f"GET {route.name} does not list the outsider's own objects, so proves nothing")
    assert not failures, "Lists showed study A to an outsider:\n" + "\n".join(failures)


API_CREATES = (
    "api:subject-list",
    "api:visit-list",
    "api:photo-list",
    "api:comparison-list",
    "api:export-list",
)


def create_body(route_name: str, world: World) -> dict[str, Any]:
    return {
        "api:subject-list": {"study": world.study.pk, "code": "INTRUDER"},
        "api:visit-list": {"subject": world.subject.pk, "label": "intruder", "role": "pre"},
        "api:photo-list": {"visit": world.visit.pk, "view": "left45", "file": png((10, 200, 10))},
        "api:comparison-list": {"pre_visit": world.post_visit.pk, "post_visit": world.visit.pk},
        "api:export-list": {"study": world.study.pk, "format": "dicom", "deidentify": "true"},
    }[route_name]


@pytest.mark.parametrize("role, expected", [("outsider", 404), ("monitor", 403), ("rater", 403)])
def test_api_creates_in_a_study_refuse_outsiders_and_read_only_members(
    study_with_members, worlds, role, expected
):
    a = worlds["a"]
    client = client_for(study_with_members[role])
    before = study_a_state(a)
    for route_name in API_CREATES:
        response = client.post(reverse(route_name), create_body(route_name, a))
        assert response.status_code == expected, (route_name, response.content)
    assert study_a_state(a) == before


def test_read_only_members_cannot_write_anywhere(study_with_members, worlds):
    """A monitor may look at everything in the study but change nothing: 403 (or 405) for every write."""
    a = worlds["a"]
    monitor = client_for(study_with_members["monitor"])
    before = study_a_state(a)
    failures = []
    for route in study_routes():
        targets = object_targets(route)
        if not targets:
            continue
        url = url_of(route, {kwarg: a.value(target) for kwarg, target in targets.items()})
        for method in ("post", "put", "patch", "delete") if route.is_api else ("post",):
            response = request(monitor, method, url, {"role": Role.COORDINATOR, "protocol": "changed"})
            if response.status_code not in (403, 405):
                failures.append(f"{method.upper()} {url} ({route.name}) → {response.status_code}")
    assert not failures, "A monitor could write:\n" + "\n".join(failures)
    assert study_a_state(a) == before
    assert AnalysisJob.objects.get(pk=a.job.pk).status == RunStatus.QUEUED


def test_members_reach_every_object_route_of_their_study(study_with_members, worlds):
    """The table fills real ids: the same URLs that refuse outsiders open for the study's coordinator."""
    a = worlds["a"]
    coordinator = client_for(study_with_members["coordinator"])
    failures = []
    for route in study_routes():
        targets = object_targets(route)
        if not targets:
            continue
        url = url_of(route, {kwarg: a.value(target) for kwarg, target in targets.items()})
        status = coordinator.get(url).status_code
        if status == 404 or status >= 500:
            failures.append(f"GET {url} ({route.name}) → {status}")
    assert not failures, "Members could not open their own study's objects:\n" + "\n".join(failures)


@pytest.mark.parametrize("who", ["outsider", "coordinator", "monitor"])
def test_admin_pages_refuse_users_who_are_not_site_admins(study_with_members, worlds, who):
    client = client_for(study_with_members[who])
    failures = []
    for route in all_routes():
        if not is_staff_only(route):
            continue
        values = {kwarg: worlds["a"].value(target) for kwarg, target in object_targets(route).items()}
        response = client.get(url_of(route, values))
        if response.status_code != 404:
            failures.append(f"GET {route.name} → {response.status_code}")
    admin_login = reverse("admin:login")
    for route in all_routes():
        if not is_admin_route(route) or route.name in (None, "admin:login", "admin:logout"):
            continue
        url = admin_url(route)
        for method in ("get", "post"):
            response = getattr(client, method)(url)
            if response.status_code != 302 or not response["Location"].startswith(admin_login):
                failures.append(f"{method.upper()} {url} → {response.status_code}")
    assert not failures, f"Admin pages opened for a {who}:\n" + "\n".join(failures)


def admin_url(route: Route) -> str:
    """A URL of an admin route: id 1 for every id, and the first app label the route accepts."""
    values: dict[str, Any] = {}
    for kwarg in route.kwargs:
        values[kwarg] = 1  # object_id, id, content_type_id: the admin refuses before looking anything up
    if "app_label" not in values:
        return reverse(route.name, kwargs=values)
    for config in apps.get_app_configs():
        try:
            return reverse(route.name, kwargs={**values, "app_label": config.label})
        except NoReverseMatch:
            continue
    raise AssertionError(f"No app label fits admin route {route.name}")
