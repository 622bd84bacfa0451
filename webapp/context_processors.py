"""Values every page template may use."""

from django.conf import settings
from django.http import HttpRequest
from django.utils.functional import SimpleLazyObject

from webapp.runs.selectors import unserved_queue_banner


def facet(request: HttpRequest) -> dict:
    return {"retention_days": settings.FACET_DELETED_RETENTION_DAYS}


def worker_banner(request: HttpRequest) -> dict:
    """The banner every page shows while jobs of the user's studies wait on a queue no worker serves
    (computed only when a template shows it)."""
    user = getattr(request, "user", None)
    if user is None:
        return {"worker_banner": ""}
    return {"worker_banner": SimpleLazyObject(lambda: unserved_queue_banner(user))}
