import logging
import os
from pathlib import Path

from django.conf import settings
from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache
from kombu import Connection

from webapp.accounts.forms import ThrottledAuthenticationForm
from webapp.accounts.throttle import password_reset_refusal
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record

logger = logging.getLogger(__name__)
HEALTH_TIMEOUT_SECONDS = 2


class LoginView(auth_views.LoginView):
    """Django's log-in page with the throttle; a throttled attempt answers 429 with Retry-After."""

    form_class = ThrottledAuthenticationForm

    def form_invalid(self, form: ThrottledAuthenticationForm) -> HttpResponse:
        response = super().form_invalid(form)
        if form.refusal is not None:
            response.status_code = 429
            response["Retry-After"] = str(form.refusal.retry_after_seconds)
        return response


class PasswordResetView(auth_views.PasswordResetView):
    """Each request is audited (with the e-mail address asked for) and counted by the throttle."""

    def form_valid(self, form) -> HttpResponse:
        email = form.cleaned_data["email"]
        refusal = password_reset_refusal(self.request, email)
        if refusal is not None:
            form.add_error(None, refusal.message)
            response = self.form_invalid(form)
            response.status_code = 429
            response["Retry-After"] = str(refusal.retry_after_seconds)
            return response
        audit_record(
            action=AuditAction.PASSWORD_RESET,
            summary="Requested a password-reset e-mail",
            request=self.request,
            object_type="auth.user",
            details={"email": email[:254]},
        )
        return super().form_valid(form)


def _database_ok() -> bool:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception:
        logger.exception("Health check: the database is unreachable")
        return False
    return True


def _broker_ok() -> bool:
    """A real round trip to the Celery broker (Redis, or the filesystem transport's folders)."""
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=HEALTH_TIMEOUT_SECONDS,
        ) as broker:
            broker.ensure_connection(max_retries=1, interval_start=0, timeout=HEALTH_TIMEOUT_SECONDS)
            broker.default_channel  # noqa: B018  (opening a channel makes the Redis transport ping)
            if broker.transport_cls == "filesystem":
                folder = Path(settings.CELERY_BROKER_TRANSPORT_OPTIONS["data_folder_in"])
                if not (folder.is_dir() and os.access(folder, os.W_OK)):
                    raise OSError(f"{folder} is not a writable folder")
    except Exception:
        logger.exception("Health check: the Celery broker is unreachable")
        return False
    return True


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """For load balancers and docker-compose: 200 when the database and the broker both answer, else 503
    naming the one that failed (`{"status": "error", "database": "ok", "broker": "unreachable"}`).
    The errors themselves go to the log, not to this public page."""
    checks = {"database": _database_ok(), "broker": _broker_ok()}
    body = {name: "ok" if ok else "unreachable" for name, ok in checks.items()}
    healthy = all(checks.values())
    return JsonResponse({"status": "ok" if healthy else "error", **body}, status=200 if healthy else 503)
