"""Zone results in a real browser against a real worker.

A coordinator turns on the zones analysis in the study's settings, uploads a real face, and a real
Celery worker runs the landmarks and zones jobs (the zones job uses the landmark baseline on CPU while
the segmentation model is untrained). The photo page then shows the zone overlay with its legend, and
a zone can be hidden and shown again. Screenshot: /tmp/facet-browser-zones.png.
"""

import datetime
import os
from pathlib import Path

import pytest

# Playwright's sync API runs an event loop in this thread; Django's ORM refuses that unless told.
os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

pytestmark = [pytest.mark.browser, pytest.mark.integration]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-background-networking", "--disable-gpu", "--no-first-run"]
PASSWORD = "a long browser-test password"
JOB_TIMEOUT_MS = 180_000


@pytest.fixture
def results_page(live_server):
    if not CHROMIUM.exists():
        pytest.skip(f"Chromium is not installed at {CHROMIUM} (apt-get install chromium)")
    from django.db import connections
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        page = context.new_page()
        page.set_default_timeout(30_000)
        yield page
        context.close()
        browser.close()
        # Playwright's loop gives the ORM its own connections here; close them so the test database can go.
        connections.close_all()


def test_zone_overlay_legend_toggles_a_zone(
    transactional_db, live_server, celery_worker, results_page, make_user, face_photo_path
):
    from playwright.sync_api import expect

    from webapp.studies.models import VisitRole
    from webapp.studies.services import study_create, subject_create, visit_create

    coordinator = make_user("dr.zones", password=PASSWORD)
    study = study_create(name="Zones pilot", creator=coordinator)
    subject = subject_create(study=study, code="ZP-001", actor=coordinator)
    visit_create(subject=subject, label="baseline", role=VisitRole.PRE, date=datetime.date(2026, 1, 5),
                 actor=coordinator)
    page = results_page

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "dr.zones")
    page.fill("#id_password", PASSWORD)
    page.click("button:has-text('Log in')")

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

    # jobs.js reloads the analysis section when the zones job finishes; zones.js then draws the zones.
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
