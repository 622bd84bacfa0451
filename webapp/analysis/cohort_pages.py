"""The cohort pages: statistics and charts of the study's pre→post changes with filters, the subjects'
attributes (arm, sex, age band), comparisons for every subject at once, and a coordinator's acceptance
of a photo pair beyond a comparability limit."""

from __future__ import annotations

import base64

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.db import transaction
from django.db.models import Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ml.measures.statistics import ADJUSTMENTS
from webapp.analysis import charts, normality_maps, pairs
from webapp.analysis.cohort import (
    MEASURE_GROUPS,
    CohortFilters,
    CohortSummary,
    MeasureStatistics,
    cohort_summary,
    study_pairs,
)
from webapp.analysis.models import ComparisonPair
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studies import records
from webapp.studies import selectors as study_selectors
from webapp.studies.access import Capability, capabilities
from webapp.studies.models import AGE_BANDS, PhotoView, Sex

ZONE_GROUPS = {"wrinkles": "wrinkle_area:", "zones": "zone_area:"}


# What each of the pages' query parameters is called in the message about a value that does not exist.
CHOICE_LABELS = {
    "arm": "arm",
    "sex": "sex",
    "age_band": "age band",
    "view": "view",
    "group": "measure group",
    "adjust": "adjustment",
    "measure": "measure",
}


def _choice(request: HttpRequest, name: str, allowed, default: str = "") -> str:
    """The query's ``name`` when it is one of ``allowed``, else ``default``. An unknown value is said on
    the page with what is shown instead: a filter dropped silently shows other subjects than asked for."""
    value = request.GET.get(name, "")
    if value in allowed:
        return value
    if value:
        label = CHOICE_LABELS[name]
        instead = f"the {label} {default!r}" if default else f"every {label}"
        messages.warning(request, f"There is no {label} {value!r} here; showing {instead} instead.")
    return default


def _filters(request: HttpRequest, study) -> CohortFilters:
    return CohortFilters(
        arm=_choice(request, "arm", study.arms),
        sex=_choice(request, "sex", Sex.values),
        age_band=_choice(request, "age_band", AGE_BANDS),
    )


@login_required
@require_GET
def study_cohort(request: HttpRequest, study_id: int) -> HttpResponse:
    """The cohort's change per measure (statistics, tests between arms, charts) and its photo pairs
    with their comparability, filtered by arm, sex and age band."""
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    filters = _filters(request, study)
    view = _choice(request, "view", PhotoView.values, PhotoView.FRONTAL.value)
    group = _choice(request, "group", MEASURE_GROUPS, "lips")
    method = _choice(request, "adjust", ADJUSTMENTS, "holm")
    summary = cohort_summary(study, filters, group=group, view=view, method=method)
    statistics = summary.statistics
    measure = _choice(request, "measure", [entry.measure for entry in statistics])
    shown = next(
        (entry for entry in statistics if entry.measure == measure), statistics[0] if statistics else None
    )
    pairs = study_pairs(study, filters)
    counts = _counts(pairs)
    show_all = request.GET.get("pairs") == "all"
    # Comparable pairs are listed on request; those needing a decision (warnings, waiting) always.
    listed = pairs if show_all else pairs.filter(Q(assessed_at__isnull=True) | ~Q(warnings=[]))
    audit_record(
        action=AuditAction.VIEW,
        summary=f"Viewed cohort statistics of {study.name!r}",
        actor=request.user,
        target=study,
        request=request,
        details={"filters": vars(filters), "view": view, "group": group, "pairs": counts["pairs"]},
    )
    context = {
        "study": study,
        "filters": filters,
        "view": view,
        "group": group,
        "group_label": MEASURE_GROUPS[group],
        "method": method,
        "method_label": ADJUSTMENTS[method],
        "groups": MEASURE_GROUPS,
        "views": PhotoView.choices,
        "sexes": Sex.choices,
        "age_bands": AGE_BANDS,
        "statistics": statistics,
        "shown": shown,
        "charts": _charts(summary, shown, group) if shown else {},
        "pairs": list(listed.defer("measures", "sources")),
        "show_all_pairs": show_all,
        "counts": counts,
        "can_accept": Capability.MANAGE_STUDY in capabilities(request.user, study),
    }
    return render(request, "studies/study_cohort.html", context)


def _counts(pairs: QuerySet[ComparisonPair]) -> dict[str, int]:
    """How many subjects and pairs, and how many pairs are in the statistics, left out, accepted, waiting."""
    found = {"pairs": 0, "included": 0, "warned": 0, "accepted": 0, "pending": 0}
    subjects = set()
    for subject_id, warnings, assessed_at, accepted_at in pairs.values_list(
        "comparison__subject_id", "warnings", "assessed_at", "accepted_at"
    ):
        subjects.add(subject_id)
        found["pairs"] += 1
        found["pending"] += assessed_at is None
        found["warned"] += bool(warnings) and accepted_at is None
        found["accepted"] += bool(warnings) and accepted_at is not None
        found["included"] += assessed_at is not None and (not warnings or accepted_at is not None)
    return {"subjects": len(subjects), **found}


def _charts(summary: CohortSummary, shown: MeasureStatistics, group: str) -> dict:
    statistics = summary.statistics
    subjects = summary.subjects_by_measure.get(shown.measure, [])
    found = {
        "slope": charts.slope_chart(shown.label, shown.unit, subjects, list(shown.changes_by_arm)),
        "distribution": charts.change_distribution_chart(
            shown.label, shown.unit, shown.changes_by_arm, shown.noise_floor
        ),
    }
    prefix = ZONE_GROUPS.get(group)
    if prefix:
        by_zone = {
            entry.measure.removeprefix(prefix): entry.summary.mean_change
            for entry in statistics
            if entry.measure.startswith(prefix) and entry.summary.mean_change is not None
        }
        unit = next((entry.unit for entry in statistics if entry.measure.startswith(prefix)), "")
        found["atlas"] = charts.zone_atlas_chart(
            f"Mean change per zone ({MEASURE_GROUPS[group]})", unit, by_zone
        )
    return found


@login_required
@require_GET
def cohort_normality_maps(request: HttpRequest, study_id: int) -> HttpResponse:
    """Per arm, the average normality heatmaps of the cohort's pre and post photos and of their difference,
    on the aligned face, with the page's filters."""
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    filters = _filters(request, study)
    view = _choice(request, "view", PhotoView.values, PhotoView.FRONTAL.value)
    maps = normality_maps.cohort_normality_maps(study, filters, view=view)
    charts = [
        (chart, base64.b64encode(chart.png).decode()) for chart in normality_maps.normality_maps_charts(maps)
    ]
    audit_record(
        action=AuditAction.VIEW,
        summary=f"Viewed the average normality heatmaps of {study.name!r}",
        actor=request.user,
        target=study,
        request=request,
        details={"filters": vars(filters), "view": view, "subjects": maps.subjects},
    )
    context = {
        "study": study,
        "filters": filters,
        "view": view,
        "views": PhotoView.choices,
        "sexes": Sex.choices,
        "age_bands": AGE_BANDS,
        "maps": maps,
        "charts": charts,
    }
    return render(request, "studies/cohort_normality_maps.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def cohort_subjects(request: HttpRequest, study_id: int) -> HttpResponse:
    """Each subject's arm, sex and age band (never names), edited together."""
    study = study_selectors.get_study(request.user, study_id, Capability.MANAGE_SUBJECTS)
    subjects = list(study.subjects.alive().order_by("code"))
    if request.method == "POST":
        errors = []
        with transaction.atomic():
            for subject in subjects:
                values = {
                    name: request.POST.get(f"{name}-{subject.pk}", "") for name in ("arm", "sex", "age_band")
                }
                try:
                    records.subject_attributes_set(
                        subject=subject, actor=request.user, request=request, **values
                    )
                except ValidationError as error:
                    errors.append(f"{subject.code}: {' '.join(error.messages)}")
            if errors:
                transaction.set_rollback(True)
        if errors:
            for error in errors:
                messages.error(request, error)
        else:
            messages.success(request, "Subject attributes saved.")
            return redirect("studies:cohort_subjects", study_id=study.pk)
    context = {"study": study, "subjects": subjects, "sexes": Sex.choices, "age_bands": AGE_BANDS}
    return render(request, "studies/cohort_subjects.html", context)


@login_required
@require_POST
def cohort_comparisons_create(request: HttpRequest, study_id: int) -> HttpResponse:
    """Compare every subject's first pre visit with its last post visit."""
    study = study_selectors.get_study(request.user, study_id, Capability.COMPARE)
    created = pairs.comparisons_create_for_study(study=study, actor=request.user, request=request)
    messages.success(request, f"{len(created)} subjects have a pre/post comparison.")
    return redirect("studies:study_cohort", study_id=study.pk)


@login_required
@require_POST
def pair_accept(request: HttpRequest, pair_id: int) -> HttpResponse:
    """A coordinator includes a pair beyond a comparability limit (with a reason), or withdraws that."""
    pair = (
        ComparisonPair.objects.alive()
        .select_related("comparison__subject__study")
        .filter(pk=pair_id, comparison__subject__study__in=study_selectors.study_ids_for_user(request.user))
        .first()
    )
    if pair is None:
        raise Http404("No such comparison pair.")
    study = study_selectors.get_study(request.user, pair.comparison.subject.study_id, Capability.MANAGE_STUDY)
    try:
        pairs.pair_accept(
            pair=pair,
            accepted=request.POST.get("accepted") == "1",
            note=request.POST.get("note", ""),
            actor=request.user,
            request=request,
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    return redirect("studies:study_cohort", study_id=study.pk)
