"""Analysis jobs queued on Celery workers, their results with provenance, and model versions."""

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.runs import task_names
from webapp.runs.models import ACTIVE_STATUSES, Run, RunBadge, RunStateError, RunStatus
from webapp.studies.models import AnalysisKind, Comparison, Photo, PhotoView, Study


class AnalysisJob(Run):
    """One analysis (landmarks, zones, wrinkles or normality) of one photo."""

    run_kind = "analysis"
    run_label = "Analysis job"
    task_name = task_names.ANALYSIS
    control_capability = "control_jobs"
    study_lookup = "photo__study_id"
    list_related = ("photo__study", "photo__visit__subject")

    kind = models.CharField(max_length=30, choices=AnalysisKind.choices)
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="jobs")
    model_name = models.CharField(max_length=100)
    model_version = models.CharField(
        max_length=100, blank=True, help_text="Recorded by the worker that ran it."
    )

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

    def run_study(self) -> Study:
        return self.photo.study

    def run_title(self) -> str:
        return f"{self.get_kind_display()} of photo {self.photo_id}"

    def run_url(self) -> str:
        return reverse("studies:photo_detail", args=[self.photo_id])

    def check_retry(self) -> None:
        same = AnalysisJob.objects.filter(
            photo_id=self.photo_id, kind=self.kind, model_name=self.model_name, status__in=ACTIVE_STATUSES
        )
        if same.exclude(pk=self.pk).exists():
            raise RunStateError("The same analysis of this photo is already queued or running.")

    def badge(self) -> RunBadge:
        """The verdict of a finished job: a landmarks job says whether the photo passes its quality
        check or has no face; another kind on a photo without a face is "not applicable"."""
        if self.kind == AnalysisKind.LANDMARKS and self.status == RunStatus.SUCCEEDED:
            result = Result.objects.filter(job=self).only("data").first()
            if result is not None:
                return landmark_badge(result.data)
        finished = self.status in (RunStatus.SUCCEEDED, RunStatus.FAILED)
        if self.kind != AnalysisKind.LANDMARKS and finished and photo_has_no_face(self.photo_id):
            return RunBadge(label="Not applicable: no face", tone="na")
        return super().badge()

    def status_extra(self) -> dict[str, object]:
        result = Result.objects.filter(job=self).only("pk").first()
        return {
            "kind": self.kind,
            "result_url": reverse("analysis:result_json", args=[result.pk]) if result else None,
        }


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


class ModelVersion(models.Model):
    """A version of an ml model the platform may run: shipped with the code, or trained by a Facet job.

    `name` is the ml registry name (`ml.model_names`). At most one version of a name is active for the
    site; a study may choose another (:class:`StudyModelVersion`). Jobs run the study's version, else
    the site's active one, else the registry's shipped weights.
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


class StudyModelVersion(models.Model):
    """The version of a model one study runs instead of the site's active version or shipped weights."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="model_versions")
    name = models.CharField(max_length=100)
    model_version = models.ForeignKey(ModelVersion, on_delete=models.CASCADE, related_name="study_choices")
    chosen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    chosen_at = models.DateTimeField(auto_now=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="one_model_version_per_study")]

    def __str__(self) -> str:
        return f"{self.study}: {self.model_version}"


def landmark_badge(data: dict) -> RunBadge:
    """The badge of a landmarks result: no face, the quality check passes, or the photo needs a look."""
    if not data.get("faces"):
        return RunBadge(label="No face found", tone="bad")
    if (data.get("quality") or {}).get("ok"):
        return RunBadge(label="Quality passes", tone="ok")
    return RunBadge(label="Quality: check", tone="warn")


def photo_has_no_face(photo_id: int) -> bool:
    """Whether the photo's newest landmarks result found no face: analyses that need a face do not apply."""
    newest = (
        Result.objects.filter(job__photo_id=photo_id, job__kind=AnalysisKind.LANDMARKS)
        .order_by(models.F("job__finished_at").desc(nulls_last=True), "-pk")
        .values_list("data__faces", flat=True)
        .first()
    )
    return newest is not None and not newest


class ComparisonPairQuerySet(models.QuerySet):
    def alive(self) -> "ComparisonPairQuerySet":
        """Pairs whose comparison (subject, both visits) and both photos are not deleted."""
        return self.filter(
            comparison__subject__deleted_at__isnull=True,
            comparison__pre_visit__deleted_at__isnull=True,
            comparison__post_visit__deleted_at__isnull=True,
            pre_photo__deleted_at__isnull=True,
            post_photo__deleted_at__isnull=True,
        )


class ComparisonPair(models.Model):
    """The pre and post photo of one view that a comparison compares (the coordinator picks them when a
    visit holds several), with the comparability figures of the pair (``ml.measures.comparability``).

    A pair beyond a comparability limit is left out of the cohort statistics unless a coordinator
    accepts it (audited)."""

    comparison = models.ForeignKey(Comparison, on_delete=models.CASCADE, related_name="pairs")
    view = models.CharField(max_length=10, choices=PhotoView.choices)
    pre_photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    post_photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    figures = models.JSONField(default=dict, blank=True)
    warnings = models.JSONField(default=list, blank=True)
    # Each measure's [pre, post] value (``ml.measures.catalogue``) and the result ids they were read from,
    # refreshed whenever a result of either photo arrives, so the cohort reads one row per pair.
    measures = models.JSONField(default=dict, blank=True)
    sources = models.JSONField(default=dict, blank=True)
    assessed_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    accepted_at = models.DateTimeField(null=True, blank=True)
    acceptance_note = models.CharField(max_length=300, blank=True)

    objects = ComparisonPairQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["comparison", "view"], name="one_pair_per_comparison_view")
        ]
        ordering = ["comparison", "view"]

    def __str__(self) -> str:
        return f"{self.comparison} · {self.get_view_display()}"

    @property
    def included(self) -> bool:
        """In the cohort statistics: assessed, and comparable or accepted by a coordinator."""
        return self.assessed_at is not None and (not self.warnings or self.accepted_at is not None)
