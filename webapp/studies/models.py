"""The study domain: studies, their members, pseudonymous subjects, visits, photos and comparisons."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import RegexValidator
from django.db import models

from ml import model_names


class AnalysisKind(models.TextChoices):
    """The analyses a study may run on every uploaded photo (webapp.analysis runs them)."""

    LANDMARKS = "landmarks", "Landmarks and quality"
    ZONES = "zones", "Facial zones"
    WRINKLES = "wrinkles", "Wrinkles"
    NORMALITY = "normality", "Normality score"


class LandmarkDetector(models.TextChoices):
    """The landmark models a study may choose for its landmark analyses."""

    DLIB_68 = model_names.DLIB_68, "dlib 68-point shape predictor"
    YOLO_POSE_68 = model_names.YOLO_POSE68, "Facet YOLOv8-pose 68-point detector"


class PhotoView(models.TextChoices):
    FRONTAL = "frontal", "Frontal"
    LEFT_45 = "left45", "Left 45°"
    RIGHT_45 = "right45", "Right 45°"
    LEFT_90 = "left90", "Left 90°"
    RIGHT_90 = "right90", "Right 90°"


class Role(models.TextChoices):
    COORDINATOR = "coordinator", "Study coordinator"
    CLINICIAN = "clinician", "Clinician"
    RATER = "rater", "Rater"
    MONITOR = "monitor", "Monitor (read-only)"


def default_required_views() -> list[str]:
    return [PhotoView.FRONTAL.value]


def default_analyses() -> list[str]:
    return [AnalysisKind.LANDMARKS.value]


# Zones most aesthetic treatments target (fillers, toxins): forehead, glabella, periorbital,
# midface, nasolabial, perioral areas and the lips, by their atlas abbreviations (docs/zones.md).
DEFAULT_ZONES_OF_INTEREST = (
    "FFA",
    "CGA",
    "LLI",
    "RLI",
    "LMI",
    "RMI",
    "LZA",
    "RZA",
    "LAA",
    "RAA",
    "LNF",
    "RNF",
    "LOC",
    "ROC",
    "UPA",
    "FPA",
    "FUL",
    "FLW",
    "LMS",
)


def default_zones_of_interest() -> list[str]:
    return list(DEFAULT_ZONES_OF_INTEREST)


class NormalityRegion(models.TextChoices):
    MOUTH_NOSE = "mouth_nose", "Mouth and nose"
    FACE_NO_EYES = "face_no_eyes", "Whole face without the eyes"


class SoftDeletable(models.Model):
    """A record that is deleted reversibly first: hidden everywhere, restorable, and purged (with its
    files) only after FACET_DELETED_RETENTION_DAYS by `manage.py facet_purge_deleted`."""

    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    deleted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    deletion_reason = models.CharField(max_length=300, blank=True)

    class Meta:
        abstract = True

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None


class SubjectQuerySet(models.QuerySet):
    def alive(self) -> "SubjectQuerySet":
        return self.filter(deleted_at__isnull=True)


class VisitQuerySet(models.QuerySet):
    def alive(self) -> "VisitQuerySet":
        """Visits not deleted, of subjects not deleted."""
        return self.filter(deleted_at__isnull=True, subject__deleted_at__isnull=True)


class PhotoQuerySet(models.QuerySet):
    def alive(self) -> "PhotoQuerySet":
        """Photos not deleted, of visits and subjects not deleted."""
        return self.filter(
            deleted_at__isnull=True, visit__deleted_at__isnull=True, visit__subject__deleted_at__isnull=True
        )


class ComparisonQuerySet(models.QuerySet):
    def alive(self) -> "ComparisonQuerySet":
        """Comparisons whose subject and both visits are not deleted."""
        return self.filter(
            subject__deleted_at__isnull=True,
            pre_visit__deleted_at__isnull=True,
            post_visit__deleted_at__isnull=True,
        )


class Study(models.Model):
    name = models.CharField(max_length=200, unique=True)
    protocol = models.TextField(
        blank=True, help_text="Protocol summary: treatment, visit schedule, photo standard."
    )
    required_views = models.JSONField(default=default_required_views)
    analyses = models.JSONField(
        default=default_analyses, blank=True, help_text="Analysis kinds run on every uploaded photo."
    )
    zones_of_interest = models.JSONField(
        default=default_zones_of_interest,
        blank=True,
        help_text="Atlas zones (abbreviations) listed first and compared pre/post.",
    )
    normality_region = models.CharField(
        max_length=20, choices=NormalityRegion.choices, default=NormalityRegion.MOUTH_NOSE
    )
    force_zone_baseline = models.BooleanField(
        default=False,
        help_text="Run zones with the landmark baseline even when the segmentation model is trained.",
    )
    landmark_detector = models.CharField(
        max_length=40,
        choices=LandmarkDetector.choices,
        default=LandmarkDetector.DLIB_68,
        help_text="The landmark model of the study's landmark analyses.",
    )
    arms = models.JSONField(
        default=list, blank=True, help_text="The study's treatment arms; each subject is in one of them."
    )
    ipd_mm = models.FloatField(
        null=True,
        blank=True,
        help_text="Scale: the inter-pupillary distance in mm assumed for every subject (e.g. 63). When "
        "set, landmark measures are shown in mm instead of IPD units.",
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["name"]
        verbose_name_plural = "studies"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        unknown_views = set(self.required_views) - set(PhotoView.values)
        if unknown_views:
            raise ValidationError({"required_views": f"Unknown views: {', '.join(sorted(unknown_views))}."})
        unknown_kinds = set(self.analyses) - set(AnalysisKind.values)
        if unknown_kinds:
            raise ValidationError({"analyses": f"Unknown analyses: {', '.join(sorted(unknown_kinds))}."})
        from ml.zones.atlas import ZONE_ABBREVIATIONS

        unknown_zones = set(self.zones_of_interest) - set(ZONE_ABBREVIATIONS)
        if unknown_zones:
            raise ValidationError(
                {"zones_of_interest": f"Unknown zones: {', '.join(sorted(unknown_zones))}."}
            )
        if not isinstance(self.arms, list) or not all(isinstance(arm, str) and arm for arm in self.arms):
            raise ValidationError({"arms": "List the arms as names."})
        if len(set(self.arms)) != len(self.arms):
            raise ValidationError({"arms": "Each arm needs its own name."})
        if self.ipd_mm is not None and not 40 <= self.ipd_mm <= 80:
            raise ValidationError({"ipd_mm": "An adult or child IPD lies between 40 and 80 mm."})


class StudyMembership(models.Model):
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="memberships")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=20, choices=Role.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "user"], name="one_membership_per_user_and_study")
        ]
        ordering = ["study", "user__username"]

    def __str__(self) -> str:
        return f"{self.user} – {self.get_role_display()} in {self.study}"


subject_code_validator = RegexValidator(
    r"^[A-Za-z0-9][A-Za-z0-9._-]{0,39}$",
    "Use a pseudonymous code of letters, digits, '.', '_' or '-' (no names, no spaces), "
    "at most 40 characters.",
)


class Sex(models.TextChoices):
    FEMALE = "female", "Female"
    MALE = "male", "Male"
    OTHER = "other", "Other"


AGE_BANDS = ("0-17", "18-29", "30-39", "40-49", "50-59", "60-69", "70+")


class Subject(SoftDeletable):
    """A study participant, known only by a pseudonymous code: Facet stores no names. Its attributes
    (arm, sex, age band) filter and group the cohort's statistics."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="subjects")
    code = models.CharField(max_length=40, validators=[subject_code_validator])
    arm = models.CharField(max_length=60, blank=True, help_text="One of the study's arms.")
    sex = models.CharField(max_length=10, choices=Sex.choices, blank=True)
    age_band = models.CharField(max_length=10, choices=[(band, band) for band in AGE_BANDS], blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = SubjectQuerySet.as_manager()

    class Meta:
        constraints = [models.UniqueConstraint(fields=["study", "code"], name="subject_code_unique_in_study")]
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        if self.arm and self.arm not in (self.study.arms or []):
            raise ValidationError({"arm": f"{self.arm!r} is not one of the study's arms."})


class VisitRole(models.TextChoices):
    PRE = "pre", "Pre-treatment"
    POST = "post", "Post-treatment"
    FOLLOW_UP = "follow_up", "Follow-up"


class Visit(SoftDeletable):
    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="visits")
    label = models.CharField(max_length=60, help_text="e.g. baseline, week 12, post-op")
    date = models.DateField(null=True, blank=True)
    role = models.CharField(max_length=20, choices=VisitRole.choices)
    created_at = models.DateTimeField(auto_now_add=True)

    objects = VisitQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["subject", "label"], name="visit_label_unique_per_subject")
        ]
        ordering = ["date", "created_at"]

    def __str__(self) -> str:
        return f"{self.subject.code} · {self.label}"


def photo_upload_path(photo: "Photo", filename: str) -> str:
    # Content-addressed names: no part of the client's file name (which may hold a patient name) is kept.
    return f"photos/study-{photo.study_id}/{photo.content_hash[:2]}/{photo.content_hash}.png"


def thumbnail_upload_path(photo: "Photo", filename: str) -> str:
    return f"thumbnails/study-{photo.study_id}/{photo.content_hash[:2]}/{photo.content_hash}.jpg"


class Photo(SoftDeletable):
    # `study` repeats visit.subject.study so the database itself enforces one copy of a file per study.
    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="photos")
    visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="photos")
    view = models.CharField(max_length=10, choices=PhotoView.choices)
    image = models.FileField(upload_to=photo_upload_path, max_length=255)
    thumbnail = models.FileField(upload_to=thumbnail_upload_path, max_length=255)
    content_hash = models.CharField(max_length=64, help_text="SHA-256 of the uploaded file's bytes.")
    image_hash = models.CharField(max_length=64, help_text="SHA-256 of the stored, metadata-free image.")
    source_format = models.CharField(max_length=10)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    capture_time = models.DateTimeField(null=True, blank=True)
    camera_make = models.CharField(max_length=100, blank=True)
    camera_model = models.CharField(max_length=100, blank=True)
    focal_length_mm = models.FloatField(null=True, blank=True)
    uploaded_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    uploaded_at = models.DateTimeField(auto_now_add=True)

    objects = PhotoQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["study", "content_hash"], name="photo_unique_file_per_study"),
        ]
        ordering = ["visit__date", "visit__created_at", "view"]

    def __str__(self) -> str:
        return f"{self.visit} · {self.get_view_display()}"

    @property
    def subject(self) -> Subject:
        return self.visit.subject

    @property
    def expected_yaw(self) -> float:
        from ml.core.quality import view_expected_yaw

        return view_expected_yaw(self.view)


class Comparison(models.Model):
    """A pre/post comparison of two visits of one subject."""

    subject = models.ForeignKey(Subject, on_delete=models.CASCADE, related_name="comparisons")
    pre_visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="+")
    post_visit = models.ForeignKey(Visit, on_delete=models.CASCADE, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    objects = ComparisonQuerySet.as_manager()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["pre_visit", "post_visit"], name="comparison_unique_visit_pair"),
            models.CheckConstraint(
                condition=~models.Q(pre_visit=models.F("post_visit")), name="comparison_visits_differ"
            ),
        ]
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.subject.code}: {self.pre_visit.label} → {self.post_visit.label}"

    def clean(self) -> None:
        if self.pre_visit_id == self.post_visit_id:
            raise ValidationError("Choose two different visits.")
        if self.pre_visit.subject_id != self.subject_id or self.post_visit.subject_id != self.subject_id:
            raise ValidationError("Both visits must belong to the comparison's subject.")


class Invitation(models.Model):
    """An e-mail invitation to join a study with a role. The link carries a random token; only its
    SHA-256 is stored. Accepting it creates the account (the invitee chooses a user name and a
    password) and the membership."""

    study = models.ForeignKey(Study, on_delete=models.CASCADE, related_name="invitations")
    email = models.EmailField()
    role = models.CharField(max_length=20, choices=Role.choices)
    token_sha256 = models.CharField(max_length=64, unique=True)
    invited_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    accepted_at = models.DateTimeField(null=True, blank=True)
    accepted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"Invitation of {self.email} to {self.study} as {self.get_role_display()}"
