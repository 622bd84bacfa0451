from django.urls import path

from webapp.studies import views

app_name = "studies"
urlpatterns = [
    path("", views.study_list, name="study_list"),
    path("studies/new/", views.study_create, name="study_create"),
    path("studies/<int:study_id>/", views.study_detail, name="study_detail"),
    path("studies/<int:study_id>/members/add/", views.member_add, name="member_add"),
    path("studies/<int:study_id>/members/<int:membership_id>/role/", views.member_role, name="member_role"),
    path(
        "studies/<int:study_id>/members/<int:membership_id>/remove/",
        views.member_remove,
        name="member_remove",
    ),
    path("studies/<int:study_id>/subjects/new/", views.subject_create, name="subject_create"),
    path("studies/<int:study_id>/settings/", views.study_settings, name="study_settings"),
    path("studies/<int:study_id>/cohort/", views.study_cohort, name="study_cohort"),
    path("studies/<int:study_id>/cohort.csv", views.study_cohort_csv, name="study_cohort_csv"),
    path("subjects/<int:subject_id>/", views.subject_detail, name="subject_detail"),
    path("subjects/<int:subject_id>/visits/new/", views.visit_create, name="visit_create"),
    path("subjects/<int:subject_id>/comparisons/new/", views.comparison_create, name="comparison_create"),
    path("visits/<int:visit_id>/photos/", views.photo_upload, name="photo_upload"),
    path("photos/<int:photo_id>/", views.photo_detail, name="photo_detail"),
    path("photos/<int:photo_id>/image", views.photo_image, name="photo_image"),
    path("photos/<int:photo_id>/thumbnail", views.photo_thumbnail, name="photo_thumbnail"),
    path("comparisons/<int:comparison_id>/", views.comparison_detail, name="comparison_detail"),
]
