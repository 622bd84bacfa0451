from django.contrib.auth import views as auth_views
from django.db import connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.cache import never_cache

from webapp.accounts.forms import ThrottledAuthenticationForm
from webapp.accounts.throttle import password_reset_refusal
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record


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


@never_cache
def healthz(request: HttpRequest) -> JsonResponse:
    """Liveness and database check for load balancers and docker-compose health checks."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        return JsonResponse({"status": "error", "database": str(exc)}, status=503)
    return JsonResponse({"status": "ok"})
