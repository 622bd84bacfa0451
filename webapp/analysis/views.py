"""Job endpoints used by the photo page (status, cancel, retry, results) and the admins' queue page."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.paginator import Paginator
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_POST

from webapp.analysis import selectors, services
from webapp.analysis.kinds import AnalysisKind, Queue
from webapp.analysis.models import AnalysisJob, JobStatus
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record, covered_by_page_view
from webapp.studies.access import Capability
from webapp.studies.models import Study
from webapp.webutils import site_admin_required, wants_json


def job_status_payload(job: AnalysisJob) -> dict:
    result_id = getattr(job, "result", None) and job.result.pk
    return {
        "id": job.pk,
        "kind": job.kind,
        "status": job.status,
        "progress": job.progress,
        "message": job.progress_message,
        "error": job.error,
        "attempts": job.attempts,
        "started_at": job.started_at.isoformat() if job.started_at else None,
        "finished_at": job.finished_at.isoformat() if job.finished_at else None,
        "result_url": reverse("analysis:result_json", args=[result_id]) if result_id else None,
    }


@never_cache
@login_required
@require_GET
def job_status(request: HttpRequest, job_id: int) -> JsonResponse:
    job = selectors.get_job(request.user, job_id)
    return JsonResponse(job_status_payload(job))


def _job_control(request: HttpRequest, job_id: int, action) -> HttpResponse:
    job = selectors.get_job(request.user, job_id, Capability.CONTROL_JOBS)
    try:
        job = action(job=job, actor=request.user, request=request)
    except services.JobStateError as exc:
        if wants_json(request):
            return JsonResponse({"error": str(exc)}, status=409)
        messages.error(request, str(exc))
    else:
        if wants_json(request):
            return JsonResponse(job_status_payload(job))
        messages.success(request, f"Job {job.pk} is now {job.get_status_display().lower()}.")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = reverse("studies:photo_detail", args=[job.photo_id])
    return redirect(back)


@login_required
@require_POST
def job_cancel(request: HttpRequest, job_id: int) -> HttpResponse:
    return _job_control(request, job_id, services.job_cancel)


@login_required
@require_POST
def job_retry(request: HttpRequest, job_id: int) -> HttpResponse:
    return _job_control(request, job_id, services.job_retry)


@never_cache
@login_required
@require_GET
def result_json(request: HttpRequest, result_id: int) -> JsonResponse:
    result = selectors.get_result(request.user, result_id)
    audit_record(
        action=AuditAction.VIEW,
        summary=f"Viewed result {result.pk} of job {result.job_id}",
        target=result,
        request=request,
    )
    return JsonResponse(
        {
            "id": result.pk,
            "job": result.job_id,
            "kind": result.job.kind,
            "data": result.data,
            "provenance": {
                "model_name": result.model_name,
                "model_version": result.model_version,
                "weights_sha256": result.weights_sha256,
                "parameters": result.parameters,
                "code_version": result.code_version,
                "created_at": result.created_at.isoformat(),
            },
            "artifacts": [
                {
                    "name": artifact.name,
                    "content_type": artifact.content_type,
                    "url": reverse("analysis:artifact", args=[artifact.pk]),
                }
                for artifact in result.artifacts.all()
            ],
        }
    )


@never_cache
@login_required
@require_GET
def artifact(request: HttpRequest, artifact_id: int) -> FileResponse:
    stored = selectors.get_artifact(request.user, artifact_id)
    download = request.GET.get("download") == "1"
    if download or not covered_by_page_view(request, artifact_id=stored.pk):
        audit_record(
            action=AuditAction.DOWNLOAD if download else AuditAction.VIEW,
            summary=f"{'Downloaded' if download else 'Viewed'} {stored.name} of result {stored.result_id}",
            target=stored,
            request=request,
        )
    response = FileResponse(
        stored.file.open("rb"),
        content_type=stored.content_type,
        as_attachment=download,
        filename=f"result-{stored.result_id}-{stored.name}{stored.file.name[stored.file.name.rfind('.') :]}",
    )
    response["Cache-Control"] = "private, no-store"
    return response


@site_admin_required
@require_GET
def queue(request: HttpRequest) -> HttpResponse:
    filters = {
        "status": request.GET.get("status", "") if request.GET.get("status") in JobStatus.values else "",
        "kind": request.GET.get("kind", "") if request.GET.get("kind") in AnalysisKind.values else "",
        "queue": request.GET.get("queue", "") if request.GET.get("queue") in Queue.values else "",
        "study_id": int(request.GET["study"]) if request.GET.get("study", "").isdigit() else None,
    }
    page = Paginator(selectors.jobs_filtered(**filters), 50).get_page(request.GET.get("page"))
    overview = selectors.queue_overview()
    return render(
        request,
        "analysis/queue.html",
        {
            "overview": overview,
            "status_counts": [(value, label, overview.counts[value]) for value, label in JobStatus.choices],
            "page": page,
            "filters": filters,
            "statuses": JobStatus.choices,
            "kinds": AnalysisKind.choices,
            "queues": Queue.choices,
            "studies": Study.objects.order_by("name").only("pk", "name"),
        },
    )
