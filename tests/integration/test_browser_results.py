"""Zone results in a real browser against a real worker.

A coordinator turns on the zones analysis in the study's settings, uploads a real face, and a real
Celery worker runs the landmarks and zones jobs (the zones job uses the landmark baseline on CPU while
the segmentation model is untrained). The photo page then shows the zone overlay with its legend, and
a zone can be hidden and shown again. Screenshot: /tmp/facet-browser-zones.png.
"""

import datetime

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "a long browser-test password"
JOB_TIMEOUT_MS = 180_000


def test_zone_overlay_legend_toggles_a_zone(
    transactional_db, live_server, celery_worker, browser_page, log_in, make_user, face_photo_path
):
    from playwright.sync_api import expect

    from webapp.studies.models import VisitRole
    from webapp.studies.services import study_create, subject_create, visit_create

    coordinator = make_user("dr.zones", password=PASSWORD)
    study = study_create(name="Zones pilot", creator=coordinator)
    subject = subject_create(study=study, code="ZP-001", actor=coordinator)
    visit_create(
        subject=subject,
        label="baseline",
        role=VisitRole.PRE,
        date=datetime.date(2026, 1, 5),
        actor=coordinator,
    )
    page = browser_page

    log_in("dr.zones", PASSWORD)

    page.goto(f"{live_server.url}/studies/{study.pk}/")
    page.click("text=Analysis settings")
    page.check("input[name=analyses][value=zones]")
    page.click("button:has-text('Save settings')")
    expect(page.locator(".messages")).to_contain_text("Study settings saved")

    page.goto(f"{live_server.url}/subjects/{subject.pk}/")
    page.set_input_files("#upload-input", str(face_photo_path))
    row = page.locator("#upload-list .upload-row").last
    row.locator("select").select_option("frontal")
    page.click("#upload-start")
    link = row.locator(".upload-status a")
    link.wait_for(timeout=60_000)
    page.goto(f"{live_server.url}{link.get_attribute('href')}")

    # runs.js refreshes the analysis section when the zones job finishes; zones.js then draws the zones.
    forehead = page.locator('#zone-overlay path[data-zone="FFA"]')
    forehead.wait_for(state="attached", timeout=JOB_TIMEOUT_MS)
    legend = page.locator("#zone-legend [data-zone-toggle]")
    expect(legend).to_have_count(33)
    # Zones of interest come first in the legend; their names show on hover.
    assert legend.first.get_attribute("data-interest") == "1"
    expect(page.locator('#zone-legend label[title*="central forehead"]')).to_have_count(1)
    assert "central forehead" in forehead.locator("title").text_content()
    expect(forehead).to_be_visible()
    expect(page.locator("#zone-stats tbody tr")).to_have_count(33)
    page.screenshot(path="/tmp/facet-browser-zones.png", full_page=True)

    page.uncheck('[data-zone-toggle="FFA"]')
    expect(forehead).to_be_hidden()
    page.check('[data-zone-toggle="FFA"]')
    expect(forehead).to_be_visible()
    # A zone outside the study's zones of interest starts hidden and can be shown.
    temple = page.locator('#zone-overlay path[data-zone="LTA"]')
    expect(temple).to_be_hidden()
    page.check('[data-zone-toggle="LTA"]')
    expect(temple).to_be_visible()
    page.uncheck("#toggle-zones")
    expect(forehead).to_be_hidden()
