"""The API's results list, a comparison's changes and the cohort's changes (issue 16, item 6): the same
per-study permissions as the pages, audited, with the results the pages would show."""

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from webapp.analysis.models import AnalysisJob, Result
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.models import RunStatus
from webapp.studies.services import comparison_create

pytestmark = pytest.mark.django_db

FACE = {"box": [40, 40, 200, 200], "landmarks": [[100.0, 100.0]] * 68, "pose": {"yaw": 0.0}}


def client_for(user) -> APIClient:
    client = APIClient()
    client.force_authenticate(user)
    return client


def add_result(photo, kind: str, data: dict) -> Result:
    job = AnalysisJob.objects.create(
        photo=photo,
        kind=kind,
        queue="cpu",
        model_name="m",
        status=RunStatus.SUCCEEDED,
        finished_at=timezone.now(),
    )
    return Result.objects.create(job=job, data=data, model_name="m", model_version="1", code_version="t")


def normality(score: float) -> dict:
    return {"score": score, "region": "lower face", "metric": {"heatmap": "l1"}}


def wrinkles(fraction: float) -> dict:
    zone = {"abbreviation": "FFA", "name": "Forehead", "area_fraction": fraction, "zone_area_px": 1000}
    return {"zones": [{**zone, "wrinkle_area_px": int(fraction * 1000)}]}


@pytest.fixture
def pair(study_with_members, make_photo):
    study = study_with_members["study"]
    study.zones_of_interest = ["FFA"]
    study.save()
    pre = make_photo(study, subject_code="S-9", visit_label="baseline", role="pre")
    post = make_photo(study, subject_code="S-9", visit_label="week 12", role="post")
    found = {}
    for side, photo, score, fraction in (("pre", pre, 0.40, 0.10), ("post", post, 0.55, 0.04)):
        found[side] = [
            add_result(photo, "landmarks", {"faces": [FACE], "quality": {"ok": True, "reasons": []}}),
            add_result(photo, "normality", normality(score)),
            add_result(photo, "wrinkles", wrinkles(fraction)),
        ]
    comparison = comparison_create(
        pre_visit=pre.visit, post_visit=post.visit, actor=study_with_members["coordinator"]
    )
    return {"pre": pre, "post": post, "results": found, "comparison": comparison}


def test_results_list_is_scoped_filtered_paginated_and_audited(study_with_members, make_photo, pair):
    foreign = add_result(
        make_photo(study_with_members["other_study"]), "landmarks", {"faces": [], "quality": {}}
    )
    client = client_for(study_with_members["monitor"])
    body = client.get("/api/results/").json()
    assert body["count"] == 6 and foreign.pk not in {row["id"] for row in body["results"]}
    only = client.get(f"/api/results/?photo={pair['pre'].pk}&kind=normality").json()["results"]
    assert [(row["photo"], row["kind"], row["data"]["score"]) for row in only] == [
        (pair["pre"].pk, "normality", 0.40)
    ]
    assert len(client.get("/api/results/?limit=2").json()["results"]) == 2
    assert client.get("/api/results/?kind=everything").status_code == 400
    event = (
        AuditEvent.objects.filter(action=AuditAction.VIEW, object_type="analysis.result", via="api")
        .order_by("-pk")
        .first()
    )
    assert event.summary == "Listed 2 result(s)" and len(event.details["results"]) == 2
    outsider = client_for(study_with_members["outsider"]).get("/api/results/").json()
    assert [row["id"] for row in outsider["results"]] == [foreign.pk]
    assert (
        client_for(study_with_members["outsider"])
        .get(f"/api/results/?study={pair['pre'].study_id}")
        .json()["count"]
        == 0
    )


def test_comparison_changes_give_the_normality_and_wrinkle_change(study_with_members, pair):
    url = f"/api/comparisons/{pair['comparison'].pk}/changes/"
    changes = client_for(study_with_members["rater"]).get(url).json()
    assert len(changes) == 1
    change = changes[0]
    assert (change["view"], change["pre_photo"], change["post_photo"]) == (
        "frontal",
        pair["pre"].pk,
        pair["post"].pk,
    )
    assert change["normality"]["change"] == pytest.approx(0.15) and change["normality"]["improved"] is True
    assert [(row["abbreviation"], round(row["change_points"], 6)) for row in change["wrinkles"]] == [
        ("FFA", -6.0)
    ]
    assert change["missing"] == []
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW, object_type="studies.comparison", object_id=str(pair["comparison"].pk)
    ).exists()
    assert client_for(study_with_members["outsider"]).get(url).status_code == 404


def test_reading_comparisons_through_the_api_is_audited(study_with_members, pair):
    """A comparison's pairs carry the patient's measures: list and detail are views of patient data."""
    comparison = pair["comparison"]
    rater = client_for(study_with_members["rater"])
    assert rater.get(f"/api/comparisons/{comparison.pk}/").status_code == 200
    viewed = AuditEvent.objects.filter(
        action=AuditAction.VIEW, object_type="studies.comparison", object_id=str(comparison.pk)
    )
    assert viewed.count() == 1
    listed = rater.get(f"/api/comparisons/?study={comparison.subject.study_id}").json()
    assert [row["id"] for row in listed["results"]] == [comparison.pk]
    listing = AuditEvent.objects.get(action=AuditAction.VIEW, summary="Listed 1 comparison(s)")
    assert listing.details["comparisons"] == [comparison.pk]


def test_a_change_of_s_has_no_percentage(study_with_members, pair):
    """S has an arbitrary zero and a sign: a percentage change of it means nothing (issue 15)."""
    url = f"/api/comparisons/{pair['comparison'].pk}/changes/"
    assert "percent" not in client_for(study_with_members["rater"]).get(url).json()[0]["normality"]


def test_comparison_changes_say_whether_the_normality_change_is_within_its_noise_floor(
    study_with_members, pair
):
    """As the comparison page: a change of S within the floor is no measurable change (TEST DATA floor)."""
    for results in pair["results"].values():
        normality_result = results[1]
        normality_result.data = {**normality_result.data, "reference": {"noise_floor": 0.54}}
        normality_result.save()
    url = f"/api/comparisons/{pair['comparison'].pk}/changes/"
    change = client_for(study_with_members["rater"]).get(url).json()[0]["normality"]
    assert change["noise_floor"] == pytest.approx(0.54) and change["within_noise_floor"] is True
    cohort = client_for(study_with_members["coordinator"]).get(
        f"/api/studies/{pair['comparison'].subject.study_id}/cohort/"
    )
    assert cohort.json()[0]["normality"]["within_noise_floor"] is True
    assert change["tightly_framed"] == [] and change["edited_fill"] == []


def test_comparison_changes_name_the_sides_framed_tightly_or_edited_with_black_fill(study_with_members, pair):
    """As the comparison page's warnings: the API says which photo may not compare, and why."""
    pre_normality, post_normality = (pair["results"][side][1] for side in ("pre", "post"))
    pre_normality.data = {**pre_normality.data, "observed": {"tight_framing": True}}
    pre_normality.save()
    post_normality.data = {**post_normality.data, "observed": {"edited_fill": True, "fill_fraction": 0.07}}
    post_normality.save()
    url = f"/api/comparisons/{pair['comparison'].pk}/changes/"
    change = client_for(study_with_members["rater"]).get(url).json()[0]["normality"]
    assert change["tightly_framed"] == ["before"] and change["edited_fill"] == ["after"]


def test_comparison_changes_leave_out_results_of_a_photo_without_a_face(study_with_members, pair):
    add_result(pair["post"], "landmarks", {"faces": [], "quality": {"ok": False, "reasons": ["No face."]}})
    url = f"/api/comparisons/{pair['comparison'].pk}/changes/"
    change = client_for(study_with_members["clinician"]).get(url).json()[0]
    assert change["normality"] is None and change["wrinkles"] == []
    assert f"post photo {pair['post'].pk}: no face found" in change["missing"]


def test_cohort_is_for_members_who_may_export(study_with_members, pair):
    study = study_with_members["study"]
    url = f"/api/studies/{study.pk}/cohort/"
    rows = client_for(study_with_members["coordinator"]).get(url).json()
    assert len(rows) == 1
    row = rows[0]
    assert (row["subject"], row["pre_visit"], row["post_visit"], row["view"]) == (
        "S-9",
        "baseline",
        "week 12",
        "frontal",
    )
    assert row["normality"]["pre"] == 0.40 and row["normality"]["post"] == 0.55
    assert (row["wrinkles_pre"], row["wrinkles_post"]) == pytest.approx((10.0, 4.0))
    assert row["wrinkles_change"] == pytest.approx(-6.0)
    assert client_for(study_with_members["clinician"]).get(url).status_code == 403
    assert client_for(study_with_members["outsider"]).get(url).status_code == 404
    assert client_for(study_with_members["clinician"]).get(url).json()["detail"]
