"""Request parsers with the limits Django applies to forms also applied to JSON."""

import io
from typing import Any

from django.conf import settings
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser


class BoundedJSONParser(JSONParser):
    """JSON of at most DATA_UPLOAD_MAX_MEMORY_SIZE bytes, and a clear 400 for nesting Python cannot
    decode (100,000 brackets exceed the interpreter's recursion limit instead of failing as JSON)."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: dict | None = None) -> Any:
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        if limit is not None and stream is not None:
            body = stream.read(limit + 1)
            if len(body) > limit:
                raise ParseError(
                    f"The JSON body is larger than {limit / 1e6:.0f} MB.", code="request_too_large"
                )
            stream = io.BytesIO(body)
        try:
            return super().parse(stream, media_type, parser_context)
        except RecursionError:
            raise ParseError("The JSON is nested too deeply to be read.", code="json_too_deep") from None
