"""Face-crop datasets for yolo-pose68: human-labelled faces and unlabelled photos cut into model inputs.

Training crops are made exactly as at run time (:func:`ml.landmarks.yolo_pose.crop_roi` on the face
detector's detection), so the network learns the geometry it will see. A labelled face the detector
misses is cropped from its labelled points instead (:func:`~ml.landmarks.yolo_pose.landmarks_roi`), so no
human label is lost. Crops are JPEG files under the campaign folder (``var/``, never committed: they are
derived from the research data); the labels travel in a :class:`~ml.landmarks.formats.KeypointDataset`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ml.core.face_crop import extract_crop
from ml.core.metrics import box_iou
from ml.landmarks.formats import ImageRecord, Instance, KeypointDataset, Provenance
from ml.landmarks.human_sets import LabelledFace
from ml.landmarks.yolo_pose import CROP_SIZE, crop_roi, landmarks_roi

ProgressCallback = Callable[[int, int], None]
JPEG_QUALITY = 95


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_-]+", "_", name)[:80]


def _write_jpeg(path: Path, crop: np.ndarray) -> None:
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(crop).save(path, format="JPEG", quality=JPEG_QUALITY)


def human_crops(
    faces: Sequence[LabelledFace],
    split: str,
    folder: Path,
    face_detector: object,
    crop_size: int = CROP_SIZE,
    progress: ProgressCallback | None = None,
) -> list[ImageRecord]:
    """One crop per labelled face (detector crop, or label crop on a miss), with its human points."""
    from ml.core.imageio import load_image

    records = []
    for index, face in enumerate(faces):
        image = load_image(face.image)
        truth_box = (*face.points.min(axis=0), *face.points.max(axis=0))
        detections = face_detector.detect(image)  # type: ignore[attr-defined]
        best = max(detections, key=lambda found: box_iou(found.box, truth_box), default=None)
        found = best is not None and box_iou(best.box, truth_box) >= 0.3
        roi = crop_roi(best) if found else landmarks_roi(face.points)
        crop, crop_to_image = extract_crop(image, roi, crop_size)
        image_to_crop = np.vstack([crop_to_image, [0.0, 0.0, 1.0]])
        image_to_crop = np.linalg.inv(image_to_crop)[:2]
        points = face.points @ image_to_crop[:, :2].T + image_to_crop[:, 2]
        path = folder / split / f"{_safe(face.name)}.jpg"
        _write_jpeg(path, crop)
        instance = Instance.from_points(points, Provenance(author="300-W" if found else "300-W (label crop)"))
        records.append(ImageRecord(str(path.resolve()), crop_size, crop_size, split, (instance,)))
        if progress is not None:
            progress(index + 1, len(faces))
    return records


def pool_crops(
    images: Sequence[Path],
    folder: Path,
    face_detector: object,
    min_score: float,
    crop_size: int = CROP_SIZE,
    progress: ProgressCallback | None = None,
) -> list[ImageRecord]:
    """Unlabelled training crops: one per confident detection in each photo (the pseudo-label pool)."""
    from ml.core.imageio import load_image

    records = []
    for index, path in enumerate(images):
        image = load_image(path)
        detections = [found for found in face_detector.detect(image) if found.score >= min_score]  # type: ignore[attr-defined]
        for number, detection in enumerate(detections):
            crop, _ = extract_crop(image, crop_roi(detection), crop_size)
            name = f"{_safe(path.parent.name)}_{_safe(path.stem)}_{number}.jpg"
            target = folder / "pool" / name
            _write_jpeg(target, crop)
            records.append(ImageRecord(str(target.resolve()), crop_size, crop_size, "train", ()))
        if progress is not None:
            progress(index + 1, len(images))
    return records


def crop_dataset(*groups: Sequence[ImageRecord]) -> KeypointDataset:
    """A dataset of crop records (absolute paths)."""
    return KeypointDataset(tuple(record for group in groups for record in group))


def pseudo_label_photos(data_root: Path, exclude_london_neutral: bool = True) -> list[Path]:
    """Unlabelled photos of the campaign: MEBeauty originals, London smiling, FASSEG frontal and multipose.

    London's *neutral* photos are left out: their manual templates are the human check that no model
    trained on (:func:`ml.landmarks.human_sets.read_london`).
    """
    import csv

    photos: list[Path] = []
    table = data_root / "mebeauty" / "images.csv"
    if table.is_file():
        with table.open(newline="") as handle:
            originals = sorted({row["original"] for row in csv.DictReader(handle) if row.get("original")})
        photos += [data_root / "mebeauty" / name for name in originals]
    photos += sorted((data_root / "london" / "smiling").glob("*.jpg"))
    if not exclude_london_neutral:
        photos += sorted((data_root / "london" / "neutral").glob("*.jpg"))
    photos += sorted((data_root / "fasseg" / "frontal" / "train" / "images").glob("*.jpg"))
    photos += sorted((data_root / "fasseg" / "multipose" / "train" / "images").glob("*.jpg"))
    return [photo for photo in photos if photo.is_file()]
