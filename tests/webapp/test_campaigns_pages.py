"""The landmark pages: import/export round trips through the pages, permissions, review, charts."""

import io
import json
import xml.etree.ElementTree as ElementTree
import zipfile

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from ml.landmarks.formats import Instance, Provenance, write_pts
from webapp.campaigns import services
from webapp.campaigns.models import Campaign, CampaignIteration, KeypointDataset

pytestmark = pytest.mark.django_db


def face_points(seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(70, 190, 68), rng.uniform(60, 200, 68)]).round(3)


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


@pytest.fixture
def world(study_with_members, make_photo):
    study = study_with_members["study"]
    photos = [make_photo(study, subject_code=f"S{index:03d}", visit_label="baseline") for index in range(4)]
    dataset = services.dataset_create(study=study, name="faces", actor=study_with_members["coordinator"])
    return {**study_with_members, "photos": photos, "dataset": dataset}


def coco_upload(photos) -> SimpleUploadedFile:
    images, annotations = [], []
    for number, photo in enumerate(photos, start=1):
        images.append(
            {
                "id": number,
                "file_name": f"photo-{photo.pk}.png",
                "width": 256,
                "height": 256,
                "facet_split": "val" if number == len(photos) else "train",
            }
        )
        flat = [value for x, y in face_points(number) for value in (float(x), float(y), 2)]
        annotations.append(
            {
                "id": number,
                "image_id": number,
                "category_id": 1,
                "bbox": [60, 50, 140, 160],
                "keypoints": flat,
            }
        )
    document = {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "face"}]}
    return SimpleUploadedFile("labels.json", json.dumps(document).encode(), content_type="application/json")


def import_via_page(client, dataset, upload, fmt="coco", mapping="photo_id", **extra):
    return client.post(
        reverse("campaigns:dataset_import", args=[dataset.pk]),
        {
            "format": fmt,
            "mapping": mapping,
            "file": upload,
            "val_fraction": "0.25",
            "one_based": "on",
            **extra,
        },
    )


def test_coco_export_reimports_to_the_same_labels_through_the_pages(world):
    coordinator = client_for(world["coordinator"])
    response = import_via_page(coordinator, world["dataset"], coco_upload(world["photos"]))
    assert response.status_code == 302, response.content.decode()[:2000]
    version = world["dataset"].latest_version
    assert version.counts["train_instances"] == 3 and version.counts["val_instances"] == 1

    exported = coordinator.get(reverse("campaigns:version_export", args=[version.pk]) + "?format=coco")
    assert exported.status_code == 200 and exported["Content-Type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(exported.content))
    assert sorted(name for name in archive.namelist() if name.startswith("images/")) == sorted(
        f"images/photo-{photo.pk}.png" for photo in world["photos"]
    )

    copy = services.dataset_create(study=world["study"], name="copy", actor=world["coordinator"])
    response = import_via_page(coordinator, copy, SimpleUploadedFile("export.zip", exported.content))
    assert response.status_code == 302
    original = {row.photo_id: row.keypoints for row in version.instances.all()}
    again = copy.latest_version
    assert {row.photo_id: row.keypoints for row in again.instances.all()} == original
    assert again.counts["val_instances"] == 1  # facet_split travels with the export


def test_pts_zip_and_dlib_xml_import_by_subject_visit_view(world, tmp_path):
    coordinator = client_for(world["coordinator"])
    points = face_points(3)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for code in ("S000", "S001"):
            write_pts(tmp_path / "face.pts", points)  # written 1-based, as 300-W files are
            archive.write(tmp_path / "face.pts", f"labels/{code}/baseline/frontal.pts")
    response = import_via_page(
        coordinator,
        world["dataset"],
        SimpleUploadedFile("pts.zip", buffer.getvalue()),
        fmt="pts",
        mapping="subject_visit_view",
    )
    assert response.status_code == 302, response.content.decode()[:3000]
    rows = list(world["dataset"].latest_version.instances.all())
    assert len(rows) == 2 and np.allclose(rows[0].keypoints, points, atol=1e-3)

    root = ElementTree.Element("dataset")
    images = ElementTree.SubElement(root, "images")
    image = ElementTree.SubElement(images, "image", file="S002/baseline/frontal.jpg")
    box = ElementTree.SubElement(image, "box", top="50", left="60", width="140", height="160")
    for index, (x, y) in enumerate(points):
        ElementTree.SubElement(box, "part", name=f"{index:02d}", x=str(x), y=str(y))
    xml = ElementTree.tostring(root)
    response = import_via_page(
        coordinator,
        world["dataset"],
        SimpleUploadedFile("l.xml", xml),
        fmt="dlib",
        mapping="subject_visit_view",
    )
    assert response.status_code == 302
    latest = world["dataset"].latest_version
    assert latest.number == 1 and latest.counts["total_instances"] == 3


@pytest.mark.parametrize(
    "name, message",
    [("photo-987654.png", "names no photo of this study"), ("nobody/baseline/frontal.png", "no photo")],
)
def test_import_of_unknown_photos_is_refused_with_a_clear_message(world, name, message):
    mapping = "photo_id" if name.startswith("photo") else "subject_visit_view"
    document = {
        "images": [{"id": 1, "file_name": name, "width": 256, "height": 256}],
        "annotations": [{"id": 1, "image_id": 1, "bbox": [1, 1, 9, 9], "keypoints": [1.0, 1.0, 2] * 68}],
    }
    upload = SimpleUploadedFile("l.json", json.dumps(document).encode())
    response = import_via_page(client_for(world["coordinator"]), world["dataset"], upload, mapping=mapping)
    assert response.status_code == 400 and message in response.content.decode()
    assert world["dataset"].versions.count() == 0


def test_a_photo_of_another_study_cannot_be_named_in_an_import(world, make_photo):
    foreign = make_photo(world["other_study"], subject_code="X1")
    response = import_via_page(client_for(world["coordinator"]), world["dataset"], coco_upload([foreign]))
    assert response.status_code == 400 and "names no photo of this study" in response.content.decode()


def test_import_and_export_need_a_coordinator(world):
    for role in ("monitor", "clinician", "rater"):
        response = import_via_page(client_for(world[role]), world["dataset"], coco_upload(world["photos"]))
        assert response.status_code == 403, role
    import_via_page(client_for(world["coordinator"]), world["dataset"], coco_upload(world["photos"]))
    url = reverse("campaigns:version_export", args=[world["dataset"].latest_version.pk]) + "?format=yolo"
    assert client_for(world["clinician"]).get(url).status_code == 403
    assert client_for(world["outsider"]).get(url).status_code == 404
    assert client_for(world["coordinator"]).get(url).status_code == 200


def suggested(world, confidence=0.72):
    import_via_page(client_for(world["coordinator"]), world["dataset"], coco_upload(world["photos"][:2]))
    version = services.suggestions_create(
        dataset=world["dataset"],
        photo=world["photos"][3],
        instances=[
            Instance.from_points(face_points(7), Provenance("yolo-pose68@test", confidence=confidence))
        ],
        note="test suggestion",
    )
    return version.instances.get(source="yolo-pose68@test")


def test_rater_accepts_a_corrected_suggestion_and_monitor_may_not(world):
    instance = suggested(world)
    url = reverse("campaigns:instance_review", args=[instance.pk])
    page = client_for(world["monitor"]).get(url)
    assert (
        page.status_code == 200
        and b"yolo-pose68@test" in page.content
        and b"review-accept" not in page.content
    )
    points = [list(point) for point in instance.keypoints]
    points[0] = [points[0][0] + 5, points[0][1]]
    body = {"decision": "accept", "keypoints": json.dumps(points)}
    assert client_for(world["monitor"]).post(url, body).status_code == 403
    assert client_for(world["outsider"]).post(url, body).status_code == 404
    response = client_for(world["rater"]).post(url, body)
    assert response.status_code == 302
    accepted = world["dataset"].latest_version.instances.get(derived_from=instance)
    assert response["Location"] == reverse("campaigns:instance_review", args=[accepted.pk])
    page = client_for(world["rater"]).get(response["Location"]).content.decode()
    assert 'data-source="human"' in page and "human (rater" in page


def test_review_queue_page_lists_suggestions_least_confident_first(world):
    low = suggested(world, confidence=0.71)
    high = services.suggestions_create(
        dataset=world["dataset"],
        photo=world["photos"][2],
        instances=[Instance.from_points(face_points(8), Provenance("yolo-pose68@test", confidence=0.98))],
        note="test",
    ).instances.get(confidence=0.98)
    page = client_for(world["clinician"]).get(reverse("campaigns:review_queue", args=[world["dataset"].pk]))
    text = page.content.decode()
    assert text.index(f"#{low.pk}<") < text.index(f"#{high.pk}<")


def test_campaign_page_shows_iteration_counts_metrics_and_charts(world):
    import_via_page(client_for(world["coordinator"]), world["dataset"], coco_upload(world["photos"]))
    campaign = Campaign.objects.create(
        study=world["study"],
        dataset=world["dataset"],
        name="c1",
        start_version=world["dataset"].latest_version,
        status="succeeded",
    )
    for k, (train, ap50, nme) in enumerate([(3, 0.41, 0.091), (7, 0.63, 0.064)]):
        CampaignIteration.objects.create(
            campaign=campaign,
            k=k,
            train_labels=train,
            val_labels=1,
            total_labels=train + 1,
            ap50=ap50,
            precision=0.5,
            recall=0.4,
            ap50_95=0.2,
            nme=nme,
        )
    page = client_for(world["monitor"]).get(reverse("campaigns:campaign_detail", args=[campaign.pk]))
    text = page.content.decode()
    assert page.status_code == 200
    assert text.count("<polyline") >= 3 and "0.0640" in text and "Labels per iteration" in text
    status = client_for(world["monitor"]).get(reverse("runs:status", args=["campaign", campaign.pk])).json()
    assert (status["id"], status["run_kind"], status["status"]) == (campaign.pk, "campaign", "succeeded")
    assert status["can_cancel"] is False and status["can_retry"] is False  # a monitor controls nothing


def test_coordinator_creates_a_dataset_and_queues_a_campaign_from_the_pages(world, monkeypatch):
    monkeypatch.setattr("webapp.runs.dispatch.send_run", lambda run, countdown=None: True)
    coordinator = client_for(world["coordinator"])
    home = coordinator.get(reverse("campaigns:study_home", args=[world["study"].pk]))
    assert home.status_code == 200 and b"dlib-68" in home.content
    response = coordinator.post(
        reverse("campaigns:dataset_create", args=[world["study"].pk]), {"name": "new"}
    )
    dataset = KeypointDataset.objects.get(name="new")
    assert response["Location"] == reverse("campaigns:dataset_detail", args=[dataset.pk])
    import_via_page(coordinator, dataset, coco_upload(world["photos"]))
    form = {
        "name": "first",
        "dataset": dataset.pk,
        "teacher_model": "",
        "labelled_fraction": 0.2,
        "val_fraction": 0.25,
        "iterations": 3,
        "epochs_first": 2,
        "epochs_next": 1,
        "imgsz": 320,
        "batch": 4,
        "min_confidence": 0.7,
        "max_iou": 0.3,
        "queue": "cpu",
    }
    url = reverse("campaigns:campaign_create", args=[world["study"].pk])
    assert client_for(world["clinician"]).post(url, form).status_code == 403
    response = coordinator.post(url, form)
    campaign = Campaign.objects.get(name="first")
    assert response.status_code == 302 and campaign.queue == "cpu" and campaign.start_version.number == 0
    cancel = reverse("runs:cancel", args=["campaign", campaign.pk])
    assert client_for(world["monitor"]).post(cancel).status_code == 403
    assert client_for(world["clinician"]).post(cancel).status_code == 302
    assert Campaign.objects.get(pk=campaign.pk).status == "cancelled"
