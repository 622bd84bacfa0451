"""Browser test of a blinded rating survey: a coordinator designs and opens it, external raters rate every
photo with the keyboard through their invitation links, the results page shows the reliability figures, and
a rater's browser reaches no other page or photo."""

import re

import pytest

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

PASSWORD = "correct horse battery"


def _rate_everything_with_keys(page, value_of_photo) -> int:
    """Answer each photo shown with its key; the test (not the page) looks up which photo a token is."""
    from webapp.ratings.models import Assignment

    total = int(page.locator("#progress").get_attribute("max"))
    for done in range(total):
        page.wait_for_function(
            """done => { const r = document.getElementById('rater'), p = document.getElementById('photo');
                         return r.dataset.done === String(done) && r.dataset.ready === p.dataset.token
                                && !document.querySelector('.scale-button').disabled; }""",
            arg=done,
        )
        token = page.locator("#photo").get_attribute("data-token")
        photo = Assignment.objects.select_related("item").get(token=token).item.photo
        page.keyboard.press(str(value_of_photo(photo)))
    page.wait_for_function("() => document.getElementById('rater').dataset.finished === '1'")
    assert page.locator("#finished").is_visible()
    return total


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

    # Two raters who broadly agree: photo n gets 1 + 2n from the first, 2 + 2n (capped at 7) from the second.
    offsets = [0, 1]
    # Each external rater in a fresh browser context: no cookie of the coordinator's session.
    browser = page.context.browser
    for link, offset in zip(links, offsets, strict=True):
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
        rated = _rate_everything_with_keys(
            rater, lambda photo, offset=offset: min(7, 1 + 2 * photos.index(photo) + offset)
        )
        assert rated == len(photos)
        photo_requests = [url for url in image_urls if "/image" in url]
        assert len(photo_requests) >= len(photos)
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
