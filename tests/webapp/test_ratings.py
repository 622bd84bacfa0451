"""Rating studies: blinded surveys, single-use invitations, idempotent ratings, results, import/export."""

import io
import json
import re
import uuid

import pytest
from django.test import Client
from django.urls import reverse
from PIL import Image

from webapp.audit.models import AuditAction, AuditEvent
from webapp.ratings import selectors, services
from webapp.ratings.models import RaterKind, Rating, SurveyRater, SurveyStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def survey(study_with_members, make_photo):
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"S{n:03d}", visit_label="baseline") for n in range(4)]
    created = services.survey_create(
        study=study,
        actor=study_with_members["coordinator"],
        title="Blinded pilot",
        photos=photos,
        question="How normal does this face look?",
        anchors=["very abnormal", "", "", "", "", "", "completely normal"],
        region="whole",
        repeat_share=0.25,
        attention_checks=1,
        target_ratings_per_photo=2,
    )
    return services.survey_open(survey=created, actor=study_with_members["coordinator"])


def _invite(survey, coordinator, count=1):
    return services.invitations_create(survey=survey, count=count, actor=coordinator)


def _rate(client: Client, value: int, token: str | None = None, submission: str | None = None):
    state = client.get(reverse("rate:state")).json()
    body = {
        "token": token or state["current"],
        "rating": value,
        "submission_id": submission or str(uuid.uuid4()),
        "elapsed_ms": 900,
    }
    return client.post(reverse("rate:submit"), json.dumps(body), content_type="application/json")


def test_opening_prepares_metadata_free_images_and_an_attention_check(survey):
    items = list(survey.items.all())
    assert survey.status == SurveyStatus.OPEN
    assert sum(item.kind == "attention" for item in items) == 1
    for item in items:
        with item.image.open("rb") as handle:
            image = Image.open(io.BytesIO(handle.read()))
        assert image.format == "JPEG" and not image.info.get("exif") and not image.info.get("icc_profile")
        assert re.fullmatch(r"ratings/[0-9a-f]{32}\.jpg", item.image.name)


def test_invitation_binds_one_browser_and_shows_nothing_identifying(survey, study_with_members):
    invitation = _invite(survey, study_with_members["coordinator"])[0]
    rater_browser = Client()
    claimed = rater_browser.get(reverse("rate:claim", args=[invitation.token]))
    assert claimed.status_code == 302 and claimed["Location"] == reverse("rate:page")
    page = rater_browser.get(reverse("rate:page"))
    state = rater_browser.get(reverse("rate:state")).json()
    text = page.content.decode() + json.dumps(state)
    for item in survey.items.filter(photo__isnull=False).select_related("photo__visit__subject"):
        assert item.photo.visit.subject.code not in text and f"photo-{item.photo_id}" not in text
    assert "baseline" not in text and "Blinded pilot" not in text
    assert state["total"] == 4 + 1 + 1  # photos, one repeat (25 %), one attention check
    # The link is single-use: another browser is refused, the same browser resumes.
    assert Client().get(reverse("rate:claim", args=[invitation.token])).status_code == 410
    assert rater_browser.get(reverse("rate:claim", args=[invitation.token])).status_code == 302
    assert AuditEvent.objects.filter(summary__contains="opened the invitation").count() == 1


def test_external_rater_reaches_nothing_else(survey, study_with_members, make_photo):
    invitation = _invite(survey, study_with_members["coordinator"], count=2)
    browser = Client()
    browser.get(reverse("rate:claim", args=[invitation[0].token]))
    other = Client()
    other.get(reverse("rate:claim", args=[invitation[1].token]))
    other_token = other.get(reverse("rate:state")).json()["current"]
    assert browser.get(reverse("rate:image", args=[other_token])).status_code == 404
    photo = survey.items.filter(photo__isnull=False).first().photo
    for url in (
        reverse("studies:study_list"),
        reverse("studies:study_detail", args=[survey.study_id]),
        reverse("studies:photo_image", args=[photo.pk]),
        reverse("ratings:survey_results", args=[survey.pk]),
        reverse("ratings:study_surveys", args=[survey.study_id]),
    ):
        response = browser.get(url)
        assert response.status_code == 302 and response["Location"].startswith(reverse("login")), url
    assert browser.get("/api/studies/").status_code in (401, 403)
    own = browser.get(reverse("rate:state")).json()["current"]
    image = browser.get(reverse("rate:image", args=[own]))
    assert image.status_code == 200 and image["Content-Type"] == "image/jpeg"
    assert (
        "filename" not in image.get("Content-Disposition", "") and image["Referrer-Policy"] == "no-referrer"
    )


def test_a_retried_submission_is_stored_once_and_order_is_enforced(survey, study_with_members):
    invitation = _invite(survey, study_with_members["coordinator"])[0]
    browser = Client()
    browser.get(reverse("rate:claim", args=[invitation.token]))
    submission = str(uuid.uuid4())
    first = _rate(browser, 5, submission=submission)
    state_before = first.json()["state"]
    token = browser.get(reverse("rate:state")).json()["current"]
    assert first.status_code == 201
    retried = browser.post(
        reverse("rate:submit"),
        json.dumps({"token": token, "rating": 5, "submission_id": submission}),
        content_type="application/json",
    )
    assert retried.status_code == 200 and retried.json()["stored"] is False
    assert Rating.objects.filter(rater=invitation.rater).count() == 1
    state = browser.get(reverse("rate:state")).json()
    skip = browser.get(reverse("rate:state")).json()["next"]
    assert _rate(browser, 3, token=skip).status_code == 409
    assert _rate(browser, 9).status_code == 400
    assert state["done"] == state_before["done"] == 1


def test_undo_withdraws_the_last_rating_and_shows_that_photo_again(survey, study_with_members):
    invitation = _invite(survey, study_with_members["coordinator"])[0]
    browser = Client()
    browser.get(reverse("rate:claim", args=[invitation.token]))
    first_token = browser.get(reverse("rate:state")).json()["current"]
    _rate(browser, 2)
    undone = browser.post(reverse("rate:undo")).json()
    assert undone["undone"] and undone["state"]["current"] == first_token and undone["state"]["done"] == 0
    assert Rating.objects.get(rater=invitation.rater).undone_at is not None
    assert _rate(browser, 6).status_code == 201


def _complete(browser: Client, value_of) -> None:
    """Rate every presentation: attention checks as asked, photos by `value_of(item)`."""
    rater = SurveyRater.objects.get(pk=browser.session["facet_rater_id"])
    while (state := browser.get(reverse("rate:state")).json())["current"]:
        item = selectors.rater_assignment(rater, state["current"]).item
        value = item.expected_rating if item.expected_rating else value_of(item)
        assert _rate(browser, value).status_code == 201


def test_results_show_reliability_and_flag_a_straight_liner(survey, study_with_members, client):
    coordinator = study_with_members["coordinator"]
    photo_items = list(survey.items.filter(kind="photo").order_by("id"))
    for index, invitation in enumerate(_invite(survey, coordinator, count=4)):
        browser = Client()
        browser.get(reverse("rate:claim", args=[invitation.token]))
        straight = index == 3
        _complete(
            browser,
            lambda item, straight=straight, index=index: (
                4 if straight else 1 + photo_items.index(item) + index % 2
            ),
        )
    client.force_login(coordinator)
    page = client.get(reverse("ratings:survey_results", args=[survey.pk]))
    assert page.status_code == 200
    text = page.content.decode()
    for figure in ("ICC(2,1)", "ICC(2,k)", "Krippendorff", "Spearman–Brown"):
        assert figure in text
    results = selectors.survey_results(survey)
    assert results.report.icc is not None and results.report.alpha_ordinal is not None
    straight = next(row for row in results.raters if row.rater.label == "R04")
    assert "gave the same rating to every photo" in straight.summary.flags or straight.summary.n < 5
    assert AuditEvent.objects.filter(
        action=AuditAction.VIEW, summary__contains="results of rating survey"
    ).exists()
    # Exclusion is audited and reversible, and changes the figures.
    url = reverse("ratings:rater_exclusion", args=[survey.pk, straight.rater.pk])
    client.post(url, {"excluded": "on", "reason": "straight-lining"})
    assert selectors.survey_results(survey).report.n_raters == 3
    client.post(url, {})
    assert selectors.survey_results(survey).report.n_raters == 4
    assert AuditEvent.objects.filter(summary__contains="rater R04").count() == 2


def test_export_and_import_round_trip(survey, study_with_members, client):
    coordinator = study_with_members["coordinator"]
    for invitation in _invite(survey, coordinator, count=2):
        browser = Client()
        browser.get(reverse("rate:claim", args=[invitation.token]))
        _complete(browser, lambda item: 3)
    client.force_login(coordinator)
    exported = client.get(reverse("ratings:survey_export", args=[survey.pk]))
    assert exported.status_code == 200 and exported["Cache-Control"] == "private, no-store"
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, object_id=str(survey.pk)).exists()
    content = exported.content
    assert content.splitlines()[0].startswith(b"item,rater,rating")
    response = client.post(
        reverse("ratings:ratings_import", args=[survey.study_id]),
        {
            "file": io.BytesIO(content),
            "title": "Round trip",
            "item_column": "item",
            "rater_column": "rater",
            "rating_column": "rating",
            "scale_min": 1,
            "scale_max": 7,
        },
    )
    assert response.status_code == 302
    imported = survey.study.rating_surveys.get(title="Round trip")
    assert (
        Rating.objects.filter(rater__survey=imported).count()
        == Rating.objects.filter(rater__survey=survey).count()
    )
    assert imported.items.filter(photo__isnull=False).count() == 4
    assert imported.raters.filter(kind=RaterKind.IMPORTED).count() == 2


def test_import_names_the_bad_row_and_stores_nothing(study_with_members):
    study = study_with_members["study"]
    content = b"item,rater,rating\na,r1,3\nb,r1,seven\n"
    with pytest.raises(Exception, match="Line 3"):
        services.ratings_import(
            study=study,
            content=content,
            title="Bad",
            item_column="item",
            rater_column="rater",
            rating_column="rating",
            scale_min=1,
            scale_max=7,
            actor=study_with_members["coordinator"],
        )
    assert not study.rating_surveys.exists()


def test_roles_results_are_for_coordinators_and_members_rate_in_their_own_session(survey, study_with_members):
    rater, outsider = Client(), Client()
    rater.force_login(study_with_members["rater"])
    outsider.force_login(study_with_members["outsider"])
    assert rater.get(reverse("ratings:survey_results", args=[survey.pk])).status_code == 403
    assert outsider.get(reverse("ratings:survey_results", args=[survey.pk])).status_code == 404
    assert rater.get(reverse("ratings:member_rate", args=[survey.pk])).status_code == 302
    assert _rate(rater, 4).status_code == 201
    member = survey.raters.get(kind=RaterKind.MEMBER)
    assert member.user == study_with_members["rater"]
    # Another user cannot reuse the member's session binding.
    rater.force_login(study_with_members["clinician"])
    assert rater.get(reverse("rate:state")).status_code == 404


def test_closed_survey_takes_no_more_ratings(survey, study_with_members):
    invitation = _invite(survey, study_with_members["coordinator"])[0]
    browser = Client()
    browser.get(reverse("rate:claim", args=[invitation.token]))
    services.survey_close(survey=survey, actor=study_with_members["coordinator"])
    assert _rate(browser, 3).status_code == 409


def test_crop_needs_landmarks(study_with_members, make_photo):
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"C{n}") for n in range(2)]
    draft = services.survey_create(
        study=study,
        actor=study_with_members["coordinator"],
        title="Crop",
        photos=photos,
        question="Q",
        anchors=[],
        region="mouth_nose",
        repeat_share=0,
        attention_checks=0,
        target_ratings_per_photo=5,
    )
    with pytest.raises(Exception, match="landmarks"):
        services.survey_open(survey=draft, actor=study_with_members["coordinator"])
