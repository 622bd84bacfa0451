"""Pages of rating studies (coordinators) and the blinded rating page (raters).

Coordinator pages live under /ratings/ and need a role in the study. The rater's pages live under
/rate/: an invitation link binds one browser session to one rater, and from then on every request of that
session can reach only that rater's presentations (by opaque token) and nothing else; the rater needs no
account. No page or URL of /rate/ names a photo, subject, visit, date or pre/post role.
"""

import json
import uuid
from collections.abc import Callable
from functools import wraps

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ml.model_names import NORMALITY_REGRESSOR
from webapp.analysis.models import ModelVersion
from webapp.analysis.services import study_model_version_set
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.ratings import selectors, services
from webapp.ratings.forms import ExclusionForm, FitForm, ImportForm, InvitationForm, SurveyCreateForm
from webapp.ratings.models import RaterKind, SurveySource, SurveyStatus
from webapp.spreadsheets import SafeCsvWriter
from webapp.studies.access import Capability, capabilities
from webapp.studies.selectors import get_study

RATER_SESSION_KEY = "facet_rater_id"
# How long an external rater's browser stays bound to the invitation (pause and resume within it).
RATER_SESSION_SECONDS = 30 * 24 * 3600


def _flash_errors(request: HttpRequest, error: ValidationError | services.RatingStateError) -> None:
    for text in getattr(error, "messages", [str(error)]):
        messages.error(request, text)


# Coordinator pages --------------------------------------------------------------------------------


@login_required
@require_GET
def study_surveys(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id)
    can = {capability.value: True for capability in capabilities(request.user, study)}
    surveys = selectors.surveys_of_study(study)
    if not can.get(Capability.MANAGE_STUDY):
        surveys = surveys.filter(status=SurveyStatus.OPEN, source=SurveySource.COLLECTED)
    context = {
        "study": study,
        "can": can,
        "surveys": surveys,
        "import_form": ImportForm(),
        "regressor": selectors.study_regressor_version(study),
        "fits": selectors.study_fits(study)[:20],
    }
    return render(request, "ratings/study_surveys.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def survey_create(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = SurveyCreateForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            survey = services.survey_create(
                study=study,
                actor=request.user,
                title=data["title"],
                photos=form.chosen_photos(),
                question=data["question"],
                anchors=form.anchors(),
                region=data["region"],
                repeat_share=data["repeat_percent"] / 100,
                attention_checks=data["attention_checks"],
                target_ratings_per_photo=data["target_ratings_per_photo"],
                request=request,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Survey {survey.title!r} created as a draft: open it to start rating.")
            return redirect("ratings:survey_detail", survey_id=survey.pk)
    return render(request, "ratings/survey_create.html", {"study": study, "form": form})


@login_required
@require_GET
def survey_detail(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    context = {
        "study": survey.study,
        "survey": survey,
        "items": survey.items.select_related("photo__visit__subject"),
        "raters": survey.raters.order_by("kind", "label"),
        "invitation_form": InvitationForm(),
        "can_rate": Capability.RATE in capabilities(request.user, survey.study),
    }
    return render(request, "ratings/survey_detail.html", context)


@login_required
@require_POST
def survey_state(request: HttpRequest, survey_id: int, action: str) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    change = {"open": services.survey_open, "close": services.survey_close}.get(action)
    if change is None:
        raise Http404("No such action.")
    try:
        change(survey=survey, actor=request.user, request=request)
    except (ValidationError, services.RatingStateError) as error:
        _flash_errors(request, error)
    else:
        messages.success(request, f"Survey {action == 'open' and 'opened' or 'closed'}.")
    return redirect("ratings:survey_detail", survey_id=survey.pk)


@login_required
@require_POST
def invitations_create(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Create invitation links and show them once (only their hashes are stored)."""
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    form = InvitationForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose between 1 and 500 links.")
        return redirect("ratings:survey_detail", survey_id=survey.pk)
    try:
        invitations = services.invitations_create(
            survey=survey, count=form.cleaned_data["count"], actor=request.user, request=request
        )
    except (ValidationError, services.RatingStateError) as error:
        _flash_errors(request, error)
        return redirect("ratings:survey_detail", survey_id=survey.pk)
    links = [
        (invitation.rater.label, request.build_absolute_uri(reverse("rate:claim", args=[invitation.token])))
        for invitation in invitations
    ]
    response = render(
        request, "ratings/invitations.html", {"study": survey.study, "survey": survey, "links": links}
    )
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, survey_id: int, rater_id: int) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    rater = get_object_or_404(survey.raters, pk=rater_id, kind=RaterKind.EXTERNAL)
    services.invitation_revoke(rater=rater, actor=request.user, request=request)
    messages.success(request, f"The invitation of {rater.label} no longer works.")
    return redirect("ratings:survey_detail", survey_id=survey.pk)


@login_required
@require_GET
def survey_results(request: HttpRequest, survey_id: int) -> HttpResponse:
    """Live reliability and per-photo figures (unblinded: coordinators only)."""
    survey = selectors.get_survey(request.user, survey_id, Capability.EXPORT)
    results = selectors.survey_results(survey)
    audit_record(
        action=AuditAction.VIEW,
        summary=f"Viewed the results of rating survey {survey.title!r}",
        actor=request.user,
        target=survey,
        request=request,
        details={"ratings": results.report.n_ratings},
    )
    context = {
        "study": survey.study,
        "survey": survey,
        "results": results,
        "summary": results.report.summary(),
        "can_manage": Capability.MANAGE_STUDY in capabilities(request.user, survey.study),
        "fit_form": FitForm(),
        "fits": survey.regressor_fits.select_related("model_version"),
        "fragment": request.GET.get("fragment") == "1",
    }
    template = "ratings/_results.html" if context["fragment"] else "ratings/survey_results.html"
    response = render(request, template, context)
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_POST
def rater_exclusion(request: HttpRequest, survey_id: int, rater_id: int) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    rater = get_object_or_404(survey.raters, pk=rater_id)
    form = ExclusionForm(request.POST)
    if form.is_valid():
        services.rater_set_excluded(
            rater=rater,
            excluded=form.cleaned_data["excluded"],
            reason=form.cleaned_data["reason"],
            actor=request.user,
            request=request,
        )
        messages.success(request, f"Rater {rater.label} is {'excluded' if rater.excluded else 'included'}.")
    return redirect(reverse("ratings:survey_results", args=[survey.pk]) + "#raters")


@login_required
@require_GET
def survey_export(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.EXPORT)
    rows = selectors.export_rows(survey)
    services.export_audit(survey=survey, actor=request.user, rows=len(rows), request=request)
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="rating-survey-{survey.pk}.csv"'
    response["Cache-Control"] = "private, no-store"
    writer = SafeCsvWriter(response)
    writer.writerow(selectors.EXPORT_COLUMNS)
    writer.writerows(rows)
    return response


@login_required
@require_POST
def ratings_import(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = ImportForm(request.POST, request.FILES)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("ratings:study_surveys", study_id=study.pk)
    data = form.cleaned_data
    try:
        outcome = services.ratings_import(
            study=study,
            content=data["file"].read(),
            title=data["title"],
            item_column=data["item_column"],
            rater_column=data["rater_column"],
            rating_column=data["rating_column"],
            scale_min=data["scale_min"],
            scale_max=data["scale_max"],
            actor=request.user,
            request=request,
        )
    except ValidationError as error:
        _flash_errors(request, error)
        return redirect("ratings:study_surveys", study_id=study.pk)
    messages.success(
        request,
        f"Imported {outcome.ratings} ratings of {outcome.items} items by {outcome.raters} raters; "
        f"{outcome.linked_items} item(s) are photos of this study.",
    )
    return redirect("ratings:survey_results", survey_id=outcome.survey.pk)


@login_required
@require_GET
def member_rate(request: HttpRequest, survey_id: int) -> HttpResponse:
    """A study member with the rater role starts (or resumes) rating in this browser."""
    survey = selectors.get_survey(request.user, survey_id, Capability.RATE)
    try:
        rater = services.member_rater(survey=survey, user=request.user)
    except services.RatingStateError as error:
        _flash_errors(request, error)
        return redirect("ratings:study_surveys", study_id=survey.study_id)
    request.session[RATER_SESSION_KEY] = rater.pk
    return redirect("rate:page")


@login_required
@require_POST
def fit_start(request: HttpRequest, survey_id: int) -> HttpResponse:
    survey = selectors.get_survey(request.user, survey_id, Capability.MANAGE_STUDY)
    form = FitForm(request.POST)
    if not form.is_valid():
        messages.error(request, "Choose K between 1 and 10 and 1 to 100 trials.")
    else:
        try:
            fit = services.fit_start(
                survey=survey, parameters=form.cleaned_data, actor=request.user, request=request
            )
        except services.RatingStateError as error:
            _flash_errors(request, error)
        else:
            return redirect("ratings:fit_detail", fit_id=fit.pk)
    return redirect("ratings:survey_results", survey_id=survey.pk)


@login_required
@require_GET
def fit_detail(request: HttpRequest, fit_id: int) -> HttpResponse:
    fit = selectors.get_fit(request.user, fit_id, Capability.MANAGE_STUDY)
    active = selectors.study_regressor_version(fit.study)
    context = {
        "study": fit.study,
        "fit": fit,
        "metrics_json": json.dumps(fit.metrics, indent=2),
        "is_active": active is not None and fit.model_version_id == active.pk,
    }
    return render(request, "ratings/fit_detail.html", context)


@login_required
@require_POST
def regressor_activate(request: HttpRequest, study_id: int) -> HttpResponse:
    """Coordinators (and admins) choose the rating regressor of their study's normality jobs."""
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    version_id = request.POST.get("model_version")
    version = None
    if version_id:
        fitted = selectors.study_fits(study).filter(model_version_id=version_id).exists()
        if not fitted:
            raise Http404("No such model version for this study.")
        version = get_object_or_404(ModelVersion, pk=version_id)
    # The study's choice of this model, as on its analysis settings page (one per-study activation).
    study_model_version_set(
        study=study, name=NORMALITY_REGRESSOR, model_version=version, actor=request.user, request=request
    )
    messages.success(
        request,
        f"New normality jobs of this study report the rating of {version or 'the shipped regressor'}.",
    )
    return redirect("ratings:study_surveys", study_id=study.pk)


# The rater's pages (blinded) ------------------------------------------------------------------------


def _private(response: HttpResponse) -> HttpResponse:
    response["Cache-Control"] = "private, no-store"
    response["Referrer-Policy"] = "no-referrer"
    return response


def rater_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """The rater bound to this session, or 404 (nothing says whether any survey exists)."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        rater = selectors.rater_for_session(request.session.get(RATER_SESSION_KEY), request.user)
        if rater is None:
            raise Http404("Open your invitation link to rate.")
        return _private(view(request, rater, *args, **kwargs))

    return wrapper


@never_cache
@require_GET
def rater_claim(request: HttpRequest, token: str) -> HttpResponse:
    try:
        rater = services.invitation_claim(
            token=token, claimed_rater_id=request.session.get(RATER_SESSION_KEY), request=request
        )
    except services.RatingStateError as error:
        return _private(render(request, "ratings/rate_refused.html", {"reason": str(error)}, status=410))
    request.session[RATER_SESSION_KEY] = rater.pk
    request.session.set_expiry(RATER_SESSION_SECONDS)
    # The token leaves the address bar: the rating page's URL is the same for every rater.
    return _private(redirect("rate:page"))


@require_GET
@rater_required
def rater_page(request: HttpRequest, rater) -> HttpResponse:
    return render(request, "ratings/rate.html", {"state": selectors.rater_state(rater)})


@require_GET
@rater_required
def rater_state(request: HttpRequest, rater) -> JsonResponse:
    return JsonResponse(selectors.rater_state(rater))


@require_GET
@rater_required
def rater_image(request: HttpRequest, rater, token: str) -> HttpResponse:
    assignment = selectors.rater_assignment(rater, token)
    if not assignment.item.image:
        raise Http404("No such image.")
    # No file name (FileResponse would send the stored one, the same for a photo and its repeat).
    with assignment.item.image.open("rb") as handle:
        return HttpResponse(handle.read(), content_type="image/jpeg")


def _json_body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, UnicodeDecodeError):
        return {}
    return body if isinstance(body, dict) else {}


@require_POST
@rater_required
def rater_submit(request: HttpRequest, rater) -> JsonResponse:
    body = _json_body(request)
    try:
        value = int(body["rating"])
        submission_id = uuid.UUID(str(body["submission_id"]))
        token = str(body["token"])
        elapsed = body.get("elapsed_ms")
        elapsed_ms = max(0, min(int(elapsed), 24 * 3600 * 1000)) if elapsed is not None else None
    except (KeyError, TypeError, ValueError):
        return JsonResponse(
            {"ok": False, "error": "A rating needs token, rating and submission_id."}, status=400
        )
    try:
        outcome = services.rating_submit(
            rater=rater, token=token, value=value, submission_id=submission_id, elapsed_ms=elapsed_ms
        )
    except ValidationError as error:
        return JsonResponse({"ok": False, "error": " ".join(error.messages)}, status=400)
    except services.RatingStateError as error:
        return JsonResponse(
            {"ok": False, "error": str(error), "state": selectors.rater_state(rater)}, status=409
        )
    return JsonResponse(
        {"ok": True, "stored": outcome.created, "state": selectors.rater_state(rater, done=outcome.done)},
        status=201 if outcome.created else 200,
    )


@require_POST
@rater_required
def rater_undo(request: HttpRequest, rater) -> JsonResponse:
    try:
        undone = services.rating_undo(rater=rater)
    except services.RatingStateError as error:
        return JsonResponse({"ok": False, "error": str(error)}, status=409)
    return JsonResponse({"ok": True, "undone": undone is not None, "state": selectors.rater_state(rater)})
