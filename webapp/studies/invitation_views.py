"""Inviting people to a study by e-mail (coordinators) and accepting an invitation (the invitee)."""

from django.contrib import messages
from django.contrib.auth import login
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from webapp.studies import invitations, selectors
from webapp.studies.access import Capability, not_found
from webapp.studies.forms import InvitationAcceptForm, InviteForm


@login_required
@require_POST
def invite(request: HttpRequest, study_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    form = InviteForm(request.POST)
    if not form.is_valid():
        for errors in form.errors.values():
            for error in errors:
                messages.error(request, error)
        return redirect("studies:study_detail", study_id=study.pk)
    try:
        outcome = invitations.invite(study=study, actor=request.user, request=request, **form.cleaned_data)
    except ValidationError as error:
        for text in error.messages:
            messages.error(request, text)
    else:
        if outcome.added_user is not None:
            messages.success(
                request,
                f"{form.cleaned_data['email']} already has an account ({outcome.added_user.get_username()}): "
                "added to the study and told by e-mail.",
            )
        else:
            messages.success(request, f"Invitation sent to {form.cleaned_data['email']}.")
    return redirect("studies:study_detail", study_id=study.pk)


@login_required
@require_POST
def invitation_revoke(request: HttpRequest, study_id: int, invitation_id: int) -> HttpResponse:
    study = selectors.get_study(request.user, study_id, Capability.MANAGE_STUDY)
    invitation = invitations.pending_invitations(study).filter(pk=invitation_id).first()
    if invitation is None:
        raise not_found(request.user, "invitation", invitation_id, study=study)
    invitations.revoke(invitation=invitation, actor=request.user, request=request)
    messages.success(request, f"The invitation of {invitation.email} is revoked; its link no longer works.")
    return redirect("studies:study_detail", study_id=study.pk)


@require_http_methods(["GET", "POST"])
def invitation_accept(request: HttpRequest, token: str) -> HttpResponse:
    invitation = invitations.open_invitation(token)
    if invitation is None:
        return render(request, "studies/invitation_invalid.html", status=404)
    form = InvitationAcceptForm(request.POST or None, email=invitation.email)
    if request.method == "POST" and form.is_valid():
        try:
            user = invitations.accept(
                invitation=invitation,
                username=form.cleaned_data["username"],
                password=form.cleaned_data["password1"],
                request=request,
            )
        except ValidationError as error:
            form.add_error(None, error)
        else:
            login(request, user, backend="django.contrib.auth.backends.ModelBackend")
            messages.success(request, f"Welcome to {invitation.study.name}.")
            return redirect("studies:study_detail", study_id=invitation.study_id)
    return render(request, "studies/invitation_accept.html", {"invitation": invitation, "form": form})
