"""Django admin for site admins. Changes made here are audited like changes made anywhere else."""

from django.contrib import admin

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studies.models import Comparison, Photo, Study, StudyMembership, Subject, Visit


class AuditedAdmin(admin.ModelAdmin):
    def change_view(self, request, object_id, form_url="", extra_context=None):
        if request.method == "GET":
            audit_record(
                action=AuditAction.VIEW,
                summary=f"Viewed {self.model._meta.verbose_name} {object_id} in the admin",
                object_type=self.model._meta.label_lower,
                object_id=object_id,
                request=request,
                via="admin",
            )
        return super().change_view(request, object_id, form_url, extra_context)

    def save_model(self, request, obj, form, change) -> None:
        super().save_model(request, obj, form, change)
        audit_record(
            action=AuditAction.UPDATE if change else AuditAction.CREATE,
            summary=f"{'Changed' if change else 'Created'} {obj._meta.verbose_name} {obj} in the admin",
            target=obj,
            request=request,
            via="admin",
            details={"fields": sorted(form.changed_data)},
        )

    def delete_model(self, request, obj) -> None:
        audit_record(
            action=AuditAction.DELETE,
            summary=f"Deleted {obj._meta.verbose_name} {obj} in the admin",
            target=obj,
            request=request,
            via="admin",
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)


class MembershipInline(admin.TabularInline):
    model = StudyMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(AuditedAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(StudyMembership)
class StudyMembershipAdmin(AuditedAdmin):
    list_display = ["study", "user", "role", "created_at"]
    list_filter = ["role", "study"]
    autocomplete_fields = ["user", "study"]


@admin.register(Subject)
class SubjectAdmin(AuditedAdmin):
    list_display = ["code", "study", "created_at"]
    list_filter = ["study"]
    search_fields = ["code"]


@admin.register(Visit)
class VisitAdmin(AuditedAdmin):
    list_display = ["subject", "label", "role", "date"]
    list_filter = ["role", "subject__study"]


@admin.register(Photo)
class PhotoAdmin(AuditedAdmin):
    """Photo bytes are only shown through the audited photo pages, never inline here."""

    list_display = ["pk", "study", "visit", "view", "width", "height", "uploaded_by", "uploaded_at"]
    list_filter = ["view", "study"]
    exclude = ["image", "thumbnail"]
    readonly_fields = [
        "study",
        "visit",
        "content_hash",
        "image_hash",
        "source_format",
        "width",
        "height",
        "capture_time",
        "camera_make",
        "camera_model",
        "focal_length_mm",
        "uploaded_by",
    ]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(Comparison)
class ComparisonAdmin(AuditedAdmin):
    list_display = ["subject", "pre_visit", "post_visit", "created_by", "created_at"]
