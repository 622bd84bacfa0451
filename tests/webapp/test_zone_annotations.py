"""Human zone annotations: CVAT import (XML polygons, Segmentation mask ZIP), access, versions, audit, and
the zone-training export that `python -m ml zones build-dataset` reads."""

import io
import zipfile
from pathlib import Path

import numpy as np
import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image

from ml.zones.atlas import ZONE_INDEX
from ml.zones.cvat import read_cvat_images_xml
from webapp.audit.models import AuditAction, AuditEvent
from webapp.labeling.models import ZoneAnnotation, ZoneAnnotationFormat, ZoneAnnotationImport
from webapp.labeling.zone_services import mask_to_boxes

pytestmark = pytest.mark.django_db

LNF_POINTS = "150.5,90.2;190.0,120.7;170.3,180.9;140.0,150.0"
FUL_POINTS = "100,170;160,168;150,190;105,188"
FPA_OVERLAPPING_LNF = "130,130;200,130;200,200;130,200"


def cvat_xml(images: list[tuple[str, int, int, str]]) -> bytes:
    """A CVAT for images 1.1 document from (name, width, height, shapes XML)."""
    body = "".join(
        f'<image id="{n}" name="{name}" width="{w}" height="{h}">{shapes}</image>'
        for n, (name, w, h, shapes) in enumerate(images)
    )
    header = '<?xml version="1.0" encoding="utf-8"?><annotations><version>1.1</version>'
    return f"{header}{body}</annotations>".encode()


def polygon(label: str, points: str) -> str:
    return f'<polygon label="{label}" source="manual" occluded="0" points="{points}" z_order="0"/>'


def client_for(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def upload(client: Client, study, content: bytes, name: str = "annotations.xml"):
    return client.post(
        reverse("labeling:zone_annotations", args=[study.pk]),
        {"export": SimpleUploadedFile(name, content)},
    )


@pytest.fixture
def photos(study_with_members, make_photo):
    study = study_with_members["study"]
    first = make_photo(study, subject_code="S001", visit_label="baseline")
    second = make_photo(study, subject_code="S002", visit_label="week 12")
    return first, second


def stored_mask(annotation: ZoneAnnotation) -> np.ndarray:
    with annotation.mask.open("rb") as handle:
        return np.asarray(Image.open(handle)) > 127


def test_xml_polygons_import_into_the_right_masks_of_the_right_photos(study_with_members, photos, tmp_path):
    first, second = photos
    content = cvat_xml(
        [
            (f"photo-{first.pk}.png", 256, 256, polygon("LNF", LNF_POINTS) + polygon("ful", FUL_POINTS)),
            (
                "S002/week 12/frontal.jpg",
                256,
                256,
                polygon("FPA", FPA_OVERLAPPING_LNF) + polygon("LNF", LNF_POINTS),
            ),
            ("S009/baseline/frontal.jpg", 256, 256, ""),  # in the CVAT task but not annotated: skipped
        ]
    )
    response = upload(client_for(study_with_members["coordinator"]), study_with_members["study"], content)
    assert response.status_code == 302, response.content.decode()[:2000]

    reference_path = tmp_path / "annotations.xml"
    reference_path.write_bytes(content)
    reference = read_cvat_images_xml(reference_path)  # keyed by stem: only the photo-<id> image is unique
    expected_first = reference[f"photo-{first.pk}"].masks
    stored = {(a.photo_id, a.zone): a for a in ZoneAnnotation.objects.all()}
    assert set(stored) == {(first.pk, "LNF"), (first.pk, "FUL"), (second.pk, "FPA"), (second.pk, "LNF")}
    for zone in ("LNF", "FUL"):
        assert np.array_equal(stored_mask(stored[first.pk, zone]), expected_first[ZONE_INDEX[zone]])
        assert stored[first.pk, zone].pixels == expected_first[ZONE_INDEX[zone]].sum() > 100
    # Overlapping zones stay overlapping.
    overlap = stored_mask(stored[second.pk, "FPA"]) & stored_mask(stored[second.pk, "LNF"])
    assert overlap.any()
    batch = ZoneAnnotationImport.objects.get()
    assert batch.source_format == ZoneAnnotationFormat.CVAT_IMAGES_XML
    assert (batch.photo_count, batch.annotation_count) == (2, 4)
    assert batch.skipped_images == ["S009/baseline/frontal.jpg"]
    assert all(a.version == 1 and a.author_username == "coordinator" for a in stored.values())


def test_cvat_for_images_zip_is_read_like_its_xml(study_with_members, photos):
    first, _ = photos
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr(
            "annotations.xml", cvat_xml([(f"photo-{first.pk}.jpg", 256, 256, polygon("LNF", LNF_POINTS))])
        )
    response = upload(
        client_for(study_with_members["coordinator"]),
        study_with_members["study"],
        buffer.getvalue(),
        "task.zip",
    )
    assert response.status_code == 302
    assert list(ZoneAnnotation.objects.values_list("photo_id", "zone")) == [(first.pk, "LNF")]


def segmentation_zip(masks: dict[str, np.ndarray], labelmap: str) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("labelmap.txt", labelmap)
        for name, pixels in masks.items():
            png = io.BytesIO()
            Image.fromarray(pixels).save(png, format="PNG")
            archive.writestr(f"SegmentationClass/{name}.png", png.getvalue())
    return buffer.getvalue()


LABELMAP = (
    "# label:color_rgb:parts:actions\nbackground:0,0,0::\nLNF:250,50,83::\nFUL:61,61,245::\nLTA:10,200,10::\n"
)


def test_segmentation_mask_zip_imports_each_colour_as_its_zone(study_with_members, photos):
    first, second = photos
    pixels = np.zeros((256, 256, 3), dtype=np.uint8)
    pixels[40:90, 150:200] = (250, 50, 83)
    pixels[170:190, 100:160] = (61, 61, 245)
    other = np.zeros((256, 256, 3), dtype=np.uint8)
    other[10:30, 10:60] = (61, 61, 245)
    content = segmentation_zip({f"photo-{first.pk}": pixels, "S002/week 12/frontal": other}, LABELMAP)
    response = upload(
        client_for(study_with_members["coordinator"]), study_with_members["study"], content, "masks.zip"
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    stored = {(a.photo_id, a.zone): stored_mask(a) for a in ZoneAnnotation.objects.all()}
    assert set(stored) == {
        (first.pk, "LNF"),
        (first.pk, "FUL"),
        (second.pk, "FUL"),
    }  # LTA absent: not annotated
    expected = np.zeros((256, 256), dtype=bool)
    expected[40:90, 150:200] = True
    assert np.array_equal(stored[first.pk, "LNF"], expected)
    assert stored[second.pk, "FUL"].sum() == 20 * 50
    assert ZoneAnnotationImport.objects.get().source_format == ZoneAnnotationFormat.CVAT_SEGMENTATION_MASK


@pytest.mark.parametrize(
    "name, shapes, size, problem",
    [
        ("S001/week 99/frontal.jpg", polygon("LNF", LNF_POINTS), 256, "no photo of this study has this name"),
        (
            "photo-{first}.png",
            polygon("Nose", LNF_POINTS),
            256,
            "labels that are not zone abbreviations: Nose",
        ),
        ("photo-{first}.png", polygon("LNF", LNF_POINTS), 512, "annotated at 512×512 px but photo"),
        (
            "photo-{first}.png",
            f'<polyline label="LNF" points="{LNF_POINTS}"/>',
            256,
            "shapes other than polygons and boxes: LNF (polyline shapes are not supported)",
        ),
    ],
)
def test_a_bad_item_is_reported_and_nothing_is_stored(
    study_with_members, photos, name, shapes, size, problem
):
    first, _ = photos
    content = cvat_xml(
        [
            (f"photo-{first.pk}.png", 256, 256, polygon("FUL", FUL_POINTS))
            if "{first}" not in name
            else ("S002/week 12/frontal.png", 256, 256, polygon("FUL", FUL_POINTS)),
            (name.format(first=first.pk), size, size, shapes),
        ]
    )
    response = upload(client_for(study_with_members["coordinator"]), study_with_members["study"], content)
    assert response.status_code == 400
    page = response.content.decode()
    assert "Nothing was imported" in page and problem in page
    assert not ZoneAnnotation.objects.exists() and not ZoneAnnotationImport.objects.exists()
    assert not AuditEvent.objects.filter(
        action=AuditAction.CREATE, object_type="labeling.zoneannotationimport"
    ).exists()


def test_photo_of_another_study_is_an_unknown_image(study_with_members, make_photo):
    foreign = make_photo(study_with_members["other_study"])
    content = cvat_xml([(f"photo-{foreign.pk}.png", 256, 256, polygon("LNF", LNF_POINTS))])
    response = upload(client_for(study_with_members["coordinator"]), study_with_members["study"], content)
    assert response.status_code == 400
    assert "no photo of this study has this name" in response.content.decode()
    assert not ZoneAnnotation.objects.exists()


def test_not_a_cvat_file_gets_a_clear_error(study_with_members, photos):
    client = client_for(study_with_members["coordinator"])
    response = upload(client, study_with_members["study"], b"<html><body/></html>")
    assert response.status_code == 400
    assert "not a &#x27;CVAT for images 1.1&#x27; export" in response.content.decode()
    response = upload(client, study_with_members["study"], b"not xml at all")
    assert "not readable XML" in response.content.decode()


def test_reimport_creates_new_versions_and_the_latest_wins(study_with_members, photos):
    first, _ = photos
    client = client_for(study_with_members["coordinator"])
    study = study_with_members["study"]
    upload(client, study, cvat_xml([(f"photo-{first.pk}.png", 256, 256, polygon("LNF", LNF_POINTS))]))
    upload(client, study, cvat_xml([(f"photo-{first.pk}.png", 256, 256, polygon("LNF", FUL_POINTS))]))
    versions = ZoneAnnotation.objects.filter(photo=first, zone="LNF").order_by("version")
    assert [a.version for a in versions] == [1, 2]
    assert versions[0].annotation_import_id != versions[1].annotation_import_id
    page = client.get(reverse("labeling:zone_annotations", args=[study.pk])).content.decode()
    assert "LNF (v2)" in page and f"photo-{first.pk}" in page


def test_outsiders_get_404_and_monitors_cannot_import_or_export(study_with_members, photos):
    study = study_with_members["study"]
    content = cvat_xml([(f"photo-{photos[0].pk}.png", 256, 256, polygon("LNF", LNF_POINTS))])
    outsider = client_for(study_with_members["outsider"])
    assert outsider.get(reverse("labeling:zone_annotations", args=[study.pk])).status_code == 404
    assert upload(outsider, study, content).status_code == 404
    assert outsider.get(reverse("labeling:zone_export", args=[study.pk])).status_code == 404
    monitor = client_for(study_with_members["monitor"])
    page = monitor.get(reverse("labeling:zone_annotations", args=[study.pk]))
    assert page.status_code == 200 and "zone-import-form" not in page.content.decode()
    assert upload(monitor, study, content).status_code == 403
    assert monitor.get(reverse("labeling:zone_export", args=[study.pk])).status_code == 403
    assert upload(client_for(study_with_members["clinician"]), study, content).status_code == 403
    assert not ZoneAnnotation.objects.exists()


def test_mask_to_boxes_rasterises_back_exactly_through_the_cvat_reader(tmp_path):
    from webapp.labeling.zone_services import cvat_images_xml

    rng = np.random.default_rng(3)
    mask = np.zeros((40, 50), dtype=bool)
    mask[5:20, 10:30] = True
    mask[22:35, 3:8] = True
    mask[8:12, 15:20] = False  # a hole
    mask |= rng.random(mask.shape) > 0.93
    boxes = mask_to_boxes(mask)
    assert len(boxes) < mask.sum()
    path = tmp_path / "a.xml"
    path.write_bytes(cvat_images_xml([("photo-1.png", 50, 40, {"LNF": mask})]))
    assert np.array_equal(read_cvat_images_xml(path)["photo-1"].masks[ZONE_INDEX["LNF"]], mask)


def test_export_is_what_build_dataset_reads_and_is_audited(study_with_members, photos, tmp_path, monkeypatch):
    first, second = photos
    coordinator = client_for(study_with_members["coordinator"])
    study = study_with_members["study"]
    upload(
        coordinator,
        study,
        cvat_xml(
            [
                (f"photo-{first.pk}.png", 256, 256, polygon("LNF", LNF_POINTS) + polygon("FUL", FUL_POINTS)),
                ("S002/week 12/frontal.png", 256, 256, polygon("FPA", FPA_OVERLAPPING_LNF)),
            ]
        ),
    )
    upload(
        coordinator,
        study,
        cvat_xml([(f"photo-{first.pk}.png", 256, 256, polygon("LNF", FPA_OVERLAPPING_LNF))]),
    )
    latest = {(a.photo_id, a.zone): a for a in ZoneAnnotation.objects.order_by("version")}

    response = coordinator.get(reverse("labeling:zone_export", args=[study.pk]))
    assert response.status_code == 200 and response["Cache-Control"] == "private, no-store"
    archive = zipfile.ZipFile(io.BytesIO(b"".join(response.streaming_content)))
    archive.extractall(tmp_path / "export")
    root = tmp_path / "export"
    assert sorted(p.name for p in (root / "photos").iterdir()) == sorted(
        [f"photo-{first.pk}.png", f"photo-{second.pk}.png"]
    )
    with first.image.open("rb") as handle:
        assert (root / "photos" / f"photo-{first.pk}.png").read_bytes() == handle.read()

    # ml's reader gives back exactly the latest stored masks, keyed by the photo file stems.
    read = read_cvat_images_xml(root / "annotations.xml")
    assert set(read) == {f"photo-{first.pk}", f"photo-{second.pk}"}
    for (photo_id, zone), annotation in latest.items():
        zones = read[f"photo-{photo_id}"]
        assert zones.annotated[ZONE_INDEX[zone]]
        assert np.array_equal(zones.masks[ZONE_INDEX[zone]], stored_mask(annotation)), zone
    assert latest[first.pk, "LNF"].version == 2
    assert sorted(zones for zones in read[f"photo-{first.pk}"].annotated.nonzero()[0]) == sorted(
        [ZONE_INDEX["LNF"], ZONE_INDEX["FUL"]]
    )

    # build-dataset takes the human zones over the landmark ones for these photos (landmarks faked:
    # the test photos hold no face; whole photos, no crop, so the label maps can be compared).
    from ml.core import landmarks as core_landmarks
    from ml.zones.datasets import build_dataset, masks_from_set_labels, read_dataset_sets, read_odgt
    from ml.zones.render import mean_shape

    face = core_landmarks.FaceLandmarks((40.0, 40.0, 220.0, 250.0), 1.0, mean_shape() * 0.5 + 8, "test")
    monkeypatch.setattr(core_landmarks, "detect_faces_with_landmarks", lambda image, detector=None: [face])
    summary = build_dataset(
        tmp_path / "dataset", [root / "photos"], annotations=read, validation_fraction=1.0, crop_size=None
    )
    assert summary["images_with_human_zones"] == 2
    sets = read_dataset_sets(tmp_path / "dataset")
    records = {Path(r.fpath_img).stem: r for r in read_odgt(tmp_path / "dataset" / "set1_validation.odgt")}
    labels = []
    for k in range(1, len(sets) + 1):
        record = read_odgt(tmp_path / "dataset" / f"set{k}_validation.odgt")
        by_name = {Path(r.fpath_img).stem: r for r in record}
        labels.append(
            np.asarray(Image.open(tmp_path / "dataset" / by_name[f"photos__photo-{first.pk}"].fpath_segm))
        )
    assert f"photos__photo-{first.pk}" in records
    rebuilt = masks_from_set_labels(labels, sets)
    assert np.array_equal(rebuilt[ZONE_INDEX["FUL"]], stored_mask(latest[first.pk, "FUL"]))

    assert (
        AuditEvent.objects.filter(
            action=AuditAction.CREATE, object_type="labeling.zoneannotationimport", study_id=study.pk
        ).count()
        == 2
    )
    export_event = AuditEvent.objects.get(action=AuditAction.EXPORT, study_id=study.pk)
    assert export_event.actor_username == "coordinator"
    assert sorted(row[0] for row in export_event.details["annotations"]) == sorted(
        a.pk for a in latest.values()
    )
