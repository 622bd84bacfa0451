"""A study export built in the background (a run, ``webapp.runs``): the whole study's photos as DICOM,
and, through the API, any export of the study. The file waits under MEDIA_ROOT for its readers, who
download it through an audited view with the study's export right, until it is purged: after
FACET_EXPORT_RETENTION_HOURS, or at once when a subject, visit or photo it may contain is withdrawn
(``webapp.exports.services``, docs/exports.md)."""

from django.db import models
from django.urls import reverse

from webapp.runs import task_names
from webapp.runs.models import Run, RunBadge, RunStatus
from webapp.studies.models import Study


class ExportFormat(models.TextChoices):
    XLSX = "xlsx", "Measures as XLSX"
    CSV = "csv", "Measures as CSV"
    REDCAP = "redcap", "Measures as a REDCap import (ZIP)"
    DICOM = "dicom", "Photos as DICOM (ZIP)"


class ExportPurgeReason(models.TextChoices):
    EXPIRED = "expired", "Expired"
    WITHDRAWN = "withdrawn", "Withdrawn"


def export_upload_path(export: "StudyExport", filename: str) -> str:
    return f"exports/study-{export.study_id}/export-{export.pk}-{filename}"


class StudyExport(Run):
    """One export of a study, with its options (the DICOM export's subject, de-identification, method)
    and, once built, its file and what the export left out."""

    run_kind = "study-export"
    run_label = "Study export"
    task_name = task_names.STUDY_EXPORT
    # Whoever may export the study may follow, cancel and retry its exports.
    control_capability = "export"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="exports")
    format = models.CharField(max_length=10, choices=ExportFormat.choices)
    options = models.JSONField(default=dict, blank=True)
    file = models.FileField(upload_to=export_upload_path, max_length=255, blank=True)
    filename = models.CharField(max_length=200, blank=True, help_text="The name the download is given.")
    content_type = models.CharField(max_length=100, blank=True)
    size_bytes = models.PositiveBigIntegerField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True, help_text="Counts and what was left out, and why.")
    purged_at = models.DateTimeField(null=True, blank=True, help_text="When the built file was deleted.")
    purge_reason = models.CharField(
        max_length=10,
        choices=ExportPurgeReason.choices,
        blank=True,
        help_text="Why the file was deleted: the retention period ran out, or data it held was withdrawn.",
    )

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="study_export_progress_0_to_1"
            ),
        ]

    def __str__(self) -> str:
        return f"Export {self.pk} of study {self.study_id} ({self.format}, {self.status})"

    def run_study(self) -> Study:
        return self.study

    def run_title(self) -> str:
        return f"{self.get_format_display()} of {self.study.name}"

    def run_url(self) -> str:
        return reverse("exports:export_detail", args=[self.pk])

    @property
    def is_downloadable(self) -> bool:
        return self.status == RunStatus.SUCCEEDED and bool(self.file) and self.purged_at is None

    def purge_message(self) -> str:
        """Why a purged export has no file any more, in the words the page and the API answer with."""
        if self.purge_reason == ExportPurgeReason.WITHDRAWN:
            return (
                f"Export {self.pk}'s file was deleted on {self.purged_at:%Y-%m-%d %H:%M} UTC: a subject, "
                "visit or photo it contained was withdrawn. Request a new export."
            )
        return (
            f"Export {self.pk}'s file was deleted on {self.purged_at:%Y-%m-%d %H:%M} UTC: built exports are "
            "kept for a limited time only. Request a new export."
        )

    def status_extra(self) -> dict[str, object]:
        download = reverse("exports:export_download", args=[self.pk]) if self.is_downloadable else None
        return {"download_url": download, "purged": self.purge_reason or None}

    def badge(self) -> RunBadge:
        if self.purged_at is not None:
            return RunBadge(label=f"{self.get_purge_reason_display()}: file deleted", tone="na")
        return super().badge()
