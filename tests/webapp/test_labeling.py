"""Wrinkle labels: versioned saves, the server's ground truth, access rules, the dataset export and its
audit trail, and agreement of the browser's preview (static/js/wrinkle_labeler.js) with ml/wrinkles."""

import csv
import hashlib
import io
import json
import shutil
import subprocess
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from django.core.files.base import ContentFile
from django.test import Client
from django.urls import reverse

from ml.wrinkles.crop import forehead_eye_crop
from ml.wrinkles.labeling import label_wrinkles, texture_map
from ml.wrinkles.losses import weighted_wrinkle_map
from webapp.analysis.models import AnalysisJob, Result
from webapp.audit.models import AuditAction, AuditEvent
from webapp.labeling.models import ImmutableLabelError, WrinkleLabel
from webapp.runs.models import RunStatus
from webapp.studies.models import Photo, Subject, Visit, VisitRole

pytestmark = pytest.mark.django_db

REPO = Path(__file__).resolve().parents[2]
LABELER_JS = REPO / "static" / "js" / "wrinkle_labeler.js"
SIZE = 256


def creased_image(seed: int = 0, size: int = SIZE) -> np.ndarray:
    """Skin-coloured noise with a few dark horizontal creases: something for the threshold to find."""
    rng = np.random.default_rng(seed)
    image = np.clip(rng.normal(170, 6, (size, size, 3)), 0, 255)
    for row in (60, 100, 140):
        image[row : row + 2, 40:200] *= 0.75
    return image.astype(np.uint8)


def png(array: np.ndarray) -> bytes:
    if array.ndim == 3:
        array = cv2.cvtColor(array, cv2.COLOR_RGB2BGR)
    return cv2.imencode(".png", array)[1].tobytes()


@pytest.fixture
def make_creased_photo():
    counter = iter(range(1, 1000))

    def make(study, subject_code: str = "S001", visit_label: str = "baseline") -> Photo:
        subject, _ = Subject.objects.get_or_create(study=study, code=subject_code)
        visit, _ = Visit.objects.get_or_create(
            subject=subject, label=visit_label, defaults={"role": VisitRole.PRE}
        )
        content = png(creased_image(next(counter)))
        digest = hashlib.sha256(content).hexdigest()
        photo = Photo(
            study=study,
            visit=visit,
            view="frontal",
            content_hash=digest,
            image_hash=digest,
            source_format="PNG",
            width=SIZE,
            height=SIZE,
        )
        photo.image.save("upload-name-secret.png", ContentFile(content), save=False)
        photo.thumbnail.save("thumb.jpg", ContentFile(content), save=False)
        photo.save()
        return photo

    return make


def rough_mask(size: int = SIZE) -> np.ndarray:
    mask = np.zeros((size, size), dtype=np.uint8)
    mask[50:150, 30:210] = 255
    return mask


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def save_label(client: Client, photo: Photo, mask: np.ndarray | None = None, **fields):
    body = {
        "region": "whole",
        "method": "bradley-roth",
        "window": 15,
        "percent": 15,
        "block_size": 11,
        "c": 1,
        "note": "",
        **fields,
    }
    body["rough_mask"] = ContentFile(png(rough_mask() if mask is None else mask), name="rough.png")
    return client.post(reverse("labeling:label_photo", args=[photo.pk]), body)


def stored_mask(field) -> np.ndarray:
    with field.open("rb") as handle:
        return cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_UNCHANGED)


def test_two_saves_make_versions_1_and_2_and_keep_both(study_with_members, make_creased_photo):
    photo = make_creased_photo(study_with_members["study"])
    client = client_for(study_with_members["clinician"])
    first = save_label(client, photo, note="first pass")
    second_mask = rough_mask()
    second_mask[150:200, 30:210] = 255
    second = save_label(client, photo, mask=second_mask)
    assert first.status_code == 201, first.content
    assert second.status_code == 201, second.content
    assert [first.json()["label"]["version"], second.json()["label"]["version"]] == [1, 2]
    labels = list(WrinkleLabel.objects.filter(photo=photo).order_by("version"))
    assert [label.version for label in labels] == [1, 2]
    assert labels[0].note == "first pass"
    assert labels[0].author == study_with_members["clinician"]
    assert labels[0].rough_pixels < labels[1].rough_pixels
    assert (stored_mask(labels[0].rough_mask) > 0).sum() == labels[0].rough_pixels
    with pytest.raises(ImmutableLabelError):
        labels[0].save()


@pytest.mark.parametrize(
    "method, parameters",
    [("bradley-roth", {"window": 21, "percent": 10.0}), ("opencv-gaussian", {"block_size": 11, "c": 1.0})],
)
def test_saved_ground_truth_is_label_wrinkles_of_the_labeling_image(
    study_with_members, make_creased_photo, method, parameters
):
    photo = make_creased_photo(study_with_members["study"])
    response = save_label(client_for(study_with_members["coordinator"]), photo, method=method, **parameters)
    assert response.status_code == 201, response.content
    label = WrinkleLabel.objects.get(photo=photo)
    with photo.image.open("rb") as handle:
        image = cv2.cvtColor(
            cv2.imdecode(np.frombuffer(handle.read(), np.uint8), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB
        )
    expected = label_wrinkles(image, rough_mask() > 0, method=method, **parameters)
    assert expected.sum() > 100  # the creases are found, so the comparison is not of two empty masks
    np.testing.assert_array_equal(stored_mask(label.ground_truth) > 0, expected)
    np.testing.assert_array_equal(stored_mask(label.image)[..., ::-1], image)
    np.testing.assert_array_equal(
        stored_mask(label.texture_map), np.rint(texture_map(image)).astype(np.uint8)
    )
    assert label.method == method and label.parameters == parameters
    assert label.wrinkle_pixels == int(expected.sum())
    event = AuditEvent.objects.get(action=AuditAction.CREATE, object_type="labeling.wrinklelabel")
    assert event.actor == study_with_members["coordinator"]
    assert event.study_id == photo.study_id
    assert event.details["version"] == 1


def test_forehead_eye_region_uses_the_landmark_crop(study_with_members, make_creased_photo):
    photo = make_creased_photo(study_with_members["study"])
    landmarks = np.zeros((68, 2))
    landmarks[:, 0], landmarks[:, 1] = 128, 150
    landmarks[0], landmarks[16], landmarks[27] = (40, 130), (216, 130), (128, 125)
    job = AnalysisJob.objects.create(
        kind="landmarks", photo=photo, queue="cpu", model_name="dlib-68", status=RunStatus.SUCCEEDED
    )
    result = Result.objects.create(
        job=job,
        data={"faces": [{"landmarks": landmarks.tolist()}]},
        model_name="dlib-68",
        model_version="test",
        code_version="test",
    )
    client = client_for(study_with_members["clinician"])
    page = client.get(reverse("labeling:label_photo", args=[photo.pk]))
    assert page.status_code == 200
    assert page.context["region"] == "forehead-eye"
    image_response = client.get(reverse("labeling:labeling_image", args=[photo.pk]) + "?region=forehead-eye")
    crop_image = cv2.imdecode(np.frombuffer(image_response.content, np.uint8), cv2.IMREAD_COLOR)
    assert crop_image.shape == (640, 640, 3)
    assert image_response["Cache-Control"] == "private, no-store"
    mask = np.zeros((640, 640), dtype=np.uint8)
    mask[100:400, 50:600] = 255
    response = save_label(client, photo, mask=mask, region="forehead-eye", landmarks_result=result.pk)
    assert response.status_code == 201, response.content
    label = WrinkleLabel.objects.get(photo=photo)
    crop = forehead_eye_crop(landmarks)
    assert label.region["kind"] == "forehead-eye"
    assert label.region["landmarks_result"] == result.pk
    np.testing.assert_allclose(label.region["matrix"], crop.affine())
    # A mask of the whole photo's size is refused for the crop, with a sentence saying why.
    wrong = save_label(client, photo, region="forehead-eye", landmarks_result=result.pk)
    assert wrong.status_code == 400
    assert "640×640" in wrong.json()["error"]


@pytest.mark.parametrize(
    "mask_bytes, fields, message",
    [
        (png(np.zeros((SIZE, SIZE), np.uint8)), {}, "empty"),
        (png(np.full((32, 32), 255, np.uint8)), {}, "reload the page"),
        (b"not a png", {}, "not a readable PNG"),
        (None, {"window": 14}, "odd"),
        (None, {"region": "forehead-eye"}, "no landmarks result"),
    ],
)
def test_bad_label_input_gets_a_clear_message(
    study_with_members, make_creased_photo, mask_bytes, fields, message
):
    photo = make_creased_photo(study_with_members["study"])
    client = client_for(study_with_members["clinician"])
    body = {
        "region": "whole",
        "method": "bradley-roth",
        "window": 15,
        "percent": 15,
        "block_size": 11,
        "c": 1,
        **fields,
        "rough_mask": ContentFile(mask_bytes or png(rough_mask()), name="rough.png"),
    }
    response = client.post(reverse("labeling:label_photo", args=[photo.pk]), body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert not WrinkleLabel.objects.exists()


def test_who_may_see_save_and_export(study_with_members, make_creased_photo):
    study = study_with_members["study"]
    photo = make_creased_photo(study)
    assert save_label(client_for(study_with_members["rater"]), photo).status_code == 201
    label = WrinkleLabel.objects.get()
    outsider = client_for(study_with_members["outsider"])
    monitor = client_for(study_with_members["monitor"])
    for url in (
        reverse("labeling:label_photo", args=[photo.pk]),
        reverse("labeling:labeling_image", args=[photo.pk]),
        reverse("labeling:label_mask", args=[label.pk]),
        reverse("labeling:study_labels", args=[study.pk]),
        reverse("labeling:export", args=[study.pk]),
    ):
        assert outsider.get(url).status_code == 404, url
    assert save_label(outsider, photo).status_code == 404
    assert save_label(monitor, photo).status_code == 403
    page = monitor.get(reverse("labeling:label_photo", args=[photo.pk]))
    assert page.status_code == 200 and page.context["config"]["canSave"] is False
    assert monitor.get(reverse("labeling:label_mask", args=[label.pk])).status_code == 200
    assert (
        client_for(study_with_members["clinician"])
        .get(reverse("labeling:export", args=[study.pk]))
        .status_code
        == 403
    )
    assert monitor.get(reverse("labeling:export", args=[study.pk])).status_code == 403
    assert WrinkleLabel.objects.count() == 1


def read_zip(response) -> zipfile.ZipFile:
    return zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))


def test_export_zip_holds_latest_versions_with_maps_and_a_pseudonymous_index(
    study_with_members, make_creased_photo
):
    study = study_with_members["study"]
    clinician = client_for(study_with_members["clinician"])
    first = make_creased_photo(study, subject_code="S001")
    second = make_creased_photo(study, subject_code="S002", visit_label="week 12")
    other = make_creased_photo(study_with_members["other_study"], subject_code="X999")
    save_label(clinician, first)
    save_label(clinician, first)
    save_label(clinician, second)
    save_label(client_for(study_with_members["outsider"]), other)
    coordinator = client_for(study_with_members["coordinator"])
    response = coordinator.get(reverse("labeling:export", args=[study.pk]))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/zip"
    assert response.streaming
    archive = read_zip(response)
    rows = list(csv.DictReader(io.StringIO(archive.read("index.csv").decode())))
    assert [(row["subject"], row["version"]) for row in rows] == [("S001", "2"), ("S002", "1")]
    assert rows[1]["visit"] == "week 12" and rows[1]["view"] == "frontal"
    assert rows[0]["author"] == "clinician"
    assert json.loads(rows[0]["parameters"]) == {"window": 15, "percent": 15.0}
    assert rows[0]["face"] == "S001"  # ml.wrinkles.train groups folds by this column
    names = archive.namelist()
    assert not any("secret" in name or "X999" in name for name in names)
    latest = WrinkleLabel.objects.get(photo=first, version=2)
    truth = stored_mask(latest.ground_truth) > 0
    assert archive.read(rows[0]["mask"]) == latest.ground_truth.open("rb").read()
    for scale in (2, 4, 8):
        weights = cv2.imdecode(
            np.frombuffer(archive.read(rows[0][f"weighted_s{scale}"]), np.uint8), cv2.IMREAD_UNCHANGED
        )
        assert weights.dtype == np.uint16
        np.testing.assert_allclose(
            weights / 65535, weighted_wrinkle_map(truth, scale)[0, 0].numpy(), atol=1e-4
        )
    for column in ("image", "rough_mask", "texture_map"):
        assert rows[0][column] in names
    assert "README.txt" in names
    event = AuditEvent.objects.get(action=AuditAction.EXPORT)
    assert event.actor == study_with_members["coordinator"] and event.study_id == study.pk
    assert sorted(event.details["photos"]) == sorted([first.pk, second.pk])
    selection = read_zip(coordinator.get(reverse("labeling:export", args=[study.pk]) + f"?photo={second.pk}"))
    assert [row["subject"] for row in csv.DictReader(io.StringIO(selection.read("index.csv").decode()))] == [
        "S002"
    ]


def test_label_files_are_audited_views(study_with_members, make_creased_photo):
    photo = make_creased_photo(study_with_members["study"])
    client = client_for(study_with_members["clinician"])
    label_id = save_label(client, photo).json()["label"]["id"]
    for name in ("label_image", "label_rough", "label_mask", "label_texture"):
        response = client.get(reverse(f"labeling:{name}", args=[label_id]))
        assert response.status_code == 200 and response["Content-Type"] == "image/png"
        assert response["Cache-Control"] == "private, no-store"
    files = AuditEvent.objects.filter(action=AuditAction.VIEW, object_type="labeling.wrinklelabel")
    assert sorted(files.values_list("details__file", flat=True)) == ["image", "mask", "rough", "texture"]


@pytest.mark.skipif(shutil.which("node") is None, reason="Node.js is not installed")
def test_browser_preview_matches_python_bradley_roth(tmp_path):
    """The JS texture map and Bradley–Roth threshold agree with ml.wrinkles.labeling on a small example."""
    image = creased_image(seed=3, size=48)
    mask = np.zeros((48, 48), dtype=np.uint8)
    mask[5:40, 4:44] = 1
    module = tmp_path / "wrinkle_labeler.mjs"
    module.write_text(LABELER_JS.read_text())
    script = tmp_path / "run.mjs"
    script.write_text(
        "import * as labeler from './wrinkle_labeler.mjs';\n"
        "import { readFileSync } from 'node:fs';\n"
        "const input = JSON.parse(readFileSync(0, 'utf8'));\n"
        "const rgba = new Uint8ClampedArray(input.width * input.height * 4);\n"
        "input.rgb.forEach((v, i) => { rgba[4 * Math.floor(i / 3) + (i % 3)] = v; });\n"
        "const texture = labeler.textureMap(rgba, input.width, input.height);\n"
        "const labels = labeler.labelWrinkles(texture, input.width, input.height, input.mask,\n"
        "  { method: 'bradley-roth', window: 15, percent: 15 });\n"
        "console.log(JSON.stringify({ texture: Array.from(texture), labels: Array.from(labels) }));\n"
    )
    payload = {"width": 48, "height": 48, "rgb": image.ravel().tolist(), "mask": mask.ravel().tolist()}
    completed = subprocess.run(
        ["node", str(script)],
        input=json.dumps(payload),
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    output = json.loads(completed.stdout)
    np.testing.assert_allclose(np.array(output["texture"]).reshape(48, 48), texture_map(image), atol=1e-9)
    expected = label_wrinkles(image, mask, method="bradley-roth", window=15, percent=15)
    assert expected.sum() > 20
    np.testing.assert_array_equal(np.array(output["labels"], dtype=bool).reshape(48, 48), expected)


def test_a_label_from_human_boxes_is_a_version_that_opens_in_the_labeler(
    study_with_members, make_creased_photo, tmp_path
):
    from django.core.management import CommandError, call_command

    photo = make_creased_photo(study_with_members["study"])
    boxes = tmp_path / "boxes.txt"
    boxes.write_text("3 0.46875 0.390625 0.625 0.3125\n")  # x 40–200, y 60–140 of the 256-px photo
    call_command("facet_wrinkle_box_labels", str(photo.pk), str(boxes), "--user", "clinician")
    label = WrinkleLabel.objects.get(photo=photo)
    assert label.version == 1 and label.region["kind"] == "whole" and "human wrinkle boxes" in label.note
    assert label.rough_pixels == 160 * 80
    truth = stored_mask(label.ground_truth) > 0
    assert truth[60:62, 40:200].mean() > 0.5  # the creases inside the box are found
    assert not truth[:40].any() and not truth[160:].any()  # nothing outside the box
    expected = label_wrinkles(creased_image(1), stored_mask(label.rough_mask) > 0, window=15, percent=15.0)
    assert np.array_equal(truth, expected)
    page = client_for(study_with_members["clinician"]).get(
        reverse("labeling:label_photo", args=[photo.pk]) + "?region=whole"
    )
    assert f'"rough_url": "/labeling/labels/{label.pk}/' in page.content.decode().replace("\\u0022", '"')
    call_command("facet_wrinkle_box_labels", str(photo.pk), str(boxes), "--user", "clinician")
    assert sorted(WrinkleLabel.objects.filter(photo=photo).values_list("version", flat=True)) == [1, 2]
    boxes.write_text("3 0.5 0.5\n")
    with pytest.raises(CommandError, match="not YOLO lines"):
        call_command("facet_wrinkle_box_labels", str(photo.pk), str(boxes), "--user", "clinician")
    with pytest.raises(CommandError, match="may not label"):
        call_command("facet_wrinkle_box_labels", str(photo.pk), str(boxes), "--user", "monitor")
