"""Landmark datasets (immutable versions of 68-point labels), auto-labelling campaigns and review.

A dataset belongs to a study and lists its photos with a train/val split that is fixed the first time a
photo enters the dataset. Its contents are written as versions v0, v1, …: a version is a set of
immutable instance rows, so a review or a campaign iteration never edits a label in place, it writes a
new instance and a new version that points to its parent.
"""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.urls import reverse

from webapp.runs import task_names
from webapp.runs.models import ACTIVE_STATUSES, Queue, Run, RunStateError
from webapp.studies.models import Photo, Study

HUMAN = "human"


class Split(models.TextChoices):
    TRAIN = "train", "Training"
    VAL = "val", "Validation"


class KeypointDataset(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="keypoint_datasets")
    name = models.CharField(max_length=100)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "name"], name="keypoint_dataset_name_unique")]
        ordering = ["study", "name"]

    def __str__(self) -> str:
        return self.name

    @property
    def latest_version(self) -> "KeypointDatasetVersion | None":
        return self.versions.order_by("-number").first()


class DatasetPhoto(models.Model):
    """A photo's membership of a dataset and its split, fixed when the photo first enters the dataset."""

    dataset = models.ForeignKey(KeypointDataset, on_delete=models.CASCADE, related_name="photos")
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    split = models.CharField(max_length=5, choices=Split.choices)
    added_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["dataset", "photo"], name="dataset_photo_unique")]

    def save(self, *args, **kwargs) -> None:
        if self.pk and DatasetPhoto.objects.filter(pk=self.pk).exclude(split=self.split).exists():
            raise ValidationError("A photo's split is fixed when it enters the dataset and never changes.")
        super().save(*args, **kwargs)


class VersionSource(models.TextChoices):
    IMPORT = "import", "Import"
    CAMPAIGN = "campaign", "Campaign iteration"
    TEACHER = "teacher", "Teacher model"
    REVIEW = "review", "Review"


class KeypointInstance(models.Model):
    """One labelled face on one photo. Rows are written once; a correction is a new row."""

    dataset = models.ForeignKey("KeypointDataset", on_delete=models.CASCADE, related_name="instances")
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="+")
    box = models.JSONField(help_text="[x0, y0, x1, y1] in stored-photo pixels.")
    keypoints = models.JSONField(help_text="68 [x, y] points, iBUG-68 order.")
    visibility = models.JSONField(help_text="68 values: 0 not labelled, 1 occluded, 2 visible.")
    source = models.CharField(max_length=150, help_text='"human" or "<model>@<version>".')
    confidence = models.FloatField(null=True, blank=True)
    labelled_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    labelled_by_name = models.CharField(max_length=150, blank=True)
    labelled_at = models.DateTimeField(null=True, blank=True)
    derived_from = models.ForeignKey(
        "self",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="derivatives",
        help_text="The model suggestion this human label corrects or accepts.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        indexes = [models.Index(fields=["source", "confidence"])]

    def __str__(self) -> str:
        return f"Instance {self.pk} on photo {self.photo_id} ({self.provenance_label})"

    @property
    def is_human(self) -> bool:
        return self.source == HUMAN

    @property
    def provenance_label(self) -> str:
        if self.is_human:
            when = f", {self.labelled_at:%Y-%m-%d %H:%M} UTC" if self.labelled_at else ""
            return f"human ({self.labelled_by_name or 'unknown'}{when})"
        if self.confidence is None:
            return self.source
        return f"{self.source} (confidence {self.confidence:.2f})"

    def save(self, *args, **kwargs) -> None:
        if self.pk and KeypointInstance.objects.filter(pk=self.pk).exists():
            raise ValidationError("Keypoint instances are immutable; write a new instance instead.")
        super().save(*args, **kwargs)


class KeypointDatasetVersion(models.Model):
    dataset = models.ForeignKey(KeypointDataset, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    parent = models.ForeignKey("self", null=True, blank=True, on_delete=models.PROTECT, related_name="+")
    source = models.CharField(max_length=10, choices=VersionSource.choices)
    note = models.CharField(max_length=300, blank=True)
    counts = models.JSONField(default=dict)
    instances = models.ManyToManyField(KeypointInstance, related_name="versions")
    campaign_iteration = models.ForeignKey(
        "CampaignIteration", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="keypoint_version_number_unique")
        ]
        ordering = ["dataset", "number"]

    def __str__(self) -> str:
        return f"{self.dataset} v{self.number}"

    @property
    def name(self) -> str:
        return f"v{self.number}"

    def save(self, *args, **kwargs) -> None:
        if self.pk and KeypointDatasetVersion.objects.filter(pk=self.pk).exists():
            raise ValidationError("Dataset versions are immutable once written; write the next version.")
        super().save(*args, **kwargs)


class Campaign(Run):
    """An iterative auto-labelling campaign (Chen 2024) run as one job on a worker."""

    run_kind = "campaign"
    run_label = "Landmark campaign"
    task_name = task_names.LANDMARK_CAMPAIGN
    control_capability = "control_jobs"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="landmark_campaigns")
    dataset = models.ForeignKey(KeypointDataset, on_delete=models.CASCADE, related_name="campaigns")
    name = models.SlugField(max_length=60)
    start_version = models.ForeignKey(
        KeypointDatasetVersion,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Labels iteration 0 starts from; empty when a teacher model labels a subset.",
    )
    teacher_model = models.CharField(max_length=40, blank=True)
    labelled_fraction = models.FloatField(default=0.2)
    val_fraction = models.FloatField(default=0.25)
    iterations = models.PositiveSmallIntegerField(default=3)
    epochs_first = models.PositiveIntegerField(default=30)
    epochs_next = models.PositiveIntegerField(default=10)
    imgsz = models.PositiveIntegerField(default=640)
    batch = models.PositiveIntegerField(default=16)
    min_confidence = models.FloatField(default=0.7)
    max_iou = models.FloatField(default=0.3)
    queue = models.CharField(max_length=10, choices=Queue.choices, default=Queue.GPU)
    epoch_log = models.JSONField(default=list, blank=True, help_text="Training loss per epoch.")
    run_dir = models.CharField(max_length=500, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "name"], name="campaign_name_unique_in_study"),
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="campaign_progress_0_to_1"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.name} ({self.status})"

    def run_study(self) -> Study:
        return self.study

    def run_title(self) -> str:
        return f"Landmark campaign '{self.name}'"

    def run_url(self) -> str:
        return reverse("campaigns:campaign_detail", args=[self.pk])

    def on_claim(self) -> None:
        # A new attempt runs the campaign from the start, in a new run folder; the dataset versions an
        # earlier attempt wrote stay (versions are immutable), its iteration rows go.
        self.iteration_rows.all().delete()
        self.epoch_log = []
        self.run_dir = ""
        self.save(update_fields=["epoch_log", "run_dir"])

    def check_retry(self) -> None:
        others = Campaign.objects.filter(dataset_id=self.dataset_id, status__in=ACTIVE_STATUSES)
        if others.exclude(pk=self.pk).exists():
            raise RunStateError("A campaign on this dataset is already queued or running.")


class CampaignIteration(models.Model):
    """One train → evaluate → predict → merge round; metrics are on the fixed validation split."""

    campaign = models.ForeignKey(Campaign, on_delete=models.CASCADE, related_name="iteration_rows")
    k = models.PositiveSmallIntegerField()
    version_in = models.ForeignKey(
        KeypointDatasetVersion, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    version_out = models.ForeignKey(
        KeypointDatasetVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    train_labels = models.PositiveIntegerField()
    val_labels = models.PositiveIntegerField()
    total_labels = models.PositiveIntegerField()
    pseudo_labels_added = models.PositiveIntegerField(null=True, blank=True)
    precision = models.FloatField(null=True, blank=True)
    recall = models.FloatField(null=True, blank=True)
    ap50 = models.FloatField(null=True, blank=True)
    ap50_95 = models.FloatField(null=True, blank=True)
    keypoint_mse_px2 = models.FloatField(null=True, blank=True)
    keypoint_mean_error_px = models.FloatField(null=True, blank=True)
    nme = models.FloatField(null=True, blank=True)
    metrics = models.JSONField(default=dict, help_text="Every figure the campaign reported.")
    epochs = models.PositiveIntegerField(default=0)
    seconds = models.FloatField(default=0.0)
    weights_path = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["campaign", "k"], name="campaign_iteration_unique")]
        ordering = ["campaign", "k"]

    def __str__(self) -> str:
        return f"{self.campaign.name} iteration {self.k}"
