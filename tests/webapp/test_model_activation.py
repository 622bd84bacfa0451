"""Activated model versions are what jobs run: a campaign-trained yolo-pose68 version and a trained wrinkle
version, chosen for one study on its settings page, are loaded by that study's next jobs, whose results
record the SHA-256 of exactly those weights; another study keeps the shipped weights."""

import hashlib
from pathlib import Path

import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from ml.model_names import WRINKLES_UNET_WDS, YOLO_POSE68
from ml.registry import registry
from webapp.analysis.models import AnalysisJob, ModelVersion, Result
from webapp.analysis.services import model_version_register, photo_upload
from webapp.campaigns.models import Campaign, CampaignIteration, KeypointDataset
from webapp.campaigns.services import campaign_register_model
from webapp.studies.models import Subject, Visit, VisitRole
from workers.tasks import run_analysis_job

pytestmark = [pytest.mark.django_db, pytest.mark.data]


def resaved(source: Path, target: Path, note: str) -> Path:
    """A copy of a checkpoint saved again with a note: another file (another SHA-256), same network."""
    checkpoint = torch.load(source, map_location="cpu", weights_only=False)
    checkpoint["facet_test_note"] = note
    target.parent.mkdir(parents=True, exist_ok=True)
    torch.save(checkpoint, target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def coordinator_client(study_with_members) -> Client:
    client = Client()
    client.force_login(study_with_members["coordinator"])
    return client


def upload(study, user, face_jpeg_bytes, code: str):
    subject = Subject.objects.create(study=study, code=code)
    visit = Visit.objects.create(subject=subject, label="baseline", role=VisitRole.PRE)
    return photo_upload(
        visit=visit,
        view="frontal",
        uploaded_by=user,
        upload=SimpleUploadedFile("face.jpg", face_jpeg_bytes, content_type="image/jpeg"),
    )


def run(photo, kind: str) -> Result:
    job = AnalysisJob.objects.get(photo=photo, kind=kind)
    run_analysis_job.apply(args=[job.pk])
    job.refresh_from_db()
    assert job.status == "succeeded", job.error
    return Result.objects.get(job=job)


def test_a_campaign_trained_detector_chosen_for_a_study_runs_its_landmark_jobs(
    study_with_members, face_jpeg_bytes, tmp_path, sent_runs
):
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    weights = resaved(
        registry.spec(YOLO_POSE68).weights_path, tmp_path / "campaign" / "iter-1" / "best.pt", "campaign"
    )
    dataset = KeypointDataset.objects.create(study=study, name="faces")
    campaign = Campaign.objects.create(study=study, dataset=dataset, name="first", status="succeeded")
    CampaignIteration.objects.create(
        campaign=campaign,
        k=1,
        train_labels=90,
        val_labels=30,
        total_labels=120,
        nme=0.06,
        metrics={"val_faces": 30, "val_faces_matched": 30},
        weights_path=str(weights),
    )
    assert "Registered" in campaign_register_model(campaign=campaign)
    version = ModelVersion.objects.get(name=YOLO_POSE68)
    client = coordinator_client(study_with_members)
    chosen = client.post(
        reverse("studies:study_model_version", args=[study.pk]),
        {"name": YOLO_POSE68, "model_version": version.pk},
    )
    assert chosen.status_code == 302
    settings_page = client.get(reverse("studies:study_settings", args=[study.pk])).content.decode()
    assert f"version {version.version}" in settings_page and "study's choice" in settings_page
    saved = client.post(
        reverse("studies:study_settings", args=[study.pk]),
        {"analyses": ["landmarks"], "normality_region": "mouth_nose", "landmark_detector": YOLO_POSE68},
    )
    assert saved.status_code == 302
    study.refresh_from_db()
    assert study.landmark_detector == YOLO_POSE68

    result = run(upload(study, coordinator, face_jpeg_bytes, "S001"), "landmarks")
    assert result.model_name == YOLO_POSE68 and result.model_version == version.version
    assert result.weights_sha256 == sha256(weights) != registry.spec(YOLO_POSE68).weights_sha256
    assert result.data["model"]["weights"] == "best.pt" and result.data["faces"]
    assert registry.is_loaded(YOLO_POSE68, weights)

    other = study_with_members["other_study"]
    other.landmark_detector = YOLO_POSE68
    other.save()
    elsewhere = run(upload(other, study_with_members["outsider"], face_jpeg_bytes, "S900"), "landmarks")
    assert elsewhere.weights_sha256 == registry.spec(YOLO_POSE68).weights_sha256


def test_a_trained_wrinkle_version_chosen_for_a_study_runs_its_wrinkle_jobs(
    study_with_members, face_jpeg_bytes, tmp_path, sent_runs
):
    study, coordinator = study_with_members["study"], study_with_members["coordinator"]
    study.analyses = ["wrinkles"]
    study.save()
    weights = resaved(
        registry.spec(WRINKLES_UNET_WDS).weights_path, tmp_path / "training-job-7.pt", "trained"
    )
    version = model_version_register(
        name=WRINKLES_UNET_WDS,
        task="wrinkle-segmentation",
        version="trained-job-7",
        source="trained by job 7",
        weights_path=str(weights),
        weights_sha256=sha256(weights),
    )
    client = coordinator_client(study_with_members)
    client.post(
        reverse("studies:study_model_version", args=[study.pk]),
        {"name": WRINKLES_UNET_WDS, "model_version": version.pk},
    )
    result = run(upload(study, coordinator, face_jpeg_bytes, "S002"), "wrinkles")
    assert (result.model_name, result.model_version) == (WRINKLES_UNET_WDS, "trained-job-7")
    assert result.weights_sha256 == sha256(weights) != registry.spec(WRINKLES_UNET_WDS).weights_sha256
    # Back to the site's choice: the shipped weights.
    client.post(reverse("studies:study_model_version", args=[study.pk]), {"name": WRINKLES_UNET_WDS})
    again = run(upload(study, coordinator, face_jpeg_bytes + b"\x00", "S003"), "wrinkles")
    assert again.weights_sha256 == registry.spec(WRINKLES_UNET_WDS).weights_sha256
