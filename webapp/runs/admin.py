from django.contrib import admin

from webapp.audit.admin import AuditedModelAdmin
from webapp.runs.models import WorkerHeartbeat


@admin.register(WorkerHeartbeat)
class WorkerHeartbeatAdmin(AuditedModelAdmin):
    list_display = ["hostname", "queues", "pid", "concurrency", "last_seen"]
    readonly_fields = ["hostname", "queues", "pid", "concurrency", "started_at", "last_seen"]
