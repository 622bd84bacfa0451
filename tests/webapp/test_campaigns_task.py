"""The campaign Celery task, run in-process with a tiny stand-in trainer (no real training here).

The stand-in replaces `ml.landmarks.campaign.run_campaign` only: it writes dataset versions with the real
`DatasetStore` and merges its "predictions" with the real `merge_predictions`, and reports progress and
iterations with the same events as the real campaign, so the platform's side is exercised end to end.
"""

import json

import numpy as np
import pytest

from ml.landmarks import campaign as ml_campaign
from ml.landmarks.formats import ImageRecord, Instance, KeypointDataset, Provenance
from ml.landmarks.keypoint_datasets import DatasetStore
from webapp.analysis.models import ModelVersion
from webapp.campaigns import services
from webapp.campaigns.models import Campaign, DatasetPhoto, Split, VersionSource
from webapp.runs.models import RunStatus
from webapp.runs.services import run_cancel

pytestmark = pytest.mark.django_db


def face(seed: int, confidence: float | None = None, source: str = "human") -> Instance:
    rng = np.random.default_rng(seed)
    points = np.column_stack([rng.uniform(70, 190, 68), rng.uniform(60, 200, 68)]).round(3)
    return Instance.from_points(points, Provenance(source, confidence=confidence))


class TinyTrainer:
    """Stands in for run_campaign: per iteration `epochs` progress events, a fake weights file, one merge."""

    def __init__(self, matched: int = 1) -> None:
        self.matched = matched
        self.configs: list[ml_campaign.CampaignConfig] = []
        self.initial: KeypointDataset | None = None

    def __call__(self, config, initial, progress=None, cancel=None, command=""):
        self.configs.append(config)
        self.initial = initial
        store = DatasetStore(config.root / "datasets")
        store.write(initial, 0)
        dataset = initial
        for iteration in range(config.iterations):
            epochs = config.epochs_first if iteration == 0 else config.epochs_next
            progress({"phase": "start", "iteration": iteration, "counts": dataset.counts(), "start": "x"})
            for epoch in range(1, epochs + 1):
                progress(
                    {
                        "phase": "train",
                        "iteration": iteration,
                        "epoch": epoch,
                        "epochs": epochs,
                        "loss": {"pose_loss": 1.0 / epoch},
                    }
                )
                if cancel():
                    raise ml_campaign.CampaignCancelled("cancelled")
            weights = config.root / "runs" / f"iter-{iteration}" / "best.pt"
            weights.parent.mkdir(parents=True)
            weights.write_bytes(b"not a real model: test stand-in")
            added = None
            if iteration < config.iterations - 1:
                pool = [r for r in ml_campaign.images_to_predict(dataset) if not r.instances]
                predictions = {
                    r.path: [face(50 + n, 0.9, f"yolo-pose68@{config.name}-iter{iteration}")]
                    for n, r in enumerate(pool[:1])
                }
                dataset, added = ml_campaign.merge_predictions(dataset, predictions)
                store.write(dataset, iteration + 1, parent=iteration)
            progress(
                {
                    "phase": "iteration_done",
                    "iteration": iteration,
                    "report": {
                        "iteration": iteration,
                        "counts": dataset.counts() if added is None else store.read(iteration).counts(),
                        "metrics": {
                            "pose_precision": 0.5,
                            "pose_recall": 0.25 + 0.1 * iteration,
                            "pose_ap50": 0.3,
                            "pose_ap50_95": 0.1,
                            "keypoint_mse_px2": 40.0,
                            "keypoint_mean_error_px": 5.0,
                            "nme_outer_eye_corners": 0.09 - 0.01 * iteration,
                            "val_faces": 1,
                            "val_faces_matched": self.matched,
                        },
                        "pseudo_labels_added": added,
                        "epochs": epochs,
                        "seconds": 0.1,
                        "weights": str(weights),
                    },
                }
            )


@pytest.fixture
def world(study_with_members, make_photo, settings, tmp_path, monkeypatch):
    settings.FACET_CAMPAIGN_DIR = tmp_path / "campaigns"
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"S{index:03d}") for index in range(5)]
    dataset = services.dataset_create(study=study, name="faces", actor=study_with_members["coordinator"])
    images = [
        {
            "id": n,
            "file_name": f"photo-{p.pk}.png",
            "width": 256,
            "height": 256,
            "facet_split": "val" if n == 3 else "train",
        }
        for n, p in enumerate(photos[:3], start=1)
    ]
    annotations = []
    for n in range(1, 4):
        instance = face(n)
        flat = [v for x, y in instance.keypoints for v in (float(x), float(y), 2)]
        x0, y0, x1, y1 = instance.box
        annotations.append({"id": n, "image_id": n, "bbox": [x0, y0, x1 - x0, y1 - y0], "keypoints": flat})
    services.labels_import(
        dataset=dataset,
        fmt="coco",
        mapping="photo_id",
        actor=study_with_members["coordinator"],
        content=json.dumps({"images": images, "annotations": annotations}).encode(),
    )
    return {**study_with_members, "photos": photos, "dataset": dataset}


def start(world, **options) -> Campaign:
    defaults = {"iterations": 2, "epochs_first": 3, "epochs_next": 2, "imgsz": 640, "queue": "cpu"}
    return services.campaign_create(
        study=world["study"],
        dataset=world["dataset"],
        name="c1",
        actor=world["coordinator"],
        **{**defaults, **options},
    )


def run_task(campaign: Campaign) -> None:
    from workers.campaigns import run_landmark_campaign

    run_landmark_campaign.apply(args=[campaign.pk]).get()


def test_campaign_task_records_iterations_versions_and_progress(world, monkeypatch):
    trainer = TinyTrainer()
    monkeypatch.setattr(ml_campaign, "run_campaign", trainer)
    monkeypatch.setattr("workers.campaigns._device", lambda: "cpu")
    campaign = start(world)
    run_task(campaign)
    campaign.refresh_from_db()

    assert campaign.status == RunStatus.SUCCEEDED, campaign.error
    assert campaign.progress == 1.0 and len(campaign.epoch_log) == 5
    assert trainer.configs[0].imgsz == 320  # a CPU worker trains on smaller images
    paths = {record.path for record in trainer.initial.images}
    assert paths == {f"photo-{photo.pk}.png" for photo in world["photos"]}  # labelled + unlabelled pool
    assert {r.split for r in trainer.initial.images if not r.instances} == {"train"}

    rows = list(campaign.iteration_rows.order_by("k"))
    assert [row.k for row in rows] == [0, 1]
    assert rows[0].version_in == campaign.start_version and rows[0].version_out == rows[1].version_in
    assert rows[0].pseudo_labels_added == 1 and rows[1].pseudo_labels_added is None
    assert rows[0].train_labels == 2 and rows[0].val_labels == 1 and rows[1].train_labels == 3
    assert rows[1].nme == pytest.approx(0.08) and rows[1].recall == pytest.approx(0.35)

    produced = rows[0].version_out
    assert produced.source == VersionSource.CAMPAIGN and produced.parent == campaign.start_version
    assert produced.campaign_iteration == rows[0]
    new = produced.instances.exclude(pk__in=campaign.start_version.instances.all()).get()
    assert new.source.startswith("yolo-pose68@") and new.confidence == pytest.approx(0.9)
    assert DatasetPhoto.objects.get(dataset=world["dataset"], photo=new.photo).split == Split.TRAIN
    registered = ModelVersion.objects.get(name="yolo-pose68")
    assert not registered.is_active and registered.version.startswith(f"campaign-{campaign.pk}-")
    assert "NME 0.08" in registered.model_card and "Registered yolo-pose68" in campaign.progress_message


def test_a_model_that_finds_no_validation_face_is_not_offered_as_a_detector(world, monkeypatch):
    monkeypatch.setattr(ml_campaign, "run_campaign", TinyTrainer(matched=0))
    monkeypatch.setattr("workers.campaigns._device", lambda: "cpu")
    campaign = start(world)
    run_task(campaign)
    campaign.refresh_from_db()
    assert campaign.status == RunStatus.SUCCEEDED
    assert "not offered" in campaign.progress_message and not ModelVersion.objects.exists()


def test_cancelling_stops_the_campaign_between_epochs(world, monkeypatch):
    trainer = TinyTrainer()
    monkeypatch.setattr(ml_campaign, "run_campaign", trainer)
    monkeypatch.setattr("workers.campaigns._device", lambda: "cpu")
    campaign = start(world)
    real_report = services.campaign_progress

    def report_then_cancel(**kwargs):
        alive = real_report(**kwargs)
        if kwargs.get("epoch") == {"iteration": 0, "epoch": 2, "loss": {"pose_loss": 0.5}}:
            run_cancel(campaign, actor=world["coordinator"])
        return alive

    monkeypatch.setattr(services, "campaign_progress", report_then_cancel)
    run_task(campaign)
    campaign.refresh_from_db()
    assert campaign.status == RunStatus.CANCELLED
    assert [entry["epoch"] for entry in campaign.epoch_log] == [1, 2]
    assert not campaign.iteration_rows.exists() and world["dataset"].versions.count() == 1


def test_a_campaign_that_breaks_a_rule_fails_with_the_reason(world, monkeypatch):
    def into_validation(config, initial, progress=None, cancel=None, command=""):
        store = DatasetStore(config.root / "datasets")
        store.write(initial, 0)
        records = tuple(
            r.with_instances((*r.instances, face(9, 0.95, "yolo-pose68@bad"))) if r.split == "val" else r
            for r in initial.images
        )
        store.write(KeypointDataset(records, initial.image_root), 1, parent=0)
        progress(
            {
                "phase": "iteration_done",
                "iteration": 0,
                "report": {
                    "iteration": 0,
                    "counts": initial.counts(),
                    "metrics": {},
                    "pseudo_labels_added": 1,
                    "epochs": 1,
                },
            }
        )

    monkeypatch.setattr(ml_campaign, "run_campaign", into_validation)
    monkeypatch.setattr("workers.campaigns._device", lambda: "cpu")
    campaign = start(world)
    run_task(campaign)
    campaign.refresh_from_db()
    assert campaign.status == RunStatus.FAILED and "validation" in campaign.error
    assert world["dataset"].versions.count() == 1


def test_teacher_campaign_writes_the_teachers_labels_as_v0(
    study_with_members, make_photo, settings, tmp_path, monkeypatch
):
    settings.FACET_CAMPAIGN_DIR = tmp_path / "campaigns"
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"T{index}") for index in range(4)]
    dataset = services.dataset_create(study=study, name="teacher", actor=study_with_members["coordinator"])

    def fake_teacher(image_paths, labelled_fraction, val_fraction, teacher, image_root, progress, seed=0):
        names = sorted(
            (path.name for path in image_paths), key=lambda name: int(name[6:-4])
        )  # photo-<id>.png
        progress({"phase": "teacher", "done": 1, "total": 1})
        return KeypointDataset(
            tuple(
                ImageRecord(
                    name,
                    256,
                    256,
                    "val" if n == 0 else "train",
                    (face(n, None, "dlib-68@test"),) if n < 2 else (),
                )
                for n, name in enumerate(names)
            ),
            str(image_root),
        )

    monkeypatch.setattr(ml_campaign, "teacher_dataset", fake_teacher)
    monkeypatch.setattr(ml_campaign, "run_campaign", TinyTrainer())
    monkeypatch.setattr("workers.campaigns._device", lambda: "cpu")
    campaign = services.campaign_create(
        study=study,
        dataset=dataset,
        name="t",
        actor=study_with_members["coordinator"],
        teacher_model="dlib-68",
        iterations=1,
        epochs_first=1,
        queue="cpu",
    )
    run_task(campaign)
    campaign.refresh_from_db()
    assert campaign.status == RunStatus.SUCCEEDED, campaign.error
    v0 = dataset.versions.get(number=0)
    assert v0.source == VersionSource.TEACHER and v0.counts["by_source"] == {"dlib-68@test": 2}
    assert DatasetPhoto.objects.get(dataset=dataset, photo=photos[0]).split == Split.VAL
    assert campaign.iteration_rows.get().version_in == v0
