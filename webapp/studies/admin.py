"""Django admin for site admins. Changes made here are audited like changes made anywhere else."""

from django.contrib import admin
from django.db import transaction

from webapp.audit.admin import AuditedModelAdmin
from webapp.studies.models import Comparison, Photo, Study, StudyMembership, Subject, Visit
from webapp.studies.signals import photo_view_changed


class MembershipInline(admin.TabularInline):
    model = StudyMembership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Study)
class StudyAdmin(AuditedModelAdmin):
    list_display = ["name", "created_by", "created_at"]
    search_fields = ["name"]
    inlines = [MembershipInline]


@admin.register(StudyMembership)
class StudyMembershipAdmin(AuditedModelAdmin):
    list_display = ["study", "user", "role", "created_at"]
    list_filter = ["role", "study"]
    autocomplete_fields = ["user", "study"]


@admin.register(Subject)
class SubjectAdmin(AuditedModelAdmin):
    list_display = ["code", "study", "created_at"]
    list_filter = ["study"]
    search_fields = ["code"]


@admin.register(Visit)
class VisitAdmin(AuditedModelAdmin):
    list_display = ["subject", "label", "role", "date"]
    list_filter = ["role", "subject__study"]


@admin.register(Photo)
class PhotoAdmin(AuditedModelAdmin):
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

    def save_model(self, request, obj, form, change) -> None:
        old_view = form.initial.get("view")
        super().save_model(request, obj, form, change)
        if change and "view" in form.changed_data:
            # As on the photo page: the quality verdict depends on the view, so the analyses run again.
            transaction.on_commit(
                lambda: photo_view_changed.send(
                    sender=Photo, photo=obj, old_view=old_view, actor=request.user, request=request
                )
            )


@admin.register(Comparison)
class ComparisonAdmin(AuditedModelAdmin):
    list_display = ["subject", "pre_visit", "post_visit", "created_by", "created_at"]
