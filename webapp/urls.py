from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from webapp.accounts import management_views
from webapp.accounts.views import LoginView, PasswordResetView, healthz
from webapp.analysis.urls import study_pages
from webapp.studies.urls import urlpatterns as study_urls

urlpatterns = [
    # The study pages of two apps in one namespace: studies sits below analysis and never imports it.
    path("", include((study_urls + study_pages, "studies"))),
    path("", include("webapp.exports.urls")),
    path("jobs/", include("webapp.runs.urls")),
    path("jobs/", include("webapp.analysis.urls")),
    path("audit/", include("webapp.audit.urls")),
    path("labeling/", include("webapp.labeling.urls")),
    path("campaigns/", include("webapp.campaigns.urls")),
    path("ratings/", include("webapp.ratings.urls")),
    path("rate/", include("webapp.ratings.rater_urls")),
    path("api/", include("webapp.api.urls")),
    path("accounts/login/", LoginView.as_view(), name="login"),
    path("accounts/login/verify/", management_views.login_verify, name="login_verify"),
    path("accounts/two-factor/", management_views.two_factor_settings, name="two_factor"),
    path("accounts/users/", management_views.user_list, name="user_list"),
    path("accounts/users/<int:user_id>/", management_views.user_edit, name="user_edit"),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("accounts/password/change/", auth_views.PasswordChangeView.as_view(), name="password_change"),
    path(
        "accounts/password/change/done/",
        auth_views.PasswordChangeDoneView.as_view(),
        name="password_change_done",
    ),
    path("accounts/password/reset/", PasswordResetView.as_view(), name="password_reset"),
    path(
        "accounts/password/reset/done/",
        auth_views.PasswordResetDoneView.as_view(),
        name="password_reset_done",
    ),
    path(
        "accounts/reset/<uidb64>/<token>/",
        auth_views.PasswordResetConfirmView.as_view(),
        name="password_reset_confirm",
    ),
    path(
        "accounts/reset/done/", auth_views.PasswordResetCompleteView.as_view(), name="password_reset_complete"
    ),
    path("admin/", admin.site.urls),
    path("healthz", healthz, name="healthz"),
]

# JSON under /api/, Django's pages elsewhere.
handler400 = "webapp.api.errors.bad_request"
handler403 = "webapp.api.errors.permission_denied"
handler404 = "webapp.api.errors.page_not_found"
handler500 = "webapp.api.errors.server_error"
