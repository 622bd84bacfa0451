"""Analysis jobs queued on Celery workers, their results with provenance, and worker heartbeats."""

from django.conf import settings
from django.db import models

from webapp.analysis.kinds import AnalysisKind, Queue
from webapp.studies.models import Photo


class JobStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


ACTIVE_STATUSES = (JobStatus.QUEUED, JobStatus.RUNNING)
FINISHED_STATUSES = (JobStatus.SUCCEEDED, JobStatus.FAILED, JobStatus.CANCELLED)


class TrackedRun(models.Model):
    """What every queued piece of work records: status, progress with a message, error, worker, timings."""

    status = models.CharField(max_length=10, choices=JobStatus.choices, default=JobStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    progress_message = models.CharField(max_length=200, blank=True)
    error = models.TextField(blank=True)
    worker = models.CharField(max_length=200, blank=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        abstract = True

    @property
    def is_active(self) -> bool:
        return self.status in ACTIVE_STATUSES

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class AnalysisJob(TrackedRun):
    kind = models.CharField(max_length=30, choices=AnalysisKind.choices)
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="jobs")
    queue = models.CharField(max_length=10, choices=Queue.choices)
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(
        max_length=100, blank=True, help_text="Recorded by the worker that ran it."
    )
    attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "kind", "model_name"],
                condition=models.Q(status__in=["queued", "running"]),
                name="one_active_job_per_photo_kind_model",
            ),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="progress_0_to_1"
            ),
        ]
        indexes = [models.Index(fields=["status", "created_at"])]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} of photo {self.photo_id} ({self.status})"


class Result(models.Model):
    """What a succeeded job computed, with the provenance needed to reproduce it."""

    job = models.OneToOneField(AnalysisJob, on_delete=models.CASCADE, related_name="result")
    data = models.JSONField()
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(max_length=100)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    parameters = models.JSONField(default=dict)
    code_version = models.CharField(max_length=100)
    created_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"Result of job {self.job_id}"


def artifact_upload_path(artifact: "ResultArtifact", filename: str) -> str:
    return f"results/job-{artifact.result.job_id}/{artifact.name}{filename[filename.rfind('.') :]}"


class ResultArtifact(models.Model):
    result = models.ForeignKey(Result, on_delete=models.CASCADE, related_name="artifacts")
    name = models.SlugField(max_length=60)
    file = models.FileField(upload_to=artifact_upload_path, max_length=255)
    content_type = models.CharField(max_length=60)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["result", "name"], name="artifact_name_unique_per_result")
        ]

    def __str__(self) -> str:
        return f"{self.name} of result {self.result_id}"


class WorkerHeartbeat(models.Model):
    """Written by each Celery worker every few seconds; the queue page reads worker health from it."""

    hostname = models.CharField(max_length=200, unique=True)
    queues = models.JSONField(default=list)
    pid = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    last_seen = models.DateTimeField()
    concurrency = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["hostname"]

    def __str__(self) -> str:
        return self.hostname


class ModelVersion(models.Model):
    """A version of an ml model the platform may run: shipped with the code, or trained by a Facet job.

    `name` is the ml registry name (e.g. "wrinkles-unet-wds"). At most one version of a name is
    active; jobs of that model run the active version's weights, or the registry's shipped
    weights when no version is active.
    """

    name = models.CharField(max_length=100)
    task = models.CharField(max_length=30)
    version = models.CharField(max_length=100)
    weights_path = models.CharField(max_length=500, blank=True)
    weights_sha256 = models.CharField(max_length=64, blank=True)
    metrics = models.JSONField(default=dict, blank=True)
    model_card = models.TextField(blank=True)
    source = models.CharField(
        max_length=200, help_text="Where it came from: shipped, or the job that trained it."
    )
    is_active = models.BooleanField(default=False)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    activated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="model_version_unique"),
            models.UniqueConstraint(
                fields=["name"], condition=models.Q(is_active=True), name="one_active_version_per_model"
            ),
        ]
        ordering = ["name", "-created_at"]

    def __str__(self) -> str:
        return f"{self.name} {self.version}{' (active)' if self.is_active else ''}"
