"""Coordinators invite people to a study by e-mail, with a role.

An address that already belongs to an active account is added to the study at once (and told so by
e-mail); any other address gets a link (valid FACET_INVITATION_DAYS days, usable once) that opens a
page where the invitee chooses a user name and password: that creates the account and the membership.
E-mail goes through Django's EMAIL_BACKEND (the console by default: `make run` prints it).
"""

import datetime
import hashlib
import secrets
from dataclasses import dataclass

from django.conf import settings
from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import ValidationError
from django.core.mail import send_mail
from django.db import transaction
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone

from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.studies.models import Invitation, Role, Study
from webapp.studies.services import membership_set


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


@dataclass(frozen=True)
class InvitationOutcome:
    added_user: AbstractBaseUser | None = None
    invitation: Invitation | None = None


@transaction.atomic
def invite(
    *, study: Study, email: str, role: str, actor: AbstractBaseUser, request: HttpRequest
) -> InvitationOutcome:
    if role not in Role.values:
        raise ValidationError(f"Unknown role {role!r}.")
    email = get_user_model().objects.normalize_email(email.strip())
    existing = get_user_model().objects.filter(email__iexact=email).first()
    if existing is not None:
        if not existing.is_active:
            raise ValidationError(
                f"The account of {email} is deactivated; ask a site admin to reactivate it."
            )
        membership_set(study=study, user=existing, role=role, actor=actor, request=request)
        transaction.on_commit(
            lambda: send_mail(
                f"You were added to the Facet study {study.name}",
                f"{actor.get_username()} added you to the study {study.name!r} as {Role(role).label}.\n"
                f"{request.build_absolute_uri(reverse('studies:study_detail', args=[study.pk]))}\n",
                None,
                [email],
            )
        )
        return InvitationOutcome(added_user=existing)
    Invitation.objects.filter(study=study, email__iexact=email, accepted_at=None, revoked_at=None).update(
        revoked_at=timezone.now()
    )
    token = secrets.token_urlsafe(32)
    invitation = Invitation.objects.create(
        study=study,
        email=email,
        role=role,
        token_sha256=_digest(token),
        invited_by=actor,
        expires_at=timezone.now() + datetime.timedelta(days=settings.FACET_INVITATION_DAYS),
    )
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Invited {email} to {study.name!r} as {Role(role).label}",
        actor=actor,
        target=invitation,
        study_id=study.pk,
        request=request,
        details={"email": email, "role": role, "expires_at": invitation.expires_at.isoformat()},
    )
    link = request.build_absolute_uri(reverse("studies:invitation_accept", args=[token]))
    transaction.on_commit(
        lambda: send_mail(
            f"Invitation to the Facet study {study.name}",
            f"{actor.get_username()} invites you to the study {study.name!r} as {Role(role).label}.\n\n"
            f"Open this link to choose a user name and password (it works once, until "
            f"{invitation.expires_at:%Y-%m-%d}):\n{link}\n",
            None,
            [email],
        )
    )
    return InvitationOutcome(invitation=invitation)


def open_invitation(token: str) -> Invitation | None:
    """The pending, unexpired invitation of the link's token, or None."""
    return (
        Invitation.objects.select_related("study")
        .filter(token_sha256=_digest(token), accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def accept(*, invitation: Invitation, username: str, password: str, request: HttpRequest) -> AbstractBaseUser:
    """Create the invitee's account with the chosen password and their membership."""
    invitation = Invitation.objects.select_for_update().get(pk=invitation.pk)
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise ValidationError("This invitation has already been used.")
    user_model = get_user_model()
    if user_model.objects.filter(username__iexact=username).exists():
        raise ValidationError(f"The user name {username!r} is taken; choose another.")
    user = user_model(username=username, email=invitation.email)
    user.set_password(password)
    user.save()
    invitation.accepted_at = timezone.now()
    invitation.accepted_by = user
    invitation.save(update_fields=["accepted_at", "accepted_by"])
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Accepted the invitation to {invitation.study.name!r}: created the account {username}",
        actor=user,
        target=user,
        study_id=invitation.study_id,
        request=request,
        details={"invitation": invitation.pk, "email": invitation.email},
    )
    membership_set(
        study=invitation.study,
        user=user,
        role=invitation.role,
        actor=invitation.invited_by or user,
        request=request,
    )
    return user


def pending_invitations(study: Study):
    return study.invitations.filter(accepted_at=None, revoked_at=None, expires_at__gt=timezone.now())


@transaction.atomic
def revoke(*, invitation: Invitation, actor: AbstractBaseUser, request: HttpRequest | None = None) -> None:
    """Make a pending invitation's link invalid (an address typed wrongly, a person who left)."""
    if invitation.accepted_at is not None or invitation.revoked_at is not None:
        raise ValidationError("This invitation is no longer pending.")
    invitation.revoked_at = timezone.now()
    invitation.save(update_fields=["revoked_at"])
    audit_record(
        action=AuditAction.UPDATE,
        summary=f"Revoked the invitation of {invitation.email} to {invitation.study.name!r}",
        actor=actor,
        target=invitation,
        study_id=invitation.study_id,
        request=request,
        details={"changes": {"revoked_at": {"old": None, "new": invitation.revoked_at.isoformat()}}},
    )
