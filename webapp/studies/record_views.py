"""Editing, deleting (reversibly) and restoring subjects, visits and photos; the study's deleted records.

Everything here needs the MANAGE_SUBJECTS capability (clinicians and coordinators); the changes are
made and audited by webapp.studies.records.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from webapp.studies import records, selectors
from webapp.studies.access import Capability, not_found, require
from webapp.studies.forms import DeleteForm, PhotoEditForm, SubjectEditForm, VisitEditForm
from webapp.studies.models import Photo, SoftDeletable, Subject, Visit

RECORD_MODELS = {"subject": Subject, "visit": Visit, "photo": Photo}


def _flash(request: HttpRequest, error: ValidationError | dict) -> None:
    texts = (
        error.messages
        if isinstance(error, ValidationError)
        else [
            f"{name}: {' '.join(errors)}" if name != "__all__" else " ".join(errors)
            for name, errors in error.items()
        ]
    )
    for text in texts:
        messages.error(request, text)


@login_required
@require_POST
def subject_edit(request: HttpRequest, subject_id: int) -> HttpResponse:
    subject = selectors.get_subject(request.user, subject_id, Capability.MANAGE_SUBJECTS)
    form = SubjectEditForm(request.POST)
    if not form.is_valid():
        _flash(request, form.errors)
    else:
        try:
            if records.subject_update(
                subject=subject, actor=request.user, request=request, **form.cleaned_data
            ):
                messages.success(request, f"Subject code changed to {subject.code}.")
        except ValidationError as error:
            _flash(request, error)
    return redirect("studies:subject_detail", subject_id=subject.pk)


@login_required
@require_POST
def visit_edit(request: HttpRequest, visit_id: int) -> HttpResponse:
    visit = selectors.get_visit(request.user, visit_id, Capability.MANAGE_SUBJECTS)
    form = VisitEditForm(request.POST)
    if not form.is_valid():
        _flash(request, form.errors)
    else:
        try:
            if records.visit_update(visit=visit, actor=request.user, request=request, **form.cleaned_data):
                messages.success(request, f"Visit {visit.label!r} changed.")
        except ValidationError as error:
            _flash(request, error)
    return redirect("studies:subject_detail", subject_id=visit.subject_id)


@login_required
@require_POST
def photo_edit(request: HttpRequest, photo_id: int) -> HttpResponse:
    photo = selectors.get_photo(request.user, photo_id, Capability.MANAGE_SUBJECTS)
    form = PhotoEditForm(request.POST, photo=photo)
    if not form.is_valid():
        _flash(request, form.errors)
    else:
        try:
            changes = records.photo_update(
                photo=photo, actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            _flash(request, error)
        else:
            if "view" in changes:
                messages.success(
                    request, f"View corrected to {photo.get_view_display()}: the quality check runs again."
                )
            elif changes:
                messages.success(request, f"Photo moved to {photo.visit}.")
    return redirect("studies:photo_detail", photo_id=photo.pk)


def _record_for_change(request: HttpRequest, kind: str, record_id: int) -> SoftDeletable:
    """The record of `kind`, deleted or not, in a study where the user may manage subjects."""
    model = RECORD_MODELS.get(kind)
    if model is None:
        raise not_found(request.user, "record", record_id)
    record = model.objects.filter(pk=record_id).first()
    if record is None:
        raise not_found(request.user, kind, record_id)
    study = record.study if kind != "visit" else record.subject.study
    require(request.user, study, Capability.MANAGE_SUBJECTS, what=kind, object_id=record_id)
    return record


def _after_change(record: SoftDeletable) -> HttpResponse:
    if isinstance(record, Subject):
        return redirect("studies:study_detail", study_id=record.study_id)
    subject_id = record.subject_id if isinstance(record, Visit) else record.visit.subject_id
    return redirect("studies:subject_detail", subject_id=subject_id)


def _record_page(record: SoftDeletable) -> HttpResponse:
    if isinstance(record, Photo):
        return redirect("studies:photo_detail", photo_id=record.pk)
    subject_id = record.pk if isinstance(record, Subject) else record.subject_id
    return redirect("studies:subject_detail", subject_id=subject_id)


def _record_delete(request: HttpRequest, kind: str, record_id: int) -> HttpResponse:
    record = _record_for_change(request, kind, record_id)
    form = DeleteForm(request.POST)
    if not form.is_valid():
        _flash(request, form.errors)
        return _record_page(record)
    try:
        records.record_delete(
            record=record, reason=form.cleaned_data["reason"], actor=request.user, request=request
        )
    except ValidationError as error:
        _flash(request, error)
        return _record_page(record)
    else:
        messages.success(
            request,
            f"Deleted. It can be restored from the study's deleted records until "
            f"{records.purge_date(record):%Y-%m-%d}, when it is purged for good.",
        )
    return _after_change(record)


def _record_restore(request: HttpRequest, kind: str, record_id: int) -> HttpResponse:
    record = _record_for_change(request, kind, record_id)
    study_id = record.subject.study_id if isinstance(record, Visit) else record.study_id
    try:
        records.record_restore(record=record, actor=request.user, request=request)
    except ValidationError as error:
        _flash(request, error)
    else:
        messages.success(request, "Restored.")
    return redirect("studies:deleted_records", study_id=study_id)


@login_required
@require_POST
def subject_delete(request: HttpRequest, subject_id: int) -> HttpResponse:
    return _record_delete(request, "subject", subject_id)


@login_required
@require_POST
def visit_delete(request: HttpRequest, visit_id: int) -> HttpResponse:
    return _record_delete(request, "visit", visit_id)


@login_required
@require_POST
def photo_delete(request: HttpRequest, photo_id: int) -> HttpResponse:
    return _record_delete(request, "photo", photo_id)


@login_required
@require_POST
def subject_restore(request: HttpRequest, subject_id: int) -> HttpResponse:
    return _record_restore(request, "subject", subject_id)


@login_required
@require_POST
def visit_restore(request: HttpRequest, visit_id: int) -> HttpResponse:
    return _record_restore(request, "visit", visit_id)


@login_required
@require_POST
def photo_restore(request: HttpRequest, photo_id: int) -> HttpResponse:
    return _record_restore(request, "photo", photo_id)


@login_required
@require_GET
def deleted_records(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_SUBJECTS)
    rows = [
        {
            "record": record,
            "kind": record._meta.model_name,
            "purge_date": records.purge_date(record),
        }
        for record in records.deleted_records(study.pk)
    ]
    return render(request, "studies/deleted_records.html", {"study": study, "rows": rows})
