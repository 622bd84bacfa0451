"""Wrinkle types on the photo page in a real browser.

A wrinkles result holding two detected types (TEST DATA: the boxes are made up, the page is what is
tested) is recorded for a real face photo; the photo page lists the types and draws their boxes over
the photo. Screenshot: /tmp/facet-browser-wrinkle-types.png.
"""

import pytest

from webapp.analysis.models import AnalysisJob
from webapp.runs.services import run_claim

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "a long browser-test password"


def test_the_photo_page_shows_the_wrinkle_types_with_their_boxes(
    transactional_db, live_server, browser_page, log_in, make_user, face_jpeg_bytes, monkeypatch
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from playwright.sync_api import expect

    from ml.model_names import WRINKLES_UNET_WDS
    from webapp.analysis import services as analysis_services
    from webapp.analysis.services import photo_upload
    from webapp.studies.models import AnalysisKind
    from webapp.studies.services import study_create, subject_create, visit_create

    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    coordinator = make_user("dr.types", password=PASSWORD)
    study = study_create(name="Glabellar lines pilot", creator=coordinator)
    subject = subject_create(study=study, code="GLP-003", actor=coordinator)
    visit = visit_create(subject=subject, label="baseline", role="pre", date=None, actor=coordinator)
    upload = SimpleUploadedFile("IMG_0003.jpg", face_jpeg_bytes, content_type="image/jpeg")
    photo = photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=coordinator)
    job = AnalysisJob.objects.create(
        kind=AnalysisKind.WRINKLES, photo=photo, queue="gpu", model_name=WRINKLES_UNET_WDS
    )
    figures = {
        "region_px": 1000,
        "area_px": 10,
        "area_fraction": 0.01,
        "total_length_px": 5,
        "mean_width_px": 2.0,
        "count": 1,
    }
    analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={
            "notes": ["TEST DATA"],
            "overall": figures,
            "regions": {"forehead": figures, "below_brows": figures},
            "zones": [],
            "zones_source": "TEST DATA",
            "types": {
                "model": {"name": "wrinkle-types-yolov8n", "version": "test", "map50_val": 0.2},
                "found": [
                    {"class": "frown_line", "score": 0.71, "box": [40.0, 30.0, 90.0, 60.0]},
                    {"class": "crows_feet", "score": 0.42, "box": [5.0, 50.0, 35.0, 80.0]},
                ],
            },
        },
        model={"name": WRINKLES_UNET_WDS, "version": "test"},
        parameters={},
        code_version="test",
    )
    page = browser_page
    log_in("dr.types", PASSWORD)
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    types = page.locator("#wrinkle-types g.wrinkle-type")
    expect(types).to_have_count(2)
    frown = page.locator('#wrinkle-types g.wrinkle-type[data-type="frown_line"] rect')
    expect(frown).to_be_visible()
    assert frown.get_attribute("x") == "40.0" and frown.get_attribute("width") == "50.0"
    expect(page.locator("#wrinkles-card")).to_contain_text("frown line (0.71)")
    expect(page.locator("#wrinkles-card")).to_contain_text("crows feet (0.42)")
    expect(page.locator("#wrinkles-card")).to_contain_text("mAP50 0.20 on held-out photos")
    # The photo under the boxes loads (a real image, served to this study member).
    image_status = "() => fetch(document.querySelector('#wrinkle-types image').getAttribute('href'))"
    assert page.evaluate(image_status + ".then(response => response.status)") == 200
    page.screenshot(path="/tmp/facet-browser-wrinkle-types.png", full_page=True)
