"""One lifecycle for every kind of run: the queue page lists them all with live progress, the generic
endpoints cancel and retry each kind under its study's permissions, the attempt fences off a worker
that lost its run, and the sweeper re-sends lost runs and takes over runs whose worker stopped."""

import datetime

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from webapp.analysis.models import AnalysisJob
from webapp.campaigns.models import Campaign, KeypointDataset
from webapp.exports.models import StudyExport
from webapp.labeling.models import TrainingJob
from webapp.ratings.models import RegressorFit, Survey
from webapp.runs import services, sweeper
from webapp.runs.kinds import run_models
from webapp.runs.models import RunStatus

pytestmark = pytest.mark.django_db


@pytest.fixture
def runs(study_with_members, make_photo):
    """One run of each kind in the study, all queued."""
    study = study_with_members["study"]
    photo = make_photo(study)
    dataset = KeypointDataset.objects.create(study=study, name="faces")
    return {
        "analysis": AnalysisJob.objects.create(
            kind="landmarks", photo=photo, queue="cpu", model_name="dlib-68"
        ),
        "training": TrainingJob.objects.create(study=study, label_ids=[1, 2]),
        "campaign": Campaign.objects.create(study=study, dataset=dataset, name="first"),
        "rating-fit": RegressorFit.objects.create(
            study=study, survey=Survey.objects.create(study=study, title="Normality"), parameters={}
        ),
        "study-export": StudyExport.objects.create(study=study, format="dicom"),
    }


def test_the_fixture_has_a_run_of_every_kind(runs):
    # A new kind of run joins every test of this module through the fixture above.
    assert set(runs) == {model.run_kind for model in run_models()}


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def running(run, worker: str = "worker-a@host", fraction: float = 0.4, message: str = "Working"):
    claim = services.run_claim(type(run), run_id=run.pk, worker=worker)
    assert claim.should_run
    assert services.run_progress(
        type(run), run_id=run.pk, attempt=claim.attempt, fraction=fraction, message=message
    )
    run.refresh_from_db()
    return claim


def test_the_queue_page_lists_every_kind_with_live_progress_and_filters(runs, make_user, study_with_members):
    for run in runs.values():
        running(run, message=f"{run.run_kind} at work")
    admin = client_for(make_user("siteadmin", staff=True))
    page = admin.get(reverse("runs:queue"))
    assert page.status_code == 200
    listed = {(run.run_kind, run.pk) for run in page.context["runs"]}
    assert listed == {(kind, run.pk) for kind, run in runs.items()}
    text = page.content.decode()
    for kind, run in runs.items():
        assert reverse("runs:status", args=[kind, run.pk]) in text and f"{kind} at work" in text
    assert page.context["overview"].counts["running"] == len(runs)
    only_campaigns = admin.get(reverse("runs:queue") + "?kind=campaign")
    assert [run.run_kind for run in only_campaigns.context["runs"]] == ["campaign"]
    gpu = admin.get(reverse("runs:queue") + "?queue=gpu")  # trainings, campaigns and fits: GPU
    assert {run.run_kind for run in gpu.context["runs"]} == {"training", "campaign", "rating-fit"}
    other = admin.get(reverse("runs:queue") + f"?study={study_with_members['other_study'].pk}")
    assert other.context["runs"] == []
    assert client_for(study_with_members["coordinator"]).get(reverse("runs:queue")).status_code == 404


@pytest.mark.parametrize("kind", ["analysis", "training", "campaign", "rating-fit"])
def test_status_cancel_and_retry_work_for_every_kind(kind, runs, study_with_members):
    run = runs[kind]
    claim = running(run)
    status_url = reverse("runs:status", args=[kind, run.pk])
    outsider = client_for(study_with_members["outsider"])
    assert outsider.get(status_url).status_code == 404
    monitor = client_for(study_with_members["monitor"])
    payload = monitor.get(status_url).json()
    assert (payload["status"], payload["progress"], payload["message"]) == ("running", 0.4, "Working")
    assert payload["can_cancel"] is False
    assert monitor.post(reverse("runs:cancel", args=[kind, run.pk])).status_code == 403
    coordinator = client_for(study_with_members["coordinator"])
    assert coordinator.get(status_url).json()["can_cancel"] is True
    cancelled = coordinator.post(reverse("runs:cancel", args=[kind, run.pk]), HTTP_ACCEPT="application/json")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    # The worker learns it at its next progress report and stops.
    assert not services.run_progress(
        type(run), run_id=run.pk, attempt=claim.attempt, fraction=0.5, message="x"
    )
    retried = coordinator.post(reverse("runs:retry", args=[kind, run.pk]), HTTP_ACCEPT="application/json")
    assert retried.status_code == 200 and retried.json()["status"] == "queued"
    again = coordinator.post(reverse("runs:retry", args=[kind, run.pk]), HTTP_ACCEPT="application/json")
    assert again.status_code == 409 and "only failed or cancelled" in again.json()["error"]


def test_a_worker_that_lost_its_run_cannot_write_to_it(runs):
    run = runs["analysis"]
    first = running(run)
    run.heartbeat_at = timezone.now() - datetime.timedelta(hours=1)
    run.save()
    second = services.run_claim(AnalysisJob, run_id=run.pk, worker="worker-b@host")  # takes over
    assert second.should_run and second.attempt == first.attempt + 1
    assert not services.run_progress(
        AnalysisJob, run_id=run.pk, attempt=first.attempt, fraction=0.9, message="zombie"
    )
    assert services.run_succeed(AnalysisJob, run_id=run.pk, attempt=first.attempt) is None
    assert services.run_fail(AnalysisJob, run_id=run.pk, attempt=first.attempt, error="zombie") is None
    run.refresh_from_db()
    assert (run.status, run.worker, run.attempts) == (RunStatus.RUNNING, "worker-b@host", 2)


def test_a_delivery_to_a_run_running_elsewhere_is_refused(runs):
    run = runs["analysis"]
    running(run)
    claim = services.run_claim(AnalysisJob, run_id=run.pk, worker="worker-b@host")
    assert not claim.should_run and "running" in claim.reason


def test_the_sweeper_takes_over_a_run_whose_worker_stopped_and_sends_it_again(runs, sent_runs, settings):
    run = runs["campaign"]
    running(run)
    Campaign.objects.filter(pk=run.pk).update(
        heartbeat_at=timezone.now() - datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS + 5)
    )
    report = sweeper.sweep()
    run.refresh_from_db()
    assert report.taken_over == [f"campaign-{run.pk}"]
    assert run.status == RunStatus.QUEUED and "stopped responding" in run.progress_message
    assert [sent.pk for sent in sent_runs if sent.run_kind == "campaign"] == [run.pk]


def test_a_run_whose_workers_keep_dying_fails_with_a_message(runs, sent_runs, settings):
    run = runs["analysis"]
    stale = timezone.now() - datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS + 5)
    for attempt in range(services.RETRY_POLICY.max_attempts):
        running(run, worker=f"worker-{attempt}@host")
        AnalysisJob.objects.filter(pk=run.pk).update(heartbeat_at=stale)
        sweeper.sweep()
    run.refresh_from_db()
    assert run.status == RunStatus.FAILED and "stopped responding 3 times" in run.error


def test_the_sweeper_resends_runs_the_broker_never_took_or_lost(runs, sent_runs, monkeypatch, settings):
    old = timezone.now() - datetime.timedelta(seconds=settings.FACET_RESEND_AFTER_SECONDS + 5)
    analysis, training, campaign = runs["analysis"], runs["training"], runs["campaign"]
    AnalysisJob.objects.filter(pk=analysis.pk).update(created_at=old)  # never sent
    TrainingJob.objects.filter(pk=training.pk).update(created_at=old, dispatched_at=old, task_id="lost-task")
    Campaign.objects.filter(pk=campaign.pk).update(created_at=old, dispatched_at=old, task_id="held-task")
    monkeypatch.setattr("webapp.runs.dispatch.queued_task_ids", lambda: {"held-task"})
    report = sweeper.sweep()
    assert sorted(report.resent) == sorted([f"analysis-{analysis.pk}", f"training-{training.pk}"])
    assert {(run.run_kind, run.pk) for run in sent_runs} == {
        ("analysis", analysis.pk),
        ("training", training.pk),
    }
    # Where the broker cannot be inspected, only runs never taken are sent again.
    sent_runs.clear()
    TrainingJob.objects.filter(pk=training.pk).update(dispatched_at=old, task_id="lost-task")
    monkeypatch.setattr("webapp.runs.dispatch.queued_task_ids", lambda: None)
    assert sweeper.sweep().resent == [] and sent_runs == []


def test_a_resend_that_fails_leaves_the_run_waiting_for_the_next_sweep(runs, monkeypatch, settings):
    old = timezone.now() - datetime.timedelta(seconds=settings.FACET_RESEND_AFTER_SECONDS + 5)
    AnalysisJob.objects.filter(pk=runs["analysis"].pk).update(created_at=old)
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: False)
    monkeypatch.setattr("webapp.runs.dispatch.queued_task_ids", lambda: None)
    report = sweeper.sweep()
    assert f"analysis-{runs['analysis'].pk}" in report.unsent
    assert AnalysisJob.objects.get(pk=runs["analysis"].pk).dispatched_at is None


def test_the_photo_page_warns_when_the_broker_is_down_or_a_run_is_stuck(
    runs, study_with_members, monkeypatch, settings
):
    from webapp.runs import selectors

    job = runs["analysis"]
    page_url = reverse("studies:photo_detail", args=[job.photo_id])
    coordinator = client_for(study_with_members["coordinator"])
    monkeypatch.setattr("webapp.runs.dispatch.broker_reachable", lambda: "Error 111 connecting to redis")
    selectors.forget_broker_check()
    page = coordinator.get(page_url).content.decode()
    assert "job broker cannot be reached" in page
    status = coordinator.get(reverse("runs:status", args=["analysis", job.pk])).json()
    assert "broker cannot be reached" in status["warning"]
    monkeypatch.setattr("webapp.runs.dispatch.broker_reachable", lambda: None)
    selectors.forget_broker_check()
    running(job)
    AnalysisJob.objects.filter(pk=job.pk).update(
        heartbeat_at=timezone.now() - datetime.timedelta(seconds=settings.FACET_RUN_STALE_SECONDS + 5)
    )
    status = coordinator.get(reverse("runs:status", args=["analysis", job.pk])).json()
    assert "No sign of life from its worker" in status["warning"]
    assert "job broker cannot be reached" not in coordinator.get(page_url).content.decode()


def test_the_admin_site_cancels_and_retries_analysis_jobs_through_the_same_services(runs, make_user):
    job = runs["analysis"]
    user = make_user("siteadmin", staff=True)
    user.is_superuser = True
    user.save()
    admin = client_for(user)
    url = reverse("admin:analysis_analysisjob_changelist")
    admin.post(url, {"action": "cancel_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == RunStatus.CANCELLED
    admin.post(url, {"action": "retry_jobs", "_selected_action": [job.pk]})
    job.refresh_from_db()
    assert job.status == RunStatus.QUEUED


def test_every_kind_of_run_names_its_study_and_page():
    """The abstract run's ``run_study`` and ``run_url`` raise NotImplementedError: every concrete kind must
    override them, or its job page and access checks would fail for users."""
    from webapp.runs.models import Run

    assert len(run_models()) >= 5
    for model in run_models():
        assert model.run_study is not Run.run_study, model.__name__
        assert model.run_url is not Run.run_url, model.__name__
