"""The audit trail in Django admin (read-only), and the base of every admin that can change data:
each change made there is one audit event with the old and new value of every changed field."""

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from webapp.audit.models import AuditAction, AuditEvent
from webapp.audit.services import audit_record, field_changes, snapshot


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):
    """Read-only: the trail is append-only, even for site admins."""

    list_display = [
        "created_at",
        "actor_username",
        "action",
        "summary",
        "object_type",
        "object_id",
        "study_id",
        "ip_address",
        "via",
    ]
    list_filter = ["action", "via", "object_type"]
    search_fields = ["summary", "actor_username", "object_id"]
    date_hierarchy = "created_at"

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def _study_of(obj: models.Model) -> int | None:
    study_id = getattr(obj, "study_id", None)
    return study_id if isinstance(study_id, int) else None


def _stored(model: type[models.Model], pk: Any) -> models.Model | None:
    return model._default_manager.filter(pk=pk).first() if pk is not None else None


class AuditedModelAdmin(admin.ModelAdmin):
    """Opening a change page is a VIEW; saving is CREATE or UPDATE with `{"changes": {field: {"old",
    "new"}}}` (many-to-many fields and inline rows included); deleting is DELETE with the values the row
    had. Every admin that can change a project model derives from this (tests/webapp/test_audit_trail)."""

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
        fields = list(form.changed_data)
        stored = _stored(self.model, obj.pk) if change else None
        request._facet_admin_before = snapshot(stored, fields) if stored is not None else {}
        super().save_model(request, obj, form, change)

    def save_related(self, request, form, formsets, change) -> None:
        super().save_related(request, form, formsets, change)
        obj = form.instance
        after = snapshot(obj, list(form.changed_data))
        before = getattr(request, "_facet_admin_before", {})
        changes = field_changes(before, after) if change else {name: {"new": v} for name, v in after.items()}
        verb = "Changed" if change else "Created"
        audit_record(
            action=AuditAction.UPDATE if change else AuditAction.CREATE,
            summary=f"{verb} {obj._meta.verbose_name} {obj} in the admin",
            target=obj,
            request=request,
            via="admin",
            details={"changes": changes},
        )

    def save_formset(self, request, form, formset, change) -> None:
        names = [field.name for field in formset.model._meta.concrete_fields]
        # Keyed by the form's instance: a deleted row's instance loses its pk when it is deleted.
        befores = {
            id(inline_form.instance): snapshot(stored, names)
            for inline_form in formset.forms
            if (stored := _stored(formset.model, inline_form.instance.pk)) is not None
        }
        super().save_formset(request, form, formset, change)
        for obj in formset.new_objects:
            created = {name: {"new": value} for name, value in snapshot(obj, names).items()}
            self._inline_event(request, AuditAction.CREATE, obj, created)
        for obj, _fields in formset.changed_objects:
            changes = field_changes(befores.get(id(obj), {}), snapshot(obj, names))
            self._inline_event(request, AuditAction.UPDATE, obj, changes)
        for obj in formset.deleted_objects:
            removed = {name: {"old": value} for name, value in befores.get(id(obj), {}).items()}
            self._inline_event(request, AuditAction.DELETE, obj, removed)

    def _inline_event(self, request: HttpRequest, action: str, obj: models.Model, changes: dict) -> None:
        verb = {AuditAction.CREATE: "Created", AuditAction.UPDATE: "Changed", AuditAction.DELETE: "Deleted"}
        audit_record(
            action=action,
            summary=f"{verb[action]} {obj._meta.verbose_name} {obj} in the admin",
            object_type=obj._meta.label_lower,
            object_id=obj.pk if obj.pk is not None else (changes.get("id") or {}).get("old", ""),
            study_id=_study_of(obj),
            request=request,
            via="admin",
            details={"changes": changes},
        )

    def delete_model(self, request, obj) -> None:
        names = [field.name for field in obj._meta.concrete_fields]
        audit_record(
            action=AuditAction.DELETE,
            summary=f"Deleted {obj._meta.verbose_name} {obj} in the admin",
            target=obj,
            request=request,
            via="admin",
            details={"changes": {name: {"old": value} for name, value in snapshot(obj, names).items()}},
        )
        super().delete_model(request, obj)

    def delete_queryset(self, request, queryset) -> None:
        for obj in queryset:
            self.delete_model(request, obj)
