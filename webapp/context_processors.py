"""Values every page template may use."""

from django.conf import settings
from django.http import HttpRequest


def facet(request: HttpRequest) -> dict:
    return {"retention_days": settings.FACET_DELETED_RETENTION_DAYS}
