"""Small helpers shared by the views of several apps."""

from collections.abc import Callable
from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AbstractBaseUser, AnonymousUser
from django.http import Http404, HttpRequest, HttpResponse


def is_site_admin(user: AbstractBaseUser | AnonymousUser) -> bool:
    """Site admins (active staff) see every study and the admin pages."""
    return bool(user.is_authenticated and user.is_active and user.is_staff)


def site_admin_required(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Admin pages answer 404 to everyone else, like any page outside a user's studies."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if not is_site_admin(request.user):
            raise Http404("No such page.")
        return view(request, *args, **kwargs)

    return wrapper


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")
