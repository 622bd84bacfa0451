"""Serializer fields that resolve ids through the access-checked selectors."""

from collections.abc import Callable
from typing import Any

from django.db.models import Model, QuerySet
from rest_framework import serializers

from webapp.studies.access import Capability

# PostgreSQL's bigint range: larger ids would raise a database error instead of a clean "not found".
MAX_ID = 2**63 - 1


def parse_id(value: Any, what: str) -> int:
    """An object id from request input, or a ValidationError with a readable message."""
    if isinstance(value, bool):
        raise serializers.ValidationError(f"Give the {what} as a numeric id.")
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        raise serializers.ValidationError(f"Give the {what} as a numeric id.") from None
    if not 1 <= number <= MAX_ID:
        raise serializers.ValidationError(f"No {what} has id {number}.")
    return number


class ScopedRelatedField(serializers.PrimaryKeyRelatedField):
    """An object id checked with a `get_*` selector: 404 for outsiders, 403 for members lacking `capability`.

    Outsiders and unknown ids get the same 404, so a request body never reveals that another study's
    object exists.
    """

    def __init__(
        self,
        *,
        getter: Callable[[Any, int, Capability], Model],
        for_user: Callable[[Any], QuerySet],
        capability: Capability,
        what: str,
        **kwargs: Any,
    ) -> None:
        self.getter = getter
        self.for_user = for_user
        self.capability = capability
        self.what = what
        super().__init__(**kwargs)

    def get_queryset(self) -> QuerySet:
        # Used for the choices of the browsable API's forms: only objects of the user's studies.
        return self.for_user(self.context["request"].user)

    def to_internal_value(self, data: Any) -> Model:
        return self.getter(self.context["request"].user, parse_id(data, self.what), self.capability)
