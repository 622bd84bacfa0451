from django.urls import path

from webapp.labeling import views, zone_views

app_name = "labeling"
urlpatterns = [
    path("photos/<int:photo_id>/", views.label_photo, name="label_photo"),
    path("photos/<int:photo_id>/image.png", views.labeling_image, name="labeling_image"),
    path("labels/<int:label_id>/image.png", views.label_file, {"part": "image"}, name="label_image"),
    path("labels/<int:label_id>/rough.png", views.label_file, {"part": "rough"}, name="label_rough"),
    path("labels/<int:label_id>/mask.png", views.label_file, {"part": "mask"}, name="label_mask"),
    path("labels/<int:label_id>/texture.png", views.label_file, {"part": "texture"}, name="label_texture"),
    path("studies/<int:study_id>/", views.study_labels, name="study_labels"),
    path("studies/<int:study_id>/export.zip", views.export, name="export"),
    path("studies/<int:study_id>/train/", views.training_start, name="training_start"),
]
urlpatterns += [
    path("studies/<int:study_id>/zones/", zone_views.zone_annotations, name="zone_annotations"),
    path("studies/<int:study_id>/zones/export.zip", zone_views.zone_export, name="zone_export"),
]
