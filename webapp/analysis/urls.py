from django.urls import path

from webapp.analysis import cohort_pages, pages, views

app_name = "analysis"
urlpatterns = [
    path("results/<int:result_id>.json", views.result_json, name="result_json"),
    path("artifacts/<int:artifact_id>/", views.artifact, name="artifact"),
    path("models/", views.model_versions, name="model_versions"),
]

# The study pages that show analysis results and settings; webapp/urls.py serves them in the
# "studies" namespace beside webapp.studies.urls, so their URL names stay "studies:photo_detail" ...
study_pages = [
    path("studies/<int:study_id>/settings/", pages.study_settings, name="study_settings"),
    path("studies/<int:study_id>/cohort/", cohort_pages.study_cohort, name="study_cohort"),
    path("studies/<int:study_id>/cohort/subjects/", cohort_pages.cohort_subjects, name="cohort_subjects"),
    path(
        "studies/<int:study_id>/cohort/normality-maps/",
        cohort_pages.cohort_normality_maps,
        name="cohort_normality_maps",
    ),
    path(
        "studies/<int:study_id>/cohort/comparisons/",
        cohort_pages.cohort_comparisons_create,
        name="cohort_comparisons_create",
    ),
    path("comparison-pairs/<int:pair_id>/accept/", cohort_pages.pair_accept, name="pair_accept"),
    path("comparison-pairs/<int:pair_id>/photos/", pages.pair_photos, name="pair_photos"),
    path("studies/<int:study_id>/cohort.csv", pages.study_cohort_csv, name="study_cohort_csv"),
    path("subjects/<int:subject_id>/", pages.subject_detail, name="subject_detail"),
    path("visits/<int:visit_id>/photos/", pages.photo_upload, name="photo_upload"),
    path("photos/<int:photo_id>/", pages.photo_detail, name="photo_detail"),
    path("photos/<int:photo_id>/analyse-again/", pages.photo_analyse_again, name="photo_analyse_again"),
    path("comparisons/<int:comparison_id>/", pages.comparison_detail, name="comparison_detail"),
    path("studies/<int:study_id>/models/", pages.study_model_version, name="study_model_version"),
]
