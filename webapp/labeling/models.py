"""Wrinkle labels drawn in the browser, and the jobs that train a wrinkle model on them.

A label is immutable: saving again on the same photo creates the next version (1, 2, …) and keeps the
earlier ones, so a dataset export or a trained model can always name exactly what it used. All files
are patient-derived and are served only through the audited views of this app.
"""

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.analysis.models import ModelVersion
from webapp.runs import task_names
from webapp.runs.models import Queue, Run
from webapp.studies.models import Photo, Study


class ThresholdMethod(models.TextChoices):
    BRADLEY_ROTH = "bradley-roth", "Bradley–Roth (integral image)"
    OPENCV_GAUSSIAN = "opencv-gaussian", "OpenCV Gaussian adaptive"


class RegionKind(models.TextChoices):
    FOREHEAD_EYE = "forehead-eye", "Forehead and eyes (crop from landmarks)"
    WHOLE = "whole", "Whole photo"


def label_file_path(label: "WrinkleLabel", filename: str) -> str:
    return f"labels/photo-{label.photo_id}/v{label.version}/{filename}"


class ImmutableLabelError(Exception):
    """A stored label version was about to be changed."""


class WrinkleLabel(models.Model):
    """One saved version of the wrinkle ground truth of one photo.

    `region` says which pixels were labeled: `{"kind", "matrix" (2×3 photo → label image), "width",
    "height", "landmarks_result"}`; `image` is that labeling image (the forehead-eye crop or the
    downscaled whole photo), and the masks have its size.
    """

    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="wrinkle_labels")
    version = models.PositiveIntegerField()
    region = models.JSONField()
    image = models.FileField(upload_to=label_file_path, max_length=255)
    rough_mask = models.FileField(upload_to=label_file_path, max_length=255)
    ground_truth = models.FileField(upload_to=label_file_path, max_length=255)
    texture_map = models.FileField(upload_to=label_file_path, max_length=255)
    method = models.CharField(max_length=20, choices=ThresholdMethod.choices)
    parameters = models.JSONField(default=dict)
    rough_pixels = models.PositiveIntegerField()
    wrinkle_pixels = models.PositiveIntegerField()
    note = models.TextField(blank=True, max_length=1000)
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["photo", "version"], name="one_label_per_photo_version"),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="label_version_from_1"),
        ]
        ordering = ["photo_id", "-version"]

    def __str__(self) -> str:
        return f"Wrinkle label v{self.version} of photo {self.photo_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableLabelError("Wrinkle labels are immutable; save a new version instead.")
        super().save(*args, **kwargs)

    @property
    def wrinkle_fraction(self) -> float:
        return self.wrinkle_pixels / max(1, int(self.region["width"]) * int(self.region["height"]))


class TrainingJob(Run):
    """A "train wrinkle model" run on a study's labels (GPU queue)."""

    run_kind = "training"
    run_label = "Wrinkle training"
    task_name = task_names.WRINKLE_TRAINING
    control_capability = "manage_study"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="wrinkle_training_jobs")
    parameters = models.JSONField(default=dict)
    label_ids = models.JSONField(default=list, help_text="The label versions it trains on.")
    metrics = models.JSONField(default=dict, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue = models.CharField(max_length=10, choices=Queue.choices, default=Queue.GPU)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="training_progress_0_to_1"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Wrinkle training job {self.pk} of study {self.study_id} ({self.status})"

    def run_study(self) -> Study:
        return self.study

    def run_title(self) -> str:
        return f"Wrinkle model training on {len(self.label_ids)} label(s)"

    def run_url(self) -> str:
        return reverse("labeling:study_labels", args=[self.study_id])

    def status_extra(self) -> dict[str, object]:
        return {"model_version": str(self.model_version) if self.model_version else None}


# Human zone annotations (CVAT imports) -----------------------------------------------------------------


class ZoneAnnotationFormat(models.TextChoices):
    CVAT_IMAGES_XML = "cvat-images-1.1", "CVAT for images 1.1 (XML polygons)"
    CVAT_SEGMENTATION_MASK = "cvat-segmentation-mask-1.1", "Segmentation mask 1.1 (ZIP)"


class ZoneAnnotationImport(models.Model):
    """One uploaded CVAT export that was imported completely (failed uploads store nothing)."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="zone_annotation_imports")
    source_format = models.CharField(max_length=40, choices=ZoneAnnotationFormat.choices)
    # The client's file name is not kept (it may name a patient); the hash identifies the file.
    file_sha256 = models.CharField(max_length=64)
    photo_count = models.PositiveIntegerField()
    annotation_count = models.PositiveIntegerField()
    skipped_images = models.JSONField(default=list, help_text="Image names without any zone shape.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]

    def __str__(self) -> str:
        return f"Zone annotation import {self.pk} of study {self.study_id}"


def zone_mask_path(annotation: "ZoneAnnotation", filename: str) -> str:
    return (
        f"zone-annotations/study-{annotation.photo.study_id}/photo-{annotation.photo_id}/"
        f"{annotation.zone}-v{annotation.version}.png"
    )


class ZoneAnnotation(models.Model):
    """A human mask of one zone on one photo (binary PNG, the stored photo's size), immutable.

    A re-import creates the next version of the photo × zone; the newest version is the one in use.
    """

    annotation_import = models.ForeignKey(
        ZoneAnnotationImport, on_delete=models.CASCADE, related_name="annotations"
    )
    photo = models.ForeignKey(Photo, on_delete=models.CASCADE, related_name="zone_annotations")
    zone = models.CharField(max_length=3, help_text="Zone abbreviation of the atlas (ml.zones.atlas).")
    version = models.PositiveIntegerField()
    mask = models.FileField(upload_to=zone_mask_path, max_length=255)
    pixels = models.PositiveIntegerField()
    source_format = models.CharField(max_length=40, choices=ZoneAnnotationFormat.choices)
    image_name = models.CharField(max_length=255, help_text="The image name in the CVAT export.")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    author_username = models.CharField(max_length=150)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["photo", "zone", "version"], name="one_zone_annotation_per_photo_zone_version"
            ),
            models.CheckConstraint(condition=models.Q(version__gte=1), name="zone_annotation_version_from_1"),
        ]
        ordering = ["photo_id", "zone", "-version"]

    def __str__(self) -> str:
        return f"Zone {self.zone} v{self.version} of photo {self.photo_id}"

    def save(self, *args, **kwargs) -> None:
        if not self._state.adding:
            raise ImmutableLabelError("Zone annotations are immutable; import a new version instead.")
        super().save(*args, **kwargs)
