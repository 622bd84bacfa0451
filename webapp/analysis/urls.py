from django.urls import path

from webapp.analysis import views

app_name = "analysis"
urlpatterns = [
    path("", views.queue, name="queue"),
    path("<int:job_id>/status.json", views.job_status, name="job_status"),
    path("<int:job_id>/cancel/", views.job_cancel, name="job_cancel"),
    path("<int:job_id>/retry/", views.job_retry, name="job_retry"),
    path("results/<int:result_id>.json", views.result_json, name="result_json"),
    path("artifacts/<int:artifact_id>/", views.artifact, name="artifact"),
]
