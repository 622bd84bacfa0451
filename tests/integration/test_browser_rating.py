"""Browser test of a blinded rating survey: a coordinator designs and opens it, external raters rate every
photo with the keyboard through their invitation links, the results page shows the reliability figures, and
a rater's browser reaches no other page or photo."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def _rate_everything_with_keys(page, keys: list[str]) -> None:
    total = int(page.locator("#progress").get_attribute("max"))
    assert total == len(keys)
    for done, key in enumerate(keys):
        page.wait_for_function(
            """done => { const r = document.getElementById('rater'), p = document.getElementById('photo');
                         return r.dataset.done === String(done) && r.dataset.ready === p.dataset.token
                                && !document.querySelector('.scale-button').disabled; }""",
            arg=done,
        )
        page.keyboard.press(key)
    page.wait_for_function("() => document.getElementById('rater').dataset.finished === '1'")
    assert page.locator("#finished").is_visible()


def test_blinded_survey_from_design_to_reliability(
    browser_page, live_server, log_in, study_with_members, make_photo
):
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"SUBJ{n}", visit_label=f"week-{n}") for n in range(4)]
    page = browser_page
    log_in("coordinator", PASSWORD)

    page.goto(f"{live_server.url}/ratings/studies/{study.pk}/new/")
    page.fill("#id_title", "Blinded browser survey")
    page.check("input[name=views][value=frontal]")
    page.fill("#id_repeat_percent", "0")
    page.click("button[type=submit]:has-text('Create survey')")
    page.wait_for_url(re.compile(r"/ratings/surveys/\d+/$"))
    page.click("#open-survey")
    page.wait_for_selector("#survey-status:has-text('Open for rating')")
    page.fill("#id_count", "2")
    page.click("#create-invitations")
    links = [field.input_value() for field in page.locator(".invitation-link").all()]
    assert len(links) == 2

    values = [["1", "3", "5", "7"], ["2", "3", "6", "7"]]
    # Each external rater in a fresh browser context: no cookie of the coordinator's session.
    browser = page.context.browser
    for link, keys in zip(links, values, strict=True):
        context = browser.new_context(viewport={"width": 390, "height": 844})  # a phone's screen
        rater = context.new_page()
        rater.set_default_timeout(30_000)
        image_urls = []
        rater.on("request", lambda request, urls=image_urls: urls.append(request.url))
        rater.goto(link)
        rater.wait_for_url(f"{live_server.url}/rate/")
        body = rater.content()
        for photo in photos:
            assert photo.visit.subject.code not in body and photo.visit.label not in body
        _rate_everything_with_keys(rater, keys)
        photo_requests = [url for url in image_urls if "/image" in url]
        assert len(photo_requests) >= len(keys)
        # Images come only under opaque per-presentation tokens: no photo id, subject or visit in the URL.
        opaque = re.compile(r"/rate/image/[A-Za-z0-9_-]{24}$")
        assert all(opaque.search(url) for url in photo_requests), photo_requests
        # Nothing else is reachable from the rater's browser.
        for path in (
            "/",
            f"/studies/{study.pk}/",
            f"/photos/{photos[0].pk}/image",
            f"/photos/{photos[0].pk}/",
            f"/ratings/surveys/{photos[0].pk}/results",
            "/jobs/",
            "/audit/",
        ):
            response = rater.goto(f"{live_server.url}{path}")
            assert "/accounts/login/" in rater.url, path
            assert response.ok  # the login page, not the content
        assert rater.request.get(f"{live_server.url}/api/studies/").status in (401, 403)
        assert rater.request.get(f"{live_server.url}/rate/image/not-a-token").status == 404
        context.close()

    page.goto(f"{live_server.url}/ratings/surveys/{study.rating_surveys.get().pk}/results")
    figures = page.locator("#reliability-figures")
    for name in ("icc2_1", "icc2_k", "alpha_ordinal", "split_half", "spearman_brown"):
        value = figures.locator(f"[data-figure={name}]").inner_text()
        assert re.fullmatch(r"-?\d\.\d{3}", value), (name, value)
    assert page.locator("#photo-figures tbody tr").count() == 4
    assert page.locator("figure.chart figcaption").is_visible()
