from django.contrib import admin

from webapp.audit.models import AuditEvent


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
