"""The study's exports (measures as CSV, XLSX and REDCap; photos as DICOM, identified or de-identified),
DICOM import into a visit, and the before/after and cohort reports. Every export is audited with its
options; each view checks the user's capability in the study first."""

from django import forms
from django.conf import settings
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods

from ml.measures.statistics import ADJUSTMENTS
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.exports import reports, selectors, services
from webapp.exports.dicom import DeidentifyMethod
from webapp.exports.models import ExportFormat, StudyExport
from webapp.runs.models import RunStatus
from webapp.studies import selectors as study_selectors
from webapp.studies.access import Capability
from webapp.studies.ingest import IngestError
from webapp.studies.models import PhotoView, Study


class MeasuresExportForm(forms.Form):
    FORMATS = [
        ("xlsx", "Excel workbook (XLSX)"),
        ("csv", "CSV"),
        ("redcap", "REDCap import (data CSV + data dictionary CSV, zipped)"),
    ]
    format = forms.ChoiceField(choices=FORMATS, initial="xlsx")


class DicomExportForm(forms.Form):
    subject = forms.TypedChoiceField(coerce=int, required=False, empty_value=None, label="Subject")
    deidentify = forms.BooleanField(required=False, label="De-identify for sharing")
    method = forms.ChoiceField(
        choices=[
            (DeidentifyMethod.MASK_EYES.value, "Mask the eyes"),
            (DeidentifyMethod.CROP_BELOW_EYES.value, "Crop to the face below the eyes"),
        ],
        initial=DeidentifyMethod.MASK_EYES.value,
        required=False,
    )
    keep_subject_code = forms.BooleanField(
        required=False, label="Keep the subject code as Patient ID (de-identified export)"
    )

    def __init__(self, *args, study: Study, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.fields["subject"].choices = [("", "All subjects")] + [
            (subject.pk, subject.code) for subject in study.subjects.alive().order_by("code")
        ]


class CohortReportForm(forms.Form):
    view = forms.ChoiceField(choices=PhotoView.choices, initial=PhotoView.FRONTAL, required=False)
    method = forms.ChoiceField(
        choices=list(ADJUSTMENTS.items()),
        initial="holm",
        required=False,
        label="Adjustment across a group's measures",
    )

    def options(self) -> dict[str, str]:
        """The chosen view and adjustment (a valid form), the frontal view and Holm where none is given."""
        chosen = self.cleaned_data
        return {
            "view": chosen.get("view") or PhotoView.FRONTAL.value,
            "method": chosen.get("method") or "holm",
        }


class DicomImportForm(forms.Form):
    view = forms.ChoiceField(choices=PhotoView.choices, initial=PhotoView.FRONTAL)
    file = forms.FileField(label="DICOM file (VL Photographic Image)")


def _attachment(content: bytes | str, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="{filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def _audit_export(request: HttpRequest, study: Study, what: str, details: dict) -> None:
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported {what} of {study.name!r}",
        actor=request.user,
        target=study,
        request=request,
        details=details,
    )


@login_required
@require_GET
def study_exports(request: HttpRequest, study_id: int) -> HttpResponse:
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    context = {
        "study": study,
        "measures_form": MeasuresExportForm(),
        "dicom_form": DicomExportForm(study=study),
        "report_form": CohortReportForm(),
        "recent_exports": selectors.recent_exports(study),
    }
    return render(request, "exports/study_exports.html", context)


def _built_response(built: services.BuiltExport) -> FileResponse:
    built.content.seek(0)
    # The response closes the file once it has been sent.
    return FileResponse(
        built.content,
        as_attachment=True,
        filename=built.filename,
        content_type=built.content_type,
        headers={"Cache-Control": "private, no-store"},
    )


@login_required
@require_GET
def study_measures_export(request: HttpRequest, study_id: int) -> HttpResponse:
    """The measures table as CSV, XLSX or a REDCap import (?format=)."""
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    form = MeasuresExportForm(request.GET)
    if not form.is_valid():
        messages.error(request, "Choose an export format: XLSX, CSV or REDCap.")
        return redirect("exports:study_exports", study_id=study.pk)
    chosen = form.cleaned_data["format"]
    built = services.measures_export(study, chosen, exported_by=request.user.get_username())
    _audit_export(request, study, f"the measures table as {chosen.upper()}", built.details)
    return _attachment(built.content.read(), built.content_type, built.filename)


@login_required
@require_http_methods(["GET", "POST"])
def study_dicom_export(request: HttpRequest, study_id: int) -> HttpResponse:
    """One subject's photos as DICOM VL Photographic images in a ZIP, at once; the whole study's (POST)
    as a background export, followed on its page until the ZIP can be downloaded."""
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    form = DicomExportForm(request.POST if request.method == "POST" else request.GET, study=study)
    if not form.is_valid():
        messages.error(request, "Choose a subject of this study (or all subjects) and a method.")
        return redirect("exports:study_exports", study_id=study.pk)
    try:
        options = services.dicom_options(
            study,
            subject_id=form.cleaned_data["subject"],
            deidentify=form.cleaned_data["deidentify"],
            method=form.cleaned_data["method"] or DeidentifyMethod.MASK_EYES.value,
            keep_subject_code=form.cleaned_data["keep_subject_code"],
        )
    except ValidationError as error:
        for message in error.messages:
            messages.error(request, message)
        return redirect("exports:study_exports", study_id=study.pk)
    if options["subject_id"] is None:
        if request.method != "POST":
            messages.error(request, "The whole study's photos are exported in the background: use the form.")
            return redirect("exports:study_exports", study_id=study.pk)
        export = services.study_export_request(
            study=study, format=ExportFormat.DICOM, options=options, actor=request.user, request=request
        )
        return redirect("exports:export_detail", export_id=export.pk)
    built = services.dicom_export_built(study, options)
    kind = "de-identified DICOM" if options["deidentify"] else "DICOM"
    _audit_export(request, study, f"photos as {kind}", built.details)
    return _built_response(built)


@login_required
@require_GET
def export_detail(request: HttpRequest, export_id: int) -> HttpResponse:
    """A background export's progress, and its download link once the file is built."""
    return _export_page(request, selectors.get_export(request.user, export_id))


def _export_page(request: HttpRequest, export: StudyExport, status: int = 200) -> HttpResponse:
    retention_hours = settings.FACET_EXPORT_RETENTION_HOURS
    context = {"export": export, "study": export.study, "retention_hours": retention_hours}
    return render(request, "exports/export_detail.html", context, status=status)


@login_required
@require_GET
def export_download(request: HttpRequest, export_id: int) -> HttpResponse:
    """The file of a built background export (audited as a download); on the export's page saying why,
    409 while it has no file (queued, running, failed, cancelled) and 410 once the file was purged."""
    export = selectors.get_export(request.user, export_id)
    if export.purged_at is not None:
        return _export_page(request, export, status=410)
    if export.status != RunStatus.SUCCEEDED or not export.file:
        # A link followed before the file exists (or after the run failed): the export's page says why.
        messages.warning(
            request,
            f"Export {export.pk} is {export.get_status_display().lower()}; it has no file to download.",
        )
        return _export_page(request, export, status=409)
    services.study_export_downloaded(export, actor=request.user, request=request)
    return FileResponse(
        export.file.open("rb"),
        as_attachment=True,
        filename=export.filename,
        content_type=export.content_type,
        headers={"Cache-Control": "private, no-store"},
    )


@login_required
@require_http_methods(["GET", "POST"])
def visit_dicom_import(request: HttpRequest, visit_id: int) -> HttpResponse:
    """Import a VL Photographic image from a clinic camera into the visit (the checks of an upload)."""
    visit = study_selectors.get_visit(request.user, visit_id, Capability.UPLOAD)
    form = DicomImportForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        try:
            photo = services.dicom_import(
                visit=visit,
                view=form.cleaned_data["view"],
                upload=form.cleaned_data["file"],
                uploaded_by=request.user,
                request=request,
            )
        except IngestError as error:
            form.add_error("file", error.message)
        else:
            messages.success(request, "The DICOM photo was imported; its analyses are queued.")
            return redirect("studies:photo_detail", photo_id=photo.pk)
    status = 400 if request.method == "POST" else 200
    context = {"visit": visit, "subject": visit.subject, "study": visit.subject.study, "form": form}
    return render(request, "exports/dicom_import.html", context, status=status)


@login_required
@require_GET
def comparison_report(request: HttpRequest, comparison_id: int) -> HttpResponse:
    """The before/after report of one comparison as a printable page."""
    comparison = study_selectors.get_comparison(request.user, comparison_id, Capability.COMPARE)
    report = reports.subject_report(comparison)
    _audit_report(request, comparison, report, "page")
    pdf_url = reverse("exports:comparison_report_pdf", args=[comparison.pk])
    return render(request, "exports/subject_report.html", {"report": report, "pdf_url": pdf_url})


@login_required
@require_GET
def comparison_report_pdf(request: HttpRequest, comparison_id: int) -> HttpResponse:
    comparison = study_selectors.get_comparison(request.user, comparison_id, Capability.COMPARE)
    report = reports.subject_report(comparison)
    _audit_report(request, comparison, report, "pdf")
    filename = f"report-{comparison.subject.code}-comparison-{comparison.pk}.pdf"
    return _attachment(reports.subject_report_pdf(report), "application/pdf", filename)


def _audit_report(request: HttpRequest, comparison, report: "reports.SubjectReport", form: str) -> None:
    audit_record(
        action=AuditAction.EXPORT,
        summary=f"Exported the before/after report of comparison {comparison.pk} ({comparison}) as {form}",
        actor=request.user,
        target=comparison,
        request=request,
        details={
            "format": form,
            "photos": [
                photo_id for pair in report.pairs for photo_id in (pair.pre_photo_id, pair.post_photo_id)
            ],
            "measures": sum(len(pair.rows) for pair in report.pairs),
        },
    )


@login_required
@require_GET
def study_cohort_report_pdf(request: HttpRequest, study_id: int) -> HttpResponse:
    """The cohort report: the statistics of every measure group and their charts, as a PDF."""
    study = study_selectors.get_study(request.user, study_id, Capability.EXPORT)
    form = CohortReportForm(request.GET)
    if not form.is_valid():
        # An unknown view or adjustment is refused with its reason, never replaced silently in the PDF.
        for name, errors in form.errors.items():
            messages.error(request, f"Cohort report, {form.fields[name].label or name}: {' '.join(errors)}")
        return redirect("exports:study_exports", study_id=study.pk)
    options = form.options()
    report = reports.cohort_report(study, **options)
    _audit_export(
        request,
        study,
        "the cohort report as PDF",
        {"format": "pdf", **options, "measures": len(report.statistics), "pairs": report.counts["pairs"]},
    )
    return _attachment(
        reports.cohort_report_pdf(report), "application/pdf", f"study-{study.pk}-cohort-report.pdf"
    )
