"""Landmark datasets in the platform: immutable versions, the split rule, merge bookkeeping and review."""

import io
import json
import zipfile

import numpy as np
import pytest
from django.core.exceptions import ValidationError

from ml.landmarks.formats import IBUG68_FLIP_IDX, ImageRecord, Instance, KeypointDataset, Provenance
from webapp.audit.models import AuditAction, AuditEvent
from webapp.campaigns import selectors, services
from webapp.campaigns.models import (
    Campaign,
    DatasetPhoto,
    KeypointDatasetVersion,
    KeypointInstance,
    Split,
    VersionSource,
)
from webapp.campaigns.services import LandmarkDataError, SplitRuleError
from webapp.runs.services import run_cancel

pytestmark = pytest.mark.django_db

SUGGESTER = "yolo-pose68@test"  # clearly test data: no model made these points


def face_points(cx: float, cy: float, size: float, seed: int = 0) -> np.ndarray:
    """68 distinct points in a face-sized square (geometry does not matter to the platform)."""
    rng = np.random.default_rng(seed)
    return np.column_stack([cx + rng.uniform(-size, size, 68), cy + rng.uniform(-size, size, 68)]).round(3)


def suggestion(confidence: float | None, seed: int = 0, cx: float = 128.0) -> Instance:
    return Instance.from_points(face_points(cx, 128, 40, seed), Provenance(SUGGESTER, confidence=confidence))


def coco_document(photos, splits=None) -> dict:
    images, annotations = [], []
    for number, photo in enumerate(photos, start=1):
        image = {
            "id": number,
            "file_name": f"photo-{photo.pk}.png",
            "width": photo.width,
            "height": photo.height,
        }
        if splits:
            image["facet_split"] = splits[number - 1]
        images.append(image)
        points = face_points(128, 128, 50, seed=number)
        flat = [value for x, y in points for value in (float(x), float(y), 2)]
        annotations.append(
            {
                "id": number,
                "image_id": number,
                "category_id": 1,
                "bbox": [60, 60, 140, 140],
                "keypoints": flat,
            }
        )
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "face"}]}


@pytest.fixture
def world(study_with_members, make_photo):
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"S{index:03d}") for index in range(6)]
    dataset = services.dataset_create(study=study, name="faces", actor=study_with_members["coordinator"])
    return {**study_with_members, "photos": photos, "dataset": dataset}


def imported(world, splits=("train", "train", "train", "val")) -> KeypointDatasetVersion:
    document = coco_document(world["photos"][: len(splits)], list(splits))
    return services.labels_import(
        dataset=world["dataset"],
        fmt="coco",
        content=json.dumps(document).encode(),
        mapping="photo_id",
        actor=world["coordinator"],
    )


def test_import_writes_v0_with_human_labels_and_fixed_splits(world):
    version = imported(world)
    assert version.number == 0 and version.parent is None and version.source == VersionSource.IMPORT
    assert version.counts["train_instances"] == 3 and version.counts["val_instances"] == 1
    rows = list(version.instances.all())
    assert {row.source for row in rows} == {"human"}
    assert all(row.labelled_by == world["coordinator"] for row in rows)
    assert dict(DatasetPhoto.objects.values_list("photo_id", "split"))[world["photos"][3].pk] == Split.VAL
    assert AuditEvent.objects.filter(action=AuditAction.CREATE, summary__contains="version v0").exists()


def test_versions_and_instances_cannot_be_changed_after_writing(world):
    version = imported(world)
    version.note = "edited"
    with pytest.raises(ValidationError, match="immutable"):
        version.save()
    row = version.instances.first()
    row.keypoints = [[0, 0]] * 68
    with pytest.raises(ValidationError, match="immutable"):
        row.save()
    membership = DatasetPhoto.objects.filter(split=Split.VAL).first()
    membership.split = Split.TRAIN
    with pytest.raises(ValidationError, match="fixed"):
        membership.save()


def test_reimport_keeps_a_photos_split_and_replaces_only_its_labels(world):
    imported(world)
    photo = world["photos"][3]  # validation photo
    document = coco_document([photo], ["train"])  # the file claims train: the fixed split wins
    with pytest.raises(SplitRuleError, match="fixed"):
        services.labels_import(
            dataset=world["dataset"],
            fmt="coco",
            content=json.dumps(document).encode(),
            mapping="photo_id",
            actor=world["coordinator"],
        )
    del document["images"][0]["facet_split"]
    version = services.labels_import(
        dataset=world["dataset"],
        fmt="coco",
        content=json.dumps(document).encode(),
        mapping="photo_id",
        actor=world["coordinator"],
    )
    assert version.number == 1 and version.parent.number == 0
    assert version.counts["val_instances"] == 1 and version.counts["total_instances"] == 4
    assert version.instances.filter(photo=photo).get().pk not in set(
        version.parent.instances.values_list("pk", flat=True)
    )


def test_model_suggestions_never_enter_the_validation_split(world):
    imported(world)
    with pytest.raises(SplitRuleError, match="validation"):
        services.suggestions_create(
            dataset=world["dataset"], photo=world["photos"][3], instances=[suggestion(0.9)], note="test"
        )
    version = services.suggestions_create(
        dataset=world["dataset"], photo=world["photos"][4], instances=[suggestion(0.9)], note="test"
    )
    assert DatasetPhoto.objects.get(dataset=world["dataset"], photo=world["photos"][4]).split == Split.TRAIN
    assert version.counts["by_source"][SUGGESTER] == 1


def ml_view(world, version):
    return services.version_to_ml(version, pool=world["photos"])


def test_campaign_merge_bookkeeping_keeps_rows_and_adds_pseudo_labels(world):
    from ml.landmarks.campaign import merge_predictions

    v0 = imported(world)
    dataset, photos = ml_view(world, v0)
    pool = {record.path: record for record in dataset.images}
    assert {record.split for record in dataset.images if not record.instances} == {"train"}
    unlabelled = [path for path, record in pool.items() if not record.instances]
    labelled_train = next(
        path for path, record in pool.items() if record.instances and record.split == "train"
    )
    predictions = {
        unlabelled[0]: [suggestion(0.95, seed=1)],
        # overlaps the human label on this photo (IoU > 0.3): dropped by the merge rule
        labelled_train: [
            Instance.from_points(face_points(128, 128, 50, seed=9), Provenance(SUGGESTER, confidence=0.99))
        ],
    }
    merged, added = merge_predictions(dataset, predictions)
    assert added == 1
    v1 = services.version_from_ml(
        dataset=world["dataset"],
        ml_dataset=merged,
        photos=photos,
        parent=v0,
        source=VersionSource.CAMPAIGN,
        note="iteration 0",
    )
    assert set(v0.instances.values_list("pk", flat=True)) < set(v1.instances.values_list("pk", flat=True))
    new = v1.instances.exclude(pk__in=v0.instances.all()).get()
    assert new.source == SUGGESTER and new.confidence == pytest.approx(0.95)
    assert new.photo == photos[unlabelled[0]]
    assert DatasetPhoto.objects.get(dataset=world["dataset"], photo=new.photo).split == Split.TRAIN
    assert v1.counts["total_instances"] == 5 and v1.parent == v0


def test_campaign_bookkeeping_refuses_dropped_originals_and_validation_pseudo_labels(world):
    v0 = imported(world)
    dataset, photos = ml_view(world, v0)
    dropped = KeypointDataset(
        tuple(record.with_instances(()) if record.split == "val" else record for record in dataset.images)
    )
    with pytest.raises(LandmarkDataError, match="always kept"):
        services.version_from_ml(
            dataset=world["dataset"],
            ml_dataset=dropped,
            photos=photos,
            parent=v0,
            source=VersionSource.CAMPAIGN,
            note="bad",
        )
    into_val = KeypointDataset(
        tuple(
            record.with_instances((*record.instances, suggestion(0.9, cx=40)))
            if record.split == "val"
            else record
            for record in dataset.images
        )
    )
    with pytest.raises(SplitRuleError, match="validation"):
        services.version_from_ml(
            dataset=world["dataset"],
            ml_dataset=into_val,
            photos=photos,
            parent=v0,
            source=VersionSource.CAMPAIGN,
            note="bad",
        )
    new_val_photo = KeypointDataset(
        tuple(
            ImageRecord(r.path, r.width, r.height, "val", (suggestion(0.9),)) if not r.instances else r
            for r in dataset.images
        )
    )
    with pytest.raises(SplitRuleError):
        services.version_from_ml(
            dataset=world["dataset"],
            ml_dataset=new_val_photo,
            photos=photos,
            parent=v0,
            source=VersionSource.CAMPAIGN,
            note="bad",
        )
    assert world["dataset"].versions.count() == 1


def test_review_queue_puts_the_least_confident_suggestion_first(world):
    imported(world)
    for photo, confidence in zip(world["photos"][4:6], (0.93, 0.71), strict=True):
        services.suggestions_create(
            dataset=world["dataset"], photo=photo, instances=[suggestion(confidence)], note="test"
        )
    services.suggestions_create(
        dataset=world["dataset"],
        photo=world["photos"][0],
        instances=[suggestion(None, cx=30)],
        note="teacher-like, no confidence",
    )
    queue = list(selectors.review_queue(world["dataset"]))
    assert [row.confidence for row in queue] == [None, 0.71, 0.93]


def test_accepting_a_corrected_suggestion_writes_a_human_label_and_a_new_version(world):
    imported(world)
    before = services.suggestions_create(
        dataset=world["dataset"], photo=world["photos"][4], instances=[suggestion(0.75)], note="test"
    )
    suggested = before.instances.get(source=SUGGESTER)
    corrected = [list(point) for point in suggested.keypoints]
    corrected[30] = [corrected[30][0] + 7.5, corrected[30][1] - 3.0]
    rater = world["rater"]
    accepted = services.review_accept(instance=suggested, actor=rater, keypoints=corrected)

    assert accepted.source == "human" and accepted.labelled_by == rater and accepted.labelled_at is not None
    assert accepted.derived_from == suggested and accepted.keypoints[30] == pytest.approx(corrected[30])
    suggested.refresh_from_db()
    assert suggested.source == SUGGESTER and suggested.keypoints[30] != accepted.keypoints[30]
    latest = world["dataset"].latest_version
    assert latest.parent == before and latest.source == VersionSource.REVIEW
    assert (
        latest.instances.filter(pk=accepted.pk).exists()
        and not latest.instances.filter(pk=suggested.pk).exists()
    )
    assert before.instances.filter(pk=suggested.pk).exists()  # history untouched
    assert "1 point(s) moved" in latest.note
    assert "human (rater" in accepted.provenance_label
    with pytest.raises(LandmarkDataError, match="reviewed it already"):
        services.review_accept(instance=suggested, actor=world["clinician"])


def test_rejecting_a_suggestion_leaves_it_out_of_the_next_version_only(world):
    imported(world)
    before = services.suggestions_create(
        dataset=world["dataset"], photo=world["photos"][4], instances=[suggestion(0.8)], note="test"
    )
    suggested = before.instances.get(source=SUGGESTER)
    version = services.review_reject(instance=suggested, actor=world["clinician"])
    assert version.counts["total_instances"] == before.counts["total_instances"] - 1
    assert KeypointInstance.objects.filter(pk=suggested.pk).exists()


@pytest.mark.parametrize(
    "points, message",
    [([[1, 2]] * 67, "68 finite"), ([[float("nan"), 1]] * 68, "68 finite"), ([[1e6, 1]] * 68, "far outside")],
)
def test_bad_corrections_are_refused_with_a_clear_message(world, points, message):
    imported(world)
    version = services.suggestions_create(
        dataset=world["dataset"], photo=world["photos"][4], instances=[suggestion(0.8)], note="test"
    )
    with pytest.raises(LandmarkDataError, match=message):
        services.review_accept(
            instance=version.instances.get(source=SUGGESTER), actor=world["rater"], keypoints=points
        )


def test_yolo_export_is_a_pseudonymous_zip_with_the_68_point_scheme(world):
    version = imported(world)
    name, content = services.version_export(version=version, fmt="yolo", actor=world["coordinator"])
    assert name.endswith("-v0-yolo.zip")
    archive = zipfile.ZipFile(io.BytesIO(content))
    data_yaml = archive.read("data.yaml").decode()
    assert "kpt_shape: [68, 3]" in data_yaml and "path:" not in data_yaml
    assert f"flip_idx: [{', '.join(map(str, IBUG68_FLIP_IDX))}]" in data_yaml
    images = [entry for entry in archive.namelist() if entry.startswith("images/")]
    assert len(images) == 4 and all("photo-" in entry for entry in images)
    assert all("S00" not in entry for entry in archive.namelist())  # no subject codes in names
    assert archive.read("val.txt").decode().startswith("./images/val/")
    label = (
        archive.read(next(e for e in archive.namelist() if e.startswith("labels/train/"))).decode().split()
    )
    assert len(label) == 5 + 68 * 3
    assert AuditEvent.objects.filter(action=AuditAction.EXPORT, actor=world["coordinator"]).count() == 1


def test_detector_choice_is_a_study_setting_and_refuses_an_untrained_model(world, monkeypatch):
    from django.core.exceptions import ValidationError

    from webapp.analysis.services import landmark_detector_set

    study = world["study"]
    assert study.landmark_detector == "dlib-68"
    monkeypatch.setattr("webapp.analysis.services.model_is_usable", lambda name, study: False)
    with pytest.raises(ValidationError, match="no trained weights"):
        landmark_detector_set(study=study, detector="yolo-pose68", actor=world["coordinator"])
    monkeypatch.setattr("webapp.analysis.services.model_is_usable", lambda name, study: True)
    landmark_detector_set(study=study, detector="yolo-pose68", actor=world["coordinator"])
    study.refresh_from_db()
    world["other_study"].refresh_from_db()
    assert study.landmark_detector == "yolo-pose68"
    assert world["other_study"].landmark_detector == "dlib-68"


def test_campaign_needs_labels_in_both_splits_and_is_sent_after_commit(
    world, monkeypatch, django_capture_on_commit_callbacks
):
    sent = []
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: sent.append(run))
    with pytest.raises(LandmarkDataError, match="no labels yet"):
        services.campaign_create(
            study=world["study"], dataset=world["dataset"], name="c0", actor=world["coordinator"]
        )
    imported(world, splits=("train", "train"))
    with pytest.raises(LandmarkDataError, match="both splits"):
        services.campaign_create(
            study=world["study"], dataset=world["dataset"], name="c1", actor=world["coordinator"]
        )
    imported(world, splits=("train", "train", "train", "val"))
    with django_capture_on_commit_callbacks(execute=True):
        campaign = services.campaign_create(
            study=world["study"],
            dataset=world["dataset"],
            name="c2",
            actor=world["coordinator"],
            iterations=2,
            queue="cpu",
        )
    assert sent == [campaign] and campaign.start_version == world["dataset"].latest_version
    with pytest.raises(LandmarkDataError, match="already queued"):
        services.campaign_create(
            study=world["study"], dataset=world["dataset"], name="c3", actor=world["coordinator"]
        )
    run_cancel(campaign, actor=world["coordinator"])
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
