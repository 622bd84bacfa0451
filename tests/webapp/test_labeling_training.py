"""The "train wrinkle model" job: started from the study's labels page, run in-process with a tiny U-Net
(width 2, 1 epoch, 64 px), cancelled, and the model version it registers activated by a site admin."""

from pathlib import Path

import cv2
import numpy as np
import pytest
import test_labeling
from django.test import Client
from django.urls import reverse
from test_labeling import client_for, save_label

from webapp.analysis.models import ModelVersion
from webapp.audit.models import AuditAction, AuditEvent
from webapp.labeling.models import TrainingJob
from webapp.runs import services as run_services
from webapp.runs.models import RunStatus
from workers.training import train_wrinkle_model

pytestmark = pytest.mark.django_db

# The photo fixture of the label tests, shared (pytest finds fixtures by their module-level name).
make_creased_photo = test_labeling.make_creased_photo
TINY = {"width": 2, "size": 64, "epochs": 1, "folds": 2}


@pytest.fixture(autouse=True)
def one_torch_thread():
    """This 2-core machine is shared; OpenMP threads spinning against other processes slow tiny models."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def labeled_study(study_with_members, make_creased_photo, monkeypatch):
    """Four subjects with one label each (the minimum for folds split by subject)."""
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    clinician = client_for(study_with_members["clinician"])
    for number in range(1, 5):
        assert (
            save_label(clinician, make_creased_photo(study, subject_code=f"S00{number}")).status_code == 201
        )
    return study_with_members


def start(client: Client, study, **fields):
    return client.post(reverse("labeling:training_start", args=[study.pk]), {**TINY, **fields})


def write_synthetic_set(folder: Path, count: int = 2) -> Path:
    """A tiny folder in the layout of `python -m ml wrinkles synthesize` (index.csv, images/, masks/)."""
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    rows = ["name,image,mask,face"]
    for number in range(count):
        cv2.imwrite(
            str(folder / f"images/syn{number}.png"), test_labeling.creased_image(seed=50 + number)[..., ::-1]
        )
        mask = np.zeros((256, 256), np.uint8)
        mask[60:62, 40:200] = 255
        cv2.imwrite(str(folder / f"masks/syn{number}.png"), mask)
        rows.append(f"syn{number},images/syn{number}.png,masks/syn{number}.png,face{number}.jpg")
    (folder / "index.csv").write_text("\n".join(rows) + "\n")
    return folder


def test_training_job_trains_cross_validates_and_registers_a_model_version(
    labeled_study, settings, monkeypatch, tmp_path
):
    study = labeled_study["study"]
    coordinator = client_for(labeled_study["coordinator"])
    monkeypatch.setenv("FACET_WRINKLE_SYNTH_DIR", str(write_synthetic_set(tmp_path / "synth")))
    response = start(coordinator, study, include_synthetic="on")
    assert response.status_code == 302
    job = TrainingJob.objects.get()
    assert job.status == RunStatus.QUEUED and len(job.label_ids) == 4
    train_wrinkle_model(job.pk)
    job.refresh_from_db()
    assert job.status == RunStatus.SUCCEEDED, job.error
    assert job.progress == 1.0
    cv = job.metrics["cv"]
    assert cv["folds"] == 2 and cv["split"] == "by subject"
    assert cv["pooled"]["images"] == 4  # every labeled subject is measured once; semi-synthetic ones never
    assert "2 semi-synthetic image(s) (training only)" in job.metrics["data"]
    assert all(0.0 <= fold["test"]["jsi"] <= 1.0 for fold in cv["per_fold"])
    version = job.model_version
    assert version.name == "wrinkles-unet-wds" and version.version == f"trained-job-{job.pk}"
    assert version.source == f"trained by job {job.pk} on study {study.pk} labels"
    assert not version.is_active
    assert version.metrics["cv"] == cv
    weights = Path(version.weights_path)
    assert weights.is_file() and weights.parent == Path(settings.MEDIA_ROOT) / "models" / "wrinkles"
    status = coordinator.get(reverse("runs:status", args=["training", job.pk])).json()
    assert status["status"] == "succeeded" and status["model_version"] == str(version)
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, object_type="labeling.trainingjob").exists()
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, object_type="analysis.modelversion").exists()
    page = coordinator.get(reverse("labeling:study_labels", args=[study.pk]))
    assert b"pooled JSI" in page.content


def test_only_coordinators_start_training_and_it_needs_four_subjects(labeled_study, make_creased_photo):
    study = labeled_study["study"]
    for role in ("clinician", "monitor", "rater"):
        assert start(client_for(labeled_study[role]), study).status_code == 403
    assert start(client_for(labeled_study["outsider"]), study).status_code == 404
    assert not TrainingJob.objects.exists()
    other = labeled_study["other_study"]
    outsider = client_for(labeled_study["outsider"])
    save_label(outsider, make_creased_photo(other, subject_code="X001"))
    start(outsider, other)
    assert not TrainingJob.objects.filter(study=other).exists()


def test_a_missing_semi_synthetic_set_fails_the_job_with_a_clear_message(
    labeled_study, monkeypatch, tmp_path
):
    monkeypatch.setenv("FACET_WRINKLE_SYNTH_DIR", str(tmp_path / "nowhere"))
    start(client_for(labeled_study["coordinator"]), labeled_study["study"], include_synthetic="on")
    job = TrainingJob.objects.get()
    train_wrinkle_model(job.pk)
    job.refresh_from_db()
    assert job.status == RunStatus.FAILED
    assert "No semi-synthetic set at" in job.error and "python -m ml wrinkles synthesize" in job.error
    assert not ModelVersion.objects.exists()


def test_cancel_stops_the_training_between_epochs(labeled_study, monkeypatch):
    study = labeled_study["study"]
    coordinator = client_for(labeled_study["coordinator"])
    start(coordinator, study, epochs=2)
    job = TrainingJob.objects.get()
    assert (
        client_for(labeled_study["monitor"])
        .post(reverse("runs:cancel", args=["training", job.pk]))
        .status_code
        == 403
    )
    original = run_services.run_progress
    messages = []

    def cancel_on_first_epoch(model, **kwargs):
        messages.append(kwargs["message"])
        if "epoch" in kwargs["message"]:
            run_services.run_cancel(TrainingJob.objects.get(pk=job.pk), actor=labeled_study["coordinator"])
        return original(model, **kwargs)

    monkeypatch.setattr(run_services, "run_progress", cancel_on_first_epoch)
    train_wrinkle_model(job.pk)
    job.refresh_from_db()
    assert job.status == RunStatus.CANCELLED
    assert messages[0].startswith("Exporting 4 label(s)")
    assert messages[-1].startswith("Fold 1/2: unet-wds epoch 1/2")
    assert "semi-synthetic" not in messages[-1]  # the study's own labels, not the synthetic set
    assert job.model_version is None and not ModelVersion.objects.exists()
    # A cancelled job is not run when its message arrives late.
    train_wrinkle_model(job.pk)
    assert TrainingJob.objects.get(pk=job.pk).status == RunStatus.CANCELLED


def test_site_admin_activates_a_version_on_the_model_versions_page(labeled_study, make_user):
    from webapp.analysis.services import model_version_register

    first = model_version_register(
        name="wrinkles-unet-wds",
        task="wrinkle-segmentation",
        version="a",
        source="x",
        metrics={"cv": {"folds": 2, "pooled": {"jsi": 0.1, "images": 4}}},
    )
    second = model_version_register(
        name="wrinkles-unet-wds", task="wrinkle-segmentation", version="b", source="y"
    )
    url = reverse("analysis:model_versions")
    assert client_for(labeled_study["coordinator"]).get(url).status_code == 404
    assert client_for(labeled_study["coordinator"]).post(url, {"model_version": first.pk}).status_code == 404
    admin = client_for(make_user("siteadmin", staff=True))
    page = admin.get(url)
    assert page.status_code == 200 and b"pooled JSI 0.1000" in page.content
    assert admin.post(url, {"model_version": first.pk}).status_code == 302
    # Version b reports no figure, so activating it needs the below-the-floor confirmation.
    assert admin.post(url, {"model_version": second.pk, "confirm_below_floor": "1"}).status_code == 302
    first.refresh_from_db()
    second.refresh_from_db()
    assert second.is_active and not first.is_active
    assert (
        AuditEvent.objects.filter(action=AuditAction.STATE, object_type="analysis.modelversion").count() == 2
    )
