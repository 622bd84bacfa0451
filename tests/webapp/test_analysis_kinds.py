"""Study analysis settings, and zones/wrinkles/normality results on the photo, comparison and cohort pages.

Results here are fabricated TEST DATA (made-up numbers written straight into Result rows), to test the
pages; no figure in this file is a measurement.
"""

import csv
import io

import pytest
from django.test import Client
from django.urls import reverse

from ml.model_names import WRINKLES_UNET_WDS, ZONES_LANDMARK
from ml.registry import registry
from ml.zones.atlas import ZONES
from webapp.analysis import services as analysis_services
from webapp.analysis.kinds import KIND_SPECS, untrained_kinds
from webapp.analysis.models import AnalysisJob
from webapp.audit.models import AuditAction, AuditEvent
from webapp.runs.services import run_claim, run_fail
from webapp.studies.models import DEFAULT_ZONES_OF_INTEREST, AnalysisKind, VisitRole
from webapp.studies.services import comparison_create

pytestmark = pytest.mark.django_db

TINY_PNG = b"\x89PNG\r\n\x1a\n test artifact"


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def fabricate_result(photo, kind: str, data: dict, artifacts: tuple[str, ...] = (), weights_sha256: str = ""):
    """A succeeded job with a made-up result (test data only)."""
    job = AnalysisJob.objects.create(
        kind=kind, photo=photo, queue=KIND_SPECS[kind].queue, model_name=f"test-{kind}-model"
    )
    return analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data=data,
        model={"name": f"test-{kind}-model", "version": "test", "weights_sha256": weights_sha256},
        parameters={},
        code_version="test",
        artifacts=[analysis_services.Artifact(name, TINY_PNG, "png", "image/png") for name in artifacts],
    )


def zones_data() -> dict:
    return {
        "image": {"width": 256, "height": 256},
        "notes": ["TEST DATA"],
        "zones": [
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "area_px": 100 + zone.number,
                "face_fraction": 0.01 * zone.number,
                "outlines": [[10, 10, 20, 10, 20, 20, 10, 20]],
            }
            for zone in ZONES
        ],
    }


def wrinkles_data(forehead_fraction: float) -> dict:
    zones = []
    for zone in ZONES:
        fraction = forehead_fraction if zone.abbreviation == "FFA" else 0.0
        zones.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "zone_area_px": 1000,
                "wrinkle_area_px": int(fraction * 1000),
                "area_fraction": fraction,
                "total_length_px": 10.0,
                "mean_width_px": 2.0,
                "count": 1,
            }
        )
    return {
        "zones": zones,
        "notes": ["TEST DATA semi-synthetic note"],
        "trained_on_semi_synthetic_data": True,
        "wrinkle_area_px": int(forehead_fraction * 1000),
        "overall": {
            "area_fraction": forehead_fraction / 33,
            "total_length_px": 10.0,
            "mean_width_px": 2.0,
            "count": 1,
        },
        "regions": {},
        "zones_source": "TEST DATA",
    }


def normality_data(score: float, region: str = "mouth_nose") -> dict:
    return {
        "score": score,
        "direction": "higher S = more normal",
        "rating": None,
        "features": {"d_xperc": 0.1},
        "region": region,
        "metric": {"heatmap": "pse-ycbcr-eroded", "perceptual": "test"},
        "timings": {"total_s": 1.0},
        "zone_energy": [],
        "notes": [],
    }


NORMALITY_ARTIFACTS = ("normality-aligned", "normality-normalized", "normality-heatmap")


@pytest.fixture
def pre_post(study_with_members, make_photo):
    study = study_with_members["study"]
    pre = make_photo(study, subject_code="S-7", visit_label="baseline", role=VisitRole.PRE)
    post = make_photo(study, subject_code="S-7", visit_label="week 12", role=VisitRole.POST)
    comparison = comparison_create(
        pre_visit=pre.visit, post_visit=post.visit, actor=study_with_members["coordinator"]
    )
    return pre, post, comparison


# Kinds and settings ----------------------------------------------------------------------------------


def comparison_page(user, comparison) -> str:
    """The comparison page as ``user`` sees it."""
    return client_for(user).get(reverse("studies:comparison_detail", args=[comparison.pk])).content.decode()


def test_every_kind_has_a_spec_and_the_new_kinds_use_the_right_queues():
    assert set(KIND_SPECS) == set(AnalysisKind.values)
    assert KIND_SPECS[AnalysisKind.ZONES].queue == "cpu"
    assert KIND_SPECS[AnalysisKind.WRINKLES].queue == "gpu"
    assert KIND_SPECS[AnalysisKind.NORMALITY].queue == "gpu"


def test_untrained_kinds_follow_the_real_registry():
    blocked = untrained_kinds()
    assert AnalysisKind.ZONES not in blocked and AnalysisKind.LANDMARKS not in blocked
    assert (AnalysisKind.WRINKLES in blocked) == (not registry.describe(WRINKLES_UNET_WDS)["trained"])
    for message in blocked.values():
        assert "is not trained" in message and "python -m ml" in message


def test_coordinator_saves_settings_and_the_change_is_audited(study_with_members):
    study = study_with_members["study"]
    client = client_for(study_with_members["coordinator"])
    url = reverse("studies:study_settings", args=[study.pk])
    page = client.get(url)
    assert page.status_code == 200
    assert page.content.count(b'name="zones_of_interest"') == 33
    response = client.post(
        url,
        {
            "analyses": ["landmarks", "zones"],
            "zones_of_interest": ["CGA", "FFA"],
            "normality_region": "face_no_eyes",
            "force_zone_baseline": "on",
        },
    )
    assert response.status_code == 302
    study.refresh_from_db()
    assert study.analyses == ["landmarks", "zones"]
    assert study.zones_of_interest == ["CGA", "FFA"]
    assert study.normality_region == "face_no_eyes" and study.force_zone_baseline
    assert KIND_SPECS[AnalysisKind.ZONES].model_for(study) == ZONES_LANDMARK
    event = AuditEvent.objects.filter(action=AuditAction.UPDATE, study_id=study.pk).latest("pk")
    assert set(event.details["changes"]) >= {"analyses", "zones_of_interest", "normality_region"}


@pytest.fixture
def untrained_kind(mark_untrained) -> str:
    """The wrinkles analysis, with its model made to look untrained whatever weights are installed."""
    mark_untrained(WRINKLES_UNET_WDS)
    assert AnalysisKind.WRINKLES in untrained_kinds()
    return AnalysisKind.WRINKLES.value


def test_settings_refuse_an_analysis_whose_model_is_untrained(study_with_members, untrained_kind):
    kind = untrained_kind
    study = study_with_members["study"]
    client = client_for(study_with_members["coordinator"])
    url = reverse("studies:study_settings", args=[study.pk])
    page = client.get(url).content.decode()
    assert "Analyses without a trained model" in page and "is not trained" in page and "python -m ml" in page
    assert f'value="{kind}"' not in page
    response = client.post(url, {"analyses": [kind], "normality_region": "mouth_nose"})
    assert response.status_code == 200
    study.refresh_from_db()
    assert kind not in study.analyses


def test_a_study_that_already_runs_an_untrained_analysis_can_remove_it(study_with_members, untrained_kind):
    kind = untrained_kind
    study = study_with_members["study"]
    study.analyses = ["landmarks", kind]
    study.save()
    client = client_for(study_with_members["coordinator"])
    url = reverse("studies:study_settings", args=[study.pk])
    assert "model not trained: its jobs fail" in client.get(url).content.decode()
    client.post(url, {"analyses": ["landmarks"], "normality_region": "mouth_nose"})
    study.refresh_from_db()
    assert study.analyses == ["landmarks"]


@pytest.mark.parametrize("role, status", [("clinician", 403), ("monitor", 403), ("outsider", 404)])
def test_only_coordinators_change_settings(study_with_members, role, status):
    study = study_with_members["study"]
    client = client_for(study_with_members[role])
    url = reverse("studies:study_settings", args=[study.pk])
    assert client.get(url).status_code == status
    assert client.post(url, {"analyses": [], "normality_region": "face_no_eyes"}).status_code == status
    study.refresh_from_db()
    assert study.normality_region == "mouth_nose"
    assert study.zones_of_interest == list(DEFAULT_ZONES_OF_INTEREST)


# Photo page ------------------------------------------------------------------------------------------


def test_photo_page_shows_zones_wrinkles_and_normality(study_with_members, make_photo):
    study = study_with_members["study"]
    photo = make_photo(study)
    zones = fabricate_result(photo, "zones", zones_data(), ("zone-masks",))
    wrinkles = fabricate_result(photo, "wrinkles", wrinkles_data(0.25), ("wrinkle-mask", "wrinkle-overlay"))
    normality = fabricate_result(photo, "normality", normality_data(4.5), NORMALITY_ARTIFACTS)
    response = client_for(study_with_members["monitor"]).get(reverse("studies:photo_detail", args=[photo.pk]))
    assert response.status_code == 200
    page = response.content.decode()
    assert page.count("data-zone-toggle=") == 33
    # Zones of interest come first in the legend and the statistics table.
    first_legend = page.index('data-zone-toggle="FFA"')
    assert first_legend < page.index('data-zone-toggle="LTA"')
    assert page.index('<tr data-zone="FFA"') < page.index('<tr data-zone="LTA"')
    assert "25.00" in page  # FFA wrinkle area, % of zone
    assert "S = 4.500" in page and "higher S = more normal" in page
    assert "TEST DATA semi-synthetic note" in page
    for result in (wrinkles, normality):
        for artifact in result.artifacts.all():
            if artifact.name != "wrinkle-mask":
                assert reverse("analysis:artifact", args=[artifact.pk]) in page
    assert 'id="zones-data"' in page and 'id="heatmap-opacity"' in page
    # One event for the page, listing every result it showed.
    (viewed,) = AuditEvent.objects.filter(action=AuditAction.VIEW).values_list("details", flat=True)
    assert {zones.pk, wrinkles.pk, normality.pk} <= set(viewed["results"])


def test_photo_page_with_a_rating_says_it_comes_from_attractiveness_ratings(study_with_members, make_photo):
    photo = make_photo(study_with_members["study"])
    data = normality_data(3.0)
    data["rating"] = {"value": 5.2, "scale": "1-7 (7 = most normal)", "trained_on": "MEBeauty"}
    fabricate_result(photo, "normality", data, NORMALITY_ARTIFACTS)
    page = client_for(study_with_members["rater"]).get(reverse("studies:photo_detail", args=[photo.pk]))
    assert "5.20" in page.content.decode() and "attractiveness" in page.content.decode()


def test_photo_page_says_when_the_ratings_features_came_from_other_weights_than_s(
    study_with_members, make_photo
):
    photo = make_photo(study_with_members["study"])
    data = normality_data(3.0)
    data["model"] = {"name": "normality-autoencoder-128", "version": "study-7", "weights_sha256": "a" * 64}
    features = {"name": "normality-autoencoder-128", "version": "3", "weights_sha256": "b" * 64}
    data["rating"] = {"value": 5.2, "trained_on": "MEBeauty", "features_normalizer": features}
    fabricate_result(photo, "normality", data, NORMALITY_ARTIFACTS)
    page = client_for(study_with_members["rater"]).get(reverse("studies:photo_detail", args=[photo.pk]))
    text = page.content.decode()
    assert "rating-normalizer" in text and "version 3" in text and "version study-7" in text
    # Without a rating although a regressor was at hand, the page points to the note that says why.
    data = {**normality_data(3.0), "regressor": {"name": "normality-rating-regressor"}}
    data["notes"] = ["The rating regressor's features were extracted with normalizer weights bbbbbbbbbbbb"]
    other = make_photo(study_with_members["study"], subject_code="S-9")
    fabricate_result(other, "normality", data, NORMALITY_ARTIFACTS)
    text = (
        client_for(study_with_members["rater"]).get(reverse("studies:photo_detail", args=[other.pk])).content
    )
    assert b"the note below says why" in text and b"not fitted" not in text and b"bbbbbbbbbbbb" in text


def with_reference(data: dict) -> dict:
    """Result data as the inpainting normalizer writes it: plain-language labels and the reference range."""
    return {
        **data,
        "labels": {
            "heatmap": "difference in brightness and colour (TEST label)",
            "perceptual": "structural similarity (TEST label)",
            "region": "mouth and nose",
        },
        "reference": {
            "data": "normal adult faces (TEST)",
            "count": 51,
            "p5": -2.5,
            "median": -1.5,
            "p95": -0.75,
            "noise_floor": 0.4,
        },
    }


def test_photo_page_names_metrics_in_plain_words_and_gives_the_reference_range(
    study_with_members, make_photo
):
    photo = make_photo(study_with_members["study"])
    fabricate_result(photo, "normality", with_reference(normality_data(-1.2)), NORMALITY_ARTIFACTS)
    page = client_for(study_with_members["rater"]).get(reverse("studies:photo_detail", args=[photo.pk]))
    text = page.content.decode()
    assert (
        "difference in brightness and colour (TEST label)" in text and "<code>pse-ycbcr-eroded</code>" in text
    )
    assert "“mouth and nose”" in text
    assert "51 normal adult faces (TEST)" in text and "between -2.50 and -0.75" in text and "0.40" in text


def test_comparison_calls_a_change_within_the_noise_floor_no_measurable_change(study_with_members, pre_post):
    pre, post, comparison = pre_post
    fabricate_result(pre, "normality", with_reference(normality_data(-1.5)), NORMALITY_ARTIFACTS)
    fabricate_result(post, "normality", with_reference(normality_data(-1.3)), NORMALITY_ARTIFACTS)
    page = comparison_page(study_with_members["clinician"], comparison)
    assert "<strong>No measurable change</strong>" in page and "within the noise floor" in page
    assert "difference in brightness and colour (TEST label)" in page


# Comparison and cohort ----------------------------------------------------------------------------------


def test_comparison_shows_wrinkle_change_per_zone_of_interest_and_normality_change(
    study_with_members, pre_post
):
    pre, post, comparison = pre_post
    fabricate_result(pre, "wrinkles", wrinkles_data(0.30))
    fabricate_result(post, "wrinkles", wrinkles_data(0.10))
    fabricate_result(pre, "normality", normality_data(4.0), NORMALITY_ARTIFACTS)
    fabricate_result(post, "normality", normality_data(5.0), NORMALITY_ARTIFACTS)
    page = comparison_page(study_with_members["clinician"], comparison)
    assert '<tr data-zone="FFA">' in page and '<tr data-zone="LTA">' not in page  # LTA: not of interest
    assert "-20.00" in page  # FFA: 30 % → 10 % of the zone
    assert (
        "1.000" in page
        and "25.0 %" not in page
        and "<strong>Yes</strong>" in page
        and "higher S = more normal" in page
    )
    assert page.count('class="heatmap"') == 2
    assert "framed tightly" not in page  # results without a framing record (or loose ones) get no warning


def test_comparison_warns_when_a_photo_of_the_pair_is_framed_tightly(study_with_members, pre_post):
    pre, post, comparison = pre_post
    fabricate_result(pre, "normality", normality_data(4.0), NORMALITY_ARTIFACTS)
    tight = {**normality_data(5.0), "observed": {"face_fraction": 0.7, "tight_framing": True}}
    fabricate_result(post, "normality", tight, NORMALITY_ARTIFACTS)
    page = comparison_page(study_with_members["clinician"], comparison)
    assert "The after photo is framed tightly" in page and "before photo is framed" not in page
    assert "black fill" not in page


def test_comparison_warns_when_a_photo_of_the_pair_was_edited_with_black_fill(study_with_members, pre_post):
    pre, post, comparison = pre_post
    edited = {**normality_data(4.0), "observed": {"fill_fraction": 0.07, "edited_fill": True}}
    fabricate_result(pre, "normality", edited, NORMALITY_ARTIFACTS)
    fabricate_result(post, "normality", normality_data(5.0), NORMALITY_ARTIFACTS)
    page = comparison_page(study_with_members["clinician"], comparison)
    assert "The before photo shows black fill" in page and "after photo shows" not in page
    assert "framed tightly" not in page


def test_comparison_says_scores_of_two_normalizer_versions_are_not_comparable(study_with_members, pre_post):
    """S of one face moves with the normalizer's weights: a change within the floor is not "no change"."""
    pre, post, comparison = pre_post
    for photo, score, version in ((pre, 4.0, "2"), (post, 4.1, "3")):
        data = {
            **normality_data(score),
            "reference": {"noise_floor": 0.5},
            "model": {"version": version, "weights_sha256": version * 64},
        }
        fabricate_result(photo, "normality", data, NORMALITY_ARTIFACTS)
    page = comparison_page(study_with_members["clinician"], comparison)
    assert "different versions of the normalizer (2 and 3)" in page
    assert "No measurable change" not in page  # 0.1 is within 0.5, but the scales differ


def test_comparison_marks_a_wrinkle_change_inside_the_noise_floor(
    study_with_members, pre_post, measured_noise_floors
):
    """The floor is the measures' one (cohort, exports, API), for the wrinkle model it was measured with."""
    measured_noise_floors({"wrinkle_area:FFA": 25.0}, wrinkle_weights_sha256="a" * 64)
    pre, post, comparison = pre_post
    url = reverse("studies:comparison_detail", args=[comparison.pk])
    client = client_for(study_with_members["clinician"])
    fabricate_result(pre, "wrinkles", wrinkles_data(0.30), weights_sha256="a" * 64)
    fabricate_result(post, "wrinkles", wrinkles_data(0.10), weights_sha256="a" * 64)
    page = client.get(url).content.decode()
    assert "no measurable change" in page and "±25.00 points" in page  # −20 points, floor 25
    fabricate_result(post, "wrinkles", wrinkles_data(0.01), weights_sha256="a" * 64)
    page = client.get(url).content.decode()
    assert "no measurable change" not in page and "-29.00" in page  # beyond the floor
    fabricate_result(post, "wrinkles", wrinkles_data(0.10), weights_sha256="b" * 64)
    page = client.get(url).content.decode()
    assert "no measurable change" not in page and "No noise floor is measured" in page  # other model


def test_comparison_says_why_results_are_missing(study_with_members, pre_post):
    pre, post, comparison = pre_post
    job = AnalysisJob.objects.create(kind="normality", photo=post, queue="gpu", model_name="x")
    claim = run_claim(AnalysisJob, run_id=job.pk, worker="test")
    run_fail(AnalysisJob, run_id=job.pk, attempt=claim.attempt, error="The model 'x' is not trained (TEST)")
    page = comparison_page(study_with_members["coordinator"], comparison)
    assert "No normality analysis has been run on the pre photo." in page
    assert "is not trained (TEST)" in page


def test_cohort_page_and_csv_export_are_audited(study_with_members, pre_post):
    pre, post, comparison = pre_post
    study = study_with_members["study"]
    fabricate_result(pre, "normality", normality_data(4.0))
    fabricate_result(post, "normality", normality_data(3.0))
    fabricate_result(pre, "wrinkles", wrinkles_data(0.30))
    fabricate_result(post, "wrinkles", wrinkles_data(0.10))
    client = client_for(study_with_members["coordinator"])
    page = client.get(reverse("studies:study_cohort", args=[study.pk]))
    assert page.status_code == 200 and "S-7" in page.content.decode()
    response = client.get(reverse("studies:study_cohort_csv", args=[study.pk]))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(response.content.decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["subject"] == "S-7" and row["view"] == "frontal"
    assert float(row["normality_S_change"]) == pytest.approx(-1.0)
    assert row["normality_improved_higher_S_is_more_normal"] == "no"
    # FFA is one of the default zones of interest, each of 1000 px: 300 px → 100 px of them all.
    interest_px = 1000 * len(DEFAULT_ZONES_OF_INTEREST)
    assert float(row["wrinkle_percent_zones_of_interest_pre"]) == pytest.approx(
        100 * 300 / interest_px, rel=1e-4
    )
    assert float(row["wrinkle_percent_points_change"]) == pytest.approx(-100 * 200 / interest_px, rel=1e-4)
    export = AuditEvent.objects.get(action=AuditAction.EXPORT, study_id=study.pk)
    assert export.details["rows"] == 1


@pytest.mark.parametrize(
    "role, status", [("clinician", 403), ("rater", 403), ("monitor", 403), ("outsider", 404)]
)
def test_cohort_export_needs_the_export_capability(study_with_members, role, status):
    study = study_with_members["study"]
    client = client_for(study_with_members[role])
    for name in ("studies:study_cohort", "studies:study_cohort_csv"):
        assert client.get(reverse(name, args=[study.pk])).status_code == status
    assert not AuditEvent.objects.filter(action=AuditAction.EXPORT).exists()


def test_new_study_form_offers_only_analyses_that_can_run(settings, study_with_members):
    settings.FACET_STUDY_CREATORS = "everyone"
    page = client_for(study_with_members["coordinator"]).get(reverse("studies:study_create")).content.decode()
    assert 'value="zones"' in page and 'value="landmarks"' in page
    for kind in untrained_kinds():
        assert f'value="{kind}"' not in page
