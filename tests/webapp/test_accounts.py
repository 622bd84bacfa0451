"""Accounts in the product: site admins create and deactivate users, coordinators invite by e-mail with a
role, optional TOTP two-factor log-in (issue 16 item 1)."""

import re

import pytest
from django.core import mail
from django.urls import reverse
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from webapp.audit.models import AuditAction, AuditEvent
from webapp.studies.models import Invitation, StudyMembership

pytestmark = pytest.mark.django_db
PASSWORD = "a long enough password 42"


def link_in(message) -> str:
    return re.search(r"http://testserver(/\S+)", message.body).group(1)


def test_a_site_admin_creates_a_user_who_sets_a_password(
    client, make_user, django_user_model, django_capture_on_commit_callbacks
):
    client.force_login(make_user("root", staff=True))
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(
            reverse("user_list"),
            {"username": "dr.lee", "email": "lee@hospital.org", "may_create_studies": "on"},
        )
    assert response.status_code == 302
    user = django_user_model.objects.get(username="dr.lee")
    assert not user.has_usable_password() and user.has_perm("studies.add_study")
    (message,) = mail.outbox
    assert message.to == ["lee@hospital.org"]
    client.logout()
    link = client.get(link_in(message), follow=True)
    form_url = link.redirect_chain[-1][0]
    client.post(form_url, {"new_password1": PASSWORD, "new_password2": PASSWORD})
    assert client.login(username="dr.lee", password=PASSWORD)
    created = AuditEvent.objects.get(action=AuditAction.CREATE, object_type="auth.user")
    assert created.details["changes"]["email"] == {"new": "lee@hospital.org"}


def test_only_site_admins_manage_users(client, make_user):
    client.force_login(make_user("dr.no"))
    assert client.get(reverse("user_list")).status_code == 404
    assert client.post(reverse("user_list"), {"username": "x", "email": "x@example.org"}).status_code == 404


def test_a_deactivated_user_cannot_log_in_and_loses_api_tokens(client, make_user):
    from rest_framework.authtoken.models import Token

    admin = make_user("root", staff=True)
    target = make_user("dr.gone", password=PASSWORD)
    Token.objects.create(user=target)
    client.force_login(admin)
    client.post(reverse("user_edit", args=[target.pk]), {})  # every box unticked: inactive
    target.refresh_from_db()
    assert not target.is_active and not Token.objects.filter(user=target).exists()
    assert not client.login(username="dr.gone", password=PASSWORD)
    change = AuditEvent.objects.get(action=AuditAction.UPDATE, object_type="auth.user")
    assert change.details["changes"]["is_active"] == {"old": True, "new": False}
    # An admin cannot lock themselves out.
    client.post(reverse("user_edit", args=[admin.pk]), {})
    admin.refresh_from_db()
    assert admin.is_active and admin.is_staff


def test_a_coordinator_invites_a_new_person_by_email(
    client, study_with_members, django_capture_on_commit_callbacks
):
    study = study_with_members["study"]
    client.force_login(study_with_members["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("studies:invite", args=[study.pk]), {"email": "new@clinic.org", "role": "rater"})
    (message,) = mail.outbox
    invitation = Invitation.objects.get()
    assert invitation.token_sha256 not in message.body
    client.logout()
    url = link_in(message)
    response = client.post(url, {"username": "rater.two", "password1": PASSWORD, "password2": PASSWORD})
    assert response.status_code == 302
    membership = StudyMembership.objects.get(study=study, user__username="rater.two")
    assert membership.role == "rater" and membership.user.email == "new@clinic.org"
    assert client.get(url).status_code == 404  # used once


def test_an_invitation_of_an_existing_account_adds_it_at_once(client, study_with_members, make_user):
    existing = make_user("dr.known")
    client.force_login(study_with_members["coordinator"])
    client.post(
        reverse("studies:invite", args=[study_with_members["study"].pk]),
        {"email": existing.email.upper(), "role": "clinician"},
    )
    assert StudyMembership.objects.get(user=existing).role == "clinician"
    assert not Invitation.objects.exists()


def test_only_coordinators_invite(client, study_with_members):
    client.force_login(study_with_members["clinician"])
    response = client.post(
        reverse("studies:invite", args=[study_with_members["study"].pk]),
        {"email": "x@y.org", "role": "coordinator"},
    )
    assert response.status_code == 403 and not Invitation.objects.exists()


def test_an_expired_invitation_is_refused(client, study_with_members, django_capture_on_commit_callbacks):
    client.force_login(study_with_members["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(
            reverse("studies:invite", args=[study_with_members["study"].pk]),
            {"email": "late@x.org", "role": "rater"},
        )
    from django.utils import timezone

    Invitation.objects.update(expires_at=timezone.now())
    client.logout()
    assert client.get(link_in(mail.outbox[0])).status_code == 404


def _code(device: TOTPDevice) -> str:
    return f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"


def test_two_factor_log_in(client, make_user):
    user = make_user("dr.safe", password=PASSWORD)
    client.login(username="dr.safe", password=PASSWORD)
    client.post(reverse("two_factor"), {"action": "start"})
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    client.post(reverse("two_factor"), {"action": "confirm", "code": _code(device)})
    assert TOTPDevice.objects.get(user=user).confirmed
    client.logout()
    assert client.login(username="dr.safe", password=PASSWORD)
    # Password alone: every page and the API wait for the code.
    page = client.get(reverse("studies:study_list"))
    assert page.status_code == 302 and page["Location"].startswith(reverse("login_verify"))
    assert client.get("/api/studies/").status_code == 403
    wrong = client.post(reverse("login_verify"), {"code": "000000"})
    assert wrong.status_code == 400
    device.refresh_from_db()
    device.throttling_failure_count = 0
    device.throttling_failure_timestamp = None
    device.last_t = -1
    device.save()
    right = client.post(f"{reverse('login_verify')}?next=/", {"code": _code(device)})
    assert right.status_code == 302
    assert client.get(reverse("studies:study_list")).status_code == 200


def test_the_api_token_of_a_two_factor_account_needs_the_code(client, make_user):
    user = make_user("dr.api", password=PASSWORD)
    device = TOTPDevice.objects.create(user=user, name="app", confirmed=True)
    refused = client.post("/api/auth/token/", {"username": "dr.api", "password": PASSWORD})
    assert refused.status_code in (400, 401, 403) and "otp" in refused.json()["detail"]
    given = client.post(
        "/api/auth/token/", {"username": "dr.api", "password": PASSWORD, "otp": _code(device)}
    )
    assert given.status_code == 200 and given.json()["token"]


def test_a_coordinator_revokes_a_pending_invitation(
    client, study_with_members, django_capture_on_commit_callbacks
):
    study = study_with_members["study"]
    client.force_login(study_with_members["coordinator"])
    with django_capture_on_commit_callbacks(execute=True):
        client.post(reverse("studies:invite", args=[study.pk]), {"email": "typo@clinic.org", "role": "rater"})
    invitation = Invitation.objects.get()
    client.post(reverse("studies:invitation_revoke", args=[study.pk, invitation.pk]))
    invitation.refresh_from_db()
    assert invitation.revoked_at is not None
    client.logout()
    assert client.get(link_in(mail.outbox[0])).status_code == 404
