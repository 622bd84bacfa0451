"""Site-wide response policy."""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse
from django.utils.cache import add_never_cache_headers


class NoStoreMiddleware:
    """Every page and API answer is patient data or about it: no browser or proxy cache may keep it
    (`Cache-Control: no-store, private ...`), unless the view chose its own caching. Static files are
    served before this middleware (whitenoise) and keep their long cache lifetimes."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not response.has_header("Cache-Control"):
            add_never_cache_headers(response)
        return response
