"""Issue 15 exports in a real browser: a coordinator downloads the study's XLSX from the exports page and a
subject's before/after report as a PDF from the comparison page; the workbook opens and the PDF's text
holds the measures. Results are fabricated TEST DATA (tests/webapp/exports_scene.py); no worker runs."""

import io
from pathlib import Path

import pytest
from openpyxl import load_workbook
from pypdf import PdfReader

pytestmark = [pytest.mark.browser]

PASSWORD = "a long browser-test password"


@pytest.fixture
def export_scene(transactional_db, make_user):
    from tests.webapp.exports_scene import make_subject
    from webapp.studies.services import study_create

    coordinator = make_user("dr.coord", password=PASSWORD)
    study = study_create(name="Browser export study", creator=coordinator)
    first = make_subject(study, "BX-001", coordinator, seed=11)
    make_subject(study, "BX-002", coordinator, seed=13)
    return {"study": study, "comparison": first["comparison"]}


def test_a_coordinator_downloads_the_xlsx_and_the_subject_pdf(
    export_scene, live_server, browser_page, log_in
):
    from playwright.sync_api import expect

    from webapp.audit.models import AuditAction, AuditEvent

    page = browser_page
    log_in("dr.coord", PASSWORD)
    page.goto(f"{live_server.url}/studies/{export_scene['study'].pk}/")
    page.click("text=Exports and reports")
    expect(page.locator("h1")).to_have_text("Exports and reports")
    page.select_option("#measures-export select[name=format]", "xlsx")
    with page.expect_download() as download_info:
        page.click("#measures-export button[type=submit]")
    download = download_info.value
    assert download.suggested_filename.endswith(".xlsx")
    workbook = load_workbook(io.BytesIO(Path(download.path()).read_bytes()), read_only=True)
    pairs = list(workbook["Pairs"].iter_rows(values_only=True))
    assert {row[1] for row in pairs[1:]} == {"BX-001", "BX-002"}
    assert "normality_score change" in pairs[0]

    page.goto(f"{live_server.url}/comparisons/{export_scene['comparison'].pk}/")
    page.click("#comparison-report")
    expect(page.locator("h1")).to_contain_text("Before/after report · subject BX-001")
    expect(page.locator('tr[data-measure="normality_score"]')).to_be_visible()
    page.wait_for_function(
        "() => [...document.querySelectorAll('.report-pair img')]"
        ".every((img) => img.complete && img.naturalWidth > 0)"
    )
    with page.expect_download() as download_info:
        page.click("#report-pdf")
    pdf = Path(download_info.value.path()).read_bytes()
    assert pdf.startswith(b"%PDF")
    text = "\n".join(sheet.extract_text() for sheet in PdfReader(io.BytesIO(pdf)).pages)
    assert "BX-001" in text and "Normality score S" in text and "Noise floor" in text
    formats = set(
        AuditEvent.objects.filter(action=AuditAction.EXPORT).values_list("details__format", flat=True)
    )
    assert {"xlsx", "page", "pdf"} <= formats
