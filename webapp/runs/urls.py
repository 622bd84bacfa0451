from django.urls import path

from webapp.runs import views

app_name = "runs"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("<slug:run_kind>/<int:run_id>/status.json", views.run_status, name="status"),
    path("<slug:run_kind>/<int:run_id>/cancel/", views.run_cancel, name="cancel"),
    path("<slug:run_kind>/<int:run_id>/retry/", views.run_retry, name="retry"),
]
