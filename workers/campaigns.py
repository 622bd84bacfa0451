"""Celery task running a landmark auto-labelling campaign (ml.landmarks.campaign) for a study.

The study's photos are linked into a temporary folder under pseudonymous names, the campaign runs there
(on the GPU when the worker has one, else on the CPU with smaller images), and each iteration's report
and dataset version are recorded in the platform as they are written. Cancel is checked between epochs.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ml.progress import Cancelled
from webapp.runs import task_names
from workers.celery import app

if TYPE_CHECKING:
    from workers.runs import RunContext

CPU_MAX_IMGSZ = 320  # a CPU worker trains on smaller images; a GPU worker uses the campaign's size
CAMPAIGN_TIME_LIMIT_SECONDS = (
    48 * 3600
)  # campaigns train for hours: the analysis jobs' 30-minute limit is wrong here


def _device() -> str:
    import torch

    return "0" if torch.cuda.is_available() else "cpu"


def _link_photos(photos: list, folder: Path) -> dict[str, Any]:
    """Link (or copy, for remote storage) each photo into `folder` as photo-<id>.<ext>."""
    from webapp.campaigns.services import photo_file_name

    names = {}
    for photo in photos:
        name = photo_file_name(photo)
        target = folder / name
        try:
            os.symlink(photo.image.path, target)
        except NotImplementedError:  # storage without local paths (S3)
            with photo.image.open("rb") as source:
                target.write_bytes(source.read())
        names[name] = photo
    return names


def run_campaign(context: RunContext) -> None:
    """Run one claimed campaign, recording progress, iterations, versions and the outcome."""
    from ml.landmarks import campaign as ml_campaign
    from ml.landmarks.keypoint_datasets import DatasetStore
    from webapp.campaigns import services
    from webapp.campaigns.models import VersionSource
    from webapp.runs.services import run_succeed
    from webapp.studies.models import Photo

    campaign = context.run
    device = _device()
    imgsz = campaign.imgsz if device != "cpu" else min(campaign.imgsz, CPU_MAX_IMGSZ)
    total_epochs = campaign.epochs_first + campaign.epochs_next * (campaign.iterations - 1)
    state: dict[str, Any] = {"epochs_done": 0, "message": "Running"}

    def report(epoch: dict[str, Any] | None = None) -> None:
        fraction = min(state["epochs_done"] / total_epochs, 0.99)
        if epoch is None:
            context.progress(fraction, state["message"])
        elif not services.campaign_progress(
            campaign_id=campaign.pk,
            attempt=context.attempt,
            fraction=fraction,
            message=state["message"],
            epoch=epoch,
        ):
            raise Cancelled("Campaign cancelled.")

    with tempfile.TemporaryDirectory(prefix=f"facet-campaign-{campaign.pk}-") as folder:
        images = Path(folder)
        photos = list(Photo.objects.filter(study=campaign.study).order_by("pk"))
        names = _link_photos(photos, images)
        run_dir = services.campaign_run_dir(campaign)
        services.campaign_set_run_dir(campaign=campaign, run_dir=run_dir)
        if campaign.teacher_model:

            def teacher_progress(event: dict[str, Any]) -> None:
                state["message"] = (
                    f"Teacher {campaign.teacher_model}: {event['done']}/{event['total']} photos"
                )
                report()

            initial = ml_campaign.teacher_dataset(
                [images / name for name in names],
                labelled_fraction=campaign.labelled_fraction,
                val_fraction=campaign.val_fraction,
                teacher=campaign.teacher_model,
                image_root=images,
                progress=teacher_progress,
            )
            start_version = services.version_from_ml(
                dataset=campaign.dataset,
                ml_dataset=initial,
                photos=names,
                parent=None,
                source=VersionSource.TEACHER,
                note=f"iteration 0 labels of teacher {campaign.teacher_model} (campaign {campaign.name})",
            )
        else:
            start_version = campaign.start_version
            initial, _ = services.version_to_ml(start_version, image_root=str(images), pool=photos)
        versions = {0: start_version}

        def progress(event: dict[str, Any]) -> None:
            phase = event["phase"]
            epoch_entry = None
            if phase == "start":
                state["message"] = (
                    f"Iteration {event['iteration']}: training on {versions[event['iteration']].name}"
                )
            elif phase == "train":
                state["epochs_done"] += 1
                state["message"] = f"Iteration {event['iteration']}, epoch {event['epoch']}/{event['epochs']}"
                epoch_entry = {
                    "iteration": event["iteration"],
                    "epoch": event["epoch"],
                    "loss": event["loss"],
                }
            elif phase == "iteration_done":
                k = event["iteration"]
                row = services.campaign_record_iteration(
                    campaign=campaign, report=event["report"], version_in=versions[k]
                )
                store = DatasetStore(run_dir / "datasets")
                if k + 1 in store.versions():
                    versions[k + 1] = services.version_from_ml(
                        dataset=campaign.dataset,
                        ml_dataset=store.read(k + 1),
                        photos=names,
                        parent=versions[k],
                        source=VersionSource.CAMPAIGN,
                        note=f"campaign {campaign.name} iteration {k}: "
                        f"{event['report'].get('pseudo_labels_added')} pseudo-label(s) added",
                        campaign_iteration=row,
                    )
                    services.campaign_attach_output(iteration=row, version_out=versions[k + 1])
                state["message"] = f"Iteration {k} done"
            report(epoch_entry)

        config = ml_campaign.CampaignConfig(
            name=f"campaign-{campaign.pk}-{campaign.name}",
            root=run_dir,
            iterations=campaign.iterations,
            epochs_first=campaign.epochs_first,
            epochs_next=campaign.epochs_next,
            imgsz=imgsz,
            batch=campaign.batch,
            device=device,
            min_confidence=campaign.min_confidence,
            max_iou=campaign.max_iou,
        )
        ml_campaign.run_campaign(
            config,
            initial,
            progress=progress,
            cancel=context.cancelled,
            command=f"Facet campaign {campaign.pk} ({campaign.name}) on {device}, imgsz {imgsz}",
        )
    campaign.refresh_from_db()
    outcome = services.campaign_register_model(campaign=campaign)
    run_succeed(type(campaign), run_id=campaign.pk, attempt=context.attempt, message=f"Finished. {outcome}")


@app.task(
    bind=True,
    name=task_names.LANDMARK_CAMPAIGN,
    acks_late=True,
    reject_on_worker_lost=True,
    soft_time_limit=CAMPAIGN_TIME_LIMIT_SECONDS,
    time_limit=CAMPAIGN_TIME_LIMIT_SECONDS + 300,
)
def run_landmark_campaign(self, campaign_id: int) -> None:
    from webapp.campaigns.models import Campaign
    from workers.runs import execute

    execute(Campaign, campaign_id, self.request.hostname or "worker", run_campaign)
