"""Pages of wrinkle labeling: the labeling canvas, label files, the study's labels page with dataset
export and training jobs, and the site admins' list of wrinkle model versions.

Every byte of a photo-derived image goes out through an audited view with `Cache-Control: no-store`.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_page_view, audit_record, covered_by_page_view
from webapp.audit.templatetags.audit import seen
from webapp.labeling import selectors, services
from webapp.labeling.forms import LabelSaveForm, TrainingStartForm
from webapp.labeling.models import RegionKind, ThresholdMethod, WrinkleLabel
from webapp.studies.access import Capability, can
from webapp.studies.models import Photo
from webapp.studies.selectors import get_photo, get_study

LABEL_FILES = {"image": "image", "rough": "rough_mask", "mask": "ground_truth", "texture": "texture_map"}


def _no_store(response: HttpResponse) -> HttpResponse:
    # Patient-derived images must not linger in shared or browser caches.
    response["Cache-Control"] = "private, no-store"
    return response


def _region_request(request: HttpRequest, photo: Photo) -> tuple[str, int | None]:
    """The region the annotator asked for (default: the crop when landmarks exist) and its result id."""
    result = services.landmarks_result_with_face(photo)
    kind = request.GET.get("region") or (RegionKind.FOREHEAD_EYE if result else RegionKind.WHOLE)
    if kind not in RegionKind.values:
        raise Http404("No such labeling region.")
    result_id = request.GET.get("landmarks_result")
    if kind == RegionKind.FOREHEAD_EYE and result_id:
        return kind, int(result_id) if result_id.isdigit() else -1
    return kind, result.pk if (result and kind == RegionKind.FOREHEAD_EYE) else None


def _label_payload(label: WrinkleLabel, view_grant: str = "") -> dict:
    return {
        "id": label.pk,
        "version": label.version,
        "author": label.author_username,
        "created_at": label.created_at.isoformat(),
        "method": label.method,
        "parameters": label.parameters,
        "region": label.region["kind"],
        "rough_pixels": label.rough_pixels,
        "wrinkle_pixels": label.wrinkle_pixels,
        "mask_url": seen(reverse("labeling:label_mask", args=[label.pk]), view_grant),
        "rough_url": seen(reverse("labeling:label_rough", args=[label.pk]), view_grant),
    }


@never_cache
@login_required
@require_http_methods(["GET", "POST"])
def label_photo(request: HttpRequest, photo_id: int) -> HttpResponse:
    """GET: the labeling canvas. POST: save the rough mask as a new label version (JSON answer)."""
    if request.method == "POST":
        return _label_save(request, photo_id)
    photo = get_photo(request.user, photo_id)
    kind, result_id = _region_request(request, photo)
    crop_available = services.landmarks_result_with_face(photo) is not None
    labels = list(selectors.labels_of_photo(photo))
    # One event for the page, its labeling image and its labels' images (which the grant covers).
    view_grant = audit_page_view(
        request,
        summary=f"Opened wrinkle labeling of photo {photo.pk}",
        target=photo,
        photos=[photo.pk],
        labels=[label.pk for label in labels],
        details={"page": "wrinkle labeling", "region": kind},
    )
    image_url = (
        reverse("labeling:labeling_image", args=[photo.pk])
        + f"?region={kind}"
        + (f"&landmarks_result={result_id}" if result_id else "")
    )
    config = {
        "imageUrl": seen(image_url, view_grant),
        "saveUrl": reverse("labeling:label_photo", args=[photo.pk]),
        "region": kind,
        "landmarksResult": result_id,
        "canSave": selectors.can_label(request.user, photo.study),
        "labels": [_label_payload(label, view_grant) for label in labels],
    }
    context = {
        "study": photo.study,
        "subject": photo.visit.subject,
        "visit": photo.visit,
        "photo": photo,
        "region": kind,
        "crop_available": crop_available,
        "region_choices": RegionKind.choices,
        "method_choices": ThresholdMethod.choices,
        "labels": labels,
        "config": config,
        "form": LabelSaveForm(),
        "can_export": can(request.user, photo.study, Capability.EXPORT),
    }
    return render(request, "labeling/label_photo.html", context)


def _label_save(request: HttpRequest, photo_id: int) -> JsonResponse:
    try:
        photo = get_photo(request.user, photo_id)
        selectors.require_label(request.user, photo.study)
    except Http404:
        return JsonResponse({"ok": False, "error": "No such photo."}, status=404)
    except PermissionDenied:
        return JsonResponse(
            {"ok": False, "error": "Your role in this study does not allow labeling."}, status=403
        )
    form = LabelSaveForm(request.POST, request.FILES)
    if not form.is_valid():
        problems = [f"{name}: {' '.join(errors)}" for name, errors in form.errors.items()]
        return JsonResponse({"ok": False, "error": " ".join(problems)}, status=400)
    data = form.cleaned_data
    try:
        label = services.label_save(
            photo=photo,
            author=request.user,
            rough_mask_png=data["rough_mask"].read(),
            region_kind=data["region"],
            landmarks_result_id=data["landmarks_result"],
            method=data["method"],
            parameters=services.threshold_parameters(data["method"], data),
            note=data["note"],
            request=request,
        )
    except services.LabelingError as error:
        return JsonResponse({"ok": False, "error": error.message}, status=400)
    return JsonResponse({"ok": True, "label": _label_payload(label)}, status=201)


@login_required
@require_GET
def labeling_image(request: HttpRequest, photo_id: int) -> HttpResponse:
    """The pixels to label (crop or scaled whole photo) as PNG; audited as a view of the photo."""
    photo = get_photo(request.user, photo_id)
    kind, result_id = _region_request(request, photo)
    try:
        labeling = services.labeling_image(photo, kind, result_id)
    except services.LabelingError as error:
        raise Http404(error.message) from error
    if not covered_by_page_view(request, photo_id=photo.pk):
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed the wrinkle labeling image of photo {photo.pk}",
            actor=request.user,
            target=photo,
            request=request,
            details={"file": "labeling image", "region": labeling.region},
        )
    return _no_store(HttpResponse(services.encode_png(labeling.image), content_type="image/png"))


@login_required
@require_GET
def label_file(request: HttpRequest, label_id: int, part: str) -> HttpResponse:
    label = selectors.get_label(request.user, label_id)
    stored = getattr(label, LABEL_FILES[part])
    if not covered_by_page_view(request, label_id=label.pk):
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed {part} of wrinkle label {label.pk}",
            actor=request.user,
            target=label,
            study_id=label.photo.study_id,
            request=request,
            details={"file": part, "photo": label.photo_id, "version": label.version},
        )
    with stored.open("rb") as handle:
        return _no_store(HttpResponse(handle.read(), content_type="image/png"))


@login_required
@require_GET
def study_labels(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id)
    labels = list(selectors.latest_labels(study))
    jobs = list(selectors.training_jobs_of_study(study)[:20])
    context = {
        "study": study,
        "labels": labels,
        "subject_count": len({label.photo.visit.subject_id for label in labels}),
        "jobs": jobs,
        "can_export": can(request.user, study, Capability.EXPORT),
        "can_train": can(request.user, study, Capability.MANAGE_STUDY),
        "train_form": TrainingStartForm(),
        "min_subjects": services.MIN_TRAINING_SUBJECTS,
    }
    return render(request, "labeling/study_labels.html", context)


def _selected_photo_ids(request: HttpRequest) -> list[int] | None:
    values = request.GET.getlist("photo")
    if not values:
        return None
    if not all(value.isdigit() for value in values):
        raise Http404("Photo ids must be numbers.")
    return [int(value) for value in values]


@login_required
@require_GET
def export(request: HttpRequest, study_id: int) -> StreamingHttpResponse:
    """ZIP of the latest label versions (all of the study's, or `?photo=ID&photo=ID…`), streamed."""
    study = get_study(request.user, study_id, Capability.EXPORT)
    labels = list(selectors.latest_labels(study, _selected_photo_ids(request)))
    services.export_audit(study=study, labels=labels, actor=request.user, request=request)
    response = StreamingHttpResponse(services.stream_dataset_zip(labels), content_type="application/zip")
    response["Content-Disposition"] = (
        f'attachment; filename="study-{study.pk}-wrinkle-labels-{timezone.now():%Y%m%d-%H%M%S}.zip"'
    )
    return _no_store(response)


@login_required
@require_POST
def training_start(request: HttpRequest, study_id: int) -> HttpResponse:
    study = get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = TrainingStartForm(request.POST)
    if not form.is_valid():
        for name, errors in form.errors.items():
            messages.error(request, f"{name}: {' '.join(errors)}")
        return redirect("labeling:study_labels", study_id=study.pk)
    try:
        job = services.training_job_start(
            study=study,
            labels=list(selectors.latest_labels(study)),
            parameters=form.cleaned_data,
            actor=request.user,
            request=request,
        )
    except services.TrainingStateError as error:
        messages.error(request, str(error))
    else:
        messages.success(request, f"Training job {job.pk} queued on the GPU queue.")
    return redirect("labeling:study_labels", study_id=study.pk)
