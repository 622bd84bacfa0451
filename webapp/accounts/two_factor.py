"""Optional TOTP two-factor log-in (django-otp).

A user who has confirmed an authenticator app must give its 6-digit code after the password: until
then every page redirects to the code page (`TwoFactorMiddleware`) and the API answers 403, and the
API token endpoint asks for the code (`otp` field) too. Codes are checked by django-otp's TOTP device
(30-second steps, one step of drift, a code is accepted once).
"""

from collections.abc import Callable

import segno
from django.contrib.auth.models import AbstractBaseUser
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect
from django.urls import reverse
from django_otp import devices_for_user, user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record

DEVICE_NAME = "Authenticator app"
# Paths a half-logged-in user (password given, code not yet) may still reach.
OPEN_PATHS = ("/accounts/login/", "/accounts/logout/", "/static/", "/healthz")


def has_two_factor(user: AbstractBaseUser) -> bool:
    return user.is_authenticated and user_has_device(user, confirmed=True)


def verify_code(user: AbstractBaseUser, code: str) -> TOTPDevice | None:
    """The user's confirmed device that accepts `code`, or None."""
    code = "".join(code.split())
    if not code.isdigit():
        return None
    for device in devices_for_user(user, confirmed=True):
        if device.verify_token(code):
            return device
    return None


def setup_start(user: AbstractBaseUser) -> TOTPDevice:
    """A new unconfirmed device (replacing an earlier unconfirmed one) for the user to scan."""
    TOTPDevice.objects.filter(user=user, confirmed=False).delete()
    return TOTPDevice.objects.create(user=user, name=DEVICE_NAME, confirmed=False)


def setup_qr_svg(device: TOTPDevice) -> str:
    return segno.make(device.config_url, error="m").svg_inline(scale=4, omitsize=False)


def setup_confirm(user: AbstractBaseUser, code: str, request: HttpRequest) -> TOTPDevice | None:
    device = TOTPDevice.objects.filter(user=user, confirmed=False).first()
    if device is None or not device.verify_token("".join(code.split())):
        return None
    device.confirmed = True
    device.save(update_fields=["confirmed"])
    audit_record(
        action=AuditAction.UPDATE,
        summary="Turned on two-factor log-in",
        actor=user,
        target=user,
        request=request,
        details={"changes": {"two_factor": {"old": False, "new": True}}},
    )
    return device


def disable(user: AbstractBaseUser, request: HttpRequest, *, by: AbstractBaseUser | None = None) -> None:
    TOTPDevice.objects.filter(user=user).delete()
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Turned off two-factor log-in of {user.get_username()}",
        actor=by or user,
        target=user,
        request=request,
        details={"changes": {"two_factor": {"old": True, "new": False}}},
    )


class TwoFactorMiddleware:
    """Sends a user who has two-factor log-in but has not given a code this session to the code page."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = request.user
        if (
            user.is_authenticated
            and not user.is_verified()
            and not request.path.startswith(OPEN_PATHS)
            and has_two_factor(user)
        ):
            if request.path.startswith("/api/"):
                return JsonResponse(
                    {"detail": "Give your two-factor code first (log in again in the browser)."}, status=403
                )
            return redirect(f"{reverse('login_verify')}?next={request.get_full_path()}")
        return self.get_response(request)
