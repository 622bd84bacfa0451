from django.contrib import admin, messages

from webapp.analysis import services
from webapp.analysis.models import AnalysisJob, ModelVersion, Result, ResultArtifact
from webapp.audit.admin import AuditedModelAdmin
from webapp.runs import services as run_services
from webapp.runs.models import RunStateError


@admin.register(AnalysisJob)
class AnalysisJobAdmin(AuditedModelAdmin):
    list_display = [
        "pk",
        "kind",
        "photo",
        "queue",
        "status",
        "progress",
        "attempts",
        "created_at",
        "finished_at",
    ]
    list_filter = ["status", "kind", "queue"]
    readonly_fields = [field.name for field in AnalysisJob._meta.fields]
    actions = ["retry_jobs", "cancel_jobs"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Retry the selected failed or cancelled jobs")
    def retry_jobs(self, request, queryset) -> None:
        self._control(request, queryset, run_services.run_retry)

    @admin.action(description="Cancel the selected queued or running jobs")
    def cancel_jobs(self, request, queryset) -> None:
        self._control(request, queryset, run_services.run_cancel)

    def _control(self, request, queryset, action) -> None:
        for job in queryset:
            try:
                action(job, actor=request.user, request=request)
            except RunStateError as exc:
                self.message_user(request, str(exc), messages.WARNING)


class ArtifactInline(admin.TabularInline):
    model = ResultArtifact
    extra = 0
    readonly_fields = ["name", "content_type"]
    exclude = ["file"]


@admin.register(Result)
class ResultAdmin(AuditedModelAdmin):
    list_display = ["pk", "job", "model_name", "model_version", "code_version", "created_at"]
    readonly_fields = [
        "job",
        "data",
        "model_name",
        "model_version",
        "weights_sha256",
        "parameters",
        "code_version",
    ]
    inlines = [ArtifactInline]

    def has_add_permission(self, request) -> bool:
        return False


@admin.register(ModelVersion)
class ModelVersionAdmin(AuditedModelAdmin):
    list_display = ["name", "version", "task", "is_active", "source", "created_at", "activated_at"]
    list_filter = ["task", "is_active", "name"]
    readonly_fields = [field.name for field in ModelVersion._meta.fields if field.name != "model_card"]
    actions = ["activate"]

    def has_add_permission(self, request) -> bool:
        return False

    @admin.action(description="Activate the selected version (one per model)")
    def activate(self, request, queryset) -> None:
        chosen = {}
        for model_version in queryset:
            if model_version.name in chosen:
                self.message_user(request, f"Choose one version of {model_version.name}.", messages.ERROR)
                return
            chosen[model_version.name] = model_version
        for model_version in chosen.values():
            services.model_version_activate(model_version=model_version, actor=request.user, request=request)
