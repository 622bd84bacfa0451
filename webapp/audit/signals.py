"""Log-ins, log-outs and failed log-ins go to the audit trail."""

from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.dispatch import receiver

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record


@receiver(user_logged_in)
def record_login(sender, request, user, **kwargs) -> None:
    audit_record(action=AuditAction.LOGIN, summary="Logged in", actor=user, request=request, target=user)


@receiver(user_logged_out)
def record_logout(sender, request, user, **kwargs) -> None:
    if user is not None:
        audit_record(
            action=AuditAction.LOGOUT, summary="Logged out", actor=user, request=request, target=user
        )


@receiver(user_login_failed)
def record_login_failure(sender, credentials, request=None, **kwargs) -> None:
    username = str(credentials.get("username", ""))[:150]
    audit_record(
        action=AuditAction.LOGIN_FAILED,
        summary=f"Failed login as {username!r}",
        request=request,
        object_type="auth.user",
        details={"username": username},
    )
