"""Changes to rating studies: surveys, invitations, ratings, exclusions, imports and regressor fits.

Every change a coordinator makes is audited (one row per change). A rating is stored at most once per
presentation whatever the network does: the client sends a submission id, a retried submission returns
the stored rating, and the database refuses a second active rating of the same presentation.
"""

import csv
import hashlib
import io
import random
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.files.base import ContentFile
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.analysis.models import ModelVersion
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.ratings.images import CropUnavailable, attention_image, blinded_image
from webapp.ratings.models import (
    Assignment,
    ItemKind,
    RaterKind,
    Rating,
    RegressorFit,
    Survey,
    SurveyItem,
    SurveyRater,
    SurveySource,
    SurveyStatus,
)
from webapp.runs import dispatch
from webapp.runs.models import ACTIVE_STATUSES
from webapp.runs.services import run_succeed
from webapp.studies.models import Photo, Study

MAX_INVITATIONS_AT_ONCE = 500
MIN_ITEMS_FOR_FIT = 10
# A repeated photo comes back at least this many presentations after its first showing.
MIN_REPEAT_DISTANCE = 3
MAX_IMPORT_ROWS = 1_000_000


class RatingStateError(Exception):
    """The survey or rater is not in a state that allows the change; the message says why."""


def invitation_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# Surveys ---------------------------------------------------------------------------------------------


def _clean_anchors(anchors: Sequence[str], points: int) -> list[str]:
    cleaned = [str(anchor).strip()[:80] for anchor in anchors][:points]
    return cleaned + [""] * (points - len(cleaned))


@transaction.atomic
def survey_create(
    *,
    study: Study,
    actor: AbstractBaseUser,
    title: str,
    photos: Sequence[Photo],
    question: str,
    anchors: Sequence[str],
    region: str,
    repeat_share: float,
    attention_checks: int,
    target_ratings_per_photo: int,
    request: HttpRequest | None = None,
) -> Survey:
    """A draft survey of these photos (all of the study); open it to start rating."""
    foreign = [photo.pk for photo in photos if photo.study_id != study.pk]
    if foreign:
        raise ValidationError("Every photo of a survey must belong to its study.")
    if len(photos) < 2:
        raise ValidationError("Choose at least 2 photos to rate.")
    survey = Survey(
        study=study,
        title=title.strip(),
        question=question.strip(),
        anchors=_clean_anchors(anchors, 7),
        region=region,
        repeat_share=repeat_share,
        attention_checks=attention_checks,
        target_ratings_per_photo=target_ratings_per_photo,
        created_by=actor,
    )
    survey.full_clean()
    survey.save()
    SurveyItem.objects.bulk_create(
        [SurveyItem(survey=survey, photo=photo, code=f"photo-{photo.pk}") for photo in photos]
    )
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created rating survey {survey.title!r} of {len(photos)} photo(s)",
        actor=actor,
        target=survey,
        request=request,
        details={"photos": [photo.pk for photo in photos], "region": region},
    )
    return survey


def survey_open(*, survey: Survey, actor: AbstractBaseUser, request: HttpRequest | None = None) -> Survey:
    """Prepare every item's blinded image (and the attention-check cards), then open the survey."""
    if survey.source != SurveySource.COLLECTED:
        raise RatingStateError("Imported ratings cannot be opened for rating.")
    if survey.status == SurveyStatus.OPEN:
        return survey
    items = list(survey.items.filter(kind=ItemKind.PHOTO).select_related("photo"))
    problems, images = [], {}
    for item in items:
        try:
            images[item.pk] = blinded_image(item.photo, survey.region)
        except CropUnavailable as error:
            problems.append(f"Photo {item.photo_id} {error}.")
    if problems:
        raise ValidationError(problems)
    with transaction.atomic():
        locked = Survey.objects.select_for_update().get(pk=survey.pk)
        if locked.status == SurveyStatus.OPEN:
            return locked
        for item in items:
            if not item.image:
                item.image.save("item.jpg", ContentFile(images[item.pk]), save=True)
        existing_checks = locked.items.filter(kind=ItemKind.ATTENTION).count()
        for index in range(existing_checks, locked.attention_checks):
            expected = random.SystemRandom().randint(locked.scale_min, locked.scale_max)
            check = SurveyItem(
                survey=locked,
                code=f"attention-{index + 1}",
                kind=ItemKind.ATTENTION,
                expected_rating=expected,
            )
            check.image.save("item.jpg", ContentFile(attention_image(expected)), save=False)
            check.save()
        previous = locked.status
        locked.status = SurveyStatus.OPEN
        locked.opened_at = locked.opened_at or timezone.now()
        locked.closed_at = None
        locked.save(update_fields=["status", "opened_at", "closed_at"])
        audit_record(
            action=AuditAction.STATE,
            summary=f"Opened rating survey {locked.title!r}",
            actor=actor,
            target=locked,
            request=request,
            details={"from": previous, "to": SurveyStatus.OPEN},
        )
    return locked


@transaction.atomic
def survey_close(*, survey: Survey, actor: AbstractBaseUser, request: HttpRequest | None = None) -> Survey:
    if survey.status != SurveyStatus.OPEN:
        raise RatingStateError("Only an open survey can be closed.")
    survey.status = SurveyStatus.CLOSED
    survey.closed_at = timezone.now()
    survey.save(update_fields=["status", "closed_at"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Closed rating survey {survey.title!r}",
        actor=actor,
        target=survey,
        request=request,
        details={"from": SurveyStatus.OPEN, "to": SurveyStatus.CLOSED},
    )
    return survey


# Raters ----------------------------------------------------------------------------------------------


def _next_label(survey: Survey, prefix: str) -> str:
    taken = set(survey.raters.filter(label__startswith=prefix).values_list("label", flat=True))
    number = len(taken) + 1
    while f"{prefix}{number:02d}" in taken:
        number += 1
    return f"{prefix}{number:02d}"


@dataclass(frozen=True)
class Invitation:
    rater: SurveyRater
    token: str


@transaction.atomic
def invitations_create(
    *, survey: Survey, count: int, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> list[Invitation]:
    """``count`` single-use invitation links for external raters; the tokens are shown once, only their
    SHA-256 is stored."""
    if survey.source != SurveySource.COLLECTED or survey.status == SurveyStatus.CLOSED:
        raise RatingStateError("Invitations are for surveys that are still to be rated.")
    if not 1 <= count <= MAX_INVITATIONS_AT_ONCE:
        raise ValidationError(f"Create between 1 and {MAX_INVITATIONS_AT_ONCE} invitations at a time.")
    invitations = []
    for _ in range(count):
        token = secrets.token_urlsafe(24)
        rater = SurveyRater.objects.create(
            survey=survey,
            label=_next_label(survey, "R"),
            kind=RaterKind.EXTERNAL,
            invitation_sha256=invitation_digest(token),
        )
        invitations.append(Invitation(rater, token))
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created {count} invitation link(s) for rating survey {survey.title!r}",
        actor=actor,
        target=survey,
        request=request,
        details={"raters": [invitation.rater.label for invitation in invitations]},
    )
    return invitations


@transaction.atomic
def invitation_revoke(
    *, rater: SurveyRater, actor: AbstractBaseUser, request: HttpRequest | None = None
) -> None:
    if rater.kind != RaterKind.EXTERNAL or rater.revoked_at:
        return
    rater.revoked_at = timezone.now()
    rater.save(update_fields=["revoked_at"])
    audit_record(
        action=AuditAction.STATE,
        summary=f"Revoked the invitation of rater {rater.label}",
        actor=actor,
        target=rater.survey,
        request=request,
        details={"rater": rater.label},
    )


def invitation_claim(
    *, token: str, claimed_rater_id: int | None, request: HttpRequest | None = None
) -> SurveyRater:
    """The rater of an invitation link. The first opening binds the link to that browser (the caller keeps
    the rater id in its session); any later opening from elsewhere is refused."""
    with transaction.atomic():
        rater = (
            SurveyRater.objects.select_for_update()
            .select_related("survey")
            .filter(invitation_sha256=invitation_digest(token), kind=RaterKind.EXTERNAL)
            .first()
        )
        if rater is None or rater.revoked_at is not None:
            raise RatingStateError("This invitation link is not valid.")
        if rater.claimed_at is not None:
            if claimed_rater_id == rater.pk:
                return rater
            raise RatingStateError("This invitation link has already been used in another browser.")
        if rater.survey.status != SurveyStatus.OPEN:
            raise RatingStateError("This survey is not open for ratings.")
        rater.claimed_at = timezone.now()
        rater.save(update_fields=["claimed_at"])
        _ensure_assignments(rater)
    audit_record(
        action=AuditAction.STATE,
        summary=f"Rater {rater.label} opened the invitation to survey {rater.survey.title!r}",
        target=rater.survey,
        request=request,
        details={"rater": rater.label},
    )
    return rater


@transaction.atomic
def member_rater(*, survey: Survey, user: AbstractBaseUser) -> SurveyRater:
    """The study member's rater record in the survey (created on first use), with its random order."""
    if survey.status != SurveyStatus.OPEN:
        raise RatingStateError("This survey is not open for ratings.")
    rater = SurveyRater.objects.select_for_update().filter(survey=survey, user=user).first()
    if rater is None:
        rater = SurveyRater.objects.create(
            survey=survey,
            user=user,
            label=_next_label(survey, "M"),
            kind=RaterKind.MEMBER,
            claimed_at=timezone.now(),
        )
    _ensure_assignments(rater)
    return rater


def presentation_order(
    photo_items: Sequence[int], attention_items: Sequence[int], repeat_share: float, rng: random.Random
) -> list[tuple[int, bool]]:
    """``(item id, is_repeat)`` in presentation order: photos shuffled, a share of them shown again at
    least :data:`MIN_REPEAT_DISTANCE` presentations later, attention checks at random places."""
    order = [(item, False) for item in photo_items]
    rng.shuffle(order)
    repeats = rng.sample(list(photo_items), round(repeat_share * len(photo_items)))
    for item in repeats:
        first = next(index for index, (candidate, repeated) in enumerate(order) if candidate == item)
        start = min(first + MIN_REPEAT_DISTANCE + 1, len(order))
        order.insert(rng.randint(start, len(order)), (item, True))
    for item in attention_items:
        order.insert(rng.randint(1, len(order)), (item, False))
    return order


def _ensure_assignments(rater: SurveyRater) -> None:
    if rater.assignments.exists():
        return
    survey = rater.survey
    photo_items = list(survey.items.filter(kind=ItemKind.PHOTO).values_list("pk", flat=True))
    attention_items = list(survey.items.filter(kind=ItemKind.ATTENTION).values_list("pk", flat=True))
    order = presentation_order(photo_items, attention_items, survey.repeat_share, random.SystemRandom())
    Assignment.objects.bulk_create(
        [
            Assignment(rater=rater, item_id=item, position=position, is_repeat=repeated)
            for position, (item, repeated) in enumerate(order)
        ]
    )
    rater.presentations = len(order)
    rater.save(update_fields=["presentations"])


# Rating ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SubmitOutcome:
    rating: Rating
    created: bool
    done: int


def rating_submit(
    *, rater: SurveyRater, token: str, value: int, submission_id: uuid.UUID, elapsed_ms: int | None
) -> SubmitOutcome:
    """Store the rating of the rater's current presentation once.

    A resubmission with the same id returns the stored rating; a rating of a presentation that already has
    one (another tab, an old page) is refused, as is one that skips ahead of the rater's order.
    """
    survey = rater.survey
    if survey.status != SurveyStatus.OPEN:
        raise RatingStateError("This survey is closed; no more ratings are taken.")
    if not survey.scale_min <= value <= survey.scale_max:
        raise ValidationError(f"A rating is a whole number from {survey.scale_min} to {survey.scale_max}.")
    assignment = Assignment.objects.filter(rater=rater, token=token).first()
    if assignment is None:
        raise RatingStateError("No such photo in your survey.")
    expected = active_rating_count(rater)
    if assignment.position != expected:
        previous = Rating.objects.filter(submission_id=submission_id).first()
        if previous is not None and previous.rater_id == rater.pk:
            return SubmitOutcome(previous, created=False, done=expected)  # a retried submission
        raise RatingStateError("This photo is not the one to rate now; reload the page.")
    try:
        with transaction.atomic():
            rating = Rating.objects.create(
                rater=rater,
                item_id=assignment.item_id,
                assignment=assignment,
                value=value,
                elapsed_ms=elapsed_ms,
                submission_id=submission_id,
            )
    except IntegrityError:
        # The same submission arrived twice at once, or this presentation was rated meanwhile.
        previous = Rating.objects.filter(submission_id=submission_id, rater=rater).first()
        if previous is not None:
            return SubmitOutcome(previous, created=False, done=active_rating_count(rater))
        raise RatingStateError("This photo has already been rated; reload the page.") from None
    if rater.completed_at is None and assignment.position + 1 == rater.presentations:
        SurveyRater.objects.filter(pk=rater.pk, completed_at__isnull=True).update(completed_at=timezone.now())
    return SubmitOutcome(rating, created=True, done=expected + 1)


def active_rating_count(rater: SurveyRater) -> int:
    return Rating.objects.filter(rater=rater, undone_at__isnull=True).count()


@transaction.atomic
def rating_undo(*, rater: SurveyRater) -> Rating | None:
    """Withdraw the rater's last rating (kept, marked undone); that photo is shown again."""
    if rater.survey.status != SurveyStatus.OPEN:
        raise RatingStateError("This survey is closed; ratings can no longer be changed.")
    last = (
        Rating.objects.select_for_update()
        .filter(rater=rater, undone_at__isnull=True, assignment__isnull=False)
        .order_by("-assignment__position")
        .first()
    )
    if last is None:
        return None
    last.undone_at = timezone.now()
    last.save(update_fields=["undone_at"])
    SurveyRater.objects.filter(pk=rater.pk).update(completed_at=None)
    return last


@transaction.atomic
def rater_set_excluded(
    *,
    rater: SurveyRater,
    excluded: bool,
    reason: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> SurveyRater:
    """Leave a rater's ratings out of (or back in) every figure; the ratings themselves are kept."""
    if rater.excluded == excluded:
        return rater
    rater.excluded = excluded
    rater.exclusion_reason = reason.strip()[:300] if excluded else ""
    rater.save(update_fields=["excluded", "exclusion_reason"])
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"{'Excluded' if excluded else 'Included again'} rater {rater.label} "
        f"in survey {rater.survey.title!r}",
        actor=actor,
        target=rater.survey,
        request=request,
        details={"rater": rater.label, "excluded": excluded, "reason": rater.exclusion_reason},
    )
    return rater


# Import ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOutcome:
    survey: Survey
    ratings: int
    items: int
    linked_items: int
    raters: int


def ratings_import(
    *,
    study: Study,
    content: bytes,
    title: str,
    item_column: str,
    rater_column: str,
    rating_column: str,
    scale_min: int,
    scale_max: int,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
) -> ImportOutcome:
    """A survey of ratings collected elsewhere, from a long CSV (one row per item, rater and rating).

    Items named ``photo-<id>`` (as Facet exports them) are linked to that photo of the study; other items
    are kept by name (usable for reliability, not for fitting). The whole file is checked first: a bad
    row stores nothing and the message names it.
    """
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise ValidationError("The file is not UTF-8 text; save it as CSV (UTF-8).") from error
    reader = csv.DictReader(io.StringIO(text))
    columns = [item_column, rater_column, rating_column]
    missing = [column for column in columns if column not in (reader.fieldnames or [])]
    if missing:
        found = ", ".join(reader.fieldnames or []) or "none"
        raise ValidationError(f"The CSV has no column {', '.join(missing)} (its columns: {found}).")
    rows = []
    for number, row in enumerate(reader, start=2):
        if number > MAX_IMPORT_ROWS + 1:
            raise ValidationError(f"At most {MAX_IMPORT_ROWS:,} ratings can be imported at once.")
        item, rater = (row[item_column] or "").strip(), (row[rater_column] or "").strip()
        try:
            value = float(row[rating_column])
        except (TypeError, ValueError):
            raise ValidationError(
                f"Line {number}: the rating {row[rating_column]!r} is not a number."
            ) from None
        if not item or not rater:
            raise ValidationError(f"Line {number}: the item or the rater is empty.")
        if not scale_min <= value <= scale_max:
            raise ValidationError(f"Line {number}: the rating {value:g} is outside {scale_min}–{scale_max}.")
        rows.append((item[:200], rater[:100], value))
    if not rows:
        raise ValidationError("The CSV holds no ratings.")
    photos = {f"photo-{pk}": pk for pk in Photo.objects.filter(study=study).values_list("pk", flat=True)}
    with transaction.atomic():
        survey = Survey(
            study=study,
            title=title.strip() or "Imported ratings",
            question="(imported ratings)",
            anchors=[""] * 7,
            scale_min=scale_min,
            scale_max=scale_max,
            repeat_share=0,
            status=SurveyStatus.CLOSED,
            source=SurveySource.IMPORTED,
            created_by=actor,
        )
        survey.full_clean()
        survey.save()
        item_names = list(dict.fromkeys(item for item, _, _ in rows))
        items = {
            item.code: item
            for item in SurveyItem.objects.bulk_create(
                [SurveyItem(survey=survey, code=name, photo_id=photos.get(name)) for name in item_names]
            )
        }
        rater_names = list(dict.fromkeys(rater for _, rater, _ in rows))
        raters = {
            rater.label: rater
            for rater in SurveyRater.objects.bulk_create(
                [SurveyRater(survey=survey, label=name, kind=RaterKind.IMPORTED) for name in rater_names]
            )
        }
        Rating.objects.bulk_create(
            [Rating(rater=raters[rater], item=items[item], value=value) for item, rater, value in rows],
            batch_size=5000,
        )
        linked = sum(1 for name in item_names if name in photos)
        audit_record(
            action=AuditAction.CREATE,
            summary=f"Imported {len(rows)} ratings into {survey.title!r}",
            actor=actor,
            target=survey,
            request=request,
            details={
                "ratings": len(rows),
                "items": len(item_names),
                "linked_items": linked,
                "raters": len(rater_names),
                "file_sha256": hashlib.sha256(content).hexdigest(),
            },
        )
    return ImportOutcome(survey, len(rows), len(item_names), linked, len(rater_names))


def export_audit(
    *, survey: Survey, actor: AbstractBaseUser, rows: int, request: HttpRequest | None = None
) -> None:
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported the ratings of {survey.title!r} as CSV",
        actor=actor,
        target=survey,
        request=request,
        details={"rows": rows},
    )


# Regressor fits ----------------------------------------------------------------------------------------
# A fit is a run (webapp.runs): the worker claims it, reports progress and fails through the shared
# lifecycle; the fitted version is activated per study like any model version
# (webapp.analysis.services.study_model_version_set).


@transaction.atomic
def fit_start(
    *, survey: Survey, parameters: dict[str, Any], actor: AbstractBaseUser, request: HttpRequest | None = None
) -> RegressorFit:
    """Queue a fit of the rating regressor on the survey's ratings of its study's photos."""
    linked = survey.items.filter(kind=ItemKind.PHOTO, photo__isnull=False, ratings__isnull=False).distinct()
    if linked.count() < MIN_ITEMS_FOR_FIT:
        raise RatingStateError(
            f"A fit needs ratings of at least {MIN_ITEMS_FOR_FIT} photos of this study; this survey has "
            f"{linked.count()}."
        )
    if RegressorFit.objects.filter(survey=survey, status__in=ACTIVE_STATUSES).exists():
        raise RatingStateError("A fit of this survey is already queued or running.")
    fit = RegressorFit.objects.create(
        study=survey.study,
        survey=survey,
        parameters=parameters,
        requested_by=actor,
        progress_message="Queued",
    )
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Started rating-regressor fit {fit.pk} on {survey.title!r}",
        actor=actor,
        target=fit,
        request=request,
        details={"parameters": parameters},
    )
    dispatch.send_run_on_commit(fit)
    return fit


def fit_succeed(*, fit_id: int, attempt: int, metrics: dict[str, Any], model_version: ModelVersion) -> bool:
    """Finish the claimed attempt of a fit with its figures and the model version it registered."""

    def record(run: RegressorFit) -> None:
        run.metrics = metrics
        run.model_version = model_version

    message = f"Registered {model_version.name} {model_version.version}"
    return (
        run_succeed(RegressorFit, run_id=fit_id, attempt=attempt, message=message, record=record) is not None
    )
