"""REST API routes under /api/. Swagger UI is served only from local files (drf-spectacular-sidecar)."""

from django.apps import apps
from django.urls import include, path, re_path
from drf_spectacular.settings import spectacular_settings
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerSplitView
from rest_framework.routers import SimpleRouter

from webapp.api import views
from webapp.api.errors import JsonErrorsMixin, api_not_found

app_name = "api"

router = SimpleRouter()
router.register("studies", views.StudyViewSet, basename="study")
router.register("subjects", views.SubjectViewSet, basename="subject")
router.register("visits", views.VisitViewSet, basename="visit")
router.register("photos", views.PhotoViewSet, basename="photo")
router.register("jobs", views.JobViewSet, basename="job")
router.register("results", views.ResultViewSet, basename="result")
router.register("comparisons", views.ComparisonViewSet, basename="comparison")
router.register("exports", views.ExportViewSet, basename="export")


class SchemaView(JsonErrorsMixin, SpectacularAPIView):
    pass


class SwaggerView(JsonErrorsMixin, SpectacularSwaggerSplitView):
    pass


urlpatterns = [
    path("auth/token/", views.AuditedTokenView.as_view(), name="token"),
    path("schema/", SchemaView.as_view(), name="schema"),
    path("", include(router.urls)),
]

# The machine may be offline and pages load nothing from a CDN: Swagger UI only with its bundled assets.
if apps.is_installed("drf_spectacular_sidecar") and spectacular_settings.SWAGGER_UI_DIST == "SIDECAR":
    # The split view serves its start-up script as a file: no inline script for the CSP to allow.
    urlpatterns.append(path("docs/", SwaggerView.as_view(url_name="api:schema"), name="docs"))

# Last: any other path under /api/ answers a JSON 404, never an HTML page.
urlpatterns.append(re_path(r"^.*$", api_not_found, name="not_found"))
