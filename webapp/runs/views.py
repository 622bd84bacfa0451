"""The admins' queue page (every kind of run) and each run's status, cancel and retry endpoints.

The endpoints serve every kind alike (``/jobs/<kind>/<id>/...``); ``static/js/runs.js`` is the one
progress widget that polls them, on the queue page, the photo page, the study labels page and the
campaign page.
"""

from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from webapp.runs import selectors, services
from webapp.runs.kinds import kind_choices
from webapp.runs.models import Queue, Run, RunStateError, RunStatus
from webapp.studies.access import can, require
from webapp.studies.models import Study
from webapp.webutils import site_admin_required, wants_json

PAGE_SIZE = 50


def run_warning(run: Run) -> str:
    """Why a run is not moving, in a sentence (empty when nothing is wrong)."""
    if selectors.is_stale(run):
        return (
            f"No sign of life from its worker ({run.worker or 'unknown'}) for more than "
            f"{settings.FACET_RUN_STALE_SECONDS} s; it is handed to another worker automatically."
        )
    if selectors.is_unsent(run):
        problem = selectors.broker_problem()
        if problem:
            return "The job broker cannot be reached; the job is kept and sent automatically when it is back."
        return "Not yet handed to the job broker; it is sent again automatically."
    return ""


def run_payload(run: Run, user=None) -> dict:
    control = user is not None and can(user, run.run_study(), selectors.control_capability(run))
    badge = run.badge()
    return {
        "id": run.pk,
        "run_kind": run.run_kind,
        "label": run.run_label,
        "title": run.run_title(),
        "status": run.status,
        "status_label": badge.label,
        "badge": badge.tone,
        "progress": run.progress,
        "message": run.progress_message,
        "error": run.error,
        "attempts": run.attempts,
        "queue": run.queue,
        "worker": run.worker,
        "created_at": run.created_at.isoformat(),
        "started_at": run.started_at.isoformat() if run.started_at else None,
        "finished_at": run.finished_at.isoformat() if run.finished_at else None,
        "warning": run_warning(run),
        "can_cancel": control and run.is_active,
        "can_retry": control and run.can_retry,
        **run.status_extra(),
    }


@never_cache
@login_required
@require_GET
def run_status(request: HttpRequest, run_kind: str, run_id: int) -> JsonResponse:
    run = selectors.get_run(request.user, run_kind, run_id)
    return JsonResponse(run_payload(run, request.user))


def _control(request: HttpRequest, run_kind: str, run_id: int, action) -> HttpResponse:
    run = selectors.get_run(request.user, run_kind, run_id)
    require(request.user, run.run_study(), selectors.control_capability(run), what="job", object_id=run.pk)
    try:
        run = action(run, actor=request.user, request=request)
    except RunStateError as error:
        if wants_json(request):
            return JsonResponse({"error": str(error)}, status=409)
        messages.error(request, str(error))
    else:
        if wants_json(request):
            return JsonResponse(run_payload(run, request.user))
        messages.success(request, f"{run.run_label} {run.pk} is now {run.get_status_display().lower()}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = run.run_url()
    return redirect(back)


@login_required
@require_POST
def run_cancel(request: HttpRequest, run_kind: str, run_id: int) -> HttpResponse:
    return _control(request, run_kind, run_id, services.run_cancel)


@login_required
@require_POST
def run_retry(request: HttpRequest, run_kind: str, run_id: int) -> HttpResponse:
    return _control(request, run_kind, run_id, services.run_retry)


@site_admin_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    kinds = kind_choices()
    filters = {
        "kind": request.GET.get("kind", "") if request.GET.get("kind") in dict(kinds) else "",
        "status": request.GET.get("status", "") if request.GET.get("status") in RunStatus.values else "",
        "queue": request.GET.get("queue", "") if request.GET.get("queue") in Queue.values else "",
        "study_id": int(request.GET["study"]) if request.GET.get("study", "").isdigit() else None,
    }
    page = (
        int(request.GET["page"])
        if request.GET.get("page", "").isdigit() and int(request.GET["page"]) > 0
        else 1
    )
    runs, total = selectors.runs_filtered(**filters, limit=PAGE_SIZE, offset=(page - 1) * PAGE_SIZE)
    overview = selectors.queue_overview()
    query = request.GET.copy()
    query.pop("page", None)
    return render(
        request,
        "runs/queue.html",
        {
            "overview": overview,
            "status_counts": [(value, label, overview.counts[value]) for value, label in RunStatus.choices],
            "runs": runs,
            "total": total,
            "page": page,
            "has_previous": page > 1,
            "has_next": page * PAGE_SIZE < total,
            "query": query.urlencode(),
            "filters": filters,
            "kinds": kinds,
            "statuses": RunStatus.choices,
            "queues": Queue.choices,
            "studies": Study.objects.order_by("name").only("pk", "name"),
            "queue_url": reverse("runs:queue"),
        },
    )
