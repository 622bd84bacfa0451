"""The landmark review flow in a real browser: drag a suggested point, accept, see the label become human.

The suggestion is test data made through the services with provenance "yolo-pose68@test"; no model ran.
Screenshots go to /tmp/facet-browser-review-*.png.
"""

from pathlib import Path

import numpy as np
import pytest

pytestmark = [pytest.mark.browser]

PASSWORD = "a long browser-test password"
SCREENSHOTS = Path("/tmp")
DRAGGED = 30  # nose tip


def test_rater_drags_a_point_accepts_and_the_label_becomes_human(
    transactional_db, live_server, browser_page, log_in, make_user, make_photo
):
    from playwright.sync_api import expect

    from ml.landmarks.formats import Instance, Provenance
    from webapp.campaigns import services
    from webapp.campaigns.models import KeypointInstance
    from webapp.studies.models import Role
    from webapp.studies.services import membership_set, study_create

    coordinator = make_user("coord")
    rater = make_user("rita.rater", password=PASSWORD)
    study = study_create(name="Landmark review study", creator=coordinator)
    membership_set(study=study, user=rater, role=Role.RATER, actor=coordinator)
    photo = make_photo(study, subject_code="LR-001")
    dataset = services.dataset_create(study=study, name="review set", actor=coordinator)
    rng = np.random.default_rng(0)
    points = np.column_stack([rng.uniform(60, 200, 68), rng.uniform(60, 200, 68)])
    version = services.suggestions_create(
        dataset=dataset,
        photo=photo,
        instances=[Instance.from_points(points, Provenance("yolo-pose68@test", confidence=0.74))],
        note="browser test suggestion",
    )
    suggestion = version.instances.get()
    page = browser_page

    log_in("rita.rater", PASSWORD)
    page.goto(f"{live_server.url}/campaigns/datasets/{dataset.pk}/review/")
    page.click(f"text=#{suggestion.pk}")
    expect(page.locator("#provenance")).to_have_attribute("data-source", "yolo-pose68@test")
    expect(page.locator("#provenance")).to_contain_text("confidence 0.74")

    point = page.locator("#review-overlay circle.review-point").nth(DRAGGED)
    box = point.bounding_box()
    start_x, start_y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(start_x, start_y)
    page.mouse.down()
    page.mouse.move(start_x + 20, start_y + 10, steps=5)
    page.mouse.move(start_x + 40, start_y + 20, steps=5)
    page.mouse.up()
    expect(page.locator("#moved-count")).to_have_text("1")
    page.screenshot(path=SCREENSHOTS / "facet-browser-review-dragged.png", full_page=True)

    page.click("#review-accept")
    expect(page.locator(".messages")).to_contain_text("now a human label")
    expect(page.locator("#provenance")).to_have_attribute("data-source", "human")
    expect(page.locator("#provenance")).to_contain_text("human (rita.rater")
    expect(page.locator("#review-accept")).to_have_count(0)
    page.screenshot(path=SCREENSHOTS / "facet-browser-review-accepted.png", full_page=True)

    accepted = KeypointInstance.objects.get(derived_from=suggestion)
    assert accepted.source == "human" and accepted.labelled_by == rater
    moved = np.linalg.norm(np.asarray(accepted.keypoints) - np.asarray(suggestion.keypoints), axis=1)
    assert moved[DRAGGED] > 5 and np.count_nonzero(moved > 0.5) == 1
    assert dataset.latest_version.parent == version
