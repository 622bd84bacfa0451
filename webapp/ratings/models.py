"""Rating studies: blinded surveys of a study's photos, their raters (study members or external raters
invited by single-use links), each rater's randomised presentations, the ratings, and the rating
regressors fitted on them.

Blinding: a rater sees a survey item only as a re-encoded, metadata-free image served under the opaque
token of one presentation (`Assignment.token`); no subject code, visit, date, pre/post role or photo id
reaches the rater's browser.
"""

import secrets

from django.conf import settings
from django.db import models
from django.urls import reverse

from webapp.analysis.models import ModelVersion
from webapp.runs import task_names
from webapp.runs.models import Queue, Run
from webapp.studies.models import Photo, Study

DEFAULT_QUESTION = "How normal does this face look?"
DEFAULT_ANCHORS = ["very abnormal", "", "", "", "", "", "completely normal"]


def default_anchors() -> list[str]:
    return list(DEFAULT_ANCHORS)


def new_token() -> str:
    return secrets.token_urlsafe(18)


class SurveyStatus(models.TextChoices):
    DRAFT = "draft", "Draft"
    OPEN = "open", "Open for ratings"
    CLOSED = "closed", "Closed"


class SurveySource(models.TextChoices):
    COLLECTED = "collected", "Rated in Facet"
    IMPORTED = "imported", "Imported from a CSV"


class CropRegion(models.TextChoices):
    WHOLE = "whole", "Whole photo"
    FACE = "face", "Face (from the landmarks)"
    MOUTH_NOSE = "mouth_nose", "Mouth and nose (from the landmarks)"


class Survey(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="rating_surveys")
    title = models.CharField(max_length=200)
    question = models.CharField(max_length=300, default=DEFAULT_QUESTION)
    anchors = models.JSONField(default=default_anchors, help_text="Labels of the scale points, lowest first.")
    scale_min = models.SmallIntegerField(default=1)
    scale_max = models.SmallIntegerField(default=7)
    region = models.CharField(max_length=20, choices=CropRegion.choices, default=CropRegion.WHOLE)
    repeat_share = models.FloatField(
        default=0.1, help_text="Share of photos shown a second time to each rater (test–retest)."
    )
    attention_checks = models.PositiveSmallIntegerField(default=0)
    target_ratings_per_photo = models.PositiveIntegerField(default=20)
    status = models.CharField(max_length=10, choices=SurveyStatus.choices, default=SurveyStatus.DRAFT)
    source = models.CharField(max_length=10, choices=SurveySource.choices, default=SurveySource.COLLECTED)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    opened_at = models.DateTimeField(null=True, blank=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(repeat_share__gte=0, repeat_share__lte=0.5),
                name="survey_repeat_share_0_to_half",
            ),
            models.CheckConstraint(
                condition=models.Q(scale_max__gt=models.F("scale_min")), name="survey_scale"
            ),
        ]

    def __str__(self) -> str:
        return self.title

    @property
    def scale(self) -> list[int]:
        return list(range(self.scale_min, self.scale_max + 1))


class ItemKind(models.TextChoices):
    PHOTO = "photo", "Photo"
    ATTENTION = "attention", "Attention check"


def item_image_path(item: "SurveyItem", filename: str) -> str:
    # Opaque on disk too: nothing in the path names the photo, subject or visit.
    return f"ratings/{secrets.token_hex(16)}.jpg"


class SurveyItem(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="items")
    photo = models.ForeignKey(Photo, null=True, blank=True, on_delete=models.CASCADE, related_name="+")
    code = models.CharField(max_length=200, help_text="photo-<id>, or the item name of an imported CSV.")
    kind = models.CharField(max_length=10, choices=ItemKind.choices, default=ItemKind.PHOTO)
    expected_rating = models.SmallIntegerField(null=True, blank=True)
    image = models.FileField(upload_to=item_image_path, max_length=255, blank=True)

    class Meta:
        ordering = ["survey", "id"]
        constraints = [models.UniqueConstraint(fields=["survey", "code"], name="survey_item_code_unique")]

    def __str__(self) -> str:
        return f"{self.code} of survey {self.survey_id}"


class RaterKind(models.TextChoices):
    MEMBER = "member", "Study member"
    EXTERNAL = "external", "External (invitation link)"
    IMPORTED = "imported", "Imported"


class SurveyRater(models.Model):
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="raters")
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    label = models.CharField(max_length=100, help_text="A pseudonym (R01, M01, or the imported rater id).")
    kind = models.CharField(max_length=10, choices=RaterKind.choices)
    invitation_sha256 = models.CharField(max_length=64, blank=True, db_index=True)
    claimed_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)
    completed_at = models.DateTimeField(null=True, blank=True)
    presentations = models.PositiveIntegerField(default=0, help_text="Length of the rater's random order.")
    excluded = models.BooleanField(default=False)
    exclusion_reason = models.CharField(max_length=300, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["survey", "label"]
        constraints = [
            models.UniqueConstraint(fields=["survey", "label"], name="survey_rater_label_unique"),
            models.UniqueConstraint(
                fields=["survey", "user"], condition=models.Q(user__isnull=False), name="one_rater_per_member"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.label} in survey {self.survey_id}"


class Assignment(models.Model):
    """One presentation of an item to a rater, at a position of the rater's random order."""

    rater = models.ForeignKey(SurveyRater, on_delete=models.CASCADE, related_name="assignments")
    item = models.ForeignKey(SurveyItem, on_delete=models.CASCADE, related_name="assignments")
    position = models.PositiveIntegerField()
    is_repeat = models.BooleanField(default=False)
    token = models.CharField(max_length=32, unique=True, default=new_token)

    class Meta:
        ordering = ["rater", "position"]
        constraints = [
            models.UniqueConstraint(fields=["rater", "position"], name="assignment_position_unique"),
        ]

    def __str__(self) -> str:
        return f"{self.rater} #{self.position}"


class Rating(models.Model):
    """One rating. Undo marks it undone (kept for the record); a presentation has one active rating."""

    rater = models.ForeignKey(SurveyRater, on_delete=models.CASCADE, related_name="ratings")
    item = models.ForeignKey(SurveyItem, on_delete=models.CASCADE, related_name="ratings")
    assignment = models.ForeignKey(
        Assignment, null=True, blank=True, on_delete=models.CASCADE, related_name="ratings"
    )
    value = models.FloatField()
    elapsed_ms = models.PositiveIntegerField(
        null=True, blank=True, help_text="Time from image shown to rating."
    )
    submission_id = models.UUIDField(null=True, blank=True, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    undone_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(
                fields=["assignment"],
                condition=models.Q(undone_at__isnull=True, assignment__isnull=False),
                name="one_active_rating_per_assignment",
            ),
        ]
        indexes = [models.Index(fields=["rater", "undone_at"])]

    def __str__(self) -> str:
        return f"{self.value} by {self.rater_id} on {self.item_id}"


class RegressorFit(Run):
    """A background fit of the normality rating regressor on one survey's ratings (GPU queue, where the
    normality models live). The fitted version is activated per study like any model version."""

    run_kind = "rating-fit"
    run_label = "Rating-regressor fit"
    task_name = task_names.RATING_REGRESSOR_FIT
    control_capability = "manage_study"

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="regressor_fits")
    survey = models.ForeignKey(Survey, on_delete=models.CASCADE, related_name="regressor_fits")
    parameters = models.JSONField(default=dict)
    metrics = models.JSONField(default=dict, blank=True)
    model_version = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    queue = models.CharField(max_length=10, choices=Queue.choices, default=Queue.GPU)

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(progress__gte=0, progress__lte=1), name="regressor_fit_progress_0_to_1"
            ),
        ]

    def __str__(self) -> str:
        return f"Regressor fit {self.pk} of survey {self.survey_id} ({self.status})"

    def run_study(self) -> Study:
        return self.study

    def run_title(self) -> str:
        return f"Rating-regressor fit on survey {self.survey_id}"

    def run_url(self) -> str:
        return reverse("ratings:fit_detail", args=[self.pk])

    def status_extra(self) -> dict[str, object]:
        return {"model_version": str(self.model_version) if self.model_version else None}
