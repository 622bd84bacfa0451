"""REST API views: parse the request, call a selector (reads) or a service (writes), serialise.

Access is the pages' access: objects are fetched through the `get_*` selectors, which answer 404 to
anyone outside the object's study and 403 to members whose role lacks the capability; lists use the
`*_for_user` querysets, so they only ever hold objects of the user's studies.
"""

import mimetypes
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import Prefetch, QuerySet, prefetch_related_objects
from django.http import FileResponse, Http404
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.authtoken.serializers import AuthTokenSerializer
from rest_framework.authtoken.views import ObtainAuthToken
from rest_framework.decorators import action
from rest_framework.exceptions import AuthenticationFailed, NotAuthenticated, Throttled
from rest_framework.parsers import FormParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response

from ml.measures.statistics import ADJUSTMENTS
from webapp.accounts.services import api_token_expires_at, api_token_issue, api_tokens_revoke
from webapp.accounts.throttle import login_refusal
from webapp.accounts.two_factor import has_two_factor, verify_code
from webapp.analysis import results as analysis_results
from webapp.analysis import selectors as analysis_selectors
from webapp.analysis import services as analysis_services
from webapp.analysis.cohort import MEASURE_GROUPS, CohortFilters, cohort_summary
from webapp.analysis.models import AnalysisJob, ComparisonPair, Result
from webapp.api import serializers as api
from webapp.api.fields import parse_id
from webapp.api.parsers import BoundedJSONParser
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.exports import selectors as export_selectors
from webapp.exports import services as export_services
from webapp.exports.models import ExportFormat, StudyExport
from webapp.runs import services as run_services
from webapp.runs.models import RunStateError, RunStatus
from webapp.studies import selectors, services
from webapp.studies.access import Capability
from webapp.studies.ingest import IngestError, refuse_several_files
from webapp.studies.models import (
    AGE_BANDS,
    AnalysisKind,
    Comparison,
    Photo,
    PhotoView,
    Sex,
    Study,
    Subject,
    Visit,
)

# Ids in URLs: digits only and within bigint range, so a malformed id is a plain 404.
ID_REGEX = r"[0-9]{1,18}"


@contextmanager
def service_errors(fields: dict[str, str] | None = None) -> Iterator[None]:
    """Model validation that a service still rejects becomes a 400 with the model's message, under the
    request's field name where the service names it differently (``fields``: service name → API name)."""
    try:
        yield
    except DjangoValidationError as error:
        detail = error.message_dict if hasattr(error, "error_dict") else {"non_field_errors": error.messages}
        renamed = {(fields or {}).get(name, name): messages for name, messages in detail.items()}
        raise serializers.ValidationError(renamed) from error


def query_id(request: Request, name: str) -> int | None:
    """An optional numeric filter such as `?study=3`; a malformed value is a 400, not an empty list."""
    value = request.query_params.get(name)
    if value in (None, ""):
        return None
    try:
        return parse_id(value, name)
    except serializers.ValidationError as error:
        raise serializers.ValidationError({name: error.detail}) from error


def id_filter(name: str, description: str) -> OpenApiParameter:
    return OpenApiParameter(name, OpenApiTypes.INT, OpenApiParameter.QUERY, description=description)


class ScopedViewSet(viewsets.GenericViewSet):
    lookup_value_regex = ID_REGEX

    def object_id(self) -> int:
        return int(self.kwargs[self.lookup_field])


class AuditedListMixin(mixins.ListModelMixin):
    """A list answer that writes one view event for the page of objects it holds (patients' data)."""

    audited_type: str  # the audit's object type, e.g. "analysis.result"
    audited_noun: str  # "result": the summary says "Listed N result(s)", the details list "results"

    def list(self, request: Request) -> Response:
        page = self.paginate_queryset(self.filter_queryset(self.get_queryset()))
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Listed {len(page)} {self.audited_noun}(s)",
            actor=request.user,
            object_type=self.audited_type,
            request=request,
            details={f"{self.audited_noun}s": [item.pk for item in page]},
        )
        return self.get_paginated_response(self.get_serializer(page, many=True).data)


class AuditedRetrieveMixin(mixins.RetrieveModelMixin):
    """A detail answer that writes one view event for the object it shows (patients' data)."""

    audited_noun: str  # "result": the summary says "Viewed result N"

    def audit_details(self, instance: Any) -> dict[str, Any] | None:
        """Extra details of the view event (none by default)."""
        return None

    def retrieve(self, request: Request, pk: str) -> Response:
        instance = self.get_object()
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed {self.audited_noun} {instance.pk}",
            actor=request.user,
            target=instance,
            request=request,
            details=self.audit_details(instance),
        )
        return Response(self.get_serializer(instance).data)


class ThrottledAuthTokenSerializer(AuthTokenSerializer):
    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        username = attrs.get("username")
        if username and (refusal := login_refusal(self.context["request"], username)):
            raise Throttled(wait=refusal.retry_after_seconds, detail=refusal.message)
        attrs = super().validate(attrs)
        user = attrs["user"]
        if has_two_factor(user):
            code = str(self.initial_data.get("otp", ""))
            if verify_code(user, code) is None:
                audit_record(
                    action=AuditAction.LOGIN_FAILED,
                    summary=f"API token refused to {user.get_username()!r}: two-factor code missing or wrong",
                    request=self.context["request"],
                    object_type="auth.user",
                    object_id=user.pk,
                    details={"username": user.get_username(), "two_factor": True},
                )
                raise AuthenticationFailed(
                    "This account uses two-factor log-in: send its 6-digit code as 'otp'."
                )
        return attrs


class AuditedTokenView(ObtainAuthToken):
    """`POST username, password` → `{"token": ...}`; `DELETE` revokes the caller's token.

    A token lasts FACET_API_TOKEN_TTL_SECONDS and ends at log-out and at any password change.
    Attempts share the log-in page's throttle (per account and per client address, counted in the
    audit trail). Successful logins are audited; failed ones are audited by the `user_login_failed`
    signal that authentication sends."""

    serializer_class = ThrottledAuthTokenSerializer
    parser_classes = [BoundedJSONParser, FormParser, MultiPartParser]

    def post(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        user = serializer.validated_data["user"]
        token = api_token_issue(user)
        audit_record(
            action=AuditAction.LOGIN,
            summary="Obtained an API token",
            actor=user,
            target=user,
            request=request,
            details={"method": "token"},
        )
        return Response({"token": token.key, "expires_at": api_token_expires_at(token)})

    @extend_schema(summary="Revoke your API token", request=None, responses={204: None})
    def delete(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        if not request.user.is_authenticated:
            raise NotAuthenticated()
        api_tokens_revoke(request.user)
        audit_record(
            action=AuditAction.LOGOUT,
            summary="Revoked the API token",
            actor=request.user,
            target=request.user,
            request=request,
            details={"method": "token"},
        )
        return Response(status=status.HTTP_204_NO_CONTENT)


@extend_schema_view(
    list=extend_schema(summary="Studies you belong to"),
    create=extend_schema(summary="Create a study; you become its coordinator"),
    partial_update=extend_schema(summary="Change a study (coordinators)"),
)
class StudyViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = api.StudySerializer
    queryset = Study.objects.none()

    def get_queryset(self) -> QuerySet[Study]:
        return selectors.studies_for_user(self.request.user).select_related("created_by")

    def get_object(self) -> Study:
        return selectors.get_study(self.request.user, self.object_id())

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            study = services.study_create(creator=request.user, request=request, **serializer.validated_data)
        return Response(self.get_serializer(study).data, status=status.HTTP_201_CREATED)

    def partial_update(self, request: Request, pk: str) -> Response:
        study = selectors.get_study(request.user, self.object_id(), Capability.MANAGE_STUDY)
        serializer = self.get_serializer(study, data=request.data, partial=True)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            study = services.study_update(
                study=study, actor=request.user, request=request, **serializer.validated_data
            )
        return Response(self.get_serializer(study).data)

    @extend_schema(
        summary="Cohort statistics of one group of measures (coordinators)",
        parameters=[
            OpenApiParameter("group", str, enum=list(MEASURE_GROUPS), description="Default: lips."),
            OpenApiParameter("view", str, enum=PhotoView.values, description="Default: frontal."),
            OpenApiParameter("adjust", str, enum=list(ADJUSTMENTS), description="Default: holm."),
            OpenApiParameter("arm", str, description="Only subjects of this arm."),
            OpenApiParameter("sex", str, enum=Sex.values),
            OpenApiParameter("age_band", str, enum=list(AGE_BANDS)),
        ],
        responses=api.MeasureStatisticsSerializer(many=True),
    )
    @action(
        detail=True,
        methods=["get"],
        url_path="cohort-statistics",
        serializer_class=api.MeasureStatisticsSerializer,
        pagination_class=None,
    )
    def cohort_statistics(self, request: Request, pk: str) -> Response:
        study = selectors.get_study(request.user, self.object_id(), Capability.EXPORT)
        choices = {
            "group": (list(MEASURE_GROUPS), "lips"),
            "view": (PhotoView.values, PhotoView.FRONTAL.value),
            "adjust": (list(ADJUSTMENTS), "holm"),
            "arm": (study.arms, ""),
            "sex": (Sex.values, ""),
            "age_band": (list(AGE_BANDS), ""),
        }
        chosen = {}
        for name, (allowed, default) in choices.items():
            value = request.query_params.get(name, default)
            if value not in allowed and value != default:
                raise serializers.ValidationError(
                    {name: f"Choose one of: {', '.join(allowed) or 'none defined'}."}
                )
            chosen[name] = value
        filters = CohortFilters(arm=chosen["arm"], sex=chosen["sex"], age_band=chosen["age_band"])
        statistics = cohort_summary(
            study, filters, group=chosen["group"], view=chosen["view"], method=chosen["adjust"]
        ).statistics
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Read cohort statistics of {study.name!r}",
            actor=request.user,
            target=study,
            request=request,
            via="api",
            details=chosen,
        )
        return Response(self.get_serializer(statistics, many=True).data)

    @extend_schema(
        methods=["GET"], summary="Members of a study", responses=api.MembershipSerializer(many=True)
    )
    @extend_schema(
        methods=["POST"],
        summary="Add a member or change their role (coordinators)",
        request=api.MembershipSerializer,
        responses={201: api.MembershipSerializer},
    )
    @action(
        detail=True, methods=["get", "post"], serializer_class=api.MembershipSerializer, pagination_class=None
    )
    def members(self, request: Request, pk: str) -> Response:
        if request.method == "GET":
            study = selectors.get_study(request.user, self.object_id())
            return Response(self.get_serializer(selectors.study_members(study), many=True).data)
        study = selectors.get_study(request.user, self.object_id(), Capability.MANAGE_STUDY)
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            membership = services.membership_set(
                study=study,
                user=serializer.validated_data["username"],
                role=serializer.validated_data["role"],
                actor=request.user,
                request=request,
            )
        return Response(self.get_serializer(membership).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The cohort's pre→post changes, one row per comparison and view (export right; audited)",
        responses=api.CohortRowSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def cohort(self, request: Request, pk: str) -> Response:
        study = selectors.get_study(request.user, self.object_id(), Capability.EXPORT)
        rows = analysis_results.cohort_rows(study)
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed cohort changes of {study.name!r}",
            actor=request.user,
            target=study,
            request=request,
            details={"rows": len(rows)},
        )
        return Response(api.CohortRowSerializer(rows, many=True).data)


@extend_schema_view(list=extend_schema(parameters=[id_filter("study", "Only subjects of this study.")]))
class SubjectViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = api.SubjectSerializer
    queryset = Subject.objects.none()

    def get_queryset(self) -> QuerySet[Subject]:
        subjects = selectors.subjects_for_user(self.request.user).order_by("study_id", "code")
        if self.action == "list" and (study_id := query_id(self.request, "study")):
            subjects = subjects.filter(study_id=study_id)
        return subjects

    def get_object(self) -> Subject:
        return selectors.get_subject(self.request.user, self.object_id())

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            subject = services.subject_create(
                actor=request.user, request=request, **serializer.validated_data
            )
        return Response(self.get_serializer(subject).data, status=status.HTTP_201_CREATED)


@extend_schema_view(list=extend_schema(parameters=[id_filter("subject", "Only visits of this subject.")]))
class VisitViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = api.VisitSerializer
    queryset = Visit.objects.none()

    def get_queryset(self) -> QuerySet[Visit]:
        visits = selectors.visits_for_user(self.request.user).order_by("subject_id", "date", "created_at")
        if self.action == "list" and (subject_id := query_id(self.request, "subject")):
            visits = visits.filter(subject_id=subject_id)
        return visits

    def get_object(self) -> Visit:
        return selectors.get_visit(self.request.user, self.object_id())

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            visit = services.visit_create(actor=request.user, request=request, **serializer.validated_data)
        return Response(self.get_serializer(visit).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Photos of your studies (audited)",
        parameters=[
            id_filter("visit", "Only photos of this visit."),
            id_filter("subject", "Only photos of this subject."),
            id_filter("study", "Only photos of this study."),
        ],
    ),
    retrieve=extend_schema(summary="A photo's metadata and analysis jobs (audited)"),
)
class PhotoViewSet(mixins.ListModelMixin, AuditedRetrieveMixin, ScopedViewSet):
    serializer_class = api.PhotoSerializer
    audited_noun = "photo"
    queryset = Photo.objects.none()
    # The only write is an upload, which arrives as a multipart form.
    parser_classes = [MultiPartParser, FormParser]

    def get_queryset(self) -> QuerySet[Photo]:
        photos = (
            selectors.photos_for_user(self.request.user)
            .select_related("uploaded_by")
            .prefetch_related("jobs__result")
            .order_by("pk")
        )
        if self.action == "list":
            for name, field in (
                ("visit", "visit_id"),
                ("subject", "visit__subject_id"),
                ("study", "study_id"),
            ):
                if (value := query_id(self.request, name)) is not None:
                    photos = photos.filter(**{field: value})
        return photos

    def get_object(self) -> Photo:
        return selectors.get_photo(self.request.user, self.object_id())

    def list(self, request: Request) -> Response:
        photos = list(self.paginate_queryset(self.get_queryset()))
        if photos:
            studies = {photo.study_id for photo in photos}
            audit_record(
                action=AuditAction.VIEW,
                summary=f"Listed {len(photos)} photo(s)",
                actor=request.user,
                object_type="studies.photo",
                study_id=studies.pop() if len(studies) == 1 else None,
                request=request,
                details={"photo_ids": [photo.pk for photo in photos]},
            )
        return self.get_paginated_response(self.get_serializer(photos, many=True).data)

    @extend_schema(
        summary="Upload a photo of a visit; its analyses are queued",
        request={"multipart/form-data": api.PhotoUploadSerializer},
        responses={
            201: api.PhotoSerializer,
            400: OpenApiResponse(
                description="The file was refused; `file` says why, `code` is a short slug."
            ),
        },
    )
    def create(self, request: Request) -> Response:
        serializer = api.PhotoUploadSerializer(data=request.data, context=self.get_serializer_context())
        try:
            refuse_several_files(request.FILES)
            serializer.is_valid(raise_exception=True)
            photo = analysis_services.photo_upload(
                visit=serializer.validated_data["visit"],
                view=serializer.validated_data["view"],
                upload=serializer.validated_data["file"],
                uploaded_by=request.user,
                request=request,
            )
        except IngestError as error:
            return Response({"file": [error.message], "code": error.code}, status=status.HTTP_400_BAD_REQUEST)
        photo = self.get_queryset().get(pk=photo.pk)
        return Response(self.get_serializer(photo).data, status=status.HTTP_201_CREATED)

    @extend_schema(
        summary="The stored image (metadata-free PNG; audited as a download)",
        responses={(200, "image/png"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"])
    def image(self, request: Request, pk: str) -> FileResponse:
        photo = self.get_object()
        audit_record(
            action=AuditAction.DOWNLOAD,
            summary=f"Downloaded photo {photo.pk}",
            actor=request.user,
            target=photo,
            request=request,
        )
        return private_file_response(photo.image, f"photo-{photo.pk}")


def private_file_response(field_file: Any, download_stem: str) -> FileResponse:
    """Stream a stored file to its one reader; no cache along the way may keep patient data."""
    content_type = mimetypes.guess_type(field_file.name)[0] or "application/octet-stream"
    extension = mimetypes.guess_extension(content_type) or ""
    response = FileResponse(
        field_file.open("rb"), content_type=content_type, filename=f"{download_stem}{extension}"
    )
    response["Cache-Control"] = "private, no-store"
    return response


@extend_schema_view(
    list=extend_schema(
        parameters=[
            id_filter("photo", "Only jobs of this photo."),
            id_filter("study", "Only jobs of this study."),
            OpenApiParameter(
                "status",
                OpenApiTypes.STR,
                OpenApiParameter.QUERY,
                enum=RunStatus.values,
                description="Only jobs in this status.",
            ),
        ]
    )
)
class JobViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    serializer_class = api.JobSerializer
    queryset = AnalysisJob.objects.none()

    def get_queryset(self) -> QuerySet[AnalysisJob]:
        jobs = (
            analysis_selectors.jobs_for_user(self.request.user)
            .select_related("result")
            .order_by("-created_at", "-pk")
        )
        if self.action != "list":
            return jobs
        if (photo_id := query_id(self.request, "photo")) is not None:
            jobs = jobs.filter(photo_id=photo_id)
        if (study_id := query_id(self.request, "study")) is not None:
            jobs = jobs.filter(photo__study_id=study_id)
        if job_status := self.request.query_params.get("status"):
            if job_status not in RunStatus.values:
                raise serializers.ValidationError(
                    {"status": f"Unknown status {job_status!r}; use one of {', '.join(RunStatus.values)}."}
                )
            jobs = jobs.filter(status=job_status)
        return jobs

    def get_object(self, capability: Capability = Capability.VIEW) -> AnalysisJob:
        return analysis_selectors.get_job(self.request.user, self.object_id(), capability)

    def _control(self, request: Request, change: Any) -> Response:
        job = self.get_object(Capability.CONTROL_JOBS)
        try:
            job = change(job, actor=request.user, request=request)
        except RunStateError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(self.get_queryset().get(pk=job.pk)).data)

    @extend_schema(
        summary="Cancel a queued or running job",
        request=None,
        responses={200: api.JobSerializer, 409: OpenApiResponse(description="The job has finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        return self._control(request, run_services.run_cancel)

    @extend_schema(
        summary="Queue a failed or cancelled job again",
        request=None,
        responses={200: api.JobSerializer, 409: OpenApiResponse(description="The job cannot be retried.")},
    )
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str) -> Response:
        return self._control(request, run_services.run_retry)


@extend_schema_view(
    list=extend_schema(
        summary="Results of the photos of your studies, newest first (audited)",
        parameters=[
            id_filter("photo", "Only results of this photo."),
            id_filter("study", "Only results of this study."),
            OpenApiParameter(
                "kind", OpenApiTypes.STR, OpenApiParameter.QUERY, description="Only this analysis kind."
            ),
        ],
    ),
    retrieve=extend_schema(summary="A result's data, provenance and artifacts (audited)"),
)
class ResultViewSet(AuditedListMixin, AuditedRetrieveMixin, ScopedViewSet):
    serializer_class = api.ResultSerializer
    audited_type = "analysis.result"
    audited_noun = "result"
    queryset = Result.objects.none()

    def get_queryset(self) -> QuerySet[Result]:
        found = (
            analysis_selectors.results_for_user(self.request.user)
            .select_related("job__photo")
            .prefetch_related("artifacts")
            .order_by("-created_at", "-pk")
        )
        if (photo_id := query_id(self.request, "photo")) is not None:
            found = found.filter(job__photo_id=photo_id)
        if (study_id := query_id(self.request, "study")) is not None:
            found = found.filter(job__photo__study_id=study_id)
        if kind := self.request.query_params.get("kind"):
            if kind not in AnalysisKind.values:
                raise serializers.ValidationError(
                    {"kind": f"Unknown kind {kind!r}; use one of {', '.join(AnalysisKind.values)}."}
                )
            found = found.filter(job__kind=kind)
        return found

    def get_object(self) -> Result:
        return analysis_selectors.get_result(self.request.user, self.object_id())

    def audit_details(self, result: Result) -> dict[str, Any]:
        return {"kind": result.job.kind}

    @extend_schema(
        summary="Download an artifact of a result (audited)",
        responses={(200, "application/octet-stream"): OpenApiTypes.BINARY},
    )
    @action(detail=True, methods=["get"], url_path=r"artifacts/(?P<name>[-a-zA-Z0-9_]+)")
    def artifact(self, request: Request, pk: str, name: str) -> FileResponse:
        result = self.get_object()
        artifact = result.artifacts.filter(name=name).first()
        if artifact is None:
            raise Http404("This result has no such artifact.")
        audit_record(
            action=AuditAction.DOWNLOAD,
            summary=f"Downloaded {name} of result {result.pk}",
            actor=request.user,
            target=artifact,
            study_id=result.job.photo.study_id,
            request=request,
        )
        return private_file_response(artifact.file, f"result-{result.pk}-{name}")


@extend_schema_view(
    list=extend_schema(
        parameters=[
            id_filter("subject", "Only comparisons of this subject."),
            id_filter("study", "Only comparisons of this study."),
        ]
    ),
    retrieve=extend_schema(summary="A comparison with its pairs, registration and measures (audited)"),
)
class ComparisonViewSet(AuditedListMixin, AuditedRetrieveMixin, ScopedViewSet):
    serializer_class = api.ComparisonSerializer
    audited_type = "studies.comparison"
    audited_noun = "comparison"
    queryset = Comparison.objects.none()

    def get_queryset(self) -> QuerySet[Comparison]:
        comparisons = (
            selectors.comparisons_for_user(self.request.user)
            .select_related("created_by", "subject__study")
            .prefetch_related(
                Prefetch("pairs", queryset=ComparisonPair.objects.alive().select_related("accepted_by"))
            )
            .order_by("-created_at", "-pk")
        )
        if self.action == "list":
            if (subject_id := query_id(self.request, "subject")) is not None:
                comparisons = comparisons.filter(subject_id=subject_id)
            if (study_id := query_id(self.request, "study")) is not None:
                comparisons = comparisons.filter(subject__study_id=study_id)
        return comparisons

    def get_object(self) -> Comparison:
        comparison = selectors.get_comparison(self.request.user, self.object_id())
        prefetch_related_objects(
            [comparison],
            Prefetch("pairs", queryset=ComparisonPair.objects.alive().select_related("accepted_by")),
        )
        return comparison

    @extend_schema(
        summary="A comparison's pre→post changes per view: normality score and wrinkles per zone (audited)",
        responses=api.ComparisonChangeSerializer(many=True),
    )
    @action(detail=True, methods=["get"], pagination_class=None)
    def changes(self, request: Request, pk: str) -> Response:
        comparison = self.get_object()
        changes = analysis_results.comparison_changes(comparison)
        audit_record(
            action=AuditAction.VIEW,
            summary=f"Viewed the changes of comparison {comparison.pk}",
            actor=request.user,
            target=comparison,
            request=request,
            details={"results": [pk for change in changes for pk in change["results"]]},
        )
        return Response(api.ComparisonChangeSerializer(changes, many=True).data)

    def create(self, request: Request) -> Response:
        serializer = self.get_serializer(data=request.data)
        serializer.is_valid(raise_exception=True)
        with service_errors():
            comparison = services.comparison_create(
                actor=request.user, request=request, **serializer.validated_data
            )
        return Response(self.get_serializer(comparison).data, status=status.HTTP_201_CREATED)


@extend_schema_view(
    list=extend_schema(
        summary="Background exports of the studies you may export, newest first",
        parameters=[id_filter("study", "Only exports of this study.")],
    ),
    retrieve=extend_schema(summary="An export's options, progress and download link"),
)
class ExportViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, ScopedViewSet):
    """Study exports (the pages' exports, export right needed): request one, follow it, download its file.
    A worker builds each file; requests and downloads are audited with their options."""

    serializer_class = api.StudyExportSerializer
    queryset = StudyExport.objects.none()

    def get_queryset(self) -> QuerySet[StudyExport]:
        exports = export_selectors.exports_for_user(self.request.user).select_related("requested_by")
        if self.action == "list" and (study_id := query_id(self.request, "study")) is not None:
            exports = exports.filter(study_id=study_id)
        return exports.order_by("-created_at", "-pk")

    def get_object(self) -> StudyExport:
        return export_selectors.get_export(self.request.user, self.object_id())

    @extend_schema(
        summary="Request an export of a study: the measures as CSV, XLSX or REDCap, or the photos as DICOM "
        "(identified, or de-identified for sharing); 202, then follow it until its download link appears",
        request=api.StudyExportRequestSerializer,
        responses={202: api.StudyExportSerializer},
    )
    def create(self, request: Request) -> Response:
        serializer = api.StudyExportRequestSerializer(data=request.data, context={"request": request})
        serializer.is_valid(raise_exception=True)
        chosen = serializer.validated_data
        options = None
        if chosen["format"] == ExportFormat.DICOM:
            options = {
                "subject_id": chosen["subject"],
                "deidentify": chosen["deidentify"],
                "method": chosen["method"],
                "keep_subject_code": chosen["keep_subject_code"],
            }
        with service_errors(fields={"subject_id": "subject"}):
            export = export_services.study_export_request(
                study=chosen["study"],
                format=chosen["format"],
                options=options,
                actor=request.user,
                request=request,
                via="api",
            )
        return Response(self.get_serializer(export).data, status=status.HTTP_202_ACCEPTED)

    @extend_schema(
        summary="The export's file, once built (audited as a download)",
        responses={
            (200, "application/octet-stream"): OpenApiTypes.BINARY,
            409: OpenApiResponse(description="The export has no file (yet): see its status."),
            410: OpenApiResponse(description="The file was deleted: expired, or it held withdrawn data."),
        },
    )
    @action(detail=True, methods=["get"])
    def download(self, request: Request, pk: str) -> Response | FileResponse:
        export = self.get_object()
        if export.purged_at is not None:
            return Response({"detail": export.purge_message()}, status=status.HTTP_410_GONE)
        if export.status != RunStatus.SUCCEEDED or not export.file:
            return Response(
                {"detail": f"Export {export.pk} is {export.status}; it has no file to download."},
                status=status.HTTP_409_CONFLICT,
            )
        export_services.study_export_downloaded(export, actor=request.user, request=request, via="api")
        return private_file_response(export.file, Path(export.filename).stem)

    @extend_schema(
        summary="Cancel a queued or running export",
        request=None,
        responses={200: api.StudyExportSerializer, 409: OpenApiResponse(description="It has finished.")},
    )
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str) -> Response:
        export = self.get_object()
        try:
            export = run_services.run_cancel(export, actor=request.user, request=request)
        except RunStateError as error:
            return Response({"detail": str(error)}, status=status.HTTP_409_CONFLICT)
        return Response(self.get_serializer(export).data)
