"""Issue 15 in a real browser: a coordinator lists the study's arms, assigns subjects to them, creates
the comparisons of every subject at once and sees the cohort's statistics and charts, then accepts a
pair left out by a comparability warning. No worker is needed: landmark results are recorded through
the analysis services (TEST DATA: the atlas's mean face, the filler arm's upper lip made fuller).

Downloads (XLSX, subject and cohort PDFs) belong to the exports work: its test continues from
`cohort_scene` and the cohort page's `#cohort-downloads` block."""

import numpy as np
import pytest

from ml.measures.facial import face_frame
from ml.zones.render import mean_shape

pytestmark = [pytest.mark.browser]

PASSWORD = "a long browser-test password"
BASE = mean_shape() * 0.5


def record_landmarks(photo, points: np.ndarray) -> None:
    from webapp.analysis import services
    from webapp.analysis.models import AnalysisJob
    from webapp.runs.services import run_claim

    job = AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="cpu", model_name="dlib-68")
    face = {
        "box": [10, 10, 200, 240],
        "landmarks": points.tolist(),
        "score": 1.0,
        "pose": {"yaw": 0.0, "pitch": 0.0},
    }
    services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="browser-test").attempt,
        data={"faces": [face], "quality": {"ok": True, "reasons": []}},
        model={"name": "dlib-68", "version": "test"},
        parameters={},
        code_version="test",
    )


@pytest.fixture
def cohort_scene(transactional_db, make_user, make_photo):
    """Eight subjects with pre and post photos and landmarks, no arms yet, no comparisons yet; a ninth
    whose post photo shows a different face."""
    from webapp.studies.services import study_create

    coordinator = make_user("dr.coord", password=PASSWORD)
    study = study_create(name="Lip filler study", creator=coordinator)
    ipd = face_frame(BASE)[1]
    for index in range(9):
        code = f"LF-{index:02d}"
        pre = make_photo(study, subject_code=code, visit_label="baseline", role="pre")
        post = make_photo(study, subject_code=code, visit_label="week 12", role="post")
        record_landmarks(pre, BASE)
        after = BASE.copy()
        if index % 2 == 0:
            after[49:54, 1] -= 0.01 * (index + 2) * ipd  # SYNTHETIC: fuller upper lip
        if index == 8:
            after = BASE.copy()
            after[:17, 0] = BASE[:17, 0] * 1.15 - 15  # SYNTHETIC: a different, wider jaw
        record_landmarks(post, after)
    return {"coordinator": coordinator, "study": study}


def test_coordinator_defines_arms_and_sees_statistics_and_charts(
    live_server, browser_page, log_in, cohort_scene
):
    from playwright.sync_api import expect

    study = cohort_scene["study"]
    page = browser_page
    log_in("dr.coord", PASSWORD)

    page.goto(f"{live_server.url}/studies/{study.pk}/settings/")
    page.fill("#id_arms", "filler\ncontrol")
    page.click("button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("Study settings saved")

    page.goto(f"{live_server.url}/studies/{study.pk}/cohort/subjects/")
    for index in range(9):
        row = page.locator("tr", has_text=f"LF-{index:02d}")
        row.locator("select[name^='arm-']").select_option("filler" if index % 2 == 0 else "control")
        row.locator("select[name^='sex-']").select_option("female")
    page.click("button:has-text('Save attributes')")
    expect(page.locator(".messages")).to_contain_text("Subject attributes saved")

    page.goto(f"{live_server.url}/studies/{study.pk}/cohort/")
    page.click("button:has-text('Create comparisons for every subject')")
    expect(page.locator(".messages")).to_contain_text("9 subjects have a pre/post comparison")
    expect(page.locator("#cohort-counts")).to_contain_text("8 in the statistics, 1 left out")

    upper = page.locator('#statistics-table tr[data-measure="upper_vermilion_height"]')
    expect(upper).to_contain_text("IPD")
    expect(upper.locator("td").nth(1)).to_have_text("8")  # n
    expect(page.locator("#arms-table")).to_contain_text("control vs filler")
    charts = page.locator("#charts svg[role='img']")
    expect(charts).to_have_count(2)
    expect(charts.first.locator("desc")).to_contain_text("of 8 subjects before and after")
    expect(page.locator("#charts .subject-line")).to_have_count(8)

    page.select_option("select[name='arm']", "filler")
    page.click("#cohort-filters button")
    expect(upper.locator("td").nth(1)).to_have_text("4")

    page.select_option("select[name='arm']", "")
    page.select_option("select[name='group']", "symmetry")
    page.click("#cohort-filters button")
    expect(page.locator("#statistics-heading")).to_contain_text("Symmetry")

    pair_row = page.locator("#pairs-table tr", has_text="LF-08")
    expect(pair_row).to_contain_text("Registration residual")
    pair_row.locator("input[name='note']").fill("same person: jaw swelling after surgery")
    pair_row.locator("button:has-text('Accept')").click()
    expect(page.locator("#cohort-counts")).to_contain_text("9 in the statistics")
    expect(page.locator("#cohort-downloads")).to_be_visible()  # the exports' download links go here
