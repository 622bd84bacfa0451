"""Landmark campaigns as runs (``webapp.runs``): creation, the worker's records of iterations and versions,
and the registration of the trained detector as a model version admins or studies may activate."""

import hashlib
import math
from pathlib import Path
from typing import Any

from django.conf import settings
from django.contrib.auth.models import AbstractBaseUser
from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from webapp.analysis.services import model_version_register
from webapp.audit.models import AuditAction
from webapp.audit.services import audit_record
from webapp.campaigns.models import (
    Campaign,
    CampaignIteration,
    KeypointDatasetVersion,
)
from webapp.campaigns.models import KeypointDataset as DatasetRow
from webapp.campaigns.services.errors import LandmarkDataError
from webapp.runs import dispatch
from webapp.runs.models import ACTIVE_STATUSES, RunStatus
from webapp.studies.models import LandmarkDetector, Photo, Study


def campaign_run_dir(campaign: Campaign) -> Path:
    """A new folder per campaign run (ml campaigns refuse a folder that already holds versions)."""
    base = Path(getattr(settings, "FACET_CAMPAIGN_DIR", settings.VAR_DIR / "campaigns"))
    return (
        base / f"study-{campaign.study_id}" / f"{campaign.name}-{campaign.pk}-{timezone.now():%Y%m%d%H%M%S}"
    )


def campaign_create(
    *,
    study: Study,
    dataset: DatasetRow,
    name: str,
    actor: AbstractBaseUser,
    request: HttpRequest | None = None,
    **options: Any,
) -> Campaign:
    """Create a campaign and send it to its queue once the transaction commits (``webapp.runs``).

    Without `teacher_model` it starts from the dataset's latest version, which needs labelled training
    and validation photos; with a teacher the dataset must still be empty (the teacher's labels are v0).
    """
    if dataset.study_id != study.pk:
        raise LandmarkDataError("The dataset belongs to another study.")
    if Campaign.objects.filter(dataset=dataset, status__in=ACTIVE_STATUSES).exists():
        raise LandmarkDataError("A campaign on this dataset is already queued or running.")
    latest = dataset.latest_version
    teacher = options.get("teacher_model") or ""
    if teacher:
        if latest is not None:
            raise LandmarkDataError(
                "A teacher labels an empty dataset; this one has versions already. "
                "Start from its labels instead, or create a new dataset."
            )
        if not Photo.objects.filter(study=study).count() >= 2:
            raise LandmarkDataError("A teacher campaign needs at least two photos in the study.")
    else:
        if latest is None:
            raise LandmarkDataError("The dataset has no labels yet: import labels or choose a teacher model.")
        counts = latest.counts
        if not counts.get("train_instances") or not counts.get("val_instances"):
            raise LandmarkDataError(
                f"Version {latest.name} needs labels in both splits "
                f"(train {counts.get('train_instances', 0)}, "
                f"val {counts.get('val_instances', 0)})."
            )
    for field, low, high in (
        ("min_confidence", 0.0, 1.0),
        ("max_iou", 0.0, 1.0),
        ("labelled_fraction", 0.0, 1.0),
        ("val_fraction", 0.0, 0.9),
    ):
        if field in options and not low < float(options[field]) <= high:
            raise LandmarkDataError(f"{field.replace('_', ' ')} must lie in ({low}, {high}].")
    try:
        with transaction.atomic():
            campaign = Campaign.objects.create(
                study=study,
                dataset=dataset,
                name=name,
                start_version=None if teacher else latest,
                requested_by=actor,
                **options,
            )
    except IntegrityError as error:
        raise LandmarkDataError(f"This study already has a campaign named '{name}'.") from error
    audit_record(
        action=AuditAction.CREATE,
        summary=f"Queued landmark campaign '{name}'",
        actor=actor,
        target=campaign,
        request=request,
        details={"options": options, "start": latest.name if latest and not teacher else None},
    )
    dispatch.send_run_on_commit(campaign)
    return campaign


def campaign_set_run_dir(*, campaign: Campaign, run_dir: Path) -> None:
    Campaign.objects.filter(pk=campaign.pk).update(run_dir=str(run_dir))


def _metric(metrics: dict[str, Any], key: str) -> float | None:
    value = metrics.get(key)
    return float(value) if isinstance(value, int | float) and math.isfinite(value) else None


def campaign_record_iteration(
    *,
    campaign: Campaign,
    report: dict[str, Any],
    version_in: KeypointDatasetVersion | None,
) -> CampaignIteration:
    """Store one iteration's report row (`ml.landmarks.campaign.IterationReport` as a dict)."""
    counts, metrics = report["counts"], report["metrics"]
    return CampaignIteration.objects.create(
        campaign=campaign,
        k=report["iteration"],
        version_in=version_in,
        train_labels=counts["train_instances"],
        val_labels=counts["val_instances"],
        total_labels=counts["total_instances"],
        pseudo_labels_added=report.get("pseudo_labels_added"),
        precision=_metric(metrics, "pose_precision"),
        recall=_metric(metrics, "pose_recall"),
        ap50=_metric(metrics, "pose_ap50"),
        ap50_95=_metric(metrics, "pose_ap50_95"),
        keypoint_mse_px2=_metric(metrics, "keypoint_mse_px2"),
        keypoint_mean_error_px=_metric(metrics, "keypoint_mean_error_px"),
        nme=_metric(metrics, "nme_outer_eye_corners"),
        metrics=metrics,
        epochs=int(report.get("epochs") or 0),
        seconds=float(report.get("seconds") or 0.0),
        weights_path=str(report.get("weights") or ""),
    )


def campaign_attach_output(*, iteration: CampaignIteration, version_out: KeypointDatasetVersion) -> None:
    CampaignIteration.objects.filter(pk=iteration.pk).update(version_out=version_out)
    KeypointDatasetVersion.objects.filter(pk=version_out.pk).update(campaign_iteration=iteration)


def campaign_register_model(*, campaign: Campaign) -> str:
    """Offer the last iteration's weights as an inactive yolo-pose68 version that admins may activate.

    A model that matched no validation face is not offered. Returns a sentence saying what happened.
    """
    last = campaign.iteration_rows.order_by("-k").first()
    if last is None or not last.weights_path or not Path(last.weights_path).is_file():
        return "No weights were written, so no detector version was registered."
    if not last.metrics.get("val_faces_matched"):
        return (
            "The final model found none of the validation faces, so it was not offered as a detector; "
            "train longer or on more labels."
        )
    figures = {
        key: getattr(last, key)
        for key in (
            "precision",
            "recall",
            "ap50",
            "ap50_95",
            "nme",
            "keypoint_mean_error_px",
            "keypoint_mse_px2",
        )
    }
    version = f"campaign-{campaign.pk}-{campaign.name}-iter{last.k}"
    model_version_register(
        name=LandmarkDetector.YOLO_POSE_68,
        task="landmarks",
        version=version,
        source=f"landmark campaign {campaign.pk} ({campaign.name}) of study {campaign.study_id}",
        weights_path=last.weights_path,
        weights_sha256=hashlib.sha256(Path(last.weights_path).read_bytes()).hexdigest(),
        metrics={
            **figures,
            "val_faces": last.metrics.get("val_faces"),
            "val_faces_matched": last.metrics.get("val_faces_matched"),
        },
        model_card=(
            f"YOLOv8-pose 68-point detector trained by landmark campaign '{campaign.name}' "
            f"(iteration {last.k}, {last.total_labels} labels, {last.val_labels} of them validation labels). "
            f"On its validation split: pose AP50 {figures['ap50']}, NME {figures['nme']} over "
            f"{last.metrics.get('val_faces_matched')}/{last.metrics.get('val_faces')} matched faces. "
            "Pseudo-labels are model output, not all reviewed: check these figures before activating it."
        ),
    )
    return f"Registered yolo-pose68 version {version} (inactive) for site admins to review and activate."


def campaign_progress(
    *, campaign_id: int, attempt: int, fraction: float, message: str, epoch: dict[str, Any]
) -> bool:
    """Store progress with one epoch's losses for the claimed attempt; False when the campaign was
    cancelled or taken over meanwhile."""
    with transaction.atomic():
        campaign = (
            Campaign.objects.select_for_update()
            .filter(pk=campaign_id, status=RunStatus.RUNNING, attempts=attempt)
            .first()
        )
        if campaign is None:
            return False
        campaign.progress = min(max(float(fraction), 0.0), 1.0)
        campaign.progress_message = message[:200]
        campaign.heartbeat_at = timezone.now()
        campaign.epoch_log = [*campaign.epoch_log, epoch]
        campaign.save(update_fields=["progress", "progress_message", "heartbeat_at", "epoch_log"])
    return True
