"""Filtering the audit trail for the admins' audit pages and exports."""

import datetime
from dataclasses import dataclass

from django.db.models import Q, QuerySet

from webapp.audit.models import AuditEvent


@dataclass(frozen=True)
class AuditFilter:
    actor: str = ""
    action: str = ""
    object_type: str = ""
    study_id: int | None = None
    since: datetime.date | None = None
    until: datetime.date | None = None
    text: str = ""


def audit_events(filters: AuditFilter) -> QuerySet[AuditEvent]:
    events = AuditEvent.objects.all()
    if filters.actor:
        events = events.filter(actor_username__iexact=filters.actor)
    if filters.action:
        events = events.filter(action=filters.action)
    if filters.object_type:
        events = events.filter(object_type=filters.object_type)
    if filters.study_id is not None:
        events = events.filter(study_id=filters.study_id)
    if filters.since:
        events = events.filter(created_at__date__gte=filters.since)
    if filters.until:
        events = events.filter(created_at__date__lte=filters.until)
    if filters.text:
        events = events.filter(Q(summary__icontains=filters.text) | Q(object_id=filters.text))
    return events.order_by("-created_at", "-id")


def audit_object_types() -> list[str]:
    return list(AuditEvent.objects.order_by("object_type").values_list("object_type", flat=True).distinct())
