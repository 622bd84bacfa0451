"""The blinded rater's URLs: the same for every rater and survey, except the opaque tokens."""

from django.urls import path

from webapp.ratings import views

app_name = "rate"
urlpatterns = [
    path("", views.rater_page, name="page"),
    path("i/<str:token>", views.rater_claim, name="claim"),
    path("state", views.rater_state, name="state"),
    path("image/<str:token>", views.rater_image, name="image"),
    path("submit", views.rater_submit, name="submit"),
    path("undo", views.rater_undo, name="undo"),
]
