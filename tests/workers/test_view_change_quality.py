"""A photo's view decides what its quality verdict expects of the head pose: a turned face uploaded as
frontal fails the view check, and once a clinician corrects the view the landmark job runs again and the
verdict, measured with the same head pose (FaceMesh surface), passes the view check.

Real worker task, real models, a real FASSEG multipose photo (the subject turned 45° to their right).
"""

from pathlib import Path

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile

from webapp.analysis.models import AnalysisJob, Result
from webapp.runs.models import RunStatus
from webapp.studies.models import AnalysisKind, PhotoView
from workers.tasks import run_analysis_job

pytestmark = [pytest.mark.django_db, pytest.mark.data]

VIEW_REASONS = ("Head is turned", "expects a profile")


def _turned_photo(data_dir: Path) -> Path:
    # FASSEG names carry the yaw in the opposite sign to Facet's: "+45__" is Facet yaw −45 (left45).
    photos = sorted((data_dir / "fasseg" / "multipose" / "train" / "images").glob("+45__*.jpg"))
    if not photos:
        pytest.skip("FASSEG multipose photos are not in the data directory")
    return photos[0]


def _landmark_verdict(photo) -> dict:
    job = AnalysisJob.objects.filter(
        photo=photo, kind=AnalysisKind.LANDMARKS, status=RunStatus.QUEUED
    ).latest("pk")
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == RunStatus.SUCCEEDED, job.error
    return Result.objects.get(job=job).data["quality"]


def test_correcting_the_view_recomputes_the_quality_verdict(
    study_with_members, data_dir, sent_runs, django_capture_on_commit_callbacks
):
    from webapp.analysis.services import photo_upload
    from webapp.studies.models import Subject, Visit, VisitRole
    from webapp.studies.records import photo_update
    from webapp.studies.services import study_update

    coordinator = study_with_members["coordinator"]
    study = study_update(
        study=study_with_members["study"], actor=coordinator, analyses=[AnalysisKind.LANDMARKS]
    )
    visit = Visit.objects.create(
        subject=Subject.objects.create(study=study, code="V045"), label="baseline", role=VisitRole.PRE
    )
    path = _turned_photo(data_dir)
    with django_capture_on_commit_callbacks(execute=True):
        photo = photo_upload(
            visit=visit,
            view=PhotoView.FRONTAL,
            uploaded_by=coordinator,
            upload=SimpleUploadedFile(path.name, path.read_bytes(), content_type="image/jpeg"),
        )
    as_frontal = _landmark_verdict(photo)
    assert as_frontal["measures"]["expected_yaw"] == 0.0
    assert as_frontal["measures"]["yaw"] < -30.0, as_frontal["measures"]
    assert any(reason.startswith("Head is turned") for reason in as_frontal["reasons"])

    with django_capture_on_commit_callbacks(execute=True):
        photo_update(photo=photo, view=PhotoView.LEFT_45, visit=photo.visit, actor=coordinator)
    as_left45 = _landmark_verdict(photo)
    assert as_left45["measures"]["expected_yaw"] == -45.0
    assert abs(as_left45["measures"]["yaw_deviation"]) <= 15.0
    assert not [reason for reason in as_left45["reasons"] if reason.startswith(VIEW_REASONS)]
