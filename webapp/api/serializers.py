"""Request validation and response shapes of the REST API. Writes go through the apps' services."""

from typing import Any

from django.contrib.auth import get_user_model
from django.urls import reverse
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from ml.measures.catalogue import definition, noise_floors
from webapp.analysis.models import AnalysisJob, ComparisonPair
from webapp.api.fields import ScopedRelatedField
from webapp.exports.dicom import DeidentifyMethod
from webapp.exports.models import ExportFormat, StudyExport
from webapp.studies import selectors
from webapp.studies.access import Capability
from webapp.studies.models import (
    AnalysisKind,
    Comparison,
    PhotoView,
    Role,
    Study,
    StudyMembership,
    Subject,
    Visit,
    VisitRole,
    subject_code_validator,
)


class StudySerializer(serializers.ModelSerializer):
    required_views = serializers.ListField(
        child=serializers.ChoiceField(choices=PhotoView.choices), allow_empty=False, required=False
    )
    analyses = serializers.ListField(
        child=serializers.ChoiceField(choices=AnalysisKind.choices), required=False
    )
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)

    class Meta:
        model = Study
        fields = ["id", "name", "protocol", "required_views", "analyses", "created_by", "created_at"]
        read_only_fields = ["id", "created_by", "created_at"]
        # Uniqueness is checked in validate_name with a readable message.
        extra_kwargs = {"name": {"validators": []}}

    def validate_name(self, value: str) -> str:
        name = value.strip()
        if not name:
            raise serializers.ValidationError("Give the study a name.")
        others = Study.objects.filter(name=name)
        if self.instance is not None:
            others = others.exclude(pk=self.instance.pk)
        if others.exists():
            raise serializers.ValidationError("A study with this name already exists; choose another name.")
        return name

    def validate_required_views(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))

    def validate_analyses(self, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class MembershipSerializer(serializers.ModelSerializer):
    username = serializers.CharField(max_length=150)
    role = serializers.ChoiceField(choices=Role.choices)

    class Meta:
        model = StudyMembership
        fields = ["id", "username", "role", "created_at"]
        read_only_fields = ["id", "created_at"]

    def to_representation(self, instance: StudyMembership) -> dict[str, Any]:
        return {
            "id": instance.pk,
            "username": instance.user.get_username(),
            "role": instance.role,
            "created_at": serializers.DateTimeField().to_representation(instance.created_at),
        }

    def validate_username(self, value: str) -> Any:
        user = get_user_model().objects.filter(username=value.strip(), is_active=True).first()
        if user is None:
            raise serializers.ValidationError(f"No active user is called {value.strip()!r}.")
        return user


class SubjectSerializer(serializers.ModelSerializer):
    study = ScopedRelatedField(
        getter=selectors.get_study,
        for_user=selectors.studies_for_user,
        capability=Capability.MANAGE_SUBJECTS,
        what="study",
        queryset=Study.objects.all(),
    )
    code = serializers.CharField(max_length=40, validators=[subject_code_validator])

    class Meta:
        model = Subject
        fields = ["id", "study", "code", "created_at"]
        read_only_fields = ["id", "created_at"]
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["code"] = attrs["code"].strip()
        if Subject.objects.filter(study=attrs["study"], code=attrs["code"]).exists():
            raise serializers.ValidationError({"code": "This study already has a subject with this code."})
        return attrs


class VisitSerializer(serializers.ModelSerializer):
    subject = ScopedRelatedField(
        getter=selectors.get_subject,
        for_user=selectors.subjects_for_user,
        capability=Capability.MANAGE_SUBJECTS,
        what="subject",
        queryset=Subject.objects.all(),
    )
    study = serializers.IntegerField(source="subject.study_id", read_only=True)
    role = serializers.ChoiceField(choices=VisitRole.choices)

    class Meta:
        model = Visit
        fields = ["id", "study", "subject", "label", "date", "role", "created_at"]
        read_only_fields = ["id", "study", "created_at"]
        validators: list = []

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs["label"] = attrs["label"].strip()
        if not attrs["label"]:
            raise serializers.ValidationError({"label": "Give the visit a label, e.g. baseline or week 12."})
        if Visit.objects.filter(subject=attrs["subject"], label=attrs["label"]).exists():
            raise serializers.ValidationError({"label": "This subject already has a visit with this label."})
        return attrs


class JobSerializer(serializers.ModelSerializer):
    study = serializers.IntegerField(source="photo.study_id", read_only=True)
    message = serializers.CharField(source="progress_message", read_only=True)
    duration_seconds = serializers.FloatField(read_only=True, allow_null=True)
    result = serializers.SerializerMethodField()

    class Meta:
        model = AnalysisJob
        fields = [
            "id",
            "study",
            "photo",
            "kind",
            "queue",
            "status",
            "progress",
            "message",
            "attempts",
            "error",
            "model_name",
            "model_version",
            "worker",
            "created_at",
            "started_at",
            "finished_at",
            "duration_seconds",
            "result",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.IntegerField(allow_null=True))
    def get_result(self, job: AnalysisJob) -> int | None:
        result = getattr(job, "result", None)
        return result.pk if result is not None else None


class PhotoSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    study = serializers.IntegerField(source="study_id", read_only=True)
    subject = serializers.IntegerField(source="visit.subject_id", read_only=True)
    visit = serializers.IntegerField(source="visit_id", read_only=True)
    view = serializers.ChoiceField(choices=PhotoView.choices, read_only=True)
    width = serializers.IntegerField(read_only=True)
    height = serializers.IntegerField(read_only=True)
    source_format = serializers.CharField(read_only=True)
    content_hash = serializers.CharField(read_only=True)
    image_hash = serializers.CharField(read_only=True)
    capture_time = serializers.DateTimeField(read_only=True, allow_null=True)
    camera_make = serializers.CharField(read_only=True)
    camera_model = serializers.CharField(read_only=True)
    focal_length_mm = serializers.FloatField(read_only=True, allow_null=True)
    uploaded_by = serializers.CharField(source="uploaded_by.username", read_only=True, allow_null=True)
    uploaded_at = serializers.DateTimeField(read_only=True)
    image_url = serializers.SerializerMethodField()
    jobs = JobSerializer(many=True, read_only=True)

    def get_image_url(self, photo: Any) -> str:
        return reverse("api:photo-image", args=[photo.pk])


class PhotoUploadSerializer(serializers.Serializer):
    visit = ScopedRelatedField(
        getter=selectors.get_visit,
        for_user=selectors.visits_for_user,
        capability=Capability.UPLOAD,
        what="visit",
        queryset=Visit.objects.all(),
    )
    view = serializers.ChoiceField(choices=PhotoView.choices)
    # Empty and oversized files are judged by the ingest, which words every rejection the same way.
    file = serializers.FileField(allow_empty_file=True, use_url=False)


class ArtifactSerializer(serializers.Serializer):
    name = serializers.CharField(read_only=True)
    content_type = serializers.CharField(read_only=True)
    url = serializers.SerializerMethodField()

    def get_url(self, artifact: Any) -> str:
        return reverse("api:result-artifact", args=[artifact.result_id, artifact.name])


class ProvenanceSerializer(serializers.Serializer):
    model_name = serializers.CharField(read_only=True)
    model_version = serializers.CharField(read_only=True)
    weights_sha256 = serializers.CharField(read_only=True)
    parameters = serializers.JSONField(read_only=True)
    code_version = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)


class ResultSerializer(serializers.Serializer):
    id = serializers.IntegerField(read_only=True)
    job = serializers.IntegerField(source="job_id", read_only=True)
    photo = serializers.IntegerField(source="job.photo_id", read_only=True)
    study = serializers.IntegerField(source="job.photo.study_id", read_only=True)
    kind = serializers.CharField(source="job.kind", read_only=True)
    data = serializers.JSONField(read_only=True)
    provenance = ProvenanceSerializer(source="*", read_only=True)
    artifacts = ArtifactSerializer(many=True, read_only=True)


class ComparisonPairSerializer(serializers.ModelSerializer):
    """One photo pair of a comparison (read-only)."""

    registration = serializers.JSONField(source="figures", read_only=True)
    accepted_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    included = serializers.BooleanField(read_only=True)
    measures = serializers.SerializerMethodField()

    class Meta:
        model = ComparisonPair
        fields = [
            "id",
            "view",
            "pre_photo",
            "post_photo",
            "registration",
            "warnings",
            "assessed_at",
            "accepted_by",
            "accepted_at",
            "acceptance_note",
            "included",
            "sources",
            "measures",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.DictField(child=serializers.DictField()))
    def get_measures(self, pair: ComparisonPair) -> dict[str, dict[str, Any]]:
        """{key: {"label", "unit", "pre", "post", "change", "noise_floor"}}; mm when the study sets an IPD."""
        ipd_mm = self.context.get("ipd_mm")
        floors = noise_floors()
        found = {}
        for key, (pre, post) in sorted(pair.measures.items()):
            try:
                measure = definition(key)
            except KeyError:
                continue
            floor = floors.get(key)
            if ipd_mm is not None:
                pre, post = measure.in_mm(pre, ipd_mm), measure.in_mm(post, ipd_mm)
                floor = None if floor is None else measure.in_mm(floor, ipd_mm)
            found[key] = {
                "label": measure.label,
                "unit": measure.unit_label(ipd_mm),
                "pre": pre,
                "post": post,
                "change": post - pre,
                "noise_floor": floor,
            }
        return found


class ComparisonSerializer(serializers.ModelSerializer):
    pre_visit = ScopedRelatedField(
        getter=selectors.get_visit,
        for_user=selectors.visits_for_user,
        capability=Capability.COMPARE,
        what="pre-treatment visit",
        queryset=Visit.objects.all(),
    )
    post_visit = ScopedRelatedField(
        getter=selectors.get_visit,
        for_user=selectors.visits_for_user,
        capability=Capability.COMPARE,
        what="post-treatment visit",
        queryset=Visit.objects.all(),
    )
    study = serializers.IntegerField(source="subject.study_id", read_only=True)
    created_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    pairs = serializers.SerializerMethodField(
        help_text="Per view: the photos compared, the registration and comparability figures, warnings, a "
        "coordinator's acceptance and every measure before and after (docs/measures.md)."
    )

    class Meta:
        model = Comparison
        fields = ["id", "study", "subject", "pre_visit", "post_visit", "created_by", "created_at", "pairs"]
        read_only_fields = ["id", "study", "subject", "created_by", "created_at", "pairs"]
        validators: list = []

    @extend_schema_field(ComparisonPairSerializer(many=True))
    def get_pairs(self, comparison: Comparison) -> list[dict[str, Any]]:
        pairs = comparison.pairs.all()  # the viewset prefetches the pairs of alive photos
        return ComparisonPairSerializer(
            pairs, many=True, context={"ipd_mm": comparison.subject.study.ipd_mm}
        ).data

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        pre, post = attrs["pre_visit"], attrs["post_visit"]
        if pre.pk == post.pk:
            raise serializers.ValidationError({"post_visit": "Choose two different visits."})
        if pre.subject_id != post.subject_id:
            raise serializers.ValidationError({"post_visit": "Both visits must belong to the same subject."})
        return attrs


class ChangeSummarySerializer(serializers.Serializer):
    n = serializers.IntegerField()
    mean_pre = serializers.FloatField(allow_null=True)
    mean_post = serializers.FloatField(allow_null=True)
    mean_change = serializers.FloatField(allow_null=True)
    mean_change_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    median_change = serializers.FloatField(allow_null=True)
    median_change_ci = serializers.ListField(child=serializers.FloatField(), allow_null=True)
    wilcoxon_p = serializers.FloatField(allow_null=True)
    adjusted_p = serializers.FloatField(allow_null=True, help_text="Wilcoxon p adjusted across the group.")
    t_test_p = serializers.FloatField(allow_null=True)
    cohen_dz = serializers.FloatField(allow_null=True)
    rank_biserial = serializers.FloatField(allow_null=True)


class ArmComparisonSerializer(serializers.Serializer):
    first = serializers.CharField()
    second = serializers.CharField()
    n_first = serializers.IntegerField()
    n_second = serializers.IntegerField()
    u = serializers.FloatField(allow_null=True)
    p = serializers.FloatField(allow_null=True)
    adjusted_p = serializers.FloatField(allow_null=True)
    rank_biserial = serializers.FloatField(
        allow_null=True, help_text="2U/(n1·n2) − 1: positive = first arm larger."
    )


class MeasureStatisticsSerializer(serializers.Serializer):
    """The cohort's change of one measure (webapp.analysis.cohort.MeasureStatistics)."""

    measure = serializers.CharField()
    label = serializers.CharField()
    group = serializers.CharField()
    unit = serializers.CharField()
    noise_floor = serializers.FloatField(allow_null=True)
    beyond_noise = serializers.IntegerField(help_text="Subjects whose change exceeds the noise floor.")
    summary = ChangeSummarySerializer()
    arms = ArmComparisonSerializer(many=True)
    changes_by_arm = serializers.DictField(child=serializers.ListField(child=serializers.FloatField()))


class NormalityChangeSerializer(serializers.Serializer):
    pre = serializers.FloatField(help_text="Normality score S before (higher S = more normal).")
    post = serializers.FloatField()
    change = serializers.FloatField()
    improved = serializers.BooleanField()
    pre_rating = serializers.FloatField(allow_null=True, help_text="1–7 rating, where a regressor gave one.")
    post_rating = serializers.FloatField(allow_null=True)
    rating_change = serializers.FloatField(allow_null=True)
    same_region = serializers.BooleanField()
    same_normalizer = serializers.BooleanField(
        help_text="Both scores come from the same normalizer weights; if not, S is on different scales."
    )
    region = serializers.CharField(allow_null=True)
    noise_floor = serializers.FloatField(
        allow_null=True, help_text="The change of S from framing alone (null where not measured)."
    )
    within_noise_floor = serializers.BooleanField(
        help_text="The change is within the noise floor: no measurable change, whatever `improved` says."
    )
    tightly_framed = serializers.ListField(
        child=serializers.CharField(),
        help_text="Sides (before, after) framed so tightly that S may differ from a loose framing's by more "
        "than the noise floor.",
    )
    edited_fill = serializers.ListField(
        child=serializers.CharField(),
        help_text="Sides (before, after) showing black fill of a rotation or crop made before upload: S may "
        "not compare with an unedited photo's.",
    )


class WrinkleZoneChangeSerializer(serializers.Serializer):
    abbreviation = serializers.CharField()
    name = serializers.CharField()
    pre_percent = serializers.FloatField(help_text="Wrinkle area as % of the zone before.")
    post_percent = serializers.FloatField()
    change_points = serializers.FloatField(help_text="Change in percentage points.")


class ComparisonChangeSerializer(serializers.Serializer):
    view = serializers.CharField()
    pre_photo = serializers.IntegerField()
    post_photo = serializers.IntegerField()
    normality = NormalityChangeSerializer(allow_null=True)
    wrinkles = WrinkleZoneChangeSerializer(many=True, help_text="The study's zones of interest.")
    missing = serializers.ListField(child=serializers.CharField(), help_text="Results not there (and why).")


class CohortRowSerializer(serializers.Serializer):
    subject = serializers.CharField(source="subject.code")
    comparison = serializers.IntegerField(source="comparison.pk")
    pre_visit = serializers.CharField(source="comparison.pre_visit.label")
    post_visit = serializers.CharField(source="comparison.post_visit.label")
    view = serializers.CharField()
    normality = NormalityChangeSerializer(allow_null=True)
    wrinkles_pre = serializers.FloatField(
        allow_null=True, help_text="Wrinkle % of the zones of interest before."
    )
    wrinkles_post = serializers.FloatField(allow_null=True)
    wrinkles_change = serializers.FloatField(allow_null=True, help_text="Change in percentage points.")


class StudyExportSerializer(serializers.ModelSerializer):
    """A background export of a study: its options, progress and, once built, where to download it."""

    message = serializers.CharField(source="progress_message", read_only=True)
    requested_by = serializers.SlugRelatedField(slug_field="username", read_only=True)
    download = serializers.SerializerMethodField()

    class Meta:
        model = StudyExport
        fields = [
            "id",
            "study",
            "format",
            "options",
            "status",
            "progress",
            "message",
            "error",
            "requested_by",
            "created_at",
            "finished_at",
            "filename",
            "size_bytes",
            "details",
            "download",
            "purged_at",
            "purge_reason",
        ]
        read_only_fields = fields

    @extend_schema_field(serializers.CharField(allow_null=True))
    def get_download(self, export: StudyExport) -> str | None:
        if not export.is_downloadable:
            return None
        return reverse("api:export-download", args=[export.pk])


class StudyExportRequestSerializer(serializers.Serializer):
    """What to export: the measures (CSV, XLSX, REDCap) or the photos as DICOM, with the DICOM options."""

    study = ScopedRelatedField(
        getter=selectors.get_study,
        for_user=selectors.studies_for_user,
        capability=Capability.EXPORT,
        what="study",
        queryset=Study.objects.all(),
    )
    # The refusals name the accepted values: a client cannot guess them from "not a valid choice".
    format = serializers.ChoiceField(
        choices=ExportFormat.choices,
        error_messages={
            "invalid_choice": '"{input}" is not an export format; choose one of: '
            + ", ".join(ExportFormat.values)
            + "."
        },
    )
    subject = serializers.IntegerField(required=False, allow_null=True, default=None, min_value=1)
    deidentify = serializers.BooleanField(required=False, default=False)
    method = serializers.ChoiceField(
        choices=[choice.value for choice in DeidentifyMethod],
        required=False,
        default=DeidentifyMethod.MASK_EYES.value,
        error_messages={
            "invalid_choice": '"{input}" is not a de-identification method; choose one of: '
            + ", ".join(choice.value for choice in DeidentifyMethod)
            + "."
        },
    )
    keep_subject_code = serializers.BooleanField(required=False, default=False)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        dicom_options = ("subject", "deidentify", "method", "keep_subject_code")
        given = [name for name in dicom_options if name in self.initial_data]
        if attrs["format"] != ExportFormat.DICOM and given:
            raise serializers.ValidationError(
                {name: "Only the DICOM export takes this option." for name in given}
            )
        return attrs
