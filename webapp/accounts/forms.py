"""Log-in forms that consult the throttle before the password is checked."""

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm

from webapp.accounts.throttle import Refusal, login_refusal


class ThrottledLoginMixin:
    """Refuse the attempt, without checking the password, while its account or address is throttled."""

    refusal: Refusal | None = None

    def clean(self) -> dict[str, Any]:
        username = self.cleaned_data.get("username")
        if username and self.request is not None:
            self.refusal = login_refusal(self.request, username)
            if self.refusal is not None:
                raise forms.ValidationError(self.refusal.message, code="throttled")
        return super().clean()


class ThrottledAuthenticationForm(ThrottledLoginMixin, AuthenticationForm):
    pass


class ThrottledAdminAuthenticationForm(ThrottledLoginMixin, AdminAuthenticationForm):
    pass
