"""The cohort: comparison pairs with measures and comparability, the measures table, statistics,
charts, subject attributes and a coordinator's acceptance of a pair.

Results here are fabricated TEST DATA: landmark results hold the atlas's mean shape, edited where a
test needs a change; no figure in this file is a measurement.
"""

import html
import io
import json

import numpy as np
import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from ml.measures.facial import face_frame
from ml.zones.render import mean_shape
from webapp.analysis import results as analysis_results
from webapp.analysis import services as analysis_services
from webapp.analysis.cohort import (
    MEASURE_GROUPS,
    CohortFilters,
    cohort_measure_rows,
    cohort_statistics,
    cohort_summary,
)
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, ComparisonPair
from webapp.analysis.pairs import comparisons_create_for_study, pair_accept
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.services import run_claim
from webapp.studies.models import VisitRole
from webapp.studies.records import subject_attributes_set
from webapp.studies.services import comparison_create, study_update

pytestmark = pytest.mark.django_db
BASE = mean_shape() * 0.5  # the mean face fits the 256-px test photos


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def landmarks_result(
    photo, points: np.ndarray, yaw: float = 0.0, version: str = "test", weights_sha256: str = "ab" * 32
):
    """A succeeded landmark job holding made-up landmarks (TEST DATA) from the given model version."""
    job = AnalysisJob.objects.create(
        kind="landmarks", photo=photo, queue=KIND_SPECS["landmarks"].queue, model_name="test-landmarks"
    )
    face = {
        "box": [0, 0, 200, 240],
        "score": 0.99,
        "landmarks": points.tolist(),
        "pose": {"yaw": yaw, "pitch": 0.0, "roll": 0.0},
    }
    return analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={"faces": [face], "subject": 0},
        model={"name": "test-landmarks", "version": version, "weights_sha256": weights_sha256},
        parameters={},
        code_version="test",
    )


def fuller_lip(points: np.ndarray, amount: float) -> np.ndarray:
    """SYNTHETIC edit: the upper lip's outline moved up by ``amount`` IPD."""
    edited = points.copy()
    edited[49:54, 1] -= amount * face_frame(points)[1]
    return edited


@pytest.fixture
def cohort(study_with_members, make_photo):
    """Six subjects in two arms, each with a pre and a post photo and landmarks; the post upper lip is
    fuller by 0.01–0.06 IPD (filler arm) or unchanged ± 0.002 (control arm)."""
    study = study_with_members["study"]
    coordinator = study_with_members["coordinator"]
    study_update(study=study, actor=coordinator, arms=["filler", "control"])
    comparisons = []
    for index in range(6):
        code = f"S{index:02d}"
        pre = make_photo(study, subject_code=code, visit_label="baseline", role=VisitRole.PRE)
        post = make_photo(study, subject_code=code, visit_label="week 12", role=VisitRole.POST)
        arm = "filler" if index < 3 else "control"
        subject_attributes_set(
            subject=pre.visit.subject, arm=arm, sex="female", age_band="30-39", actor=coordinator
        )
        landmarks_result(pre, BASE)
        change = 0.01 * (index + 1) * 2 if arm == "filler" else 0.002 * (index - 4)
        landmarks_result(post, fuller_lip(BASE, change))
        comparisons.append(comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=coordinator))
    return {"study": study, "comparisons": comparisons, **study_with_members}


def test_a_comparison_gets_one_assessed_pair_per_view_with_its_measures(cohort):
    pair = ComparisonPair.objects.get(comparison=cohort["comparisons"][0])
    assert pair.view == "frontal" and pair.assessed_at is not None and pair.warnings == []
    pre, post = pair.measures["upper_vermilion_height"]
    assert post - pre == pytest.approx(0.02, abs=1e-6)
    assert pair.sources["pre"]["landmarks"]["model"] == "test-landmarks"


def test_results_of_two_model_versions_leave_the_pair_out_of_the_cohort(cohort):
    """A model upgrade between the pre and post analyses moves an unchanged face's measures."""
    pair = ComparisonPair.objects.get(comparison=cohort["comparisons"][0])
    landmarks_result(pair.post_photo, BASE, version="test-2", weights_sha256="ef" * 32)
    pair.refresh_from_db()
    assert pair.warnings == [
        "The two photos' landmarks results come from different model versions (test-landmarks test and "
        "test-landmarks test-2): their measures are not on one scale. Analyse the older photo again (its "
        "page) to compare results of one version."
    ]
    assert not pair.included
    landmarks_result(pair.post_photo, BASE)  # analysed again with the pre photo's model
    pair.refresh_from_db()
    assert pair.warnings == [] and pair.included


def test_reassessing_pairs_recomputes_their_stored_figures(cohort):
    """After an upgrade changes a definition, `facet_reassess_pairs` rewrites what the pairs stored."""
    pair = ComparisonPair.objects.get(comparison=cohort["comparisons"][0])
    expected = dict(pair.figures)
    ComparisonPair.objects.filter(pk=pair.pk).update(
        figures={**expected, "scale_change": 99.0}, warnings=["Scale change 99 % exceeds the limit of 10 %."]
    )
    output = io.StringIO()
    call_command("facet_reassess_pairs", study=cohort["study"].pk, stdout=output)
    pair.refresh_from_db()
    assert pair.figures == pytest.approx(expected) and pair.warnings == []
    assert "Reassessed 6 comparison pair(s)." in output.getvalue()
    with pytest.raises(CommandError, match="There is no study"):
        call_command("facet_reassess_pairs", study=cohort["study"].pk + 1000)


def test_measures_table_one_query_and_rows_for_the_exports(cohort, django_assert_max_num_queries):
    with django_assert_max_num_queries(1):
        rows = cohort_measure_rows(cohort["study"])
    lips = [row for row in rows if row.measure == "upper_vermilion_height"]
    assert [row.subject_code for row in lips] == [f"S{index:02d}" for index in range(6)]
    first = lips[0]
    assert first.arm == "filler" and first.unit == "IPD" and first.included and first.pre_visit == "baseline"
    assert first.change == pytest.approx(0.02, abs=1e-6)
    assert first.sources["post"]["landmarks"]["weights_sha256"] == "ab" * 32
    assert first.noise_floor is None or first.beyond_noise == (abs(first.change) > first.noise_floor)


def test_the_study_scale_gives_millimetres(cohort):
    study_update(study=cohort["study"], actor=cohort["coordinator"], ipd_mm=60.0)
    rows = [row for row in cohort_measure_rows(cohort["study"]) if row.measure == "upper_vermilion_height"]
    assert rows[0].unit == "mm" and rows[0].change == pytest.approx(1.2, abs=1e-4)
    area = next(row for row in cohort_measure_rows(cohort["study"]) if row.measure == "vermilion_area")
    assert area.unit == "mm²"


def test_statistics_of_the_lip_change_and_between_arms(cohort):
    rows = cohort_measure_rows(cohort["study"])
    statistics = {entry.measure: entry for entry in cohort_statistics(rows, group="lips")}
    upper = statistics["upper_vermilion_height"]
    changes = [0.02, 0.04, 0.06, -0.002, 0.0, 0.002]
    assert upper.summary.n == 6 and upper.summary.mean_change == pytest.approx(np.mean(changes), abs=1e-6)
    assert upper.changes_by_arm["filler"] == pytest.approx([0.02, 0.04, 0.06], abs=1e-6)
    [arms] = upper.arms
    assert (arms.first, arms.second) == ("control", "filler") and arms.rank_biserial == pytest.approx(-1.0)
    assert upper.summary.adjusted_p >= upper.summary.wilcoxon_p  # Holm across the lip measures
    filler_only = cohort_measure_rows(cohort["study"], CohortFilters(arm="filler"))
    assert {row.arm for row in filler_only} == {"filler"}


def two_people_pair(cohort, make_photo, data_dir) -> ComparisonPair:
    """A new subject whose pre and post photos hold two different people's human landmarks (landmarks68)."""
    faces = json.loads((data_dir / "landmarks68" / "landmarks.json").read_text())["faces"]
    first, second = (np.asarray(points) for points in list(faces.values())[:2])
    pre = make_photo(cohort["study"], subject_code="X1", visit_label="baseline", role=VisitRole.PRE)
    post = make_photo(cohort["study"], subject_code="X1", visit_label="week 12", role=VisitRole.POST)
    landmarks_result(pre, first)
    landmarks_result(post, second)
    comparison = comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=cohort["coordinator"])
    return ComparisonPair.objects.get(comparison=comparison)


def test_a_pair_of_different_people_is_left_out_until_a_coordinator_accepts_it(cohort, make_photo, data_dir):
    study = cohort["study"]
    pair = two_people_pair(cohort, make_photo, data_dir)
    assert any("Registration residual" in warning for warning in pair.warnings) and not pair.included
    client = client_for(cohort["coordinator"])
    page = client.get(reverse("studies:study_cohort", args=[study.pk])).content.decode()
    assert "left out" in page and "1 left out by a comparability warning" in page
    refused = client.post(reverse("studies:pair_accept", args=[pair.pk]), {"accepted": "1", "note": " "})
    assert refused.status_code == 302 and not ComparisonPair.objects.get(pk=pair.pk).included
    client.post(
        reverse("studies:pair_accept", args=[pair.pk]), {"accepted": "1", "note": "twin photos checked"}
    )
    pair.refresh_from_db()
    assert pair.included and pair.accepted_by == cohort["coordinator"]
    event = AuditEvent.objects.filter(action=AuditAction.STATE).latest("pk")
    assert event.details["note"] == "twin photos checked" and event.details["warnings"] == pair.warnings
    # A clinician may not accept.
    denied = client_for(cohort["clinician"]).post(
        reverse("studies:pair_accept", args=[pair.pk]), {"accepted": "0"}
    )
    assert denied.status_code == 403


def test_soft_deleted_subjects_and_photos_leave_the_cohort(cohort):
    study = cohort["study"]
    subject = cohort["comparisons"][0].subject
    subject.deleted_at = timezone.now()
    subject.save()
    pair = ComparisonPair.objects.get(comparison=cohort["comparisons"][1])
    pair.post_photo.deleted_at = timezone.now()
    pair.post_photo.save()
    codes = {row.subject_code for row in cohort_measure_rows(study)}
    assert codes == {"S02", "S03", "S04", "S05"}


def test_cohort_page_shows_statistics_charts_and_filters(cohort):
    client = client_for(cohort["coordinator"])
    url = reverse("studies:study_cohort", args=[cohort["study"].pk])
    page = client.get(url, {"group": "lips", "measure": "upper_vermilion_height"}).content.decode()
    assert 'id="statistics-table"' in page and 'data-measure="upper_vermilion_height"' in page
    assert page.count('role="img"') >= 2 and "<desc" in page and "ΔS %" not in page
    assert "control vs filler" in page
    filtered = client.get(url, {"arm": "control"}).content.decode()
    assert "S00" not in filtered and "S03" in filtered
    event = AuditEvent.objects.filter(action=AuditAction.VIEW, study_id=cohort["study"].pk).latest("pk")
    assert event.details["filters"]["arm"] == "control"


def test_cohort_page_names_unknown_filters_and_what_it_shows_instead(cohort):
    client = client_for(cohort["coordinator"])
    url = reverse("studies:study_cohort", args=[cohort["study"].pk])
    response = client.get(url, {"arm": "placebo", "view": "profile", "group": "ears"})
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and 'id="statistics-table"' in page
    assert "There is no arm 'placebo' here; showing every arm instead." in page
    assert "There is no view 'profile' here; showing the view 'frontal' instead." in page
    assert "There is no measure group 'ears' here; showing the measure group 'lips' instead." in page
    assert "S00" in page and "S03" in page
    known = html.unescape(client.get(url, {"arm": "control", "view": "frontal"}).content.decode())
    assert "There is no" not in known


def test_cohort_page_runs_a_bounded_number_of_queries(cohort, make_photo):
    client = client_for(cohort["coordinator"])
    url = reverse("studies:study_cohort", args=[cohort["study"].pk])

    def queries() -> tuple[int, int]:
        """Queries of a request that computes the statistics, and of one that finds them cached."""
        counts = []
        for _ in range(2):
            with CaptureQueriesContext(connection) as captured:
                client.get(url)
            counts.append(len(captured))
        return counts[0], counts[1]

    few = queries()
    for index in range(6, 12):  # six more subjects
        code = f"S{index:02d}"
        pre = make_photo(cohort["study"], subject_code=code, visit_label="baseline", role=VisitRole.PRE)
        post = make_photo(cohort["study"], subject_code=code, visit_label="week 12", role=VisitRole.POST)
        landmarks_result(pre, BASE)
        landmarks_result(post, BASE)
        comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=cohort["coordinator"])
    assert queries() == few


def test_comparisons_for_every_subject_at_once(study_with_members, make_photo):
    study = study_with_members["study"]
    for code in ("A1", "A2"):
        make_photo(study, subject_code=code, visit_label="baseline", role=VisitRole.PRE)
        make_photo(study, subject_code=code, visit_label="month 3", role=VisitRole.POST)
    make_photo(study, subject_code="A3", visit_label="baseline", role=VisitRole.PRE)  # no post visit
    response = client_for(study_with_members["coordinator"]).post(
        reverse("studies:cohort_comparisons_create", args=[study.pk])
    )
    assert response.status_code == 302
    pairs = ComparisonPair.objects.filter(comparison__subject__study=study)
    assert sorted(pair.comparison.subject.code for pair in pairs) == ["A1", "A2"]
    assert all(pair.assessed_at is None for pair in pairs)  # no landmarks yet: waiting
    again = comparisons_create_for_study(study=study, actor=study_with_members["coordinator"])
    assert len(again) == 2 and pairs.count() == 2


def test_subject_attributes_page_sets_arms_and_refuses_an_unknown_arm(cohort):
    subject = cohort["comparisons"][0].subject
    client = client_for(cohort["coordinator"])
    url = reverse("studies:cohort_subjects", args=[cohort["study"].pk])
    others = {
        f"{name}-{comparison.subject.pk}": getattr(comparison.subject, name)
        for comparison in cohort["comparisons"][1:]
        for name in ("arm", "sex", "age_band")
    }
    ok = client.post(
        url,
        {
            **others,
            f"arm-{subject.pk}": "control",
            f"sex-{subject.pk}": "male",
            f"age_band-{subject.pk}": "40-49",
        },
    )
    assert ok.status_code == 302
    subject.refresh_from_db()
    assert (subject.arm, subject.sex, subject.age_band) == ("control", "male", "40-49")
    refused = client.post(url, {**others, f"arm-{subject.pk}": "placebo"})
    assert refused.status_code == 200 and "not one of the study" in refused.content.decode()
    subject.refresh_from_db()
    assert subject.arm == "control"
    assert client_for(cohort["rater"]).get(url).status_code == 403


# REST API -------------------------------------------------------------------------------------------------


def api_client(user):
    from rest_framework.test import APIClient

    client = APIClient()
    client.force_authenticate(user)
    return client


def test_api_comparison_carries_its_pairs_registration_and_measures(cohort):
    comparison = cohort["comparisons"][1]
    response = api_client(cohort["clinician"]).get(f"/api/comparisons/{comparison.pk}/")
    assert response.status_code == 200
    [pair] = response.json()["pairs"]
    assert pair["view"] == "frontal" and pair["included"] and "residual_ipd" in pair["registration"]
    lip = pair["measures"]["upper_vermilion_height"]
    assert lip["unit"] == "IPD" and lip["change"] == pytest.approx(0.04, abs=1e-6)
    listed = api_client(cohort["clinician"]).get("/api/comparisons/", {"study": cohort["study"].pk}).json()
    assert all(len(entry["pairs"]) == 1 for entry in listed["results"])


def test_api_cohort_statistics_with_the_page_permissions(cohort):
    url = f"/api/studies/{cohort['study'].pk}/cohort-statistics/"
    response = api_client(cohort["coordinator"]).get(url, {"group": "lips", "adjust": "fdr_bh"})
    assert response.status_code == 200
    upper = next(entry for entry in response.json() if entry["measure"] == "upper_vermilion_height")
    assert upper["summary"]["n"] == 6 and upper["arms"][0]["first"] == "control"
    assert api_client(cohort["coordinator"]).get(url, {"group": "nonsense"}).status_code == 400
    assert api_client(cohort["clinician"]).get(url).status_code == 403
    assert api_client(cohort["outsider"]).get(url).status_code == 404
    assert AuditEvent.objects.filter(action=AuditAction.VIEW, via="api", study_id=cohort["study"].pk).exists()


def test_coordinator_picks_the_photo_of_a_visit_with_several(cohort, make_photo):
    comparison = cohort["comparisons"][0]
    pair = ComparisonPair.objects.get(comparison=comparison)
    first_pre = pair.pre_photo
    second_pre = make_photo(cohort["study"], subject_code="S00", visit_label="baseline", role=VisitRole.PRE)
    client = client_for(cohort["coordinator"])
    page = client.get(reverse("studies:comparison_detail", args=[comparison.pk])).content.decode()
    assert "Compare these photos" in page and "Comparable: registration residual" in page
    response = client.post(
        reverse("studies:pair_photos", args=[pair.pk]),
        {"pre_photo": second_pre.pk, "post_photo": pair.post_photo_id},
    )
    assert response.status_code == 302
    pair.refresh_from_db()
    assert pair.pre_photo == second_pre and pair.assessed_at is None  # the new photo has no landmarks yet
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, details__pair=pair.pk).latest("pk")
    assert event.details["before"][0] == first_pre.pk and event.details["after"][0] == second_pre.pk
    other = cohort["comparisons"][1].pairs.get().post_photo  # a photo of another subject
    refused = client.post(
        reverse("studies:pair_photos", args=[pair.pk]), {"pre_photo": other.pk, "post_photo": other.pk}
    )
    assert refused.status_code == 302
    pair.refresh_from_db()
    assert pair.pre_photo == second_pre
    assert (
        client_for(cohort["rater"])
        .post(
            reverse("studies:pair_photos", args=[pair.pk]),
            {"pre_photo": first_pre.pk, "post_photo": pair.post_photo_id},
        )
        .status_code
        == 403
    )


def kind_result(photo, kind: str, data: dict):
    """A succeeded job of ``kind`` holding ``data`` (TEST DATA)."""
    job = AnalysisJob.objects.create(kind=kind, photo=photo, queue=KIND_SPECS[kind].queue, model_name="test")
    return analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data=data,
        model={"name": "test", "version": "test", "weights_sha256": "cd" * 32},
        parameters={},
        code_version="test",
    )


def wrinkles_in(zone: str, wrinkle_px: int) -> dict:
    return {
        "zones": [
            {
                "abbreviation": zone,
                "name": zone,
                "region_px": 1000,
                "wrinkle_area_px": wrinkle_px,
                "area_fraction": wrinkle_px / 1000,
                "total_length_px": wrinkle_px,
            }
        ]
    }


def test_cohort_rows_read_the_latest_results_in_a_bounded_number_of_queries(
    cohort, django_assert_max_num_queries
):
    study = cohort["study"]
    zone = study.zones_of_interest[0]
    for comparison in cohort["comparisons"]:
        pre = comparison.pre_visit.photos.get()
        post = comparison.post_visit.photos.get()
        kind_result(pre, "normality", {"score": 0.5})
        kind_result(post, "normality", {"score": 0.1})  # superseded by the next one
        kind_result(post, "normality", {"score": 0.75})
        kind_result(pre, "wrinkles", wrinkles_in(zone, 100))
        kind_result(post, "wrinkles", wrinkles_in(zone, 50))
    first = cohort["comparisons"][0]
    no_results = first.post_visit.photos.get()
    AnalysisJob.objects.filter(photo=no_results, kind="wrinkles").delete()

    with django_assert_max_num_queries(4):
        rows = analysis_results.cohort_rows(study)

    assert len(rows) == 6
    assert all(row.normality["pre"] == 0.5 and row.normality["post"] == 0.75 for row in rows)
    by_comparison = {row.comparison.pk: row for row in rows}
    assert (by_comparison[first.pk].wrinkles_pre, by_comparison[first.pk].wrinkles_post) == (10.0, None)
    other = by_comparison[cohort["comparisons"][1].pk]
    assert (other.wrinkles_pre, other.wrinkles_post, other.wrinkles_change) == (10.0, 5.0, -5.0)


def test_a_groups_measures_read_in_sql_are_the_groups_rows_of_the_whole_table(cohort):
    zone = cohort["study"].zones_of_interest[0]
    for index, comparison in enumerate(cohort["comparisons"]):
        kind_result(comparison.pre_visit.photos.get(), "wrinkles", wrinkles_in(zone, 100))
        kind_result(comparison.post_visit.photos.get(), "wrinkles", wrinkles_in(zone, 100 + 10 * index))
    every_measure = cohort_measure_rows(cohort["study"])
    assert {"lips", "wrinkles"} <= {row.group for row in every_measure}
    for group in MEASURE_GROUPS:
        narrowed = cohort_measure_rows(cohort["study"], group=group)
        assert narrowed == [row for row in every_measure if row.group == group], group


def test_cached_statistics_follow_a_new_result_and_a_new_arm(cohort, settings):
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    study = cohort["study"]

    def upper_lip():
        rows = cohort_measure_rows(study, group="lips", view="frontal")
        statistics = {entry.measure: entry for entry in cohort_statistics(rows, group="lips")}
        return statistics["upper_vermilion_height"]

    before = upper_lip()
    assert upper_lip().changes_by_arm == before.changes_by_arm  # from the cache
    first = cohort["comparisons"][0]
    landmarks_result(first.post_visit.photos.get(), fuller_lip(BASE, 0.05))  # a newer result: 0.05 IPD
    after = upper_lip()
    assert after.changes_by_arm["filler"] == pytest.approx([0.05, 0.04, 0.06], abs=1e-6)
    subject_attributes_set(
        subject=first.subject, arm="control", sex="female", age_band="30-39", actor=cohort["coordinator"]
    )
    assert upper_lip().changes_by_arm["filler"] == pytest.approx([0.04, 0.06], abs=1e-6)


def test_per_type_wrinkle_figures_reach_the_comparison_and_cohort_pages(cohort, measured_noise_floors):
    floors = {"wrinkle_type_area:smoker_lines": 1.2, "wrinkle_type_area:crows_feet": 1.0}
    measured_noise_floors(floors, wrinkle_weights_sha256="cd" * 32)  # the model of kind_result
    zone = cohort["study"].zones_of_interest[0]
    for index, comparison in enumerate(cohort["comparisons"]):
        for photo, fraction in (
            (comparison.pre_visit.photos.get(), 0.10),
            (comparison.post_visit.photos.get(), 0.05),
        ):
            data = wrinkles_in(zone, 100) | {
                "type_regions": [
                    {
                        "class": "crows_feet",
                        "region_px": 1000,
                        "area_fraction": fraction,
                        "total_length_px": 50 + index,
                    },
                    {"class": "forehead", "region_px": 0, "area_fraction": 0.0, "total_length_px": 0},
                    # A change of 0.5 points: within the smoker's lines' noise floor (1.2 points).
                    {
                        "class": "smoker_lines",
                        "region_px": 1000,
                        "area_fraction": fraction / 10 + 0.02,
                        "total_length_px": 20,
                    },
                ]
            }
            kind_result(photo, "wrinkles", data)
    comparison = cohort["comparisons"][0]
    pair = ComparisonPair.objects.get(comparison=comparison)
    assert pair.measures["wrinkle_type_area:crows_feet"] == pytest.approx([10.0, 5.0])
    assert "wrinkle_type_area:forehead" not in pair.measures  # no region on the analysed skin
    statistics = cohort_statistics(
        cohort_measure_rows(cohort["study"], group="wrinkle_types"), group="wrinkle_types"
    )
    crows_feet = next(entry for entry in statistics if entry.measure == "wrinkle_type_area:crows_feet")
    assert crows_feet.summary.n == 6 and crows_feet.summary.mean_change == pytest.approx(-5.0)
    client = client_for(cohort["coordinator"])
    cohort_page = client.get(
        reverse("studies:study_cohort", args=[cohort["study"].pk]), {"group": "wrinkle_types"}
    ).content.decode()
    assert "Wrinkles per line type" in cohort_page
    assert (
        'data-measure="wrinkle_type_area:crows_feet"' in cohort_page and "feet: wrinkle area" in cohort_page
    )
    page = client.get(reverse("studies:comparison_detail", args=[comparison.pk])).content.decode()
    assert 'data-result="wrinkle-types"' in page and '<tr data-type="crows_feet">' in page
    assert '<tr data-type="forehead">' not in page
    rows = {row.split('">', 1)[0]: row.split("</tr>", 1)[0] for row in page.split('<tr data-type="')[1:]}
    assert "no measurable change" in rows["smoker_lines"] and "-0.50" in rows["smoker_lines"]
    assert "no measurable change" not in rows["crows_feet"] and "-5.00" in rows["crows_feet"]
    assert "Pre length (IPD)" in page
    # With the study's IPD in mm the lengths are in mm, as on the subject report and the cohort page.
    pre_length, post_length = pair.measures["wrinkle_type_length:crows_feet"]
    study_update(study=cohort["study"], actor=cohort["coordinator"], ipd_mm=60.0)
    page = client.get(reverse("studies:comparison_detail", args=[comparison.pk])).content.decode()
    row = page.split('<tr data-type="crows_feet">', 1)[1].split("</tr>", 1)[0]
    assert "Pre length (mm)" in page and "Pre length (IPD)" not in page
    assert f"{pre_length * 60:.3f}" in row and f"{post_length * 60:.3f}" in row


def test_cohort_summary_cache_follows_measures_acceptance_and_exclusion(
    cohort, make_photo, data_dir, settings
):
    """The page's cached summary is keyed by the pairs' content: a changed measure, an accepted or
    excluded pair and a soft-deleted subject each give new statistics without any explicit invalidation."""
    settings.CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    study = cohort["study"]

    def upper_lip():
        summary = cohort_summary(study, group="lips", view="frontal")
        return next(entry for entry in summary.statistics if entry.measure == "upper_vermilion_height")

    before = upper_lip()
    with CaptureQueriesContext(connection) as cached:
        assert upper_lip().changes_by_arm == before.changes_by_arm
    assert len(cached) == 1  # the content digest only: no rows read, no statistics computed
    first = cohort["comparisons"][0]
    landmarks_result(first.post_visit.photos.get(), fuller_lip(BASE, 0.05))  # its measures change
    assert upper_lip().changes_by_arm["filler"] == pytest.approx([0.05, 0.04, 0.06], abs=1e-6)

    pair = two_people_pair(cohort, make_photo, data_dir)
    assert pair.warnings and upper_lip().summary.n == 6  # left out: two different people
    pair_accept(pair=pair, accepted=True, note="checked", actor=cohort["coordinator"])
    assert upper_lip().summary.n == 7
    pair_accept(pair=pair, accepted=False, note="", actor=cohort["coordinator"])
    assert upper_lip().summary.n == 6
    subject = cohort["comparisons"][5].subject
    subject.deleted_at = timezone.now()
    subject.save()  # a write outside the cohort's services is seen too
    assert upper_lip().summary.n == 5
