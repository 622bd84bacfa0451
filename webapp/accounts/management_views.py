"""Pages for accounts: site admins create, deactivate and empower users; each user may turn on
two-factor log-in; a user with two-factor log-in gives the code after the password."""

import django_otp
from django.contrib import messages
from django.contrib.auth import get_user_model, logout
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.db.models import Q
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST

from webapp.accounts import services, two_factor
from webapp.accounts.forms import CodeForm, UserCreateForm, UserEditForm
from webapp.accounts.throttle import login_refusal
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.webutils import site_admin_required

USERS_PAGE_SIZE = 50


@site_admin_required
@require_http_methods(["GET", "POST"])
def user_list(request: HttpRequest) -> HttpResponse:
    form = UserCreateForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        try:
            user = services.user_create(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as error:
            form.add_error(None, error)
        else:
            messages.success(
                request,
                f"Created the account {user.get_username()}; a set-password link went to {user.email}.",
            )
            return redirect("user_list")
    query = request.GET.get("q", "").strip()[:100]
    users = get_user_model().objects.order_by("username")
    if query:
        users = users.filter(Q(username__icontains=query) | Q(email__icontains=query))
    page = Paginator(users, USERS_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = [
        (user, services.may_create_studies_granted(user), two_factor.has_two_factor(user)) for user in page
    ]
    return render(
        request, "accounts/user_list.html", {"form": form, "page": page, "rows": rows, "query": query}
    )


@site_admin_required
@require_POST
def user_edit(request: HttpRequest, user_id: int) -> HttpResponse:
    user = get_user_model().objects.filter(pk=user_id).first()
    if user is None:
        raise Http404("No such user.")
    form = UserEditForm(request.POST)
    if form.is_valid():
        try:
            changes = services.user_update(
                user=user, actor=request.user, request=request, **form.cleaned_data
            )
        except ValidationError as error:
            for text in error.messages:
                messages.error(request, text)
        else:
            if changes:
                messages.success(request, f"Changed the account {user.get_username()}.")
    return redirect("user_list")


@login_required
@require_http_methods(["GET", "POST"])
def two_factor_settings(request: HttpRequest) -> HttpResponse:
    user = request.user
    enabled = two_factor.has_two_factor(user)
    form = CodeForm(request.POST or None)
    action = request.POST.get("action")
    if request.method == "POST" and action == "start" and not enabled:
        device = two_factor.setup_start(user)
        return render(
            request,
            "accounts/two_factor.html",
            {"enabled": False, "setup": device, "qr": two_factor.setup_qr_svg(device), "form": CodeForm()},
        )
    if request.method == "POST" and form.is_valid():
        if action == "confirm" and not enabled:
            device = two_factor.setup_confirm(user, form.cleaned_data["code"], request)
            if device is None:
                messages.error(request, "That code is not right; scan the code again and retry.")
            else:
                django_otp.login(request, device)
                messages.success(
                    request, "Two-factor log-in is on: from now on you give a code after your password."
                )
            return redirect("two_factor")
        if action == "disable" and enabled:
            if two_factor.verify_code(user, form.cleaned_data["code"]) is None:
                messages.error(request, "That code is not right; two-factor log-in stays on.")
            else:
                two_factor.disable(user, request)
                messages.success(request, "Two-factor log-in is off.")
            return redirect("two_factor")
    return render(request, "accounts/two_factor.html", {"enabled": enabled, "form": CodeForm()})


@login_required
@require_http_methods(["GET", "POST"])
def login_verify(request: HttpRequest) -> HttpResponse:
    """The second step of log-in for users with two-factor log-in."""
    user = request.user
    target = request.GET.get("next") or "/"
    if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        target = "/"
    if not two_factor.has_two_factor(user) or user.is_verified():
        return redirect(target)
    form = CodeForm(request.POST or None)
    status = 200
    if request.method == "POST" and form.is_valid():
        refusal = login_refusal(request, user.get_username())
        if refusal is not None:
            logout(request)
            messages.error(request, refusal.message)
            return redirect("login")
        device = two_factor.verify_code(user, form.cleaned_data["code"])
        if device is not None:
            django_otp.login(request, device)
            return redirect(target)
        audit_record(
            action=AuditAction.LOGIN_FAILED,
            summary=f"Wrong two-factor code for {user.get_username()!r}",
            request=request,
            object_type="auth.user",
            object_id=user.pk,
            details={"username": user.get_username(), "two_factor": True},
        )
        form.add_error("code", "That code is not right. Codes change every 30 seconds.")
        status = 400
    return render(request, "accounts/login_verify.html", {"form": form}, status=status)
