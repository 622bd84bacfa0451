"""Writing the audit trail. Every read of photo or result bytes and every change of state calls this."""

import hashlib
import ipaddress
import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.core import signing
from django.db import models
from django.http import HttpRequest
from django.utils import timezone

from webapp.audit.context import current_request
from webapp.audit.models import AuditAction, AuditEvent

logger = logging.getLogger(__name__)


def client_ip(request: HttpRequest) -> str | None:
    """The client's address, for the audit trail and the log-in throttle.

    Without a proxy (FACET_TRUSTED_PROXY_COUNT=0) it is the peer, REMOTE_ADDR. Behind N reverse proxies
    each proxy appends the address it saw to X-Forwarded-For, so the client is the N-th entry from the
    right; entries further left were written by the client and are never used. A header with fewer
    entries than configured did not come through the proxies, and the peer is used instead.
    """
    peer = request.META.get("REMOTE_ADDR") or None
    proxies = settings.FACET_TRUSTED_PROXY_COUNT
    if proxies <= 0:
        return peer
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")]
    forwarded = [part for part in forwarded if part]
    if len(forwarded) < proxies:
        return peer
    try:
        return str(ipaddress.ip_address(forwarded[-proxies]))
    except ValueError:
        return peer


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


def audit_denied(
    *,
    actor: AbstractBaseUser | AnonymousUser | None,
    object_type: str,
    object_id: str | int | None,
    study_id: int | None,
    reason: str,
) -> AuditEvent | None:
    """Record a refused access (404 outside the user's studies, 403 for a role), at most
    FACET_DENIED_AUDIT_PER_MINUTE per user (or per address when anonymous) in any minute.

    The refusals beyond the limit are only logged: a scanner walking ids cannot flood the trail, and
    the first events of the minute already show who was scanning. The last recorded event says so."""
    request = current_request()
    user = actor if actor is not None and actor.is_authenticated else None
    recent = AuditEvent.objects.filter(
        action=AuditAction.DENIED, created_at__gte=timezone.now() - timedelta(minutes=1)
    )
    if user is not None:
        recent = recent.filter(actor=user)
    else:
        recent = recent.filter(actor=None, ip_address=client_ip(request) if request else None)
    limit = settings.FACET_DENIED_AUDIT_PER_MINUTE
    count = recent.count()
    if count >= limit:
        logger.warning(
            "Access refused (not audited, over %s a minute): %s %s, %s", limit, object_type, object_id, reason
        )
        return None
    details: dict[str, Any] = {"reason": reason}
    if count == limit - 1:
        details["note"] = (
            f"limit of {limit} refusals a minute reached: further ones this minute are only logged"
        )
    return audit_record(
        action=AuditAction.DENIED,
        summary=f"Refused access to {object_type} {object_id}: {reason}",
        actor=user,
        object_type=object_type,
        object_id="" if object_id is None else object_id,
        study_id=study_id,
        request=request,
        details=details,
    )


# --- changes: old and new values -----------------------------------------------------------------

# Fields whose values never enter the trail (a password hash is a secret); the change itself does.
SECRET_FIELDS = frozenset({"password"})


def _plain(value: Any) -> Any:
    """A JSON-safe form of a field value: model instances as {"id", "text"}, dates as ISO text."""
    if isinstance(value, models.Model):
        return {"id": value.pk, "text": str(value)}
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, list | tuple | set | frozenset):
        items = [_plain(item) for item in value]
        return sorted(items, key=str) if isinstance(value, set | frozenset) else items
    if isinstance(value, dict):
        return {str(key): _plain(item) for key, item in value.items()}
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def snapshot(instance: models.Model, fields: list[str] | tuple[str, ...]) -> dict[str, Any]:
    """The JSON-safe values of `fields` of `instance` (foreign keys as their object), for change records."""
    values = {}
    for name in fields:
        if name in SECRET_FIELDS:
            # A fingerprint, only to tell whether it changed; the trail never holds the value.
            values[name] = hashlib.sha256(str(getattr(instance, name, "")).encode()).hexdigest()[:16]
            continue
        try:
            field = instance._meta.get_field(name)
        except Exception:
            values[name] = _plain(getattr(instance, name, None))
            continue
        if field.many_to_many:
            values[name] = _plain(list(getattr(instance, name).all())) if instance.pk else []
        else:
            values[name] = _plain(getattr(instance, name, None))
    return values


def field_changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """`{field: {"old": …, "new": …}}` for every field whose value differs between two snapshots."""
    changes = {}
    for name in sorted(set(before) | set(after)):
        if before.get(name) == after.get(name):
            continue
        if name in SECRET_FIELDS:
            changes[name] = {"old": "(not recorded)", "new": "(changed, not recorded)"}
        else:
            changes[name] = {"old": before.get(name), "new": after.get(name)}
    return changes


# --- page views: one event per page, its images included ----------------------------------------

PAGE_VIEW_SALT = "facet.audit.page-view"


def audit_page_view(
    request: HttpRequest,
    *,
    summary: str,
    target: models.Model | None = None,
    study_id: int | None = None,
    photos: list[int] | tuple[int, ...] = (),
    results: list[int] | tuple[int, ...] = (),
    artifacts: list[int] | tuple[int, ...] = (),
    labels: list[int] | tuple[int, ...] = (),
    details: dict[str, Any] | None = None,
) -> str:
    """Record one VIEW event for a page and everything it shows (photos, results, result images), and
    return a grant for the page's image URLs (`?seen=<grant>`, see `covered_by_page_view`): the images
    the page loads are part of this one event and are not recorded again."""
    event = audit_record(
        action=AuditAction.VIEW,
        summary=summary,
        target=target,
        study_id=study_id,
        request=request,
        details={
            **(details or {}),
            "photos": sorted(set(photos)),
            "results": sorted(set(results)),
            "artifacts": sorted(set(artifacts)),
            **({"labels": sorted(set(labels))} if labels else {}),
        },
    )
    return signing.dumps([event.pk, request.user.pk], salt=PAGE_VIEW_SALT)


def covered_by_page_view(
    request: HttpRequest,
    *,
    photo_id: int | None = None,
    artifact_id: int | None = None,
    label_id: int | None = None,
) -> bool:
    """Whether this image request comes from a page whose view event already lists the image: a valid,
    recent grant of the same user, naming an event that lists the photo (or result artifact, or label)."""
    grant = request.GET.get("seen")
    if not grant or not request.user.is_authenticated:
        return False
    try:
        event_id, user_id = signing.loads(
            grant, salt=PAGE_VIEW_SALT, max_age=settings.FACET_PAGE_VIEW_GRANT_SECONDS
        )
    except (signing.BadSignature, ValueError, TypeError):
        return False
    if user_id != request.user.pk:
        return False
    details = (
        AuditEvent.objects.filter(pk=event_id, actor_id=request.user.pk, action=AuditAction.VIEW)
        .values_list("details", flat=True)
        .first()
    )
    if not isinstance(details, dict):
        return False
    if photo_id is not None:
        return photo_id in details.get("photos", [])
    if label_id is not None:
        return label_id in details.get("labels", [])
    return artifact_id is not None and artifact_id in details.get("artifacts", [])
