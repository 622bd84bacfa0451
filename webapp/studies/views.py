"""Pages of studies, members and subjects, visit and comparison creation, and the photo files.

Views parse input with forms, call selectors (which raise 404 for outsiders and 403 for members
without the capability) and services, and render. Who may create a study is a setting
(FACET_STUDY_CREATORS); its creator becomes its coordinator; everything else needs a role in it.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record, covered_by_page_view
from webapp.studies import selectors, services
from webapp.studies.access import Capability, capabilities, may_create_studies
from webapp.studies.catalogue import untrained_kinds
from webapp.studies.forms import (
    ComparisonCreateForm,
    MemberAddForm,
    MemberRoleForm,
    SearchForm,
    StudyCreateForm,
    SubjectCreateForm,
    VisitCreateForm,
)
from webapp.studies.invitations import pending_invitations
from webapp.studies.models import AnalysisKind, PhotoView


def _flash_form_errors(request: HttpRequest, form) -> None:
    for field_name, errors in form.errors.items():
        prefix = "" if field_name == "__all__" else f"{form.fields[field_name].label or field_name}: "
        for error in errors:
            messages.error(request, f"{prefix}{error}")


def _flash_validation_error(request: HttpRequest, error: ValidationError) -> None:
    for text in error.messages:
        messages.error(request, text)


# Studies ------------------------------------------------------------------------------------------


LIST_PAGE_SIZE = 25


@login_required
@require_GET
def study_list(request: HttpRequest) -> HttpResponse:
    search = SearchForm(request.GET or None)
    query = search.cleaned_data["q"].strip() if search.is_valid() else ""
    studies = selectors.studies_for_user(request.user)
    if query:
        studies = studies.filter(Q(name__icontains=query) | Q(protocol__icontains=query))
    page = Paginator(studies.order_by("name"), LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "studies": page.object_list,
        "page": page,
        "query": query,
        "may_create": may_create_studies(request.user),
    }
    return render(request, "studies/study_list.html", context)


@login_required
@require_http_methods(["GET", "POST"])
def study_create(request: HttpRequest) -> HttpResponse:
    if not may_create_studies(request.user):
        raise PermissionDenied("Only site admins and users they allow may create studies.")
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
    search = SearchForm(request.GET or None)
    query = search.cleaned_data["q"].strip() if search.is_valid() else ""
    subjects = study.subjects.alive().order_by("code")
    if query:
        subjects = subjects.filter(code__icontains=query)
    subject_page = Paginator(subjects, LIST_PAGE_SIZE).get_page(request.GET.get("page"))
    context = {
        "subject_page": subject_page,
        "query": query,
        "study": study,
        "can": {capability.value: True for capability in capabilities(request.user, study)},
        "required_views": [view_labels.get(view, view) for view in study.required_views],
        "analyses": [kind_labels.get(kind, kind) for kind in study.analyses],
        "members": selectors.study_members(study),
        "invitations": pending_invitations(study),
        "subject_rows": selectors.subject_rows(study, list(subject_page.object_list)),
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


def _serve_photo_file(request: HttpRequest, photo_id: int, *, thumbnail: bool) -> FileResponse:
    photo = selectors.get_photo(request.user, photo_id)
    download = request.GET.get("download") == "1" and not thumbnail
    stored = photo.thumbnail if thumbnail else photo.image
    if not stored:
        raise Http404("This photo has no stored image.")
    action = AuditAction.DOWNLOAD if download else AuditAction.VIEW
    what = "thumbnail" if thumbnail else "image"
    if download or not covered_by_page_view(request, photo_id=photo.pk):
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
