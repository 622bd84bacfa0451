"""Box evaluation on the wrinkle-boxes format: reading, split, recall and precision definitions."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.wrinkles.boxes import (
    Box,
    FacePrediction,
    collage_seams,
    evaluate_boxes,
    face_of_box,
    read_photos,
    read_yolo_boxes,
    score_photo,
    split_of,
)


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


def _boxes_folder(root: Path, photo: np.ndarray | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.json").write_text(json.dumps({"0": "forehead", "1": "chin"}))
    with (root / "index.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "labels", "split"])
        for name in ("a", "b", "c"):
            image = np.full((64, 80, 3), 128, np.uint8) if photo is None else photo
            cv2.imwrite(str(root / "images" / f"{name}.png"), image)
            (root / "labels" / f"{name}.txt").write_text("0 0.25 0.25 0.25 0.25\n1 0.75 0.75 0.25 0.25\n")
            writer.writerow([f"images/{name}.png", f"labels/{name}.txt", "valid"])
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


def test_each_photo_keeps_its_counts_for_a_comparison_photo_by_photo(tmp_path: Path) -> None:
    data = _boxes_folder(tmp_path / "boxes")
    faces_found = iter([True, True, False])

    def segment(image: np.ndarray) -> np.ndarray:
        if not next(faces_found):
            raise ValueError("No face was found in the photo.")
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[10:14, 15:20] = True  # inside the forehead box
        mask[40:44, 0:5] = True  # outside both boxes
        return mask

    report = evaluate_boxes(data, segment, split="test", log=lambda line: None)
    rows = report["per_photo"]
    assert [row["analysed"] for row in rows] == [True, True, False]
    assert [row["found"] for row in rows] == [1, 1, 0]
    assert sum(row["found"] for row in rows) / sum(row["boxes"] for row in rows) == report["box_recall"]
    assert sum(row["inside_any"] for row in rows) / sum(row["predicted_pixels"] for row in rows) == (
        pytest.approx(report["pixel_precision"])
    )
    assert rows[0]["predicted_pixels"] == 40 and rows[2]["predicted_pixels"] == 0


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


def _face(mask: np.ndarray, square: tuple, subject: bool) -> FacePrediction:
    x0, y0, x1, y1 = square
    return FacePrediction(mask, square, square, ((x0 + x1) / 2, (y0 + y1) / 2), subject)


def test_boxes_on_a_second_face_count_only_when_every_face_is_analysed(tmp_path: Path) -> None:
    """Each photo: the subject's face on the left half (forehead box), a second face on the right half
    (chin box); both faces' masks cover their box. The subject protocol misses the chin boxes and lists
    them as on no analysed face; the all-faces protocol finds them, from the same pass."""
    # 80×64 photos: forehead box x 10–30, y 8–24; chin box x 50–70, y 40–56.
    data = _boxes_folder(tmp_path / "boxes")

    def every_face(image: np.ndarray) -> list[FacePrediction]:
        left = np.zeros(image.shape[:2], dtype=bool)
        left[10:14, 15:20] = True
        right = np.zeros(image.shape[:2], dtype=bool)
        right[44:48, 55:60] = True
        right[60:62, 75:78] = True  # outside both enlarged boxes: a false positive of the second face
        return [_face(left, (0, 0, 40, 64), True), _face(right, (40, 0, 80, 64), False)]

    report = evaluate_boxes(data, every_face, split="test", log=lambda line: None, all_faces=True)
    every = report["all_faces"]
    assert report["faces"] == "subject" and every["faces"] == "all"
    assert report["faces_analysed"] == 3 and every["faces_analysed"] == 6
    assert report["boxes_on_analysed_face"] == 3 and report["boxes_on_no_analysed_face"] == 3
    assert every["boxes_on_analysed_face"] == 6 and every["boxes_on_no_analysed_face"] == 0
    assert {row["class"] for row in report["boxes_on_no_analysed_face_list"]} == {"chin"}
    assert report["boxes_on_no_analysed_face_by_reason"] == {
        "another_face": 3,
        "tile_without_face": 0,
        "outside_squares": 0,
    }
    assert report["box_recall"] == 0.5 and report["box_recall_on_analysed_faces"] == 1.0
    assert [row["found"] for row in report["per_photo"]] == [1, 1, 1]  # the subject's face alone
    assert every["box_recall"] == 1.0
    assert report["pixel_precision"] == 1.0
    assert every["pixel_precision"] == pytest.approx((20 + 20) / (20 + 26))
    per_class = {row["class"]: row for row in every["per_class"]}
    assert per_class["chin"]["box_recall"] == 1.0
    assert {row["class"]: row["box_recall"] for row in report["per_class"]}["chin"] == 0.0
    assert report["layout"]["faces_detected"] == 6 and report["layout"]["multi_face_photos"] == 3


def test_a_box_belongs_to_the_nearest_face_of_its_collage_tile() -> None:
    left = FacePrediction(True, (0, 0, 60, 60), (0, 0, 60, 60), (20, 30), True)
    right = FacePrediction(True, (30, 0, 90, 60), (30, 0, 90, 60), (70, 30), False)
    box = Box(0, 38, 20, 44, 26)  # centre x 41: inside both squares, nearer the left face's centre
    assert face_of_box(box, [left, right]) == 0
    # A seam at x 40 puts the box in the right face's tile: the left face's square only reaches over it.
    assert face_of_box(box, [left, right], seams=(40, None)) == 1
    assert face_of_box(box, [left], seams=(40, None)) is None
    assert face_of_box(Box(0, 95, 20, 99, 26), [left, right]) is None  # outside every square
    unanalysed = FacePrediction(None, (0, 0, 60, 60), (0, 0, 60, 60), (20, 30), False, "no landmarks")
    assert face_of_box(Box(0, 10, 10, 20, 20), [unanalysed]) is None


def test_collage_seams_are_found_where_two_photos_meet(face_photo_paths: list[Path]) -> None:
    from ml.core.imageio import load_image

    first, second = (load_image(path) for path in face_photo_paths[:2])
    assert collage_seams(first) == (None, None)
    height = min(first.shape[0], second.shape[0])
    collage = np.concatenate([first[:height, :200], second[:height, 100:300]], axis=1)
    assert collage_seams(collage) == (200, None)
    stacked = np.concatenate([collage[:150], collage[250:]], axis=0)
    assert collage_seams(stacked) == (200, 150)


def test_every_face_of_a_real_collage_is_analysed_by_the_shipped_segmenter(
    face_photo_paths: list[Path], tmp_path: Path
) -> None:
    """A two-face collage of real photos: the larger face is the subject; the smaller one is analysed only
    with ``all_faces``, through the same segmenter (landmarks, model square, skin, post-processing)."""
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.wrinkles.realphoto import photo_segmenter

    subject_photo, other_photo = (load_image(path) for path in face_photo_paths[:2])
    other_small = cv2.resize(other_photo, None, fx=0.75, fy=0.75, interpolation=cv2.INTER_AREA)
    height = subject_photo.shape[0]
    padded = np.zeros((height, other_small.shape[1], 3), dtype=np.uint8)
    padded[: other_small.shape[0]] = other_small
    collage = np.ascontiguousarray(np.concatenate([subject_photo, padded], axis=1))
    offset = subject_photo.shape[1]
    # The second face's box: around the longest wrinkle the segmenter finds on that face photographed alone.
    plain, _ = photo_segmenter()
    _, _, stats, _ = cv2.connectedComponentsWithStats(plain(other_small).astype(np.uint8))
    left, top, box_width, box_height, _ = stats[1:][stats[1:, cv2.CC_STAT_AREA].argmax()]
    x0, y0, x1, y1 = left + offset, top, left + box_width + offset, top + box_height
    landmarks_subject = detect_faces_with_landmarks(subject_photo)[0].landmarks
    sx0, sy0 = landmarks_subject[:, 0].min(), landmarks_subject[17:27, 1].min()
    sx1, sy1 = landmarks_subject[:, 0].max(), landmarks_subject[:, 1].max()
    width = collage.shape[1]

    def yolo(label: int, left: float, top: float, right: float, bottom: float) -> str:
        return (
            f"{label} {(left + right) / 2 / width} {(top + bottom) / 2 / height} "
            f"{(right - left) / width} {(bottom - top) / height}"
        )

    root = tmp_path / "collage"
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    (root / "classes.json").write_text(json.dumps({"0": "forehead", "1": "chin"}))
    cv2.imwrite(str(root / "images" / "c.jpg"), cv2.cvtColor(collage, cv2.COLOR_RGB2BGR))
    (root / "labels" / "c.txt").write_text(f"{yolo(0, sx0, sy0, sx1, sy1)}\n{yolo(1, x0, y0, x1, y1)}\n")
    (root / "index.csv").write_text("image,labels,split\nimages/c.jpg,labels/c.txt,valid\n")

    segment, _ = photo_segmenter(all_faces=True)
    report = evaluate_boxes(root, segment, split="test", log=lambda line: None, all_faces=True)
    every = report["all_faces"]
    assert report["layout"]["faces_detected"] == 2 and report["layout"]["collage_photos"] == 1
    assert report["faces_analysed"] == 1 and every["faces_analysed"] == 2
    assert [row["class"] for row in report["boxes_on_no_analysed_face_list"]] == ["chin"]
    assert every["boxes_on_no_analysed_face"] == 0
    assert report["boxes_on_no_analysed_face_by_reason"]["another_face"] == 1
    assert every["predicted_pixels"] > report["predicted_pixels"]
    chin = {row["class"]: row for row in every["per_class"]}["chin"]
    assert {row["class"]: row for row in report["per_class"]}["chin"]["box_recall"] == 0.0
    assert chin["box_recall"] == 1.0  # the second face's wrinkles are found only in all-faces mode

    # The subject's figures are those of the plain segmenter (the product's rule), unchanged.
    plain_report = evaluate_boxes(root, plain, split="test", log=lambda line: None)
    assert plain_report["box_recall"] == report["box_recall"]
    assert plain_report["predicted_pixels"] == report["predicted_pixels"]


def test_a_box_on_no_face_says_whether_its_collage_tile_has_one(tmp_path: Path) -> None:
    """Collages with a seam at x 40: the only face is in the left tile, its square covers its lower part."""
    two_tiles = np.full((64, 80, 3), 60, np.uint8)
    two_tiles[:, 40:] = 200
    data = _boxes_folder(tmp_path / "boxes", two_tiles)  # forehead box centre (20, 16), chin (60, 48)

    def left_face_only(image: np.ndarray) -> list[FacePrediction]:
        mask = np.zeros(image.shape[:2], dtype=bool)
        return [FacePrediction(mask, (0, 30, 40, 64), (0, 30, 40, 64), (20, 45), True)]

    report = evaluate_boxes(data, left_face_only, split="test", log=lambda line: None, all_faces=True)
    assert report["layout"]["collage_photos"] == 3
    assert report["all_faces"]["boxes_on_no_analysed_face_by_reason"] == {
        "another_face": 0,
        "tile_without_face": 3,  # the chin boxes, in the right tile
        "outside_squares": 3,  # the forehead boxes, in the face's tile above its square
    }


def test_the_landmarks_cache_finds_each_face_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from ml.core.subject import NoFaceError
    from ml.wrinkles import realphoto

    calls = []

    def detect(image: np.ndarray) -> np.ndarray:
        calls.append(image.copy())
        if not image.any():
            raise NoFaceError("No face was found in the photo.")
        return np.full((68, 2), float(image.max()))

    monkeypatch.setattr(realphoto, "subject_landmarks_of", detect)
    landmarks_of = realphoto.cached_subject_landmarks(tmp_path / "cache")
    face, other_face, blank = (np.full((8, 8, 3), value, dtype=np.uint8) for value in (3, 5, 0))
    for _ in range(2):
        assert landmarks_of(face)[0, 0] == 3.0 and landmarks_of(other_face)[0, 0] == 5.0
        with pytest.raises(NoFaceError, match="No face"):
            landmarks_of(blank)
    assert len(calls) == 3  # each photo once, the faceless one included
    # A fresh cache object on the same folder (another checkpoint's run) reads the stored entries.
    assert realphoto.cached_subject_landmarks(tmp_path / "cache")(face)[0, 0] == 3.0 and len(calls) == 3
