"""Pages that show analysis results and settings: the study's analysis settings, the subject's visits
side by side, the photo page with its jobs and results, the upload endpoint, pre/post comparisons
and the cohort's changes.

Their URLs keep the names of the study pages (``studies:photo_detail`` ...): ``webapp/urls.py`` serves
them in the ``studies`` namespace, so the studies app itself never imports analysis.
"""

from dataclasses import dataclass, field

import numpy as np
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.db import transaction
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from ml.core.alignment import apply_transform, similarity_transform
from ml.core.subject import subject_face
from webapp.analysis import model_figures, results, services
from webapp.analysis import pairs as pair_services
from webapp.analysis import selectors as analysis_selectors
from webapp.analysis.forms import StudySettingsForm
from webapp.analysis.kinds import KIND_SPECS, untrained_kinds
from webapp.analysis.models import AnalysisJob, ComparisonPair, Result, photo_has_no_face
from webapp.analysis.selectors import latest_result
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_page_view, audit_record
from webapp.audit.templatetags.audit import seen
from webapp.runs import selectors as run_selectors
from webapp.runs.models import RunStatus
from webapp.spreadsheets import SafeCsvWriter
from webapp.studies import selectors as study_selectors
from webapp.studies import services as study_services
from webapp.studies.access import Capability, capabilities
from webapp.studies.forms import (
    ComparisonCreateForm,
    DeleteForm,
    PhotoEditForm,
    PhotoUploadForm,
    SubjectEditForm,
    VisitCreateForm,
)
from webapp.studies.ingest import IngestError, refuse_several_files
from webapp.studies.models import AnalysisKind, Comparison, Photo, PhotoView, Visit, VisitRole

LANDMARKS = AnalysisKind.LANDMARKS.value


@login_required
@require_http_methods(["GET", "POST"])
def study_settings(request: HttpRequest, study_id: int) -> HttpResponse:
    """Coordinators choose the analyses run on upload, the zones of interest, the normality region, the
    landmark detector and which model versions the study runs."""
    study = study_selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = StudySettingsForm(request.POST or None, study=study)
    if request.method == "POST" and form.is_valid():
        fields = dict(form.cleaned_data)
        detector = fields.pop("landmark_detector") or study.landmark_detector
        try:
            with transaction.atomic():
                study_services.study_update(study=study, actor=request.user, request=request, **fields)
                if detector != study.landmark_detector:
                    services.landmark_detector_set(
                        study=study, detector=detector, actor=request.user, request=request
                    )
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
        "model_choices": _model_choices(study),
    }
    return render(request, "studies/study_settings.html", context)


def _model_choices(study) -> list[dict]:
    """Per model with trained versions: its versions, the site's active one and the study's choice."""
    chosen = analysis_selectors.study_model_choices(study)
    rows = []
    versions = [version for version in analysis_selectors.model_versions() if version.weights_path]
    for name in sorted({version.name for version in versions}):
        of_name = [version for version in versions if version.name == name]
        site = next((version for version in of_name if version.is_active), None)
        for version in of_name:
            version.figure = model_figures.figure(name, version.metrics)
        rows.append(
            {
                "name": name,
                "versions": of_name,
                "site": site,
                "chosen": chosen.get(name),
                "shipped_figure": model_figures.shipped_figure(name),
            }
        )
    return rows


@login_required
@require_POST
def study_model_version(request: HttpRequest, study_id: int) -> HttpResponse:
    """A coordinator chooses which version of a model the study's new jobs run (empty: as the site)."""
    study = study_selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    name = request.POST.get("name", "")
    version_id = request.POST.get("model_version", "")
    version = None
    if version_id:
        version = (
            analysis_selectors.model_versions(name)
            .filter(pk=version_id if version_id.isdigit() else 0)
            .first()
        )
        if version is None:
            raise Http404("No such model version.")
    try:
        services.study_model_version_set(
            study=study, name=name, model_version=version, actor=request.user, request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        chosen = f"version {version.version}" if version else "the site's version"
        messages.success(request, f"New {name} jobs of this study run {chosen}.")
        found = model_figures.figure(name, version.metrics) if version else None
        if found is not None and found.below_floor:
            messages.warning(
                request,
                f"Version {version.version}'s {found.text} is below the floor ({found.floor_text}): "
                "check its results, or go back to the site's version.",
            )
    return redirect("studies:study_settings", study_id=study.pk)


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
    subject = study_selectors.get_subject(request.user, subject_id)
    study = subject.study
    visits = list(results.subject_visits_with_photos(subject))
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
    view_grant = audit_page_view(
        request,
        summary=f"Viewed subject {subject.code} and the thumbnails of its photos",
        target=subject,
        photos=[photo.pk for column in columns for cell in column.cells.values() for photo in cell],
        details={"page": "subject"},
    )
    context = {
        "view_grant": view_grant,
        "study": study,
        "subject": subject,
        "can": {capability.value: True for capability in capabilities(request.user, study)},
        "columns": columns,
        "rows": rows,
        "visit_form": VisitCreateForm(),
        "comparison_form": ComparisonCreateForm(subject=subject) if len(visits) >= 2 else None,
        "comparisons": subject.comparisons.alive().select_related("pre_visit", "post_visit"),
        "subject_form": SubjectEditForm(initial={"code": subject.code}),
        "delete_form": DeleteForm(),
        "view_choices": PhotoView.choices,
        "default_visit": visits[-1] if visits else None,
    }
    return render(request, "studies/subject_detail.html", context)


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
        visit = study_selectors.get_visit(request.user, visit_id, Capability.UPLOAD)
    except Http404:
        return JsonResponse({"ok": False, "error": "No such visit."}, status=404)
    except PermissionDenied:
        return JsonResponse(
            {"ok": False, "error": "Your role in this study does not allow uploads."}, status=403
        )
    try:
        refuse_several_files(request.FILES)
    except IngestError as error:
        return JsonResponse({"ok": False, "error": error.message, "code": error.code}, status=400)
    form = PhotoUploadForm(request.POST, request.FILES)
    if not form.is_valid():
        problems = [
            f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
            for name, errors in form.errors.items()
        ]
        return JsonResponse({"ok": False, "error": " ".join(problems)}, status=400)
    try:
        photo = services.photo_upload(
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
        face=subject_face(faces),
        face_count=len(faces),
        quality=quality,
        measures=[
            (name.replace("_", " "), _format_measure(value))
            for name, value in sorted((quality.get("measures") or {}).items())
        ],
        model=result.data.get("model") or {"name": result.model_name, "version": result.model_version},
        image=result.data.get("image") or {},
    )


def _suggested_view(photo: Photo, landmarks: LandmarkView | None) -> dict | None:
    """The view the measured head pose suggests, when it is not the photo's recorded view."""
    from ml.core.quality import suggest_view

    if landmarks is None or landmarks.face is None or "pose" not in landmarks.face:
        return None
    yaw = float(landmarks.face["pose"]["yaw"])
    view = suggest_view(yaw)
    if view == photo.view:
        return None
    return {"view": view, "label": PhotoView(view).label, "yaw": yaw}


def _overlay_data(photo: Photo, result: Result | None) -> dict | None:
    """What overlay.js draws: the faces of the result, in the stored photo's pixel frame."""
    if result is None:
        return None
    return {"faces": result.data.get("faces", []), "image": {"width": photo.width, "height": photo.height}}


@login_required
@require_GET
def photo_detail(request: HttpRequest, photo_id: int) -> HttpResponse:
    photo = study_selectors.get_photo(request.user, photo_id)
    # The job list is read before the results: a job finishing in between is then shown still running,
    # and its watcher reloads the section; read after, it would show finished beside the older result,
    # and nothing would ever reload it.
    jobs = list(photo.jobs.order_by("-created_at"))
    found = results.photo_results(photo)
    result = found[LANDMARKS]
    shown = [kept for kept in found.values() if kept is not None]
    # One event for the page, its photo, its results and their images (which the grant covers).
    view_grant = audit_page_view(
        request,
        summary=f"Viewed photo {photo.pk} and its results",
        target=photo,
        photos=[photo.pk],
        results=[kept.pk for kept in shown],
        artifacts=[artifact.pk for kept in shown for artifact in kept.artifacts.all()],
        details={"page": "photo"},
    )
    landmarks = _landmark_view(result)
    broker_warning = ""
    if any(job.is_active for job in jobs) and run_selectors.broker_problem():
        broker_warning = (
            "The job broker cannot be reached, so this photo's analyses wait. They are kept and sent "
            "automatically when it is back; nothing needs to be uploaded again."
        )
    can = {capability.value: True for capability in capabilities(request.user, photo.study)}
    context = {
        "suggested_view": _suggested_view(photo, landmarks),
        "view_grant": view_grant,
        "edit_form": PhotoEditForm(photo=photo) if can.get("manage_subjects") else None,
        "delete_form": DeleteForm(),
        "study": photo.study,
        "subject": photo.visit.subject,
        "visit": photo.visit,
        "photo": photo,
        "can": can,
        "jobs": jobs,
        "broker_warning": broker_warning,
        "landmarks": landmarks,
        "not_applicable": [
            AnalysisKind(kind).label for kind in results.FACE_KINDS if kind in photo.study.analyses
        ]
        if results.no_face_found(found)
        else [],
        "overlay": _overlay_data(photo, result),
        **_analysis_context(photo, found, view_grant),
    }
    return render(request, "studies/photo_detail.html", context)


def _artifact_urls(result: Result | None, view_grant: str) -> dict[str, str]:
    """Each artifact of a result by name, served by the analysis:artifact view; the page's view event
    (`view_grant`) covers them."""
    if result is None:
        return {}
    return {
        artifact.name: seen(reverse("analysis:artifact", args=[artifact.pk]), view_grant)
        for artifact in result.artifacts.all()
    }


def _analysis_context(photo: Photo, found: dict[str, Result | None], view_grant: str) -> dict:
    """Zones, wrinkles and normality results of the photo as the photo page shows them."""
    study = photo.study
    zones, wrinkles, normality = (found[kind] for kind in ("zones", "wrinkles", "normality"))
    return {
        "zones": zones,
        "zone_rows": results.zone_rows(
            zones and zones.data, wrinkles and wrinkles.data, study.zones_of_interest
        )
        if zones or wrinkles
        else [],
        "zones_overlay": results.zones_overlay_data(zones.data, study.zones_of_interest) if zones else None,
        "wrinkles": wrinkles,
        "wrinkle_artifacts": _artifact_urls(wrinkles, view_grant),
        "wrinkle_regions": [
            (name.replace("_", " "), figures)
            for name, figures in (wrinkles.data.get("regions") or {}).items()
        ]
        if wrinkles
        else [],
        "wrinkle_types": results.wrinkle_type_boxes(wrinkles.data) if wrinkles else [],
        "normality": normality,
        "normality_images": _normality_images(_artifact_urls(normality, view_grant)),
    }


def _normality_images(urls: dict[str, str]) -> dict[str, str] | None:
    names = {key: f"normality-{key}" for key in ("aligned", "normalized", "heatmap")}
    if not all(name in urls for name in names.values()):
        return None
    return {key: urls[name] for key, name in names.items()}


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
    wrinkle_floor_measured: bool = False
    wrinkle_type_rows: list[dict] = field(default_factory=list)
    normality: dict | None = None
    heatmaps: tuple[dict[str, str], dict[str, str]] | None = None
    normality_notes: list[str] = field(default_factory=list)
    results: dict[tuple[str, str], Result | None] = field(default_factory=dict)
    stored: ComparisonPair | None = None
    choices: tuple[list[Photo], list[Photo]] = ((), ())


def _landmark_problem(photo: Photo, label: str) -> tuple[np.ndarray | None, str]:
    """The landmarks of the photo's subject (``ml.core.subject``), or a sentence saying why there are none."""
    result = latest_result(photo.pk, LANDMARKS)
    if result is not None:
        faces = result.data.get("faces") or []
        if not faces:
            return None, f"The landmark job of the {label} photo (job {result.job_id}) found no face."
        return np.asarray(subject_face(faces)["landmarks"], dtype=np.float64), ""
    job = photo.jobs.filter(kind=LANDMARKS).order_by("-created_at").first()
    if job is None:
        return None, f"No landmark job has been run on the {label} photo."
    if job.status == RunStatus.FAILED:
        reason = job.error or "no reason given"
        return None, f"The landmark job of the {label} photo (job {job.pk}) failed: {reason}"
    if job.status == RunStatus.CANCELLED:
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
    comparison: Comparison = study_selectors.get_comparison(request.user, comparison_id)
    photos_by_side: dict[str, dict[str, list[Photo]]] = {"pre": {}, "post": {}}
    for side, visit in (("pre", comparison.pre_visit), ("post", comparison.post_visit)):
        for photo in visit.photos.alive().order_by("uploaded_at"):
            photos_by_side[side].setdefault(photo.view, []).append(photo)
    pre_photos, post_photos = photos_by_side["pre"], photos_by_side["post"]
    stored = {pair.view: pair for pair in comparison.pairs.alive().select_related("pre_photo", "post_photo")}
    if any(view in pre_photos and view in post_photos and view not in stored for view in PhotoView.values):
        # A comparison made before photo pairs existed: its pairs are created (and assessed) now.
        stored = {pair.view: pair for pair in pair_services.comparison_pairs_ensure(comparison)}
    pairs = []
    for view, label in PhotoView.choices:
        if view in stored:
            pair = _register(stored[view].pre_photo, stored[view].post_photo, label)
            pair.stored = stored[view]
            pair.choices = (pre_photos.get(view, []), post_photos.get(view, []))
            # Results of a photo without a face are not applicable and not compared.
            found = {"pre": results.photo_results(pair.pre), "post": results.photo_results(pair.post)}
            pair.results = {
                (side, kind): found[side][kind]
                for side in ("pre", "post")
                for kind in (AnalysisKind.WRINKLES, AnalysisKind.NORMALITY)
            }
            pairs.append(pair)
    shown = [result for pair in pairs for result in pair.results.values() if result is not None]
    # One event for the page with its photos, results and result images (which the grant covers).
    view_grant = audit_page_view(
        request,
        summary=f"Viewed comparison {comparison.pk} ({comparison})",
        target=comparison,
        study_id=comparison.subject.study_id,
        photos=[photo.pk for pair in pairs for photo in (pair.pre, pair.post)],
        results=[result.pk for result in shown],
        artifacts=[artifact.pk for result in shown for artifact in result.artifacts.all()],
        details={"page": "comparison"},
    )
    for pair in pairs:
        _compare_results(pair, comparison, view_grant)
    unpaired = [label for view, label in PhotoView.choices if (view in pre_photos) != (view in post_photos)]
    context = {
        "can_choose": Capability.COMPARE in capabilities(request.user, comparison.subject.study),
        "study": comparison.subject.study,
        "subject": comparison.subject,
        "comparison": comparison,
        "pairs": pairs,
        "unpaired": unpaired,
        "roles": VisitRole,
        "zones_of_interest": comparison.subject.study.zones_of_interest,
        "view_grant": view_grant,
    }
    return render(request, "studies/comparison_detail.html", context)


def _missing_result_note(photo: Photo, label: str, kind: str) -> str:
    if photo_has_no_face(photo.pk):
        return f"Not applicable: the landmark analysis found no face in the {label} photo."
    job = photo.jobs.filter(kind=kind).order_by("-created_at").first()
    if job is None:
        return f"No {kind} analysis has been run on the {label} photo."
    if job.status == RunStatus.FAILED:
        return f"The {kind} job of the {label} photo (job {job.pk}) failed: {job.error or 'no reason given'}"
    return f"The {kind} job of the {label} photo (job {job.pk}) is {job.get_status_display().lower()}."


def _compare_results(pair: RegisteredPair, comparison: Comparison, view_grant: str) -> None:
    """Per-zone wrinkle change (zones of interest) and normality change of a registered pre/post pair."""
    zones = comparison.subject.study.zones_of_interest
    found = pair.results
    notes_by_kind = (
        (AnalysisKind.WRINKLES, pair.wrinkle_notes),
        (AnalysisKind.NORMALITY, pair.normality_notes),
    )
    for kind, notes in notes_by_kind:
        for side, photo in (("pre", pair.pre), ("post", pair.post)):
            if found[(side, kind)] is None:
                notes.append(_missing_result_note(photo, side, kind))
    pre_wrinkles, post_wrinkles = found[("pre", "wrinkles")], found[("post", "wrinkles")]
    if pre_wrinkles and post_wrinkles:
        floors = results.wrinkle_noise_floors(pre_wrinkles, post_wrinkles)
        pair.wrinkle_rows = results.wrinkle_zone_changes(pre_wrinkles.data, post_wrinkles.data, zones, floors)
        pair.wrinkle_floor_measured = floors is not None
        pair.wrinkle_type_rows = results.wrinkle_type_changes(
            pair.stored.measures if pair.stored else None, comparison.subject.study.ipd_mm, floors
        )
    pre_normality, post_normality = found[("pre", "normality")], found[("post", "normality")]
    if pre_normality and post_normality:
        pair.normality = results.normality_change(pre_normality.data, post_normality.data)
        urls = (_artifact_urls(pre_normality, view_grant), _artifact_urls(post_normality, view_grant))
        images = tuple(_normality_images(found) for found in urls)
        if all(images):
            pair.heatmaps = images


COHORT_CSV_COLUMNS = [
    "subject",
    "pre_visit",
    "post_visit",
    "view",
    "normality_region",
    "normality_S_pre",
    "normality_S_post",
    "normality_S_change",
    "normality_improved_higher_S_is_more_normal",
    "rating_pre_1to7",
    "rating_post_1to7",
    "wrinkle_percent_zones_of_interest_pre",
    "wrinkle_percent_zones_of_interest_post",
    "wrinkle_percent_points_change",
]


def _csv_number(value: float | None) -> str:
    return "" if value is None else f"{value:.6g}"


@login_required
@require_GET
def study_cohort_csv(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    rows = results.cohort_rows(study)
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
    writer = SafeCsvWriter(response)
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
                "" if improved is None else ("yes" if improved else "no"),
                _csv_number(normality.get("pre_rating")),
                _csv_number(normality.get("post_rating")),
                _csv_number(row.wrinkles_pre),
                _csv_number(row.wrinkles_post),
                _csv_number(row.wrinkles_change),
            ]
        )
    return response


@login_required
@require_POST
def photo_analyse_again(request: HttpRequest, photo_id: int) -> HttpResponse:
    photo = study_selectors.get_photo(request.user, photo_id, Capability.CONTROL_JOBS)
    jobs = services.photo_analyse_again(photo=photo, actor=request.user, request=request)
    kinds = ", ".join(job.get_kind_display().lower() for job in jobs) or "none (the study runs no analysis)"
    messages.success(request, f"Analyses queued again with the models active now: {kinds}.")
    return redirect("studies:photo_detail", photo_id=photo.pk)


@login_required
@require_POST
def pair_photos(request: HttpRequest, pair_id: int) -> HttpResponse:
    """Choose which photo of each visit a comparison pair compares (a visit may hold several)."""
    pair = (
        ComparisonPair.objects.alive()
        .select_related("comparison__subject__study", "comparison__pre_visit", "comparison__post_visit")
        .filter(pk=pair_id, comparison__subject__study__in=study_selectors.study_ids_for_user(request.user))
        .first()
    )
    if pair is None:
        raise Http404("No such comparison pair.")
    study_selectors.get_study(request.user, pair.comparison.subject.study_id, Capability.COMPARE)
    chosen = {}
    for side in ("pre", "post"):
        value = request.POST.get(f"{side}_photo", "")
        photo = Photo.objects.alive().filter(pk=int(value) if value.isdigit() else 0).first()
        if photo is None:
            raise Http404("No such photo.")
        chosen[side] = photo
    try:
        pair_services.pair_photos_choose(
            pair=pair, pre_photo=chosen["pre"], post_photo=chosen["post"], actor=request.user, request=request
        )
    except ValidationError as error:
        messages.error(request, " ".join(error.messages))
    else:
        messages.success(
            request, f"{pair.get_view_display()}: photos {chosen['pre'].pk} and {chosen['post'].pk} compared."
        )
    return redirect("studies:comparison_detail", comparison_id=pair.comparison_id)
