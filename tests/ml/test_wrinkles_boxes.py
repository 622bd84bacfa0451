"""Box evaluation on the wrinkle-boxes format: reading, split, recall and precision definitions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.wrinkles.boxes import Box, evaluate_boxes, read_photos, read_yolo_boxes, score_photo, split_of


def test_yolo_boxes_are_read_in_photo_pixels(tmp_path: Path) -> None:
    labels = tmp_path / "a.txt"
    labels.write_text("3 0.5 0.25 0.5 0.1\n\n2 0.1 0.1 0.0 0.2\n")
    boxes = read_yolo_boxes(labels, width=200, height=100)
    assert boxes == [Box(3, 50, 20, 150, 30)]  # the empty second box is dropped
    labels.write_text("3 0.5 0.5\n")
    with pytest.raises(ValueError, match="expected 'class cx cy w h'"):
        read_yolo_boxes(labels, 200, 100)


def test_split_is_fixed_and_keeps_source_validation_as_test() -> None:
    assert split_of("anything", "valid") == "test"
    names = [f"{index}" for index in range(2000)]
    splits = [split_of(name, "train") for name in names]
    assert splits == [split_of(name, "train") for name in names]
    assert set(splits) == {"train", "val"}
    assert 0.10 < splits.count("val") / len(splits) < 0.20


def test_a_box_is_found_from_two_percent_coverage() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    found, missed = Box(0, 0, 0, 10, 10), Box(1, 50, 50, 60, 60)
    mask[0, 0:2] = True  # 2 of 100 pixels: exactly 2 %
    mask[50, 50] = True  # 1 %
    score = score_photo(mask, [found, missed])
    assert score.found == {0: 1, 1: 0}
    assert score.boxes == {0: 1, 1: 1}


def test_precision_counts_pixels_in_enlarged_boxes_and_charges_the_nearest_class() -> None:
    mask = np.zeros((100, 100), dtype=bool)
    forehead, chin = Box(3, 10, 10, 30, 30), Box(1, 60, 60, 80, 80)
    mask[12, 12:20] = True  # 8 inside the forehead box
    mask[31, 20] = True  # inside the forehead box enlarged by 25 % (up to row 32)
    mask[40, 15] = True  # outside every enlarged box, nearest the forehead box
    mask[95, 95] = True  # outside, nearest the chin box
    score = score_photo(mask, [forehead, chin])
    assert score.predicted_pixels == 11
    assert score.inside_any == 9
    assert score.inside == {3: 9, 1: 0}
    assert score.counted == {3: 10, 1: 1}


def _boxes_folder(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.json").write_text(json.dumps({"0": "forehead", "1": "chin"}))
    with (root / "index.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "labels", "split"])
        for name in ("a", "b", "c"):
            cv2.imwrite(str(root / "images" / f"{name}.jpg"), np.full((64, 80, 3), 128, np.uint8))
            (root / "labels" / f"{name}.txt").write_text("0 0.25 0.25 0.25 0.25\n1 0.75 0.75 0.25 0.25\n")
            writer.writerow([f"images/{name}.jpg", f"labels/{name}.txt", "valid"])
    return root


def test_evaluation_counts_photos_that_cannot_be_analysed(tmp_path: Path) -> None:
    data = _boxes_folder(tmp_path / "boxes")
    assert [photo.split for photo in read_photos(data)] == ["test"] * 3

    faces_found = iter([True, True, False])

    def segment(image: np.ndarray) -> np.ndarray:
        if not next(faces_found):
            raise ValueError("No face was found in the photo.")
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[10:14, 15:20] = True  # inside the forehead box (x 10–30, y 8–24)
        return mask

    report = evaluate_boxes(data, segment, split="test", log=lambda line: None)
    assert report["photos"] == 3 and report["photos_analysed"] == 2
    assert report["share_analysed"] == pytest.approx(2 / 3)
    assert report["not_analysed"][0]["reason"].startswith("No face")
    per_class = {row["class"]: row for row in report["per_class"]}
    assert per_class["forehead"]["box_recall"] == pytest.approx(2 / 3)  # the third photo's box is missed
    assert per_class["forehead"]["box_recall_analysed"] == 1.0
    assert per_class["chin"]["box_recall"] == 0.0
    assert report["box_recall"] == pytest.approx(2 / 6)
    assert report["pixel_precision"] == 1.0


def test_a_threshold_sweep_scores_each_threshold_in_one_pass(tmp_path: Path) -> None:
    data = _boxes_folder(tmp_path / "boxes")

    def probabilities(image: np.ndarray) -> np.ndarray:
        probability = np.zeros(image.shape[:2], dtype=np.float32)
        probability[10:14, 15:20] = 0.9  # inside the forehead box
        probability[40:44, 0:5] = 0.6  # outside both boxes
        return probability

    report = evaluate_boxes(data, probabilities, split="test", thresholds=[0.5, 0.8], log=lambda line: None)
    low, high = report["sweep"]
    assert report["threshold"] == 0.5 and report["pixel_precision"] == low["pixel_precision"]
    assert low["pixel_precision"] == pytest.approx(20 / 40)
    assert high["pixel_precision"] == 1.0
    assert low["box_recall"] == high["box_recall"] == 0.5


def test_a_sweep_scores_the_mask_a_segmenter_makes_at_each_threshold(tmp_path: Path) -> None:
    """The shipped segmenter returns threshold → post-processed mask; the sweep scores that mask, not a
    plain threshold of the probabilities."""
    data = _boxes_folder(tmp_path / "boxes")
    asked: list[float] = []

    def mask_at_threshold(image: np.ndarray):
        def mask_at(threshold: float) -> np.ndarray:
            asked.append(threshold)
            mask = np.zeros(image.shape[:2], dtype=bool)
            mask[10:14, 15:20] = True  # inside the forehead box
            if threshold < 0.6:
                mask[40:44, 0:5] = True  # outside both boxes
            return mask

        return mask_at

    report = evaluate_boxes(
        data, mask_at_threshold, split="test", thresholds=[0.5, 0.8], log=lambda line: None
    )
    low, high = report["sweep"]
    assert sorted(set(asked)) == [0.5, 0.8]
    assert low["pixel_precision"] == pytest.approx(20 / 40)
    assert high["pixel_precision"] == 1.0
