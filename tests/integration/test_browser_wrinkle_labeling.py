"""Wrinkle labeling in a real browser, on a real face photo.

The annotator opens the labeling page (forehead-and-eye crop from a real dlib landmarks result), brushes
a rough mask over the forehead, sees the live ground-truth preview appear, saves it (the server
recomputes the ground truth and the page reports how well its preview agrees), then downloads the
study's dataset export and finds the label in it. Screenshots go to /tmp/facet-labeling-*.png.
"""

import csv
import io
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest

from webapp.analysis.models import AnalysisJob
from webapp.runs.services import run_claim

pytestmark = [pytest.mark.browser, pytest.mark.integration]

PASSWORD = "a long browser-test password"
SCREENSHOTS = Path("/tmp")


@pytest.fixture
def labeled_photo_world(transactional_db, face_jpeg_bytes, make_user, monkeypatch):
    """A coordinator, a study and one real face photo with a landmarks result computed in-process."""
    from django.core.files.uploadedfile import SimpleUploadedFile

    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from webapp.analysis import services as analysis_services
    from webapp.analysis.services import photo_upload
    from webapp.studies.services import study_create, subject_create, visit_create

    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    coordinator = make_user("dr.lines", password=PASSWORD)
    study = study_create(name="Forehead lines pilot", creator=coordinator)
    subject = subject_create(study=study, code="FLP-007", actor=coordinator)
    visit = visit_create(subject=subject, label="baseline", role="pre", date=None, actor=coordinator)
    upload = SimpleUploadedFile("IMG_0001.jpg", face_jpeg_bytes, content_type="image/jpeg")
    photo = photo_upload(visit=visit, view="frontal", upload=upload, uploaded_by=coordinator)
    job = photo.jobs.get(kind="landmarks")
    with photo.image.open("rb") as handle:
        faces = detect_faces_with_landmarks(load_image(handle.read()))
    assert faces, "dlib found no face in the test photo"
    analysis_services.job_succeed(
        job_id=job.pk,
        attempt=run_claim(AnalysisJob, run_id=job.pk, worker="test").attempt,
        data={
            "faces": [
                {"box": list(faces[0].box), "score": faces[0].score, "landmarks": faces[0].landmarks.tolist()}
            ]
        },
        model={"name": "dlib-68", "version": "test"},
        parameters={},
        code_version="test",
    )
    return {"study": study, "photo": photo, "subject": subject}


def brush(page, canvas_box: dict, image_points: list[tuple[float, float]], image_size: int = 640) -> None:
    """Drag the mouse through points given in labeling-image pixels (the canvas shows it fitted)."""
    scale = min(canvas_box["width"], canvas_box["height"]) / image_size
    left = canvas_box["x"] + (canvas_box["width"] - image_size * scale) / 2
    top = canvas_box["y"] + (canvas_box["height"] - image_size * scale) / 2
    screen = [(left + x * scale, top + y * scale) for x, y in image_points]
    page.mouse.move(*screen[0])
    page.mouse.down()
    for point in screen[1:]:
        page.mouse.move(*point, steps=8)
    page.mouse.up()


def test_brush_see_ground_truth_save_and_find_it_in_the_export(
    labeled_photo_world, browser_page, log_in, live_server, tmp_path
):
    from playwright.sync_api import expect

    from webapp.labeling.models import WrinkleLabel

    page = browser_page
    photo = labeled_photo_world["photo"]
    log_in("dr.lines", PASSWORD)
    page.goto(f"{live_server.url}/labeling/photos/{photo.pk}/")
    expect(page.locator("#labeler")).to_have_attribute("data-ready", "true", timeout=60_000)
    expect(page.locator("select[name=region]")).to_have_value("forehead-eye")
    page.locator("#labeler-brush-size").fill("50")
    box = page.locator("#labeler-canvas").bounding_box()
    # Forehead band of the crop (the eyes sit about two thirds down), three strokes across it.
    for y in (150, 200, 250):
        brush(page, box, [(160, y), (320, y + 5), (480, y)])
    # Functions, not expression strings: the page's Content-Security-Policy refuses evaluated strings.
    page.wait_for_function("() => Number(document.getElementById('labeler').dataset.previewPixels) > 50")
    preview_pixels = int(page.locator("#labeler").get_attribute("data-preview-pixels"))
    rough_pixels = int(page.locator("#labeler").get_attribute("data-rough-pixels"))
    assert 0 < preview_pixels < rough_pixels
    page.screenshot(path=str(SCREENSHOTS / "facet-labeling-preview.png"))
    # Undo and redo one stroke: the rough mask shrinks and comes back.
    page.click("#labeler-undo")
    page.wait_for_function(
        f"() => Number(document.getElementById('labeler').dataset.roughPixels) < {rough_pixels}"
    )
    page.click("#labeler-redo")
    page.wait_for_function(
        f"() => Number(document.getElementById('labeler').dataset.roughPixels) === {rough_pixels}"
    )

    page.click("#labeler-save")
    expect(page.locator("#labeler")).to_have_attribute("data-saved-version", "1", timeout=60_000)
    status = page.locator("#labeler-status").inner_text()
    agreement = float(status.split("agrees on ")[1].split(" %")[0])
    assert agreement >= 99.9, status  # the JS preview and ml.wrinkles.labeling compute the same thing
    page.screenshot(path=str(SCREENSHOTS / "facet-labeling-saved.png"))
    fitted = page.locator("#labeler-zoom-value").inner_text()
    page.click("#labeler-zoom-in")
    expect(page.locator("#labeler-zoom-value")).not_to_have_text(fitted)
    page.click("#labeler-fit")
    expect(page.locator("#labeler-zoom-value")).to_have_text(fitted)
    label = WrinkleLabel.objects.get(photo=photo)
    assert label.version == 1 and label.author_username == "dr.lines"
    assert label.region["kind"] == "forehead-eye"
    assert abs(label.rough_pixels - rough_pixels) <= rough_pixels * 0.001
    assert label.wrinkle_pixels > 0

    page.goto(f"{live_server.url}/labeling/studies/{labeled_photo_world['study'].pk}/")
    expect(page.locator(".data-table tbody tr")).to_contain_text("FLP-007")
    page.screenshot(path=str(SCREENSHOTS / "facet-labeling-study.png"))
    with page.expect_download() as download_info:
        page.click("#export-link")
    download = download_info.value
    assert download.suggested_filename.endswith(".zip")
    path = tmp_path / "export.zip"
    download.save_as(path)
    archive = zipfile.ZipFile(path)
    rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
    assert len(rows) == 1
    row = rows[0]
    assert (row["subject"], row["visit"], row["view"], row["version"]) == (
        "FLP-007",
        "baseline",
        "frontal",
        "1",
    )
    assert row["label_id"] == str(label.pk)
    with label.ground_truth.open("rb") as handle:
        assert archive.read(row["mask"]) == handle.read()
    image = cv2.imdecode(np.frombuffer(archive.read(row["image"]), np.uint8), cv2.IMREAD_COLOR)
    assert image.shape == (640, 640, 3)
    assert not any("IMG_0001" in name for name in archive.namelist())
