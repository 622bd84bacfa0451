"""Wrinkle types on the photo page in a real browser, from a real wrinkles job.

A real face photo with wrinkles (a single-face photo of the wrinkle-boxes folder) is uploaded; its
wrinkles job runs in this process through the worker's own path (``workers.runs.execute`` with the
analysis task's ``analyse``): landmarks, the shipped segmentation model, the installed default
wrinkle-type detector. The photo page then lists the types the result holds and draws their boxes.
Screenshot: /tmp/facet-browser-wrinkle-types.png.
"""

import pytest

from webapp.analysis.models import AnalysisJob, Result

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.data]

PASSWORD = "a long browser-test password"
# A val photo whose 5 human wrinkle boxes all lie on the analysed (largest) face.
PHOTO = "wrinkle-boxes/images/{name}.jpg"
PHOTO_NAME = "1037"


def test_the_photo_page_shows_the_wrinkle_types_of_a_real_job(
    transactional_db, live_server, browser_page, log_in, make_user, data_dir, monkeypatch
):
    from django.core.files.uploadedfile import SimpleUploadedFile
    from playwright.sync_api import expect

    from ml.model_names import WRINKLE_TYPES_GEOMETRY, WRINKLES_UNET_WDS
    from ml.wrinkles.type_geometry import TYPE_LABELS
    from webapp.analysis.services import photo_upload
    from webapp.runs.models import RunStatus
    from webapp.studies.models import AnalysisKind
    from webapp.studies.services import study_create, subject_create, visit_create
    from workers.runs import execute
    from workers.tasks import analyse

    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    coordinator = make_user("dr.types", password=PASSWORD)
    study = study_create(name="Glabellar lines pilot", creator=coordinator)
    subject = subject_create(study=study, code="GLP-003", actor=coordinator)
    visit = visit_create(subject=subject, label="baseline", role="pre", date=None, actor=coordinator)
    content = (data_dir / PHOTO.format(name=PHOTO_NAME)).read_bytes()
    upload = SimpleUploadedFile("IMG_0003.jpg", content, content_type="image/jpeg")
    photo = photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=coordinator)
    job = AnalysisJob.objects.create(
        kind=AnalysisKind.WRINKLES, photo=photo, queue="gpu", model_name=WRINKLES_UNET_WDS
    )
    execute(AnalysisJob, job.pk, "browser-test", analyse)
    job.refresh_from_db()
    assert job.status == RunStatus.SUCCEEDED, job.error
    types = Result.objects.get(job=job).data["types"]
    assert types["model"]["name"] == WRINKLE_TYPES_GEOMETRY
    found = types["found"]
    assert found, "the installed rules find no wrinkle type on a photo with marked wrinkles"

    page = browser_page
    log_in("dr.types", PASSWORD)
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    drawn = page.locator("#wrinkle-types g.wrinkle-type")
    expect(drawn).to_have_count(len(found))
    best = found[0]
    rect = page.locator(f'#wrinkle-types g.wrinkle-type[data-type="{best["class"]}"] rect').first
    expect(rect).to_be_visible()
    assert float(rect.get_attribute("x")) == pytest.approx(best["box"][0], abs=0.06)
    assert float(rect.get_attribute("width")) == pytest.approx(best["box"][2] - best["box"][0], abs=0.11)
    card = page.locator("#wrinkles-card")
    for item in found:
        expect(card).to_contain_text(f"{TYPE_LABELS[item['class']]} ({item['score']:.2f})")
    expect(card).to_contain_text("landmark geometry rules")
    expect(card).not_to_contain_text("TEST DATA")
    # The photo under the boxes loads (a real image, served to this study member).
    image_status = "() => fetch(document.querySelector('#wrinkle-types image').getAttribute('href'))"
    assert page.evaluate(image_status + ".then(response => response.status)") == 200
    page.screenshot(path="/tmp/facet-browser-wrinkle-types.png", full_page=True)
