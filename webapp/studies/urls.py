from django.urls import path

from webapp.studies import views

# Served in the "studies" namespace together with webapp.analysis.urls.study_pages (see webapp/urls.py).
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
    path("subjects/<int:subject_id>/visits/new/", views.visit_create, name="visit_create"),
    path("subjects/<int:subject_id>/comparisons/new/", views.comparison_create, name="comparison_create"),
    path("photos/<int:photo_id>/image", views.photo_image, name="photo_image"),
    path("photos/<int:photo_id>/thumbnail", views.photo_thumbnail, name="photo_thumbnail"),
]
