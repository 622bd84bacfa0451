from django.urls import path

from webapp.ratings import views

app_name = "ratings"
urlpatterns = [
    path("studies/<int:study_id>/", views.study_surveys, name="study_surveys"),
    path("studies/<int:study_id>/new/", views.survey_create, name="survey_create"),
    path("studies/<int:study_id>/import/", views.ratings_import, name="ratings_import"),
    path("studies/<int:study_id>/regressor/", views.regressor_activate, name="regressor_activate"),
    path("surveys/<int:survey_id>/", views.survey_detail, name="survey_detail"),
    path("surveys/<int:survey_id>/open", views.survey_state, {"action": "open"}, name="survey_open"),
    path("surveys/<int:survey_id>/close", views.survey_state, {"action": "close"}, name="survey_close"),
    path("surveys/<int:survey_id>/invitations/new", views.invitations_create, name="invitations_create"),
    path(
        "surveys/<int:survey_id>/raters/<int:rater_id>/revoke",
        views.invitation_revoke,
        name="invitation_revoke",
    ),
    path(
        "surveys/<int:survey_id>/raters/<int:rater_id>/exclusion",
        views.rater_exclusion,
        name="rater_exclusion",
    ),
    path("surveys/<int:survey_id>/results", views.survey_results, name="survey_results"),
    path("surveys/<int:survey_id>/ratings.csv", views.survey_export, name="survey_export"),
    path("surveys/<int:survey_id>/rate", views.member_rate, name="member_rate"),
    path("surveys/<int:survey_id>/fit", views.fit_start, name="fit_start"),
    path("fits/<int:fit_id>/", views.fit_detail, name="fit_detail"),
]
