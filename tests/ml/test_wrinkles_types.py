"""Wrinkle-type detector: the split lists Ultralytics trains from, and the installed detector on a real
face."""

from __future__ import annotations

from pathlib import Path

import pytest

from ml.wrinkles.boxes import read_classes, read_photos
from ml.wrinkles.models import TYPES_WEIGHTS_FILE
from ml.wrinkles.types import write_data_yaml


def test_the_data_yaml_lists_each_split_and_the_nine_classes(data_dir: Path, tmp_path: Path) -> None:
    boxes = data_dir / "wrinkle-boxes"
    yaml_path = write_data_yaml(boxes, tmp_path)
    text = yaml_path.read_text()
    assert "train: train.txt" in text and "val: val.txt" in text and "  8: smoker_lines" in text
    listed = {split: (tmp_path / f"{split}.txt").read_text().split() for split in ("train", "val", "test")}
    assert not set(listed["train"]) & set(listed["val"]) and not set(listed["val"]) & set(listed["test"])
    assert len(listed["val"]) == len(read_photos(boxes, "val")) and len(read_classes(boxes)) == 9
    # Ultralytics finds labels/NAME.txt beside images/NAME.jpg.
    first = Path(listed["train"][0])
    assert (first.parent.parent / "labels" / f"{first.stem}.txt").is_file()


@pytest.mark.skipif(not TYPES_WEIGHTS_FILE.is_file(), reason="no YOLO wrinkle-type detector installed")
def test_the_installed_detector_reports_types_on_a_real_face(face_photo_path: Path) -> None:
    from ml.core.imageio import load_image
    from ml.model_names import WRINKLE_TYPES_YOLO
    from ml.registry import registry

    image = load_image(face_photo_path)
    detector = registry.load(WRINKLE_TYPES_YOLO)
    found = detector.detect(image)
    names = set(detector.names.values())
    height, width = image.shape[:2]
    scores = [item["score"] for item in found]
    assert scores == sorted(scores, reverse=True)
    for item in found:
        x0, y0, x1, y1 = item["box"]
        assert item["class"] in names and 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
