"""ADE20K/ODGT datasets and CVAT import."""

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from ml.zones.atlas import ZONE_INDEX
from ml.zones.cvat import (
    CvatImportError,
    merge_with_landmark_masks,
    read_cvat_images_xml,
    read_cvat_segmentation_masks,
)
from ml.zones.datasets import (
    DatasetError,
    DatasetWriter,
    OdgtRecord,
    load_sample,
    masks_from_set_labels,
    merge_datasets,
    read_odgt,
    write_odgt,
)
from ml.zones.landmark_model import render_zone_masks
from ml.zones.render import mean_shape
from ml.zones.zone_sets import load_zone_sets


def test_odgt_round_trip(tmp_path: Path) -> None:
    records = [
        OdgtRecord("images/training/a.jpg", "annotations/set1/training/a.png", 40, 30),
        OdgtRecord("images/validation/b.jpg", "annotations/set1/validation/b.png", 7, 9),
    ]
    path = tmp_path / "set1_training.odgt"
    assert write_odgt(path, records) == 2
    lines = path.read_text().splitlines()
    assert set(json.loads(lines[0])) == {"fpath_img", "fpath_segm", "width", "height"}
    assert read_odgt(path) == records


def test_bad_odgt_line_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "x.odgt"
    path.write_text('{"fpath_img": "a", "fpath_segm": "b", "width": 1, "height": 1}\n{"fpath_img": "a"}\n')
    with pytest.raises(DatasetError, match="x.odgt:2"):
        read_odgt(path)
    with pytest.raises(DatasetError, match="does not exist"):
        read_odgt(tmp_path / "missing.odgt")


def test_dataset_writer_round_trips_all_zone_masks(tmp_path: Path) -> None:
    sets = load_zone_sets()
    masks = render_zone_masks(mean_shape(), (480, 400))
    image = np.full((480, 400, 3), 128, dtype=np.uint8)
    parts = np.zeros((480, 400), dtype=np.uint8)
    parts[100:200, 100:200] = 1
    writer = DatasetWriter(tmp_path, sets, validation_fraction=0.0)
    assert writer.add("face1", image, masks, parts, source="synthetic") == "training"
    summary = writer.close()
    assert summary["counts"]["set1_training"] == 1 and summary["counts"]["parts_training"] == 1
    set_labels = []
    for k in (1, 2, 3):
        (record,) = read_odgt(tmp_path / f"set{k}_training.odgt")
        loaded_image, labels = load_sample(tmp_path, record)
        assert loaded_image.shape == (480, 400, 3) and labels.max() <= len(sets[k - 1])
        set_labels.append(labels)
    assert np.array_equal(masks_from_set_labels(set_labels, sets), masks)
    (parts_record,) = read_odgt(tmp_path / "parts_training.odgt")
    assert np.array_equal(load_sample(tmp_path, parts_record)[1], parts)


def _one_sample_dataset(root: Path, name: str, parts: bool) -> None:
    writer = DatasetWriter(root, load_zone_sets(), validation_fraction=0.0)
    labels = np.ones((480, 400), dtype=np.uint8) if parts else None
    writer.add(
        name, np.zeros((480, 400, 3), dtype=np.uint8), render_zone_masks(mean_shape(), (480, 400)), labels
    )
    writer.close()


def test_merge_datasets_keeps_every_record_and_file(tmp_path: Path) -> None:
    _one_sample_dataset(tmp_path / "a", "face_a", parts=True)
    _one_sample_dataset(tmp_path / "b", "face_b", parts=False)
    summary = merge_datasets(tmp_path / "merged", [tmp_path / "a", tmp_path / "b"])
    assert summary["counts"]["set1_training"] == 2 and summary["counts"]["parts_training"] == 1
    for record in read_odgt(tmp_path / "merged" / "set3_training.odgt"):
        assert load_sample(tmp_path / "merged", record)[0].shape == (480, 400, 3)


def test_training_draw_gives_face_part_images_their_share(tmp_path: Path) -> None:
    from ml.zones.train import ZoneSamples

    _one_sample_dataset(tmp_path / "a", "face_a", parts=True)
    _one_sample_dataset(tmp_path / "b", "face_b", parts=False)
    merge_datasets(tmp_path / "m", [tmp_path / "a", tmp_path / "b"])
    samples = ZoneSamples(tmp_path / "m", "training", ["set1", "parts"])
    with_parts = [i for i, (_, records) in enumerate(samples.items) if "parts" in records]
    picks = samples.draw(np.random.default_rng(0), 4, parts_share=0.5)
    assert len(picks) == 4 and sum(int(i) in with_parts for i in picks[:2]) == 2


CVAT_XML = """<?xml version="1.0" encoding="utf-8"?>
<annotations>
  <version>1.1</version>
  <image id="0" name="faces/p1.jpg" width="100" height="80">
    <polygon label="LNF" occluded="0" points="10.0,10.0;50.0,10.0;50.0,40.0;10.0,40.0" z_order="0"/>
    <polygon label="laa" occluded="0" source="manual" points="40.0,30.0;70.0,30.0;70.0,60.0" z_order="1"/>
    <polygon label="tattoo" occluded="0" source="manual" points="0,0;5,0;5,5" z_order="0"/>
    <box label="FUL" occluded="0" xtl="60" ytl="5" xbr="90" ybr="15" z_order="0"/>
  </image>
  <image id="1" name="p2.png" width="20" height="20"></image>
</annotations>
"""


def test_cvat_xml_polygons_import_into_the_right_masks(tmp_path: Path) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_XML)
    annotations = read_cvat_images_xml(path)
    assert set(annotations) == {"p1", "p2"}
    first = annotations["p1"]
    assert first.masks.shape == (33, 80, 100)
    nlf = first.masks[ZONE_INDEX["LNF"]]
    assert nlf[25, 30] and not nlf[5, 30] and not nlf[25, 55]
    assert abs(int(nlf.sum()) - 40 * 30) <= 80
    laa = first.masks[ZONE_INDEX["LAA"]]
    assert laa[35, 60] and not laa[55, 45]
    assert (nlf & laa).any()  # overlapping polygons stay overlapping
    assert first.masks[ZONE_INDEX["FUL"]][10, 75]
    assert set(np.nonzero(first.annotated)[0]) == {ZONE_INDEX["LNF"], ZONE_INDEX["LAA"], ZONE_INDEX["FUL"]}
    assert first.unknown_labels == ["tattoo"]
    assert not annotations["p2"].annotated.any()


def test_cvat_xml_errors_are_clear(tmp_path: Path) -> None:
    bad = tmp_path / "bad.xml"
    bad.write_text(CVAT_XML.replace("10.0,10.0;50.0,10.0;", "10.0 10.0 50.0"))
    with pytest.raises(CvatImportError, match="p1.jpg"):
        read_cvat_images_xml(bad)
    other = tmp_path / "other.xml"
    other.write_text("<root/>")
    with pytest.raises(CvatImportError, match="CVAT for images"):
        read_cvat_images_xml(other)


def test_segmentation_mask_export_imports_by_colour(tmp_path: Path) -> None:
    (tmp_path / "SegmentationClass").mkdir()
    (tmp_path / "labelmap.txt").write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nLNF:250,50,83::\nFUL:24,200,200::\n"
    )
    pixels = np.zeros((30, 40, 3), dtype=np.uint8)
    pixels[2:10, 3:20] = (250, 50, 83)
    pixels[20:25, 10:30] = (24, 200, 200)
    Image.fromarray(pixels).save(tmp_path / "SegmentationClass" / "p1.png")
    annotation = read_cvat_segmentation_masks(tmp_path)["p1"]
    assert annotation.masks[ZONE_INDEX["LNF"]].sum() == 8 * 17
    assert annotation.masks[ZONE_INDEX["FUL"]].sum() == 5 * 20
    assert annotation.annotated.sum() == 2


def test_human_zones_take_precedence(tmp_path: Path) -> None:
    path = tmp_path / "annotations.xml"
    path.write_text(CVAT_XML)
    annotation = read_cvat_images_xml(path)["p1"]
    landmark = np.zeros((33, 80, 100), dtype=bool)
    landmark[ZONE_INDEX["LNF"], 60:70, 60:70] = True
    landmark[ZONE_INDEX["RNF"], 0:5, 0:5] = True
    merged = merge_with_landmark_masks(landmark, annotation)
    assert np.array_equal(merged[ZONE_INDEX["LNF"]], annotation.masks[ZONE_INDEX["LNF"]])
    assert np.array_equal(merged[ZONE_INDEX["RNF"]], landmark[ZONE_INDEX["RNF"]])
    with pytest.raises(CvatImportError, match="original image size"):
        merge_with_landmark_masks(np.zeros((33, 10, 10), dtype=bool), annotation)


def test_build_dataset_on_real_faces(tmp_path: Path, data_dir: Path) -> None:
    from ml.zones.datasets import build_dataset

    fasseg = data_dir / "fasseg" / "frontal" / "train"
    summary = build_dataset(tmp_path, [], fasseg_dirs=[fasseg], limit=2, validation_fraction=0.0)
    assert summary["counts"]["set1_training"] + len(summary["skipped_no_face"]) == 2
    assert summary["counts"]["parts_training"] == summary["counts"]["set1_training"]
    crops = json.loads((tmp_path / "crops.json").read_text())
    for record in read_odgt(tmp_path / "parts_training.odgt"):
        image, labels = load_sample(tmp_path, record)
        assert image.shape == (256, 256, 3)  # the square face crop
        assert set(np.unique(labels)) <= {*range(6), 255}  # 255: outside the photo, ignored in training
        assert (labels == 1).mean() > 0.1  # the face fills the crop
        assert Path(record.fpath_img).stem in crops
