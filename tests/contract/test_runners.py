"""Every analysis kind's runner keeps the run contract, one test body over all kinds: a task delivered
twice runs once and records one result; a cancel mid-run stops it without a result; a failure reads
as a sentence a clinician can act on, never as an exception class name. The pipelines run for real
(shipped weights; normality with the study's fast stand-in regressor, see conftest.py)."""

import re

import pytest

from webapp.analysis.kinds import KIND_SPECS
from webapp.analysis.models import AnalysisJob, Result
from webapp.runs import services as run_services
from webapp.runs.models import RunStatus
from webapp.studies.models import AnalysisKind
from workers.tasks import run_analysis_job

pytestmark = [pytest.mark.django_db, pytest.mark.data]

KINDS = AnalysisKind.values
CLASS_NAME = re.compile(r"\b[A-Z][A-Za-z]*(Error|Exception|Exceeded)\b|Traceback")


def job_of(photo, kind: str) -> AnalysisJob:
    spec = KIND_SPECS[kind]
    job = AnalysisJob.objects.filter(photo=photo, kind=kind).first()
    return job or AnalysisJob.objects.create(
        photo=photo, kind=kind, queue=spec.queue, model_name=spec.model_for(photo.study)
    )


@pytest.mark.parametrize("kind", KINDS)
def test_a_redelivered_task_runs_once_and_records_one_result(kind, upload_face):
    job = job_of(upload_face(), kind)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == RunStatus.SUCCEEDED, job.error
    first = Result.objects.get(job=job)
    run_analysis_job.apply(args=[job.pk])  # the broker delivers the same task again
    job.refresh_from_db()
    assert (job.status, job.attempts) == (RunStatus.SUCCEEDED, 1)
    assert list(Result.objects.filter(job=job)) == [first]
    assert len(first.weights_sha256) == 64 or first.model_name == "zones-landmark"


@pytest.mark.parametrize("kind", KINDS)
def test_a_cancel_during_the_run_stops_it_without_a_result(
    kind, upload_face, study_with_members, monkeypatch
):
    job = job_of(upload_face(), kind)
    real_progress = run_services.run_progress
    reports = []

    def cancel_at_first_report(model, **kwargs):
        reports.append(kwargs["message"])
        if len(reports) == 1:
            run_services.run_cancel(
                model.objects.get(pk=kwargs["run_id"]), actor=study_with_members["clinician"]
            )
        return real_progress(model, **kwargs)

    monkeypatch.setattr(run_services, "run_progress", cancel_at_first_report)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == RunStatus.CANCELLED and len(reports) == 1
    assert not Result.objects.filter(job=job).exists()


@pytest.mark.parametrize("kind", KINDS)
def test_a_failure_reads_as_a_sentence_without_class_names(kind, upload_face, png_bytes):
    photo = upload_face()
    if kind == AnalysisKind.LANDMARKS:
        # A landmark job succeeds on a photo without a face (its quality verdict says so); it fails on a
        # stored file that is no image any more.
        with photo.image.storage.open(photo.image.name, "wb") as handle:
            handle.write(b"no longer a PNG")
    else:
        photo.study.force_zone_baseline = True
        photo.study.save()
        with photo.image.storage.open(photo.image.name, "wb") as handle:
            handle.write(png_bytes((320, 320)))  # a flat image: no face
    job = job_of(photo, kind)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == RunStatus.FAILED
    assert job.error and job.error[0].isupper() and job.error.rstrip().endswith(".")
    assert not CLASS_NAME.search(job.error), job.error
