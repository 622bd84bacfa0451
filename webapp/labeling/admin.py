from django.contrib import admin

from webapp.audit.admin import AuditedModelAdmin
from webapp.labeling.models import TrainingJob, WrinkleLabel, ZoneAnnotation, ZoneAnnotationImport


@admin.register(WrinkleLabel)
class WrinkleLabelAdmin(AuditedModelAdmin):
    """Read-only: labels are immutable versions; their images are served only by the audited views."""

    list_display = ["pk", "photo", "version", "method", "wrinkle_pixels", "author_username", "created_at"]
    list_filter = ["method"]
    exclude = ["image", "rough_mask", "ground_truth", "texture_map"]
    readonly_fields = [
        "photo",
        "version",
        "region",
        "method",
        "parameters",
        "rough_pixels",
        "wrinkle_pixels",
        "note",
        "author",
        "author_username",
        "created_at",
    ]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(TrainingJob)
class TrainingJobAdmin(AuditedModelAdmin):
    list_display = ["pk", "study", "status", "progress", "model_version", "created_at", "finished_at"]
    list_filter = ["status"]
    readonly_fields = [field.name for field in TrainingJob._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ZoneAnnotationImport)
class ZoneAnnotationImportAdmin(AuditedModelAdmin):
    """Read-only: imports are the study's record of where its human zone ground truth came from."""

    list_display = ["pk", "study", "source_format", "author_username", "created_at"]
    readonly_fields = [field.name for field in ZoneAnnotationImport._meta.fields]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False


@admin.register(ZoneAnnotation)
class ZoneAnnotationAdmin(AuditedModelAdmin):
    """Read-only; masks are served only through the audited export."""

    list_display = ["pk", "photo", "zone", "version", "pixels", "author_username", "created_at"]
    list_filter = ["zone"]
    exclude = ["mask"]
    readonly_fields = [field.name for field in ZoneAnnotation._meta.fields if field.name != "mask"]

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False
