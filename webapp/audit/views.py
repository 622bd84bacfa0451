"""The audit trail for site admins: browse, filter, export as CSV."""

from dataclasses import asdict

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.shortcuts import render
from django.utils import timezone
from django.views.decorators.http import require_GET

from webapp.audit.forms import AuditFilterForm
from webapp.audit.models import AuditAction
from webapp.audit.selectors import audit_events, audit_object_types
from webapp.audit.services import audit_record
from webapp.spreadsheets import SafeCsvWriter
from webapp.webutils import site_admin_required

CSV_COLUMNS = [
    "created_at",
    "actor_username",
    "action",
    "object_type",
    "object_id",
    "study_id",
    "summary",
    "ip_address",
    "user_agent",
    "via",
    "details",
]


@site_admin_required
@require_GET
def event_list(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET or None)
    filters = form.to_filter()
    page = Paginator(audit_events(filters), 100).get_page(request.GET.get("page"))
    return render(
        request,
        "audit/event_list.html",
        {
            "form": form,
            "page": page,
            "object_types": audit_object_types(),
            "export_query": request.GET.urlencode(),
        },
    )


class _Echo:
    def write(self, value: str) -> str:
        return value


@site_admin_required
@require_GET
def event_export(request: HttpRequest) -> StreamingHttpResponse:
    filters = AuditFilterForm(request.GET or None).to_filter()
    audit_record(
        action=AuditAction.EXPORT,
        summary="Exported the audit trail as CSV",
        request=request,
        object_type="audit.auditevent",
        details={"filters": {k: str(v) for k, v in asdict(filters).items() if v not in ("", None)}},
    )
    writer = SafeCsvWriter(_Echo())

    def rows():
        yield writer.writerow(CSV_COLUMNS)
        for event in audit_events(filters).iterator(chunk_size=2000):
            yield writer.writerow(
                [
                    event.created_at.isoformat(),
                    event.actor_username,
                    event.action,
                    event.object_type,
                    event.object_id,
                    event.study_id or "",
                    event.summary,
                    event.ip_address or "",
                    event.user_agent,
                    event.via,
                    event.details,
                ]
            )

    stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
    response = StreamingHttpResponse(rows(), content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="facet-audit-{stamp}.csv"'
    response["Cache-Control"] = "private, no-store"
    return response
