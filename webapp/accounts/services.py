"""API tokens (issued for FACET_API_TOKEN_TTL_SECONDS, revoked at log-out and at any password change) and
accounts that site admins create, deactivate and allow to create studies."""

from datetime import datetime, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser, Permission
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.encoding import force_bytes
from django.utils.http import urlsafe_base64_encode
from rest_framework.authtoken.models import Token

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record


def api_token_expires_at(token: Token) -> datetime:
    return token.created + timedelta(seconds=settings.FACET_API_TOKEN_TTL_SECONDS)


def api_token_expired(token: Token) -> bool:
    return api_token_expires_at(token) <= timezone.now()


def api_token_issue(user: AbstractBaseUser) -> Token:
    """The user's current token, or a new one when there is none or it has expired."""
    token = Token.objects.filter(user=user).first()
    if token is not None and api_token_expired(token):
        token.delete()
        token = None
    return token or Token.objects.create(user=user)


def api_tokens_revoke(user: AbstractBaseUser) -> int:
    """Delete the user's API tokens; returns how many there were."""
    deleted, _ = Token.objects.filter(user=user).delete()
    return deleted


# --- accounts managed by site admins ---------------------------------------------------------------

STUDY_CREATION_PERMISSION = ("studies", "add_study")


def set_password_link(request: HttpRequest, user: AbstractBaseUser) -> str:
    """An absolute one-time link to choose a password (Django's reset token: it expires after
    PASSWORD_RESET_TIMEOUT and once the password has been set)."""
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    return request.build_absolute_uri(reverse("password_reset_confirm", args=[uid, token]))


def _study_creation_permission() -> Permission:
    app_label, codename = STUDY_CREATION_PERMISSION
    return Permission.objects.get(content_type__app_label=app_label, codename=codename)


def may_create_studies_granted(user: AbstractBaseUser) -> bool:
    return user.user_permissions.filter(pk=_study_creation_permission().pk).exists()


def _account_values(user: AbstractBaseUser) -> dict:
    return {
        "username": user.get_username(),
        "email": user.email,
        "is_active": user.is_active,
        "is_staff": user.is_staff,
        "may_create_studies": may_create_studies_granted(user),
    }


@transaction.atomic
def user_create(
    *,
    username: str,
    email: str,
    is_staff: bool,
    may_create_studies: bool,
    actor: AbstractBaseUser,
    request: HttpRequest,
) -> AbstractBaseUser:
    """Create an account without a usable password and e-mail its owner a link to choose one."""
    user_model = get_user_model()
    username = username.strip()
    email = user_model.objects.normalize_email(email.strip())
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError(f"There is already an account called {username!r}.")
    if email and user_model.objects.filter(email__iexact=email).exists():
        raise ValidationError(f"There is already an account with the e-mail address {email}.")
    user = user_model(username=username, email=email, is_staff=is_staff)
    user.set_unusable_password()
    user.full_clean(exclude=["password"])
    user.save()
    if may_create_studies:
        user.user_permissions.add(_study_creation_permission())
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Created the account {username}",
        actor=actor,
        target=user,
        request=request,
        details={"changes": {name: {"new": value} for name, value in _account_values(user).items()}},
    )
    link = set_password_link(request, user)
    days = settings.PASSWORD_RESET_TIMEOUT // 86400
    transaction.on_commit(
        lambda: (
            send_mail(
                "Your Facet account",
                f"{actor.get_username()} created a Facet account for you, user name {username}.\n\n"
                f"Choose your password here (the link works once, for {days} days):\n{link}\n",
                None,
                [email],
            )
            if email
            else None
        )
    )
    return user


@transaction.atomic
def user_update(
    *,
    user: AbstractBaseUser,
    is_active: bool,
    is_staff: bool,
    may_create_studies: bool,
    actor: AbstractBaseUser,
    request: HttpRequest,
) -> dict:
    """Deactivate or reactivate an account, make it a site admin or not, allow it to create studies.
    A deactivated account cannot log in, its sessions end at their next request and its API tokens
    are revoked; it stays in the audit trail and in its studies' history."""
    if user.pk == actor.pk and (not is_active or not is_staff):
        raise ValidationError("You cannot deactivate your own account or remove your own site-admin role.")
    before = _account_values(user)
    user.is_active = is_active
    user.is_staff = is_staff
    user.save(update_fields=["is_active", "is_staff"])
    permission = _study_creation_permission()
    if may_create_studies:
        user.user_permissions.add(permission)
    else:
        user.user_permissions.remove(permission)
    changes = {
        name: {"old": before[name], "new": value}
        for name, value in _account_values(user).items()
        if before[name] != value
    }
    if changes:
        if not is_active:
            api_tokens_revoke(user)
        audit_record(
            action=AuditAction.UPDATE,
            summary=f"Changed the account {user.get_username()}",
            actor=actor,
            target=user,
            request=request,
            details={"changes": changes},
        )
    return changes
