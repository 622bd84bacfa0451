"""Issue 16 in a real browser: accounts (a site admin creates a user, a coordinator invites them and a
new person), the comparison's onion-skin and difference modes, zoom on the photo page, and every main
page on a 390-px phone without sideways scrolling (the navigation collapses), /jobs/ at 768 px.
No worker is needed: landmark results are recorded through the analysis services."""

import re

import numpy as np
import pytest

pytestmark = [pytest.mark.browser]

PASSWORD = "a long browser-test password"


def record_landmarks(photo, points: np.ndarray) -> None:
    from webapp.analysis import services
    from webapp.analysis.models import AnalysisJob
    from webapp.runs.services import run_claim

    job = AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="cpu", model_name="dlib-68")
    services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="browser-test").attempt,
        data={
            "faces": [{"box": [40, 40, 216, 216], "landmarks": points.tolist(), "score": 1.0}],
            "quality": {"ok": True, "reasons": []},
        },
        model={"name": "dlib-68", "version": "test"},
        parameters={},
        code_version="test",
    )


@pytest.fixture
def comparison_scene(transactional_db, make_user, make_photo):
    from webapp.studies.services import comparison_create, study_create

    coordinator = make_user("dr.coord", password=PASSWORD)
    study = study_create(name="Browser product study", creator=coordinator)
    pre = make_photo(study, subject_code="BP-001", visit_label="baseline", role="pre")
    post = make_photo(study, subject_code="BP-001", visit_label="week 12", role="post")
    points = np.column_stack([np.linspace(60, 200, 68), 80 + 60 * np.sin(np.linspace(0, 3, 68))])
    record_landmarks(pre, points)
    record_landmarks(post, points * 0.95 + 4)
    comparison = comparison_create(pre_visit=pre.visit, post_visit=post.visit, actor=coordinator)
    return {"coordinator": coordinator, "study": study, "pre": pre, "post": post, "comparison": comparison}


def wait_images_loaded(page, selector: str) -> None:
    page.wait_for_function(
        "(selector) => [...document.querySelectorAll(selector)]"
        ".every((img) => img.complete && img.naturalWidth > 0)",
        arg=selector,
    )


def test_a_site_admin_creates_a_user_and_a_coordinator_invites_them(
    transactional_db, live_server, browser_page, log_in, make_user, mailoutbox
):
    from playwright.sync_api import expect

    from webapp.studies.models import StudyMembership
    from webapp.studies.services import study_create

    make_user("site.admin", password=PASSWORD, staff=True)
    coordinator = make_user("dr.coord", password=PASSWORD)
    study = study_create(name="Invitation study", creator=coordinator)
    page = browser_page

    log_in("site.admin", PASSWORD)
    page.click("text=Users")
    page.fill("#id_username", "dr.newcomer")
    page.fill("#id_email", "newcomer@clinic.example")
    page.click("button:has-text('Create user')")
    expect(page.locator(".messages")).to_contain_text("Created the account dr.newcomer")
    expect(page.locator('tr[data-user="dr.newcomer"]')).to_be_visible()
    page.click("button:has-text('Log out')")

    log_in("dr.coord", PASSWORD)
    page.goto(f"{live_server.url}/studies/{study.pk}/")
    page.fill("#invite-email", "newcomer@clinic.example")
    page.select_option("#invite-role", "clinician")
    page.click("#invite-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("added to the study")
    expect(page.locator("table.data-table").first).to_contain_text("dr.newcomer")
    assert StudyMembership.objects.get(study=study, user__username="dr.newcomer").role == "clinician"

    # Someone without an account gets a link that creates it.
    page.fill("#invite-email", "rater@clinic.example")
    page.select_option("#invite-role", "rater")
    page.click("#invite-form button[type=submit]")
    expect(page.locator(".messages")).to_contain_text("Invitation sent")
    link = re.search(r"http://\S+/invitations/\S+/", mailoutbox[-1].body).group(0)
    page.click("button:has-text('Log out')")
    page.goto(link)
    page.fill("#id_username", "rater.one")
    page.fill("#id_password1", PASSWORD)
    page.fill("#id_password2", PASSWORD)
    page.click("button:has-text('Create my account')")
    expect(page.locator("h1")).to_have_text("Invitation study")
    assert StudyMembership.objects.get(study=study, user__username="rater.one").role == "rater"


def test_comparison_onion_skin_and_difference_modes(live_server, browser_page, log_in, comparison_scene):
    from playwright.sync_api import expect

    page = browser_page
    log_in("dr.coord", PASSWORD)
    page.goto(f"{live_server.url}/comparisons/{comparison_scene['comparison'].pk}/")
    wait_images_loaded(page, ".compare-group img")
    top = page.locator("[data-wipe-top]").first
    page.check("input[data-mode-choice][value=onion]")
    page.locator("[data-wipe]").first.fill("30")
    expect(page.locator(".wipe").first).to_have_attribute("data-mode", "onion")
    assert top.evaluate("(node) => getComputedStyle(node).opacity") == "0.3"
    assert top.evaluate("(node) => getComputedStyle(node).clipPath") == "none"
    expect(page.locator("[data-mode-note]").first).to_contain_text("Onion skin")
    expect(page.locator("[data-wipe-line]").first).to_be_hidden()
    page.screenshot(path="/tmp/facet-browser-onion-skin.png", full_page=True)
    page.check("input[data-mode-choice][value=difference]")
    assert top.evaluate("(node) => getComputedStyle(node).mixBlendMode") == "difference"
    assert top.evaluate("(node) => getComputedStyle(node).opacity") == "1"
    page.check("input[data-mode-choice][value=overlay]")
    assert "only-cyan" in top.evaluate("(node) => getComputedStyle(node).filter")


def test_photo_page_zooms_and_pans(live_server, browser_page, log_in, comparison_scene):
    from playwright.sync_api import expect

    page = browser_page
    log_in("dr.coord", PASSWORD)
    page.goto(f"{live_server.url}/photos/{comparison_scene['pre'].pk}/")
    wait_images_loaded(page, "#photo-img")
    figure = page.locator("#photo-figure")
    page.click("[data-zoom-for=photo-figure] [data-zoom=in]")
    expect(figure).to_have_attribute("data-zoom", "1.500")
    expect(page.locator("[data-zoom-for=photo-figure] [data-zoom-level]")).to_have_text("150%")
    box = figure.bounding_box()
    stage = page.locator("#photo-figure .zoom-stage")
    before = stage.evaluate("(node) => node.style.transform")
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 40, box["y"] + box["height"] / 2 + 30, steps=4)
    page.mouse.up()
    assert stage.evaluate("(node) => node.style.transform") != before
    # The landmark overlay moves with the photo: it is inside the same stage.
    assert page.locator("#photo-figure .zoom-stage #landmark-overlay").count() == 1
    page.click("[data-zoom-for=photo-figure] [data-zoom=reset]")
    expect(figure).to_have_attribute("data-zoom", "1.000")


def no_sideways_scroll(page) -> int:
    return page.evaluate("() => document.documentElement.scrollWidth - document.documentElement.clientWidth")


def test_main_pages_fit_a_390_px_phone_and_jobs_fits_768(
    live_server, browser_page, log_in, comparison_scene, make_user
):
    from playwright.sync_api import expect

    comparison_scene["coordinator"].is_staff = True
    comparison_scene["coordinator"].save()
    page = browser_page
    page.set_viewport_size({"width": 390, "height": 844})
    log_in("dr.coord", PASSWORD)
    expect(page.locator("#site-nav")).to_be_hidden()
    page.click("#nav-toggle")
    expect(page.locator("#site-nav")).to_be_visible()
    scene = comparison_scene
    pages = [
        "/",
        f"/studies/{scene['study'].pk}/",
        f"/subjects/{scene['pre'].visit.subject_id}/",
        f"/photos/{scene['pre'].pk}/",
        f"/comparisons/{scene['comparison'].pk}/",
        f"/studies/{scene['study'].pk}/settings/",
        f"/studies/{scene['study'].pk}/cohort/",
        f"/studies/{scene['study'].pk}/deleted/",
        "/accounts/users/",
        "/accounts/two-factor/",
        "/jobs/",
        "/audit/",
    ]
    overflowing = {}
    for path in pages:
        page.goto(f"{live_server.url}{path}")
        if extra := no_sideways_scroll(page):
            overflowing[path] = extra
    assert overflowing == {}, f"pages wider than 390 px (extra px): {overflowing}"
    page.set_viewport_size({"width": 768, "height": 1000})
    page.goto(f"{live_server.url}/jobs/")
    assert no_sideways_scroll(page) == 0


@pytest.mark.integration
def test_a_coordinator_corrects_a_photos_view_and_sees_the_verdict_recomputed(
    transactional_db,
    live_server,
    celery_worker,
    wait_for_job,
    browser_page,
    log_in,
    make_user,
    face_photo_path,
):
    """A frontal face uploaded as "Left 45°" fails the pose check; corrected to frontal, the landmark
    job runs again on the real worker and the verdict no longer complains about the view."""
    from django.core.files.uploadedfile import SimpleUploadedFile
    from playwright.sync_api import expect

    from webapp.analysis.services import photo_upload
    from webapp.studies.models import PhotoView, VisitRole
    from webapp.studies.services import study_create, subject_create, visit_create

    coordinator = make_user("dr.view", password=PASSWORD)
    study = study_create(name="View correction study", creator=coordinator)
    subject = subject_create(study=study, code="VC-001", actor=coordinator)
    visit = visit_create(subject=subject, label="baseline", role=VisitRole.PRE, actor=coordinator)
    upload = SimpleUploadedFile("face.jpg", face_photo_path.read_bytes())
    photo = photo_upload(visit=visit, view=PhotoView.LEFT_45, upload=upload, uploaded_by=coordinator)
    wait_for_job(photo.jobs.get().pk)
    page = browser_page
    log_in("dr.view", PASSWORD)
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    section = page.locator("#analysis-section")
    expect(page.locator("#quality-title")).to_have_text("Quality: check this photo")
    expect(section).to_contain_text("this view expects")
    page.select_option("#id_view", "frontal")
    page.click("#photo-edit button:has-text('Save')")
    expect(page.locator(".messages")).to_contain_text("View corrected to Frontal")
    # runs.js reloads the analysis section when the new landmark job finishes on the worker.
    expect(section).not_to_contain_text("this view expects", timeout=180_000)
    expect(section).to_contain_text("Expected yaw for a Frontal photo: 0°")
    page.screenshot(path="/tmp/facet-browser-view-corrected.png", full_page=True)


def test_a_photo_without_a_face_shows_no_zone_result_and_no_green_badge(
    live_server, browser_page, log_in, transactional_db, make_user, make_photo
):
    """The landmark analysis found no face; a zone model drew zones anyway. The page shows neither zones
    nor per-zone figures, says the face analyses do not apply, and no badge on it or on the subject
    page is green."""
    from playwright.sync_api import expect

    from webapp.analysis import services
    from webapp.analysis.models import AnalysisJob
    from webapp.runs.services import run_claim
    from webapp.studies.services import study_create

    coordinator = make_user("dr.noface", password=PASSWORD)
    study = study_create(name="No face study", creator=coordinator)
    study.analyses = ["landmarks", "zones"]
    study.save()
    photo = make_photo(study, subject_code="NF-001")
    zone = {"abbreviation": "Fh", "name": "Forehead", "number": 1, "area_px": 900, "outlines": []}
    for kind, data in (
        ("landmarks", {"faces": [], "quality": {"ok": False, "reasons": ["No face was found."]}}),
        ("zones", {"zones": [zone], "notes": [], "image": {"width": 256, "height": 256}}),
    ):
        job = AnalysisJob.objects.create(photo=photo, kind=kind, queue="cpu", model_name="m")
        services.job_succeed(
            job_id=job.pk,
            attempt=run_claim(AnalysisJob, run_id=job.pk, worker="browser-test").attempt,
            data=data,
            model={"name": "m", "version": "test"},
            parameters={},
            code_version="test",
        )
    page = browser_page
    log_in("dr.noface", PASSWORD)
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    expect(page.locator("#no-face-card")).to_contain_text("Not applicable without a face: Facial zones")
    expect(page.locator(".job [data-role=status]").first).to_be_visible()
    assert page.locator("#zones-card, #zone-stats, #zone-overlay path, #zone-overlay polygon").count() == 0
    badges = page.locator(".badge")
    labels = badges.all_inner_texts()
    assert "No face found" in labels and "Not applicable: no face" in labels
    assert page.locator(".badge-ok, .badge-succeeded").count() == 0, labels
    page.goto(f"{live_server.url}/subjects/{photo.visit.subject_id}/")
    expect(page.locator(".thumb .badge")).to_have_text("No face found")
    assert page.locator(".badge-ok, .badge-succeeded").count() == 0


def test_the_no_worker_banner_appears_on_the_photo_page(
    live_server, browser_page, log_in, transactional_db, make_user, make_photo
):
    """A landmark job waits on the quick queue and no worker has a fresh heartbeat: the photo page says
    so at its top instead of a bare "Queued"."""
    from playwright.sync_api import expect

    from webapp.analysis.models import AnalysisJob
    from webapp.studies.services import study_create

    coordinator = make_user("dr.banner", password=PASSWORD)
    study = study_create(name="Banner study", creator=coordinator)
    photo = make_photo(study, subject_code="BN-001")
    AnalysisJob.objects.create(photo=photo, kind="landmarks", queue="quick", model_name="dlib-68")
    page = browser_page
    log_in("dr.banner", PASSWORD)
    page.goto(f"{live_server.url}/photos/{photo.pk}/")
    banner = page.locator("[data-role=worker-banner]")
    expect(banner).to_be_visible()
    expect(banner).to_contain_text("No worker is running for the “quick” queue")
    expect(banner).to_contain_text("celery -A workers worker -Q quick")
