"""Pages of human zone annotations: the study's list with the CVAT import form, and the dataset export."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_GET, require_http_methods

from webapp.labeling import zone_selectors, zone_services
from webapp.labeling.forms import ZoneAnnotationImportForm
from webapp.studies.access import Capability, can
from webapp.studies.models import Study
from webapp.studies.selectors import get_study


def _page(
    request: HttpRequest, study: Study, form: ZoneAnnotationImportForm, problems: list[str], status: int = 200
) -> HttpResponse:
    rows = zone_selectors.zone_annotations_by_photo(study)
    context = {
        "study": study,
        "rows": rows,
        "zone_counts": zone_selectors.zone_counts(rows),
        "annotation_count": sum(len(row.annotations) for row in rows),
        "imports": list(zone_selectors.zone_annotation_imports(study)[:20]),
        "form": form,
        "problems": problems,
        "can_import": can(request.user, study, Capability.MANAGE_STUDY),
        "can_export": can(request.user, study, Capability.EXPORT),
    }
    return render(request, "labeling/zone_annotations.html", context, status=status)


@login_required
@require_http_methods(["GET", "POST"])
def zone_annotations(request: HttpRequest, study_id: int) -> HttpResponse:
    """GET: the study's human zone annotations. POST: import a CVAT export (coordinators)."""
    if request.method == "GET":
        return _page(request, get_study(request.user, study_id), ZoneAnnotationImportForm(), [])
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = ZoneAnnotationImportForm(request.POST, request.FILES)
    if not form.is_valid():
        return _page(request, study, form, [], status=400)
    try:
        batch = zone_services.zone_annotations_import(
            study=study, author=request.user, content=form.cleaned_data["export"].read(), request=request
        )
    except zone_services.ZoneImportError as error:
        messages.error(request, error.message)
        return _page(request, study, form, error.problems, status=400)
    skipped = len(batch.skipped_images)
    messages.success(
        request,
        f"Imported {batch.annotation_count} zone annotations on {batch.photo_count} photos"
        + (f"; {skipped} images without zone shapes were skipped." if skipped else "."),
    )
    return redirect("labeling:zone_annotations", study_id=study.pk)


@login_required
@require_GET
def zone_export(request: HttpRequest, study_id: int) -> FileResponse:
    """ZIP for `python -m ml zones build-dataset --faces photos --cvat-xml annotations.xml`."""
    study = get_study(request.user, study_id, Capability.EXPORT)
    annotations = list(zone_selectors.latest_zone_annotations(study))
    archive = zone_services.zone_dataset_export(
        study=study, annotations=annotations, actor=request.user, request=request
    )
    response = FileResponse(
        archive,
        as_attachment=True,
        filename=f"study-{study.pk}-zone-annotations-{timezone.now():%Y%m%d-%H%M%S}.zip",
        content_type="application/zip",
    )
    # Patient photos must not linger in shared or browser caches.
    response["Cache-Control"] = "private, no-store"
    return response
