"""Writing the audit trail. Every read of photo or result bytes and every change of state calls this."""

from typing import Any

from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.db import models
from django.http import HttpRequest

from webapp.audit.models import AuditAction, AuditEvent


def client_ip(request: HttpRequest) -> str | None:
    # REMOTE_ADDR is the peer; behind a proxy, deployments set the real address there (gunicorn
    # --forwarded-allow-ips), so a client-supplied X-Forwarded-For is never trusted here.
    return request.META.get("REMOTE_ADDR") or None


def audit_record(
    *,
    action: AuditAction | str,
    summary: str,
    actor: AbstractBaseUser | AnonymousUser | None = None,
    target: models.Model | None = None,
    object_type: str = "",
    object_id: str | int = "",
    study_id: int | None = None,
    request: HttpRequest | None = None,
    via: str = "",
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one event. `target` fills object type/id and, where it belongs to a study, the study."""
    if target is not None:
        object_type = object_type or target._meta.label_lower
        object_id = object_id or target.pk
        if study_id is None:
            study_id = _study_id_of(target)
    if request is not None and actor is None:
        actor = request.user
    user = actor if actor is not None and actor.is_authenticated else None
    if not via and request is not None:
        via = "api" if request.path.startswith("/api/") else "web"
    return AuditEvent.objects.create(
        actor=user,
        actor_username=user.get_username() if user else "",
        action=action,
        object_type=object_type,
        object_id=str(object_id),
        study_id=study_id,
        summary=summary[:300],
        details=details or {},
        ip_address=client_ip(request) if request else None,
        user_agent=(request.META.get("HTTP_USER_AGENT", "") if request else "")[:300],
        via=via,
    )


def _study_id_of(target: models.Model) -> int | None:
    if target._meta.label_lower == "studies.study":
        return target.pk
    for path in (
        "study_id",
        "subject.study_id",
        "visit.subject.study_id",
        "photo.study_id",
        "job.photo.study_id",
        "result.job.photo.study_id",
    ):
        value: Any = target
        try:
            for attribute in path.split("."):
                value = getattr(value, attribute)
        except AttributeError:
            continue
        return value
    return None
