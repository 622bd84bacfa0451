from django.urls import path

from webapp.studies import invitation_views, record_views, views

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
    path("subjects/<int:subject_id>/edit/", record_views.subject_edit, name="subject_edit"),
    path("visits/<int:visit_id>/edit/", record_views.visit_edit, name="visit_edit"),
    path("photos/<int:photo_id>/edit/", record_views.photo_edit, name="photo_edit"),
    path("subjects/<int:subject_id>/delete/", record_views.subject_delete, name="subject_delete"),
    path("visits/<int:visit_id>/delete/", record_views.visit_delete, name="visit_delete"),
    path("photos/<int:photo_id>/delete/", record_views.photo_delete, name="photo_delete"),
    path("subjects/<int:subject_id>/restore/", record_views.subject_restore, name="subject_restore"),
    path("visits/<int:visit_id>/restore/", record_views.visit_restore, name="visit_restore"),
    path("photos/<int:photo_id>/restore/", record_views.photo_restore, name="photo_restore"),
    path("studies/<int:study_id>/invite/", invitation_views.invite, name="invite"),
    path(
        "studies/<int:study_id>/invitations/<int:invitation_id>/revoke/",
        invitation_views.invitation_revoke,
        name="invitation_revoke",
    ),
    path("invitations/<str:token>/", invitation_views.invitation_accept, name="invitation_accept"),
    path("studies/<int:study_id>/deleted/", record_views.deleted_records, name="deleted_records"),
]
