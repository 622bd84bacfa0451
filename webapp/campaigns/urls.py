from django.urls import path

from webapp.campaigns import views

app_name = "campaigns"
urlpatterns = [
    path("studies/<int:study_id>/", views.study_home, name="study_home"),
    path("studies/<int:study_id>/detector/", views.detector_set, name="detector_set"),
    path("studies/<int:study_id>/datasets/new/", views.dataset_create, name="dataset_create"),
    path("studies/<int:study_id>/campaigns/new/", views.campaign_create, name="campaign_create"),
    path("datasets/<int:dataset_id>/", views.dataset_detail, name="dataset_detail"),
    path("datasets/<int:dataset_id>/import/", views.dataset_import, name="dataset_import"),
    path("datasets/<int:dataset_id>/review/", views.review_queue, name="review_queue"),
    path("versions/<int:version_id>/", views.version_detail, name="version_detail"),
    path("versions/<int:version_id>/export", views.version_export, name="version_export"),
    path("instances/<int:instance_id>/review/", views.instance_review, name="instance_review"),
    path("<int:campaign_id>/", views.campaign_detail, name="campaign_detail"),
]
