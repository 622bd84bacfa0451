"""Pages of studies, subjects, photos and pre/post comparisons, and the photo upload endpoint.

Views parse input with forms, call selectors (which raise 404 for outsiders and 403 for members
without the capability) and services, and render. Any active user may create a study and becomes
its coordinator; everything else needs a role in the study.
"""

import csv
from dataclasses import dataclass, field

import numpy as np
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.http import FileResponse, Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ml.core.alignment import apply_transform, similarity_transform
from webapp.analysis.kinds import KIND_SPECS, AnalysisKind, untrained_kinds
from webapp.analysis.models import AnalysisJob, JobStatus, Result
from webapp.analysis.selectors import latest_result
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studies import selectors, services
from webapp.studies.access import Capability, capabilities
from webapp.studies.forms import (
    ComparisonCreateForm,
    MemberAddForm,
    MemberRoleForm,
    PhotoUploadForm,
    StudyCreateForm,
    StudySettingsForm,
    SubjectCreateForm,
    VisitCreateForm,
)
from webapp.studies.ingest import IngestError, photo_ingest
from webapp.studies.models import Comparison, Photo, PhotoView, Visit, VisitRole

LANDMARKS = AnalysisKind.LANDMARKS.value


def _flash_form_errors(request: HttpRequest, form) -> None:
    for field_name, errors in form.errors.items():
        prefix = "" if field_name == "__all__" else f"{form.fields[field_name].label or field_name}: "
        for error in errors:
            messages.error(request, f"{prefix}{error}")


def _flash_validation_error(request: HttpRequest, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)


# Studies ------------------------------------------------------------------------------------------


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    return render(request, "studies/study_list.html", {"studies": selectors.studies_for_user(request.user)})


@login_required
@require_http_methods(["GET", "POST"])
def study_create(request: HttpRequest) -> HttpResponse:
    form = StudyCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            study = services.study_create(
                name=form.cleaned_data["name"],
                protocol=form.cleaned_data["protocol"],
                required_views=form.cleaned_data["required_views"],
                analyses=form.cleaned_data["analyses"],
                creator=request.user,
                request=request,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, f"Study {study.name!r} created. You are its coordinator.")
            return redirect("studies:study_detail", study_id=study.pk)
    return render(request, "studies/study_create.html", {"form": form})


@login_required
@require_GET
def study_detail(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id)
    view_labels = dict(PhotoView.choices)
    kind_labels = dict(AnalysisKind.choices)
    context = {
        "study": study,
        "can": {capability.value: True for capability in capabilities(request.user, study)},
        "required_views": [view_labels.get(view, view) for view in study.required_views],
        "analyses": [kind_labels.get(kind, kind) for kind in study.analyses],
        "members": selectors.study_members(study),
        "subject_rows": selectors.subject_rows(study),
        "comparisons": selectors.comparisons_for_user(request.user).filter(subject__study=study),
        "member_form": MemberAddForm(),
        "role_form": MemberRoleForm(),
        "subject_form": SubjectCreateForm(),
        "untrained": [
            (kind_labels.get(kind, kind), message)
            for kind, message in untrained_kinds().items()
            if kind in study.analyses
        ],
        "zones_of_interest": study.zones_of_interest,
        "normality_region": study.get_normality_region_display(),
    }
    return render(request, "studies/study_detail.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def study_settings(request: HttpRequest, study_id: int) -> HttpResponse:
    """Coordinators choose the analyses run on upload, the zones of interest and the normality region."""
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = StudySettingsForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        try:
            services.study_update(study=study, actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(request, "Study settings saved. They apply to photos uploaded from now on.")
            return redirect("studies:study_detail", study_id=study.pk)
    kind_labels = dict(AnalysisKind.choices)
    context = {
        "study": study,
        "form": form,
        "untrained": [(kind_labels[kind], message) for kind, message in untrained_kinds().items()],
        "zone_model": KIND_SPECS[AnalysisKind.ZONES].model_for(study),
    }
    return render(request, "studies/study_settings.html", context)


@login_required
@require_POST
def member_add(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = MemberAddForm(request.POST)
    if form.is_valid():
        user = form.cleaned_data["username"]
        services.membership_set(
            study=study, user=user, role=form.cleaned_data["role"], actor=request.user, request=request
        )
        messages.success(request, f"{user.get_username()} is now a member of this study.")
    else:
        _flash_form_errors(request, form)
    return redirect("studies:study_detail", study_id=study.pk)


@login_required
@require_POST
def member_role(request: HttpRequest, study_id: int, membership_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    membership = get_object_or_404(selectors.study_members(study), pk=membership_id)
    form = MemberRoleForm(request.POST)
    if form.is_valid():
        try:
            services.membership_set(
                study=study,
                user=membership.user,
                role=form.cleaned_data["role"],
                actor=request.user,
                request=request,
            )
        except ValidationError as error:
            _flash_validation_error(request, error)
        else:
            messages.success(request, f"Changed the role of {membership.user.get_username()}.")
    else:
        _flash_form_errors(request, form)
    return redirect("studies:study_detail", study_id=study.pk)


@login_required
@require_POST
def member_remove(request: HttpRequest, study_id: int, membership_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    membership = get_object_or_404(selectors.study_members(study), pk=membership_id)
    try:
        services.membership_remove(membership=membership, actor=request.user, request=request)
    except ValidationError as error:
        _flash_validation_error(request, error)
    else:
        messages.success(request, f"Removed {membership.user.get_username()} from the study.")
    return redirect("studies:study_detail", study_id=study.pk)


@login_required
@require_POST
def subject_create(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_SUBJECTS)
    form = SubjectCreateForm(request.POST)
    if not form.is_valid():
        _flash_form_errors(request, form)
        return redirect("studies:study_detail", study_id=study.pk)
    try:
        subject = services.subject_create(
            study=study, code=form.cleaned_data["code"], actor=request.user, request=request
        )
    except ValidationError as error:
        _flash_validation_error(request, error)
        return redirect("studies:study_detail", study_id=study.pk)
    messages.success(request, f"Subject {subject.code} added.")
    return redirect("studies:subject_detail", subject_id=subject.pk)


# Subjects and visits ------------------------------------------------------------------------------


@dataclass
class VisitColumn:
    visit: Visit
    missing: list[str]
    cells: dict[str, list[Photo]]


def _landmark_job(photo: Photo) -> AnalysisJob | None:
    """The newest landmarks job of a photo whose jobs were prefetched."""
    jobs = [job for job in photo.jobs.all() if job.kind == LANDMARKS]
    return max(jobs, key=lambda job: job.created_at) if jobs else None


@login_required
@require_GET
def subject_detail(request: HttpRequest, subject_id: int) -> HttpResponse:
    subject = selectors.get_subject(request.user, subject_id)
    study = subject.study
    visits = list(selectors.subject_visits_with_photos(subject))
    view_labels = dict(PhotoView.choices)
    columns = []
    views_present = set(study.required_views)
    for visit in visits:
        cells: dict[str, list[Photo]] = {}
        for photo in visit.photos.all():
            photo.landmark_job = _landmark_job(photo)
            cells.setdefault(photo.view, []).append(photo)
            views_present.add(photo.view)
        missing = [view_labels[view] for view in study.required_views if view not in cells]
        columns.append(VisitColumn(visit=visit, missing=missing, cells=cells))
    rows = [
        {"view": view, "label": label, "cells": [column.cells.get(view, []) for column in columns]}
        for view, label in PhotoView.choices
        if view in views_present
    ]
    context = {
        "study": study,
        "subject": subject,
        "can": {capability.value: True for capability in capabilities(request.user, study)},
        "columns": columns,
        "rows": rows,
        "visit_form": VisitCreateForm(),
        "comparison_form": ComparisonCreateForm(subject=subject) if len(visits) >= 2 else None,
        "comparisons": subject.comparisons.select_related("pre_visit", "post_visit"),
        "view_choices": PhotoView.choices,
        "default_visit": visits[-1] if visits else None,
    }
    return render(request, "studies/subject_detail.html", context)


@login_required
@require_POST
def visit_create(request: HttpRequest, subject_id: int) -> HttpResponse:
    subject = selectors.get_subject(request.user, subject_id, Capability.MANAGE_SUBJECTS)
    form = VisitCreateForm(request.POST)
    if not form.is_valid():
        _flash_form_errors(request, form)
    else:
        try:
            visit = services.visit_create(
                subject=subject, actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            _flash_validation_error(request, error)
        else:
            messages.success(request, f"Visit {visit.label!r} added.")
    return redirect("studies:subject_detail", subject_id=subject.pk)


@login_required
@require_POST
def comparison_create(request: HttpRequest, subject_id: int) -> HttpResponse:
    subject = selectors.get_subject(request.user, subject_id, Capability.COMPARE)
    form = ComparisonCreateForm(request.POST, subject=subject)
    if not form.is_valid():
        _flash_form_errors(request, form)
        return redirect("studies:subject_detail", subject_id=subject.pk)
    try:
        comparison = services.comparison_create(
            pre_visit=form.cleaned_data["pre_visit"],
            post_visit=form.cleaned_data["post_visit"],
            actor=request.user,
            request=request,
        )
    except ValidationError as error:
        _flash_validation_error(request, error)
        return redirect("studies:subject_detail", subject_id=subject.pk)
    return redirect("studies:comparison_detail", comparison_id=comparison.pk)


# Photos -------------------------------------------------------------------------------------------


def _photo_payload(photo: Photo) -> dict:
    return {
        "id": photo.pk,
        "view": photo.view,
        "view_label": photo.get_view_display(),
        "visit": photo.visit_id,
        "width": photo.width,
        "height": photo.height,
        "url": reverse("studies:photo_detail", args=[photo.pk]),
        "thumbnail_url": reverse("studies:photo_thumbnail", args=[photo.pk]),
        "jobs": [{"id": job.pk, "kind": job.kind, "status": job.status} for job in photo.jobs.all()],
    }


@never_cache
@login_required
@require_POST
def photo_upload(request: HttpRequest, visit_id: int) -> JsonResponse:
    """Ingest one photo into a visit. Answers JSON so the upload page can show a message per file."""
    try:
        visit = selectors.get_visit(request.user, visit_id, Capability.UPLOAD)
    except Http404:
        return JsonResponse({"ok": False, "error": "No such visit."}, status=404)
    except PermissionDenied:
        return JsonResponse(
            {"ok": False, "error": "Your role in this study does not allow uploads."}, status=403
        )
    form = PhotoUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        problems = [
            f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
            for name, errors in form.errors.items()
        ]
        return JsonResponse({"ok": False, "error": " ".join(problems)}, status=400)
    try:
        photo = photo_ingest(
            visit=visit,
            view=form.cleaned_data["view"],
            upload=form.cleaned_data["file"],
            uploaded_by=request.user,
            request=request,
        )
    except IngestError as error:
        return JsonResponse({"ok": False, "error": error.message, "code": error.code}, status=400)
    return JsonResponse({"ok": True, "photo": _photo_payload(photo)}, status=201)


@dataclass
class LandmarkView:
    """A landmarks result as the photo page shows it."""

    result: Result
    face: dict | None
    face_count: int
    quality: dict
    measures: list[tuple[str, str]]
    model: dict
    image: dict


def _format_measure(value: object) -> str:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return str(value)
    return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"


def _landmark_view(result: Result | None) -> LandmarkView | None:
    if result is None:
        return None
    faces = result.data.get("faces") or []
    quality = result.data.get("quality") or {}
    return LandmarkView(
        result=result,
        face=faces[0] if faces else None,
        face_count=len(faces),
        quality=quality,
        measures=[
            (name.replace("_", " "), _format_measure(value))
            for name, value in sorted((quality.get("measures") or {}).items())
        ],
        model=result.data.get("model") or {"name": result.model_name, "version": result.model_version},
        image=result.data.get("image") or {},
    )


def _overlay_data(photo: Photo, result: Result | None) -> dict | None:
    """What overlay.js draws: the faces of the result, in the stored photo's pixel frame."""
    if result is None:
        return None
    return {"faces": result.data.get("faces", []), "image": {"width": photo.width, "height": photo.height}}


@login_required
@require_GET
def photo_detail(request: HttpRequest, photo_id: int) -> HttpResponse:
    photo = selectors.get_photo(request.user, photo_id)
    result = latest_result(photo.pk, LANDMARKS)
    if result is not None:
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed landmarks of photo {photo.pk}",
            actor=request.user,
            target=result,
            study_id=photo.study_id,
            request=request,
        )
    jobs = photo.jobs.order_by("-created_at")
    landmarks = _landmark_view(result)
    context = {
        "study": photo.study,
        "subject": photo.visit.subject,
        "visit": photo.visit,
        "photo": photo,
        "can": {capability.value: True for capability in capabilities(request.user, photo.study)},
        "jobs": jobs,
        "landmarks": landmarks,
        "overlay": _overlay_data(photo, result),
        **_analysis_context(request, photo),
    }
    return render(request, "studies/photo_detail.html", context)


def _artifact_urls(result: Result | None) -> dict[str, str]:
    """Each artifact of a result by name, served (and audited) by the analysis:artifact view."""
    if result is None:
        return {}
    return {
        artifact.name: reverse("analysis:artifact", args=[artifact.pk]) for artifact in result.artifacts.all()
    }


def _audit_results_viewed(request: HttpRequest, photo: Photo, results: dict[str, Result | None]) -> None:
    for kind, result in results.items():
        if result is not None and kind != LANDMARKS:
            audit_record(
                action=AuditAction.VIEW,
                summary=f"Viewed {kind} result of photo {photo.pk}",
                actor=request.user,
                target=result,
                study_id=photo.study_id,
                request=request,
            )


def _analysis_context(request: HttpRequest, photo: Photo) -> dict:
    """Zones, wrinkles and normality results of the photo as the photo page shows them."""
    study = photo.study
    results = selectors.photo_results(photo)
    _audit_results_viewed(request, photo, results)
    zones, wrinkles, normality = (results[kind] for kind in ("zones", "wrinkles", "normality"))
    return {
        "zones": zones,
        "zone_rows": selectors.zone_rows(
            zones and zones.data, wrinkles and wrinkles.data, study.zones_of_interest
        )
        if zones or wrinkles
        else [],
        "zones_overlay": selectors.zones_overlay_data(zones.data, study.zones_of_interest) if zones else None,
        "wrinkles": wrinkles,
        "wrinkle_artifacts": _artifact_urls(wrinkles),
        "wrinkle_regions": [
            (name.replace("_", " "), figures)
            for name, figures in (wrinkles.data.get("regions") or {}).items()
        ]
        if wrinkles
        else [],
        "normality": normality,
        "normality_images": _normality_images(_artifact_urls(normality)),
    }


def _normality_images(urls: dict[str, str]) -> dict[str, str] | None:
    names = {key: f"normality-{key}" for key in ("aligned", "normalized", "heatmap")}
    if not all(name in urls for name in names.values()):
        return None
    return {key: urls[name] for key, name in names.items()}


def _serve_photo_file(request: HttpRequest, photo_id: int, *, thumbnail: bool) -> FileResponse:
    photo = selectors.get_photo(request.user, photo_id)
    download = request.GET.get("download") == "1" and not thumbnail
    stored = photo.thumbnail if thumbnail else photo.image
    if not stored:
        raise Http404("This photo has no stored image.")
    action = AuditAction.DOWNLOAD if download else AuditAction.VIEW
    what = "thumbnail" if thumbnail else "image"
    audit_record(
        action=action,
        summary=f"{action.label} {what} of photo {photo.pk}",
        actor=request.user,
        target=photo,
        request=request,
        details={"file": what},
    )
    filename = f"{photo.visit.subject.code}_{photo.visit.label}_{photo.view}_{photo.pk}.png".replace(" ", "-")
    response = FileResponse(
        stored.open("rb"),
        as_attachment=download,
        filename=filename if download else None,
        content_type="image/jpeg" if thumbnail else "image/png",
    )
    # Patient photos must not linger in shared or browser caches.
    response["Cache-Control"] = "private, no-store"
    return response


@login_required
@require_GET
def photo_image(request: HttpRequest, photo_id: int) -> FileResponse:
    return _serve_photo_file(request, photo_id, thumbnail=False)


@login_required
@require_GET
def photo_thumbnail(request: HttpRequest, photo_id: int) -> FileResponse:
    return _serve_photo_file(request, photo_id, thumbnail=True)


# Comparisons --------------------------------------------------------------------------------------


@dataclass
class RegisteredPair:
    """The pre and post photo of one view, with the post photo mapped onto the pre photo's frame."""

    view_label: str
    pre: Photo
    post: Photo
    css_matrix: str = ""
    scale: float = 1.0
    rotation_degrees: float = 0.0
    residual_px: float = 0.0
    problems: list[str] = field(default_factory=list)
    wrinkle_rows: list[dict] = field(default_factory=list)
    wrinkle_notes: list[str] = field(default_factory=list)
    normality: dict | None = None
    heatmaps: tuple[dict[str, str], dict[str, str]] | None = None
    normality_notes: list[str] = field(default_factory=list)


def _landmark_problem(photo: Photo, label: str) -> tuple[np.ndarray | None, str]:
    """The photo's first face's landmarks, or a sentence saying why there are none."""
    result = latest_result(photo.pk, LANDMARKS)
    if result is not None:
        faces = result.data.get("faces") or []
        if not faces:
            return None, f"The landmark job of the {label} photo (job {result.job_id}) found no face."
        return np.asarray(faces[0]["landmarks"], dtype=np.float64), ""
    job = photo.jobs.filter(kind=LANDMARKS).order_by("-created_at").first()
    if job is None:
        return None, f"No landmark job has been run on the {label} photo."
    if job.status == JobStatus.FAILED:
        reason = job.error or "no reason given"
        return None, f"The landmark job of the {label} photo (job {job.pk}) failed: {reason}"
    if job.status == JobStatus.CANCELLED:
        return None, f"The landmark job of the {label} photo (job {job.pk}) was cancelled."
    state = job.get_status_display().lower()
    return None, (
        f"The landmark job of the {label} photo (job {job.pk}) is {state} ({job.progress:.0%}); "
        "reload when it has finished."
    )


def _register(pre: Photo, post: Photo, view_label: str) -> RegisteredPair:
    pair = RegisteredPair(view_label=view_label, pre=pre, post=post)
    pre_points, pre_problem = _landmark_problem(pre, "pre")
    post_points, post_problem = _landmark_problem(post, "post")
    pair.problems = [problem for problem in (pre_problem, post_problem) if problem]
    if pre_points is None or post_points is None:
        return pair
    matrix = similarity_transform(post_points, pre_points)
    (a, c, e), (b, d, f) = matrix
    # CSS matrix(a, b, c, d, e, f) maps (x, y) to (a·x + c·y + e, b·x + d·y + f): the map [[a c e], [b d f]].
    pair.css_matrix = f"matrix({a:.6f}, {b:.6f}, {c:.6f}, {d:.6f}, {e:.3f}, {f:.3f})"
    pair.scale = float(np.hypot(a, b))
    pair.rotation_degrees = float(np.degrees(np.arctan2(b, a)))
    # Mean distance between pre landmarks and mapped post landmarks: how well the faces line up.
    pair.residual_px = float(np.linalg.norm(apply_transform(matrix, post_points) - pre_points, axis=1).mean())
    return pair


@login_required
@require_GET
def comparison_detail(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison: Comparison = selectors.get_comparison(request.user, comparison_id)
    pre_photos = {photo.view: photo for photo in comparison.pre_visit.photos.order_by("uploaded_at")}
    post_photos = {photo.view: photo for photo in comparison.post_visit.photos.order_by("uploaded_at")}
    pairs = []
    for view, label in PhotoView.choices:
        if view in pre_photos and view in post_photos:
            pair = _register(pre_photos[view], post_photos[view], label)
            _compare_results(request, pair, comparison)
            pairs.append(pair)
            for photo in (pair.pre, pair.post):
                audit_record(
                    action=AuditAction.VIEW,
                    summary=f"Viewed photo {photo.pk} in comparison {comparison.pk}",
                    actor=request.user,
                    target=photo,
                    request=request,
                    details={"comparison": comparison.pk},
                )
    unpaired = [label for view, label in PhotoView.choices if (view in pre_photos) != (view in post_photos)]
    context = {
        "study": comparison.subject.study,
        "subject": comparison.subject,
        "comparison": comparison,
        "pairs": pairs,
        "unpaired": unpaired,
        "roles": VisitRole,
        "zones_of_interest": comparison.subject.study.zones_of_interest,
    }
    return render(request, "studies/comparison_detail.html", context)


def _missing_result_note(photo: Photo, label: str, kind: str) -> str:
    job = photo.jobs.filter(kind=kind).order_by("-created_at").first()
    if job is None:
        return f"No {kind} analysis has been run on the {label} photo."
    if job.status == JobStatus.FAILED:
        return f"The {kind} job of the {label} photo (job {job.pk}) failed: {job.error or 'no reason given'}"
    return f"The {kind} job of the {label} photo (job {job.pk}) is {job.get_status_display().lower()}."


def _compare_results(request: HttpRequest, pair: RegisteredPair, comparison: Comparison) -> None:
    """Per-zone wrinkle change (zones of interest) and normality change of a registered pre/post pair."""
    zones = comparison.subject.study.zones_of_interest
    results = {
        (side, kind): latest_result(photo.pk, kind)
        for side, photo in (("pre", pair.pre), ("post", pair.post))
        for kind in (AnalysisKind.WRINKLES, AnalysisKind.NORMALITY)
    }
    for (side, kind), result in results.items():
        if result is not None:
            audit_record(
                action=AuditAction.VIEW,
                summary=f"Viewed {kind} result in comparison {comparison.pk}",
                actor=request.user,
                target=result,
                study_id=comparison.subject.study_id,
                request=request,
                details={"comparison": comparison.pk, "side": side},
            )
    notes_by_kind = (
        (AnalysisKind.WRINKLES, pair.wrinkle_notes),
        (AnalysisKind.NORMALITY, pair.normality_notes),
    )
    for kind, notes in notes_by_kind:
        for side, photo in (("pre", pair.pre), ("post", pair.post)):
            if results[(side, kind)] is None:
                notes.append(_missing_result_note(photo, side, kind))
    pre_wrinkles, post_wrinkles = results[("pre", "wrinkles")], results[("post", "wrinkles")]
    if pre_wrinkles and post_wrinkles:
        pair.wrinkle_rows = selectors.wrinkle_zone_changes(pre_wrinkles.data, post_wrinkles.data, zones)
    pre_normality, post_normality = results[("pre", "normality")], results[("post", "normality")]
    if pre_normality and post_normality:
        pair.normality = selectors.normality_change(pre_normality.data, post_normality.data)
        urls = (_artifact_urls(pre_normality), _artifact_urls(post_normality))
        images = tuple(_normality_images(found) for found in urls)
        if all(images):
            pair.heatmaps = images


# Cohort -------------------------------------------------------------------------------------------

COHORT_CSV_COLUMNS = [
    "subject",
    "pre_visit",
    "post_visit",
    "view",
    "normality_region",
    "normality_S_pre",
    "normality_S_post",
    "normality_S_change",
    "normality_S_percent_change",
    "normality_improved_higher_S_is_more_normal",
    "rating_pre_1to7",
    "rating_post_1to7",
    "wrinkle_percent_zones_of_interest_pre",
    "wrinkle_percent_zones_of_interest_post",
    "wrinkle_percent_points_change",
]


@login_required
@require_GET
def study_cohort(request: HttpRequest, study_id: int) -> HttpResponse:
    """Per-subject pre→post change of the normality score and of wrinkle area in the zones of interest."""
    study = selectors.get_study(request.user, study_id, Capability.EXPORT)
    rows = selectors.cohort_rows(study)
    audit_record(
        action=AuditAction.VIEW,
        summary=f"Viewed cohort changes of {study.name!r}",
        actor=request.user,
        target=study,
        request=request,
        details={"rows": len(rows)},
    )
    return render(request, "studies/study_cohort.html", {"study": study, "rows": rows})


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


@login_required
@require_GET
def study_cohort_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.EXPORT)
    rows = selectors.cohort_rows(study)
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported cohort changes of {study.name!r} as CSV",
        actor=request.user,
        target=study,
        request=request,
        details={"rows": len(rows)},
    )
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="study-{study.pk}-cohort-changes.csv"'
    response["Cache-Control"] = "private, no-store"
    writer = csv.writer(response)
    writer.writerow(COHORT_CSV_COLUMNS)
    for row in rows:
        normality = row.normality or {}
        improved = normality.get("improved")
        writer.writerow(
            [
                row.subject.code,
                row.comparison.pre_visit.label,
                row.comparison.post_visit.label,
                row.view,
                normality.get("region", ""),
                _csv_number(normality.get("pre")),
                _csv_number(normality.get("post")),
                _csv_number(normality.get("change")),
                _csv_number(normality.get("percent")),
                "" if improved is None else ("yes" if improved else "no"),
                _csv_number(normality.get("pre_rating")),
                _csv_number(normality.get("post_rating")),
                _csv_number(row.wrinkles_pre),
                _csv_number(row.wrinkles_post),
                _csv_number(row.wrinkles_change),
            ]
        )
    return response
