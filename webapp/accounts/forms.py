"""Log-in forms that consult the throttle before the password is checked; two-factor codes; the forms of
the site admins' Users page and of an invitation."""

from typing import Any

from django import forms
from django.contrib.admin.forms import AdminAuthenticationForm
from django.contrib.auth.forms import AuthenticationForm
from django.contrib.auth.validators import UnicodeUsernameValidator

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


class CodeForm(forms.Form):
    code = forms.CharField(
        max_length=10,
        label="6-digit code",
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


class UserCreateForm(forms.Form):
    username = forms.CharField(max_length=150, validators=[UnicodeUsernameValidator()], label="User name")
    email = forms.EmailField(help_text="The set-password link is sent here.")
    is_staff = forms.BooleanField(required=False, label="Site admin (users, queues, models, audit trail)")
    may_create_studies = forms.BooleanField(required=False, label="May create studies")


class UserEditForm(forms.Form):
    is_active = forms.BooleanField(required=False, label="Active")
    is_staff = forms.BooleanField(required=False, label="Site admin")
    may_create_studies = forms.BooleanField(required=False, label="May create studies")
