"""The admins' queue page in a real browser: a running campaign and a running training job show their
progress live (the one progress widget, static/js/runs.js), and each is cancelled from the page."""

import pytest

from webapp.campaigns.models import Campaign, KeypointDataset
from webapp.labeling.models import TrainingJob
from webapp.runs import services
from webapp.runs.models import RunStatus

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "a long browser-test password"


def test_running_campaign_and_training_show_live_progress_and_are_cancelled_from_the_queue(
    live_server, browser_page, log_in, make_user, study_with_members
):
    from playwright.sync_api import expect

    study = study_with_members["study"]
    dataset = KeypointDataset.objects.create(study=study, name="faces")
    runs = {
        "campaign": Campaign.objects.create(study=study, dataset=dataset, name="first"),
        "training": TrainingJob.objects.create(study=study, label_ids=[1, 2, 3, 4]),
    }
    attempts = {}
    for kind, run in runs.items():
        claim = services.run_claim(type(run), run_id=run.pk, worker="gpu-worker@host")
        attempts[kind] = claim.attempt
        services.run_progress(
            type(run), run_id=run.pk, attempt=claim.attempt, fraction=0.2, message="Epoch 1"
        )
    make_user("siteadmin", staff=True, password=PASSWORD)
    page = browser_page
    log_in("siteadmin", PASSWORD)
    page.goto(f"{live_server.url}/jobs/")
    rows = {kind: page.locator(f"tr[data-run-row='{kind}-{run.pk}']") for kind, run in runs.items()}
    for kind, row in rows.items():
        expect(row.locator("[data-role=status]")).to_have_text("Running")
        expect(row.locator("[data-role=message]")).to_have_text("Epoch 1")
        run = runs[kind]
        services.run_progress(
            type(run), run_id=run.pk, attempt=attempts[kind], fraction=0.6, message="Epoch 3"
        )
        expect(row.locator("[data-role=message]")).to_have_text("Epoch 3")  # polled, no page reload
        page.wait_for_function(
            "el => Math.abs(el.value - 0.6) < 1e-6", arg=row.locator("[data-role=progress]").element_handle()
        )
    page.screenshot(path="/tmp/facet-browser-queue.png", full_page=True)
    for kind, row in rows.items():
        row.locator("[data-role=cancel] button").click()
        row = page.locator(f"tr[data-run-row='{kind}-{runs[kind].pk}']")
        expect(row.locator("[data-role=status]")).to_have_text("Cancelled")
        expect(row.locator("[data-role=retry]")).to_be_visible()
    for run in runs.values():
        run.refresh_from_db()
        assert run.status == RunStatus.CANCELLED
