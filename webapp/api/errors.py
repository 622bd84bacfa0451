"""Every error under /api/ is JSON: `{"detail": "...", "code": "..."}` with the right status.

Three places produce them: DRF's exception handler (errors raised inside an API view, including
Django's own request-size and file-count refusals raised while the body is parsed), a catch-all route
for unknown API paths, and Django's error handlers (`handler400/403/404/500` in `webapp.urls`), which
answer JSON for /api/ paths and the usual HTML pages elsewhere.
"""

import logging
from typing import Any

from django.core.exceptions import RequestDataTooBig, SuspiciousOperation, TooManyFieldsSent, TooManyFilesSent
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.http.multipartparser import MAX_TOTAL_HEADER_SIZE, MultiPartParserError
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from webapp.webutils import wants_json

logger = logging.getLogger(__name__)

API_PREFIX = "/api/"


def is_api_request(request: HttpRequest) -> bool:
    return request.path.startswith(API_PREFIX)


def request_refusal_message(exc: Exception | None) -> str:
    """A sentence for the request-level refusals Django raises while reading a body."""
    from django.conf import settings

    if isinstance(exc, MultiPartParserError) and "header size" in str(exc):
        return (
            f"A part of the upload has headers longer than {MAX_TOTAL_HEADER_SIZE} bytes, usually a file "
            "name of hundreds of characters; rename the file to a shorter name and upload it again."
        )
    if isinstance(exc, MultiPartParserError):
        return "The upload could not be read as a multipart form; send it again."
    if isinstance(exc, RequestDataTooBig):
        return (
            f"The request body is larger than the {settings.DATA_UPLOAD_MAX_MEMORY_SIZE / 1e6:.0f} MB "
            "accepted for form or JSON data (photos go in a multipart `file` field)."
        )
    if isinstance(exc, TooManyFilesSent):
        return f"The request holds more than {settings.DATA_UPLOAD_MAX_NUMBER_FILES} files."
    if isinstance(exc, TooManyFieldsSent):
        return f"The request holds more than {settings.DATA_UPLOAD_MAX_NUMBER_FIELDS} fields."
    return "The request was refused as malformed."


def api_exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF's handler, plus Django's body-reading refusals as 400s; a `code` beside every `detail`."""
    if isinstance(exc, SuspiciousOperation):
        exc = exceptions.ParseError(request_refusal_message(exc), code="request_refused")
    elif isinstance(exc, exceptions.ParseError) and isinstance(exc.__context__, MultiPartParserError):
        exc = exceptions.ParseError(request_refusal_message(exc.__context__), code="request_refused")
    response = drf_exception_handler(exc, context)
    if response is None:
        return None  # a real fault: Django logs it and handler500 answers JSON
    if isinstance(response.data, dict) and "detail" in response.data:
        detail = response.data["detail"]
        response.data["code"] = getattr(detail, "code", None) or _status_code_name(response.status_code)
    return response


def _status_code_name(status_code: int) -> str:
    return {400: "bad_request", 401: "not_authenticated", 403: "permission_denied", 404: "not_found"}.get(
        status_code, "error"
    )


def json_error(detail: str, code: str, status_code: int) -> JsonResponse:
    response = JsonResponse({"detail": detail, "code": code}, status=status_code)
    response["Cache-Control"] = "no-store"
    return response


def api_not_found(request: HttpRequest, *args: Any, **kwargs: Any) -> JsonResponse:
    """Unknown paths under /api/: JSON, in DEBUG too (no debug page naming the URL patterns)."""
    return json_error("No such API endpoint; the list is in the schema at /api/schema/.", "not_found", 404)


def bad_request(request: HttpRequest, exception: Exception | None = None, **kwargs: Any) -> HttpResponse:
    """JSON under /api/ and for the pages' scripts (the upload asks for JSON), HTML elsewhere."""
    detail = request_refusal_message(exception)
    if is_api_request(request):
        return json_error(detail, "bad_request", status.HTTP_400_BAD_REQUEST)
    if wants_json(request):
        return JsonResponse({"ok": False, "error": detail, "code": "bad_request"}, status=400)
    return defaults.bad_request(request, exception, **kwargs)


def permission_denied(
    request: HttpRequest, exception: Exception | None = None, **kwargs: Any
) -> HttpResponse:
    if is_api_request(request):
        return json_error("You may not do this.", "permission_denied", status.HTTP_403_FORBIDDEN)
    return defaults.permission_denied(request, exception, **kwargs)


def page_not_found(request: HttpRequest, exception: Exception | None = None, **kwargs: Any) -> HttpResponse:
    if is_api_request(request):
        return api_not_found(request)
    return defaults.page_not_found(request, exception, **kwargs)


def server_error(request: HttpRequest, **kwargs: Any) -> HttpResponse:
    if is_api_request(request):
        return json_error(
            "Facet failed on this request; the error was logged for the administrators.",
            "server_error",
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    return defaults.server_error(request, **kwargs)


class JsonErrorsMixin:
    """For API views whose success is not JSON (the OpenAPI schema, Swagger UI): errors still are."""

    def handle_exception(self, exc: Exception) -> Response:
        response = super().handle_exception(exc)
        self.request.accepted_renderer = JSONRenderer()
        self.request.accepted_media_type = JSONRenderer.media_type
        return response
