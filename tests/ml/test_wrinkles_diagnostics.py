"""False-positive breakdown and post-processing sweep on cached predictions, and the fixed choice rule."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from ml.wrinkles.boxes import split_of
from ml.wrinkles.diagnostics import (
    RECALL_RETENTION,
    choose_post_processing,
    false_positive_breakdown,
    load_cached,
    sweep_post_processing,
)
from ml.wrinkles.postprocess import eye_distance
from tests.ml.conftest import synthetic_landmarks

SIDE = 600
LANDMARKS = synthetic_landmarks(image_shape=(SIDE, SIDE))


def _val_name() -> str:
    return next(
        name for name in (f"photo{index}" for index in range(100)) if split_of(name, "train") == "val"
    )


def _cached_folder(root: Path) -> tuple[Path, Path, str]:
    """A wrinkle-boxes folder with one val photo (a forehead box) and its cached prediction: a forehead
    line inside the box and a glasses rim under the left eye, outside every box."""
    name = _val_name()
    data, cache = root / "boxes", root / "cache"
    for folder in (data / "images", data / "labels", cache):
        folder.mkdir(parents=True)
    cv2.imwrite(str(data / "images" / f"{name}.jpg"), np.full((SIDE, SIDE, 3), 128, np.uint8))
    brow_top = LANDMARKS[17:27, 1].min()
    line_row = int(brow_top - 40)
    # Box: x 240–360, y line_row−10 … line_row+10 (normalised YOLO).
    (data / "labels" / f"{name}.txt").write_text(f"3 0.5 {line_row / SIDE} {120 / SIDE} {20 / SIDE}\n")
    (data / "classes.json").write_text(json.dumps({"3": "forehead"}))
    with (data / "index.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["image", "labels", "split"])
        writer.writerow([f"images/{name}.jpg", f"labels/{name}.txt", "train"])
    probability = np.zeros((SIDE, SIDE), np.float32)
    probability[line_row - 1 : line_row + 1, 250:350] = 0.9
    centre = LANDMARKS[36:42].mean(axis=0)
    radius = 0.45 * eye_distance(LANDMARKS)
    rim = np.zeros((SIDE, SIDE), np.uint8)
    cv2.ellipse(rim, (int(centre[0]), int(centre[1])), (int(radius), int(radius)), 0, 20, 160, 1, 2)
    probability[rim > 0] = 0.9
    np.savez_compressed(
        cache / f"{name}.npz",
        probability=probability.astype(np.float16),
        landmarks=LANDMARKS,
        face_boxes=np.array([[100.0, 100.0, 500.0, 500.0]]),
        subject=0,
        valid=np.ones((SIDE, SIDE), bool),
    )
    return data, cache, name


def test_the_choice_keeps_the_recall_share_and_then_maximises_precision() -> None:
    rows = [
        {"box_recall": 0.45, "pixel_precision": 0.7},
        {"box_recall": 0.40, "pixel_precision": 0.9},  # below 0.85 × 0.5: not eligible
        {"box_recall": 0.50, "pixel_precision": 0.6},
    ]
    assert RECALL_RETENTION == 0.85
    assert choose_post_processing(rows, baseline_recall=0.5) is rows[0]
    with pytest.raises(ValueError, match="keeps the required box recall"):
        choose_post_processing(rows, baseline_recall=1.0)


def test_the_sweep_and_the_breakdown_find_and_remove_the_glasses_rim(tmp_path: Path) -> None:
    data, cache, name = _cached_folder(tmp_path)
    assert load_cached(cache, name).face_boxes.shape == (0, 4)  # the subject's own box is not "another face"
    rows = sweep_post_processing(
        data, cache, "val", [0.5], [{}], [{}, {"eye_zone": 0.9, "tangential_angle": 45.0}], log=lambda _: None
    )
    baseline, plain, refined = rows
    assert baseline["box_recall"] == plain["box_recall"] == refined["box_recall"] == 1.0
    assert baseline["pixel_precision"] == plain["pixel_precision"] < 0.6
    assert refined["pixel_precision"] == 1.0

    report = false_positive_breakdown(data, cache, "val", lambda cached: cached.probability > 0.5)
    places = {row["place"]: row for row in report["places"]}
    false_positives = sum(row["false_positive_pixels"] for row in report["places"])
    assert false_positives > 0
    assert places["around_eyes"]["false_positive_pixels"] == false_positives
    assert places["forehead"]["false_positive_pixels"] == 0 and places["forehead"]["predicted_pixels"] > 0
