"""Results and their artifact files (JSON and images of finished analysis jobs), audited on every read.

The jobs themselves (status, cancel, retry, the queue page) are served by ``webapp.runs.views``."""

from dataclasses import dataclass

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from webapp.analysis import model_figures, selectors, services
from webapp.analysis.models import ModelVersion
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record, covered_by_page_view
from webapp.webutils import site_admin_required


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
@require_http_methods(["GET", "POST"])
def model_versions(request: HttpRequest) -> HttpResponse:
    """Site admins: every registered model version with its figures; activate one for the whole site (the
    version studies without a choice of their own run), or go back to the shipped weights."""
    if request.method == "POST":
        version = get_object_or_404(ModelVersion, pk=request.POST.get("model_version"))
        if request.POST.get("action") == "deactivate":
            services.model_version_deactivate(model_version=version, actor=request.user, request=request)
            messages.success(
                request,
                f"{version.name} runs its shipped weights again, except in studies that chose a version.",
            )
        else:
            found = model_figures.figure(version.name, version.metrics)
            if found is not None and found.below_floor and not request.POST.get("confirm_below_floor"):
                messages.error(
                    request,
                    f"{version.name} {version.version} was not activated: its {found.text} is below the "
                    f"floor ({found.floor_text}). Tick the box beside it to activate it anyway.",
                )
                return redirect("analysis:model_versions")
            services.model_version_activate(model_version=version, actor=request.user, request=request)
            messages.success(request, f"{version.name} {version.version} is now active for the site.")
        return redirect("analysis:model_versions")
    versions = list(selectors.model_versions())
    names = sorted({version.name for version in versions})
    return render(
        request, "analysis/model_versions.html", {"groups": [_group(name, versions) for name in names]}
    )


@dataclass
class VersionRow:
    version: ModelVersion
    figure: model_figures.Figure | None


@dataclass
class ModelGroup:
    """One model's versions, each with its figure, beside the figure of what runs now (the active
    version, else the shipped weights)."""

    name: str
    rows: list[VersionRow]
    shipped: model_figures.Figure | None
    current_label: str
    current: model_figures.Figure | None


def _group(name: str, versions: list[ModelVersion]) -> ModelGroup:
    rows = [VersionRow(v, model_figures.figure(name, v.metrics)) for v in versions if v.name == name]
    shipped = model_figures.shipped_figure(name)
    active = next((row for row in rows if row.version.is_active), None)
    if active is not None:
        return ModelGroup(name, rows, shipped, f"active version {active.version.version}", active.figure)
    return ModelGroup(name, rows, shipped, "shipped weights", shipped)
