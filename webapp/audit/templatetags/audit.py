"""`{{ url|seen:view_grant }}`: an image URL that the page's own view event covers (audit.services)."""

from urllib.parse import quote

from django import template

register = template.Library()


@register.filter
def seen(url: str, grant: str | None) -> str:
    if not grant:
        return url
    return f"{url}{'&' if '?' in url else '?'}seen={quote(grant)}"
