"""An append-only record of who viewed, downloaded, exported or changed what, when and from where.

Append-only at two depths: the model and its querysets refuse to change or delete a saved event
(`AppendOnlyError`), and on PostgreSQL a trigger (migration 0003) refuses any UPDATE or DELETE of a
row whatever the path (raw SQL, another client). Accounts that appear in the trail cannot be deleted
(`actor` is PROTECT): they are deactivated instead, so no event ever needs rewriting. Retention:
docs/operations.md, "Audit trail".
"""

from django.conf import settings
from django.db import models


class AppendOnlyError(RuntimeError):
    """Raised on any attempt to change or delete a recorded audit event."""

    def __init__(self) -> None:
        super().__init__("The audit trail is append-only: recorded events cannot be changed or deleted.")


class AuditEventQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise AppendOnlyError()

    def delete(self):
        raise AppendOnlyError()

    def bulk_update(self, objs, fields, batch_size=None):
        raise AppendOnlyError()

    def update_or_create(self, defaults=None, **kwargs):
        raise AppendOnlyError()


class AuditAction(models.TextChoices):
    VIEW = "view", "Viewed"
    DOWNLOAD = "download", "Downloaded"
    EXPORT = "export", "Exported"
    CREATE = "create", "Created"
    UPDATE = "update", "Changed"
    DELETE = "delete", "Deleted"
    STATE = "state", "State changed"
    LOGIN = "login", "Logged in"
    LOGOUT = "logout", "Logged out"
    LOGIN_FAILED = "login_failed", "Failed login"
    DENIED = "denied", "Access refused"
    PASSWORD_RESET = "password_reset", "Password reset requested"
    RESTORE = "restore", "Restored"
    PURGE = "purge", "Purged"


class AuditEvent(models.Model):
    # PROTECT: an account named in the trail is deactivated, never deleted (a SET_NULL would have to
    # rewrite events). actor_username keeps the name as it was when the event was recorded.
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.PROTECT, related_name="+")
    actor_username = models.CharField(max_length=150, blank=True)
    action = models.CharField(max_length=20, choices=AuditAction.choices)
    object_type = models.CharField(max_length=60)
    object_id = models.CharField(max_length=64, blank=True)
    study_id = models.BigIntegerField(null=True, blank=True, db_index=True)
    summary = models.CharField(max_length=300)
    details = models.JSONField(default=dict, blank=True)
    ip_address = models.GenericIPAddressField(null=True, blank=True)
    user_agent = models.CharField(max_length=300, blank=True)
    via = models.CharField(max_length=20, blank=True, help_text="web, api, worker, admin or cli")
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    objects = AuditEventQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [
            models.Index(fields=["object_type", "object_id"]),
            models.Index(fields=["action", "created_at"]),
        ]

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise AppendOnlyError()
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise AppendOnlyError()

    def __str__(self) -> str:
        who = self.actor_username or "system"
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {who} {self.action} {self.summary}"
