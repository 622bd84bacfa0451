"""List pagination: `?limit=` is capped so that one request cannot ask for a whole table."""

from django.conf import settings
from rest_framework.pagination import LimitOffsetPagination


class CappedLimitOffsetPagination(LimitOffsetPagination):
    """`?limit=` above FACET_API_MAX_PAGE_SIZE is served as that many rows; `next` links to the rest."""

    @property
    def max_limit(self) -> int:  # read per request, so that tests and deployments can change it
        return settings.FACET_API_MAX_PAGE_SIZE
