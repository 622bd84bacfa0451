"""Read queries of rating studies: surveys a user may see, a survey's ratings, live results, the rater's
state, and the rating regressor a study's normality jobs use."""

from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db.models import Count, Q, QuerySet
from django.http import Http404

from ml.model_names import NORMALITY_REGRESSOR
from ml.ratings.agreement import sign_agreement
from ml.ratings.reliability import (
    ItemSummary,
    RaterSummary,
    ReliabilityReport,
    item_summaries,
    rater_summaries,
)
from ml.ratings.reliability import reliability as panel_reliability
from webapp.analysis.kinds import AnalysisKind
from webapp.analysis.models import ModelVersion
from webapp.analysis.selectors import active_model_version, latest_result
from webapp.ratings.models import (
    Assignment,
    ItemKind,
    Rating,
    RegressorFit,
    Survey,
    SurveyItem,
    SurveyRater,
)
from webapp.studies.access import Capability, require
from webapp.studies.models import Comparison, Study

User = AbstractBaseUser | AnonymousUser


def get_survey(user: User, survey_id: int, capability: Capability = Capability.VIEW) -> Survey:
    survey = Survey.objects.select_related("study").filter(pk=survey_id).first()
    if survey is None:
        raise Http404("No such survey.")
    require(user, survey.study, capability)
    return survey


def get_fit(user: User, fit_id: int, capability: Capability = Capability.VIEW) -> RegressorFit:
    fit = RegressorFit.objects.select_related("study", "survey", "model_version").filter(pk=fit_id).first()
    if fit is None:
        raise Http404("No such fit.")
    require(user, fit.study, capability)
    return fit


def surveys_of_study(study: Study) -> QuerySet[Survey]:
    return study.rating_surveys.annotate(
        item_count=Count("items", filter=Q(items__kind=ItemKind.PHOTO), distinct=True),
        rater_count=Count("raters", distinct=True),
        rating_count=Count(
            "raters__ratings", filter=Q(raters__ratings__undone_at__isnull=True), distinct=True
        ),
    )


def active_ratings(survey: Survey) -> QuerySet[Rating]:
    """Ratings in force (not undone), first presentations before repeats, in the order they were given."""
    return (
        Rating.objects.filter(rater__survey=survey, undone_at__isnull=True)
        .select_related("rater", "item", "assignment")
        .order_by("rater_id", "assignment__position", "id")
    )


@dataclass
class SurveyRatings:
    """A survey's ratings as frames for ml.ratings: photo ratings of included raters, of all raters, and
    attention-check answers."""

    included: pd.DataFrame
    everyone: pd.DataFrame
    attention: pd.DataFrame


def survey_ratings(survey: Survey) -> SurveyRatings:
    rows = list(
        active_ratings(survey).values_list(
            "item__code", "rater__label", "value", "item__kind", "item__expected_rating", "rater__excluded"
        )
    )
    photo_rows = [row for row in rows if row[3] == ItemKind.PHOTO]
    everyone = pd.DataFrame([row[:3] for row in photo_rows], columns=["item", "rater", "rating"])
    included = pd.DataFrame(
        [row[:3] for row in photo_rows if not row[5]], columns=["item", "rater", "rating"]
    )
    attention = pd.DataFrame(
        [(row[1], row[4], row[2]) for row in rows if row[3] == ItemKind.ATTENTION],
        columns=["rater", "expected", "rating"],
    )
    return SurveyRatings(included=included, everyone=everyone, attention=attention)


@dataclass
class ItemRow:
    item: SurveyItem
    summary: ItemSummary | None
    reached_target: bool


@dataclass
class RaterRow:
    rater: SurveyRater
    summary: RaterSummary | None
    done: int
    total: int


@dataclass
class SurveyResults:
    report: ReliabilityReport
    items: list[ItemRow]
    raters: list[RaterRow]
    flagged: int
    target_reached: int
    chart: dict[str, Any]
    agreement: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)


def _rater_progress(survey: Survey) -> dict[int, tuple[int, int]]:
    totals = dict(
        Assignment.objects.filter(rater__survey=survey).values_list("rater_id").annotate(count=Count("id"))
    )
    done = dict(
        Rating.objects.filter(rater__survey=survey, undone_at__isnull=True)
        .values_list("rater_id")
        .annotate(count=Count("id"))
    )
    return {
        rater_id: (done.get(rater_id, 0), totals.get(rater_id, done.get(rater_id, 0)))
        for rater_id in set(totals) | set(done)
    }


def survey_results(survey: Survey) -> SurveyResults:
    """Everything the results page shows, computed from the ratings now (live)."""
    ratings = survey_ratings(survey)
    report = panel_reliability(ratings.included, scale=survey.scale, repeats=100, seed=0)
    summaries = (
        {summary.item: summary for summary in item_summaries(ratings.included)}
        if len(ratings.included)
        else {}
    )
    items = [
        ItemRow(
            item=item,
            summary=summaries.get(item.code),
            reached_target=bool(summaries.get(item.code))
            and summaries[item.code].n >= survey.target_ratings_per_photo,
        )
        for item in survey.items.filter(kind=ItemKind.PHOTO).select_related("photo__visit__subject")
    ]
    per_rater = (
        {summary.rater: summary for summary in rater_summaries(ratings.everyone, ratings.attention)}
        if len(ratings.everyone)
        else {}
    )
    progress = _rater_progress(survey)
    raters = [
        RaterRow(
            rater=rater,
            summary=per_rater.get(rater.label),
            done=progress.get(rater.pk, (0, 0))[0],
            total=progress.get(rater.pk, (0, 0))[1],
        )
        for rater in survey.raters.all()
    ]
    return SurveyResults(
        report=report,
        items=items,
        raters=raters,
        flagged=sum(1 for row in raters if row.summary and row.summary.flags),
        target_reached=sum(1 for row in items if row.reached_target),
        chart=mean_chart(items, survey),
        agreement=prepost_agreement(survey, {code: summary.mean for code, summary in summaries.items()}),
    )


def mean_chart(items: list[ItemRow], survey: Survey) -> dict[str, Any]:
    """Geometry of the SVG chart of each photo's mean rating with its 95 % CI, photos sorted by mean."""
    rated = sorted((row for row in items if row.summary), key=lambda row: row.summary.mean)
    width, height, left, bottom, top = 720, 260, 40, 30, 10
    low, high = survey.scale_min, survey.scale_max
    step = (width - left - 10) / max(len(rated), 1)

    def y(value: float) -> float:
        clipped = min(max(value, low), high)
        return round(top + (height - top - bottom) * (high - clipped) / (high - low), 1)

    bars = []
    for index, row in enumerate(rated):
        summary = row.summary
        x = round(left + step * (index + 0.5), 1)
        bars.append(
            {
                "x": x,
                "y": y(summary.mean),
                "ci_top": y(summary.ci_high) if summary.ci_high is not None else y(summary.mean),
                "ci_bottom": y(summary.ci_low) if summary.ci_low is not None else y(summary.mean),
                "code": row.item.code,
                "mean": summary.mean,
            }
        )
    ticks = [{"value": value, "y": y(value)} for value in survey.scale]
    return {
        "width": width,
        "height": height,
        "left": left,
        "bars": bars,
        "ticks": ticks,
        "baseline": height - bottom,
    }


def prepost_agreement(survey: Survey, means: dict[str, float]) -> dict[str, Any] | None:
    """Share of subjects whose predicted normality-rating change (the normality results' 1–7 rating) has
    the sign of the raters' change, over the study's pre/post comparisons whose two photos (same view)
    were both rated in this survey."""
    photo_codes = {
        f"photo-{photo_id}": photo_id
        for photo_id in survey.items.filter(photo__isnull=False).values_list("photo_id", flat=True)
    }
    pairs = []
    comparisons = Comparison.objects.filter(subject__study=survey.study).prefetch_related(
        "pre_visit__photos", "post_visit__photos"
    )
    for comparison in comparisons:
        pre = {photo.view: photo.pk for photo in comparison.pre_visit.photos.all()}
        post = {photo.view: photo.pk for photo in comparison.post_visit.photos.all()}
        for view in set(pre) & set(post):
            codes = (f"photo-{pre[view]}", f"photo-{post[view]}")
            if not all(code in photo_codes and code in means for code in codes):
                continue
            raters_change = means[codes[1]] - means[codes[0]]
            predicted = [_predicted_rating(photo_codes[code]) for code in codes]
            pairs.append(
                {
                    "subject": comparison.subject.code,
                    "view": view,
                    "raters_change": raters_change,
                    "predicted_change": None if None in predicted else predicted[1] - predicted[0],
                }
            )
    if not pairs:
        return None
    agreement = sign_agreement([(pair["raters_change"], pair["predicted_change"]) for pair in pairs])
    return {"pairs": pairs, "usable": agreement.usable, "agree": agreement.agree, "share": agreement.share}


def _predicted_rating(photo_id: int) -> float | None:
    result = latest_result(photo_id, AnalysisKind.NORMALITY)
    rating = (result.data.get("rating") or {}) if result is not None else {}
    value = rating.get("value")
    return float(value) if value is not None else None


def export_rows(survey: Survey) -> list[list[Any]]:
    """The long CSV of a survey: one row per rating in force, excluded raters marked."""
    rows = []
    for rating in active_ratings(survey).select_related("item__photo__visit__subject"):
        photo = rating.item.photo
        rows.append(
            [
                rating.item.code,
                rating.rater.label,
                f"{rating.value:g}",
                rating.item.kind,
                "yes" if rating.assignment and rating.assignment.is_repeat else "no",
                "yes" if rating.rater.excluded else "no",
                photo.visit.subject.code if photo else "",
                photo.visit.label if photo else "",
                photo.visit.role if photo else "",
                photo.view if photo else "",
                rating.elapsed_ms if rating.elapsed_ms is not None else "",
                rating.created_at.isoformat(),
            ]
        )
    return rows


EXPORT_COLUMNS = [
    "item",
    "rater",
    "rating",
    "item_kind",
    "repeat",
    "rater_excluded",
    "subject",
    "visit",
    "visit_role",
    "view",
    "elapsed_ms",
    "rated_at",
]


# The rater's side ------------------------------------------------------------------------------------


def rater_for_session(rater_id: int | None, user: User) -> SurveyRater | None:
    """The rater bound to this browser session, if it still may rate (members must be the same user)."""
    if not rater_id:
        return None
    rater = SurveyRater.objects.select_related("survey").filter(pk=rater_id, revoked_at__isnull=True).first()
    if rater is None:
        return None
    if rater.user_id is not None and (not user.is_authenticated or user.pk != rater.user_id):
        return None
    return rater


def rater_state(rater: SurveyRater, done: int | None = None) -> dict[str, Any]:
    """What the rating page needs: the question, the scale, progress and the presentation to rate now.

    Nothing here names the photo, its subject, visit or role: only the presentation's opaque token.
    ``done`` (the number of ratings in force) saves a query when the caller knows it."""
    survey = rater.survey
    total = rater.presentations
    if done is None:
        done = Rating.objects.filter(rater=rater, undone_at__isnull=True).count()
    tokens = dict(rater.assignments.filter(position__in=(done, done + 1)).values_list("position", "token"))
    return {
        "question": survey.question,
        "scale": [
            {"value": value, "label": survey.anchors[index] if index < len(survey.anchors) else ""}
            for index, value in enumerate(survey.scale)
        ],
        "total": total,
        "done": done,
        "open": survey.status == "open",
        "current": tokens.get(done),
        "next": tokens.get(done + 1),
        "can_undo": done > 0,
    }


def rater_assignment(rater: SurveyRater, token: str) -> Assignment:
    """One of the rater's own presentations (404 for any other token)."""
    assignment = Assignment.objects.select_related("item").filter(rater=rater, token=token).first()
    if assignment is None:
        raise Http404("No such image.")
    return assignment


# Regressors ------------------------------------------------------------------------------------------


def study_regressor_version(study: Study) -> ModelVersion | None:
    """The rating regressor version the study's normality jobs run (the study's choice, else the site's
    active version); None: the shipped regressor."""
    return active_model_version(NORMALITY_REGRESSOR, study)


def study_fits(study: Study) -> QuerySet[RegressorFit]:
    return RegressorFit.objects.filter(study=study).select_related("survey", "model_version")
