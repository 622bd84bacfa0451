"""The cohort's average normality heatmaps (issue 15, scope item 4): per arm, the mean pre, post and
post − pre heatmaps on the aligned face, on their page and in the cohort report PDF.

The heatmaps are computed with the real scoring code (``ml.normality.scoring``: PSE in YCbCr, eroded,
inside the mouth-and-nose region of the landmarks) and stored as the normality worker stores them
(``pse_map_bytes`` through ``job_succeed``: real result artifacts on the storage). Only the "normalized"
faces are stand-ins (TEST DATA: the aligned face blurred, a fuller blur after treatment in one arm), so
the maps differ where the test expects them to; no figure here is a measurement.
"""

import html
import io

import cv2
import numpy as np
import pytest
from django.test import Client
from django.urls import reverse
from pypdf import PdfReader

from ml.core.imageio import encode_png
from ml.normality.scoring import pse_heatmap, region_mask
from tests.webapp.exports_scene import make_subject, synthetic_landmarks
from webapp.analysis import services as analysis_services
from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob
from webapp.analysis.normality_maps import (
    ALIGNED_ARTIFACT,
    NPY_TYPE,
    PSE_MAP_ARTIFACT,
    cohort_normality_maps,
    pse_map_bytes,
)
from webapp.audit.models import AuditAction, AuditEvent
from webapp.exports.services import photo_pixels
from webapp.runs.services import run_claim
from webapp.studies.services import study_update

pytestmark = pytest.mark.django_db
CROP = (100, 80)  # the aligned face's size in these tests (the real crop is the model's size)


def aligned_face(photo) -> np.ndarray:
    return cv2.resize(photo_pixels(photo), (CROP[1], CROP[0]), interpolation=cv2.INTER_AREA)


def store_normality(photo, blur: int, with_values: bool = True, region_shift: float = 0.0) -> np.ndarray:
    """A succeeded normality job whose artifacts hold a real PSE heatmap of the aligned photo against a
    blurred stand-in for its normalized face, scored in the region of landmarks moved by ``region_shift``
    px; returns the stored heatmap values."""
    aligned = aligned_face(photo)
    normalized = cv2.GaussianBlur(aligned, (blur, blur), 0)
    mask = region_mask(synthetic_landmarks(shift=region_shift) * 0.25, CROP, "mouth_nose")
    values = pse_map_bytes(pse_heatmap(aligned, normalized), mask)
    artifacts = [analysis_services.Artifact(ALIGNED_ARTIFACT, encode_png(aligned), "png", "image/png")]
    if with_values:
        artifacts.append(analysis_services.Artifact(PSE_MAP_ARTIFACT, values, "npy", NPY_TYPE))
    job = AnalysisJob.objects.create(
        kind="normality", photo=photo, queue=KIND_SPECS["normality"].queue, model_name="test-normality"
    )
    analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={"score": -1.0, "region": "mouth_nose", "metric": {"heatmap": "pse"}, "notes": ["TEST DATA"]},
        model={"name": "test-normality", "version": "test"},
        parameters={},
        code_version="test",
        artifacts=artifacts,
    )
    return np.load(io.BytesIO(values), allow_pickle=False)


@pytest.fixture
def maps_scene(study_with_members):
    """Two arms of two subjects with stored heatmap values, and one subject analysed before they were
    stored (its results have the aligned face only)."""
    study = study_with_members["study"]
    coordinator = study_with_members["coordinator"]
    study_update(study=study, actor=coordinator, arms=["filler", "control"])
    stored = {}
    for index, arm in enumerate(("filler", "filler", "control", "control")):
        subject = make_subject(study, f"M-{index}", coordinator, seed=40 + 2 * index)
        subject["subject"].arm = arm
        subject["subject"].save()
        post_blur = 9 if arm == "filler" else 3
        stored[subject["subject"].code] = (
            arm,
            store_normality(subject["pre"], 3),
            store_normality(subject["post"], post_blur),
        )
    old = make_subject(study, "M-OLD", coordinator, seed=60)
    old["subject"].arm = "control"
    old["subject"].save()
    for photo in (old["pre"], old["post"]):
        store_normality(photo, 3, with_values=False)
    return {**study_with_members, "stored": stored}


def test_average_maps_are_the_means_of_the_stored_heatmaps(maps_scene):
    maps = cohort_normality_maps(maps_scene["study"])
    assert maps.subjects == 5 and maps.without_maps == 1 and maps.other_frame == 0 and maps.metric == "pse"
    by_arm = {arm.arm: arm for arm in maps.arms}
    assert set(by_arm) == {"filler", "control"}
    for name, arm in by_arm.items():
        members = [(pre, post) for arm_of, pre, post in maps_scene["stored"].values() if arm_of == name]
        pre = np.stack([pair[0] for pair in members])
        post = np.stack([pair[1] for pair in members])
        inside = np.isfinite(pre).all(axis=0) & np.isfinite(post).all(axis=0)
        assert arm.n == 2 and arm.pre.shape == CROP
        np.testing.assert_allclose(arm.pre[inside], pre.mean(axis=0)[inside], rtol=1e-5)
        np.testing.assert_allclose(arm.post[inside], post.mean(axis=0)[inside], rtol=1e-5)
        np.testing.assert_allclose(arm.difference[inside], (post - pre).mean(axis=0)[inside], rtol=1e-4)
        assert np.isnan(arm.pre[0, 0])  # outside the scoring region
    # A stronger blur after treatment: a larger error after in the filler arm, about none in control.
    assert np.nanmean(by_arm["filler"].difference) > 5 * abs(np.nanmean(by_arm["control"].difference))


def test_pre_post_and_difference_maps_add_up_when_the_scoring_regions_differ(study_with_members):
    """Each photo is scored in its own region (its own landmarks): where one subject's pre region covers a
    pixel and its post region does not, that subject must count in neither mean there, or the page's
    "pre …, post …, change …" does not add up."""
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    for index, (pre_shift, post_shift) in enumerate(((0.0, 24.0), (-24.0, 0.0), (0.0, 0.0))):
        subject = make_subject(study, f"R-{index}", coordinator, seed=80 + 2 * index)
        store_normality(subject["pre"], 3, region_shift=pre_shift)
        store_normality(subject["post"], 9, region_shift=post_shift)
    (arm,) = cohort_normality_maps(study).arms
    assert arm.n == 3
    np.testing.assert_array_equal(np.isfinite(arm.pre), np.isfinite(arm.difference))
    np.testing.assert_array_equal(np.isfinite(arm.post), np.isfinite(arm.difference))
    np.testing.assert_allclose(arm.post - arm.pre, arm.difference, rtol=1e-4, atol=1e-3, equal_nan=True)
    assert np.nanmean(arm.post) - np.nanmean(arm.pre) == pytest.approx(np.nanmean(arm.difference), rel=1e-4)


def test_the_maps_page_shows_each_arm_with_its_text_alternative(maps_scene):
    client = Client()
    client.force_login(maps_scene["coordinator"])
    url = reverse("studies:cohort_normality_maps", args=[maps_scene["study"].pk])
    page = client.get(url).content.decode()
    assert page.count('class="card normality-maps"') == 2 and 'src="data:image/png;base64,' in page
    assert "filler: mean PSE (squared error, YCbCr) heatmap of 2 subjects" in page and "<figcaption>" in page
    assert "1 left out because a photo" in page
    filtered = client.get(url, {"arm": "control"}).content.decode()
    assert filtered.count('class="card normality-maps"') == 1 and 'data-arm="control"' in filtered
    event = AuditEvent.objects.filter(action=AuditAction.VIEW, study_id=maps_scene["study"].pk).latest("pk")
    assert event.details["filters"]["arm"] == "control" and event.details["subjects"] == 3
    cohort = client.get(reverse("studies:study_cohort", args=[maps_scene["study"].pk])).content.decode()
    assert 'id="normality-maps-link"' in cohort


def test_the_maps_page_names_an_unknown_arm_or_view_and_shows_them_all(maps_scene):
    client = Client()
    client.force_login(maps_scene["coordinator"])
    url = reverse("studies:cohort_normality_maps", args=[maps_scene["study"].pk])
    response = client.get(url, {"arm": "placebo", "view": "sideways"})
    page = html.unescape(response.content.decode())
    assert response.status_code == 200 and page.count('class="card normality-maps"') == 2
    assert "There is no arm 'placebo' here; showing every arm instead." in page
    assert "There is no view 'sideways' here; showing the view 'frontal' instead." in page


def test_the_cohort_report_pdf_refuses_an_unknown_view_with_the_reason(maps_scene):
    client = Client()
    client.force_login(maps_scene["coordinator"])
    url = reverse("exports:study_cohort_report", args=[maps_scene["study"].pk])
    response = client.get(url, {"view": "sideways", "method": "holm"}, follow=True)
    assert response.redirect_chain == [(reverse("exports:study_exports", args=[maps_scene["study"].pk]), 302)]
    assert "sideways is not one of the available choices" in html.unescape(response.content.decode())


def test_the_cohort_report_pdf_carries_the_maps(maps_scene):
    client = Client()
    client.force_login(maps_scene["coordinator"])
    response = client.get(reverse("exports:study_cohort_report", args=[maps_scene["study"].pk]))
    text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert "Average normality heatmaps" in text and "filler: mean PSE" in text and "control: mean PSE" in text
