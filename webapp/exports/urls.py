from django.urls import path

from webapp.exports import views

app_name = "exports"
urlpatterns = [
    path("studies/<int:study_id>/exports/", views.study_exports, name="study_exports"),
    path("studies/<int:study_id>/exports/measures/", views.study_measures_export, name="study_measures"),
    path("studies/<int:study_id>/exports/dicom/", views.study_dicom_export, name="study_dicom"),
    path(
        "studies/<int:study_id>/exports/cohort-report.pdf",
        views.study_cohort_report_pdf,
        name="study_cohort_report",
    ),
    path("exports/<int:export_id>/", views.export_detail, name="export_detail"),
    path("exports/<int:export_id>/download/", views.export_download, name="export_download"),
    path("visits/<int:visit_id>/dicom-import/", views.visit_dicom_import, name="visit_dicom_import"),
    path("comparisons/<int:comparison_id>/report/", views.comparison_report, name="comparison_report"),
    path(
        "comparisons/<int:comparison_id>/report.pdf",
        views.comparison_report_pdf,
        name="comparison_report_pdf",
    ),
]
