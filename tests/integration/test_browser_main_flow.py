"""The main clinical flow in a real browser against a real worker.

Log in, create a study, add a subject with a pre and a post visit, drag-and-drop-upload a real face
photo to each, wait for the landmark jobs that a real Celery worker runs, see (and toggle) the
landmark overlay, and open the registered pre/post comparison with its synced panes and slider.
Screenshots go to /tmp/facet-browser-*.png. The worker is the `celery_worker` fixture of
tests/integration/conftest.py.
"""

import re
from pathlib import Path

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "a long browser-test password"
SCREENSHOTS = Path("/tmp")
JOB_TIMEOUT_MS = 180_000


def upload_photo(page, visit_index: int, photo: Path) -> str:
    """Choose the visit, drop one file into the upload panel and wait for its row to say it is stored."""
    from playwright.sync_api import expect

    page.select_option("#upload-visit", index=visit_index)
    page.set_input_files("#upload-input", str(photo))
    row = page.locator("#upload-list .upload-row").last
    row.locator("select").select_option("frontal")
    page.click("#upload-start")
    expect(row).to_have_attribute("data-state", "done", timeout=60_000)
    return row.locator(".upload-status a").get_attribute("href")


def wait_for_overlay(page) -> None:
    """The photo page polls the job and redraws the overlay when the worker has finished."""
    page.locator("#landmark-overlay .overlay-landmarks circle").nth(67).wait_for(
        state="attached", timeout=JOB_TIMEOUT_MS
    )


def test_clinician_uploads_pre_and_post_photos_and_compares_them(
    # transactional_db first: the test database must outlive the live server's connection.
    transactional_db,
    live_server,
    celery_worker,
    browser_page,
    log_in,
    make_user,
    face_photo_paths,
    tmp_path,
):
    from playwright.sync_api import expect

    pre_photo, post_photo = face_photo_paths[0], face_photo_paths[1]
    from django.contrib.auth.models import Permission

    clinician = make_user("dr.jones", password=PASSWORD)
    # Who may create studies is a setting (FACET_STUDY_CREATORS); by default a site admin allows it.
    clinician.user_permissions.add(Permission.objects.get(codename="add_study"))
    page = browser_page

    log_in("dr.jones", PASSWORD)
    expect(page.locator("h1")).to_have_text("Studies")

    page.click("text=New study")
    page.fill("#id_name", "Lip filler pilot")
    page.fill("#id_protocol", "Hyaluronic acid lip filler; baseline and week 12 frontal photos.")
    page.screenshot(path=SCREENSHOTS / "facet-browser-new-study.png")
    page.click("button:has-text('Create study')")
    expect(page.locator("h1")).to_have_text("Lip filler pilot")

    page.fill("input[name=code]", "LFP-001")
    page.click("button:has-text('Add subject')")
    expect(page.locator("h1")).to_contain_text("LFP-001")

    for label, date, role in [("baseline", "2025-01-14", "pre"), ("week 12", "2025-04-08", "post")]:
        page.fill("#visit-label", label)
        page.fill("#visit-date", date)
        page.select_option("#visit-role", role)
        page.click("button:has-text('Add visit')")
        expect(page.locator(".messages")).to_contain_text(f"Visit '{label}' added.")

    pre_url = upload_photo(page, 0, pre_photo)
    post_url = upload_photo(page, 1, post_photo)

    # A bad file gets its own clear message and leaves the good uploads alone.
    not_a_photo = tmp_path / "notes.jpg"
    not_a_photo.write_text("This is a text file, not a photograph.")
    page.set_input_files("#upload-input", str(not_a_photo))
    page.click("#upload-start")
    bad_row = page.locator("#upload-list .upload-row").last
    expect(bad_row).to_have_attribute("data-state", "error")
    expect(bad_row.locator(".upload-status")).to_have_text(re.compile(r"\S.{19,}"))
    expect(page.locator("#upload-list .upload-row[data-state=done]")).to_have_count(2)
    page.screenshot(path=SCREENSHOTS / "facet-browser-upload.png", full_page=True)

    page.goto(f"{live_server.url}{post_url}")
    wait_for_overlay(page)
    page.goto(f"{live_server.url}{pre_url}")
    wait_for_overlay(page)
    # The landmark job's badge says its verdict, never a bare "Succeeded".
    expect(page.locator("#analysis-section .job .badge").first).to_have_text(
        re.compile(r"^(Quality passes|Quality: check)$")
    )
    expect(page.locator("#pose-title")).to_be_visible()
    expect(page.locator("#quality-title")).to_contain_text("Quality:")
    landmarks = page.locator("#landmark-overlay .overlay-landmarks")
    expect(landmarks).to_be_visible()
    page.screenshot(path=SCREENSHOTS / "facet-browser-photo.png", full_page=True)
    page.uncheck("#toggle-landmarks")
    expect(landmarks).to_be_hidden()
    page.check("#toggle-landmarks")
    expect(landmarks).to_be_visible()

    page.click("nav.breadcrumb >> text=Subject LFP-001")
    expect(page.locator(".visit-grid .thumb img")).to_have_count(2)
    page.screenshot(path=SCREENSHOTS / "facet-browser-subject.png", full_page=True)
    page.click("button:has-text('Compare')")
    expect(page.locator("h1")).to_contain_text("LFP-001: baseline → week 12")

    panes = page.locator(".compare-panes .pane")
    expect(panes).to_have_count(2)
    for image in page.locator(".compare-panes img").all():
        expect(image).to_be_visible()
        # Waits for the image to load (a property read: the page's CSP refuses evaluated strings).
        expect(image).to_have_js_property("complete", True)
        expect(image).not_to_have_js_property("naturalWidth", 0)
    registered = page.locator(".compare-panes img.registered")
    assert re.match(r"matrix\(", registered.evaluate("img => getComputedStyle(img).transform"))

    # Zooming one pane zooms the other identically.
    panes.nth(0).hover()
    page.mouse.wheel(0, -400)
    expect(page.locator("[data-zoom-level]")).not_to_have_text("100%")
    page.wait_for_function(
        "([a, b]) => a.style.transform.includes('scale') && a.style.transform === b.style.transform",
        arg=[pane.locator(".stage").element_handle() for pane in panes.all()],
    )

    page.locator("[data-wipe]").fill("30")
    page.wait_for_function(
        "el => el.style.clipPath.includes('30%')", arg=page.locator("[data-wipe-top]").element_handle()
    )
    page.click("[data-zoom=reset]")
    page.screenshot(path=SCREENSHOTS / "facet-browser-comparison.png", full_page=True)

    page.click("nav.breadcrumb >> text=Lip filler pilot")
    subject_row = page.locator("section[aria-labelledby=subjects-title] tbody tr", has_text="LFP-001")
    expect(subject_row).to_contain_text("complete")
    expect(page.locator("section[aria-labelledby=comparisons-title] tbody")).to_contain_text("week 12")
    page.screenshot(path=SCREENSHOTS / "facet-browser-study.png", full_page=True)

    page.click("nav.site-nav >> text=Studies")
    expect(page.locator(".data-table tbody tr")).to_contain_text("Lip filler pilot")
    page.screenshot(path=SCREENSHOTS / "facet-browser-studies.png")
