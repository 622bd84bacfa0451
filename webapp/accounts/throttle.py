"""Log-in and password-reset throttling, counted from the audit trail.

Failed log-ins (HTML form, admin and API token alike) are already audit events with the user name and
the client's address, and so are password-reset requests; the throttle counts those rows. The ledger
is therefore the database, not the cache: the limits hold across every web process, survive a restart,
and a Redis outage neither opens the door nor turns a log-in into a server error.

- Per account: at most FACET_LOGIN_FAILURES_PER_ACCOUNT failures within FACET_LOGIN_WINDOW_SECONDS
  since the account's last successful log-in.
- Per client address (`client_ip`, which trusts X-Forwarded-For only as far as
  FACET_TRUSTED_PROXY_COUNT proxies): at most FACET_LOGIN_FAILURES_PER_ADDRESS failures in the window;
  higher, because a hospital's users may share one address.
- Password-reset requests: at most FACET_PASSWORD_RESETS_PER_ADDRESS per address and
  FACET_PASSWORD_RESETS_PER_EMAIL per e-mail address within FACET_PASSWORD_RESET_WINDOW_SECONDS.

A refused attempt is not checked against the password at all, so guessing stops until the window has
moved past the earlier failures.
"""

import math
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import Max, QuerySet
from django.http import HttpRequest
from django.utils import timezone

from webapp.audit.models import AuditAction, AuditEvent
from webapp.audit.services import client_ip


@dataclass(frozen=True)
class Refusal:
    message: str
    retry_after_seconds: int


def login_refusal(request: HttpRequest, username: str) -> Refusal | None:
    """Why this log-in attempt is refused before its password is checked, or None to go ahead."""
    now = timezone.now()
    window = timedelta(seconds=settings.FACET_LOGIN_WINDOW_SECONDS)
    failures = AuditEvent.objects.filter(action=AuditAction.LOGIN_FAILED, created_at__gte=now - window)
    last_success = AuditEvent.objects.filter(
        action=AuditAction.LOGIN, actor_username__iexact=username
    ).aggregate(at=Max("created_at"))["at"]
    for_account = failures.filter(details__username__iexact=username)
    if last_success is not None:
        for_account = for_account.filter(created_at__gt=last_success)
    checks = [(for_account, settings.FACET_LOGIN_FAILURES_PER_ACCOUNT, "for this account")]
    if ip := client_ip(request):
        checks.append(
            (failures.filter(ip_address=ip), settings.FACET_LOGIN_FAILURES_PER_ADDRESS, "from your address")
        )
    for events, limit, scope in checks:
        if retry_after := _retry_after(events, limit, window, now):
            return Refusal(
                f"Too many failed log-ins {scope}. Try again in {_minutes(retry_after)}, "
                "or reset your password.",
                retry_after,
            )
    return None


def password_reset_refusal(request: HttpRequest, email: str) -> Refusal | None:
    """Why this password-reset request is refused, or None to send the e-mail (if the address exists)."""
    now = timezone.now()
    window = timedelta(seconds=settings.FACET_PASSWORD_RESET_WINDOW_SECONDS)
    requests = AuditEvent.objects.filter(action=AuditAction.PASSWORD_RESET, created_at__gte=now - window)
    checks = [(requests.filter(details__email__iexact=email), settings.FACET_PASSWORD_RESETS_PER_EMAIL)]
    if ip := client_ip(request):
        checks.append((requests.filter(ip_address=ip), settings.FACET_PASSWORD_RESETS_PER_ADDRESS))
    for events, limit in checks:
        if retry_after := _retry_after(events, limit, window, now):
            return Refusal(
                f"Too many password-reset requests. Try again in {_minutes(retry_after)}; "
                "a link already sent stays valid.",
                retry_after,
            )
    return None


def _retry_after(events: QuerySet, limit: int, window: timedelta, now: datetime) -> int:
    """Seconds until fewer than `limit` of `events` are inside the window; 0 when that is already so."""
    latest = list(events.order_by("-created_at").values_list("created_at", flat=True)[:limit])
    if len(latest) < limit:
        return 0
    return max(1, math.ceil((latest[-1] + window - now).total_seconds()))


def _minutes(seconds: int) -> str:
    minutes = math.ceil(seconds / 60)
    return "1 minute" if minutes == 1 else f"{minutes} minutes"
