"""Real face photos with human wrinkle boxes (the ``wrinkle-boxes`` folder format): reading, a fixed
photo-grouped split, and the box evaluation of a wrinkle segmenter.

Folder format: ``classes.json`` (index → class name), ``index.csv`` (``image, labels, split``; split is
the source's ``train`` or ``valid``), ``images/NAME.jpg`` and ``labels/NAME.txt`` with one YOLO box a
line, ``class cx cy w h`` normalised to the photo.

**Split.** Each source photo is one group (the folder holds one copy per photo). The source's
``valid`` photos are the ``test`` split: never trained on, never used to pick a checkpoint. The
source's ``train`` photos are divided by a hash of the file name: 15 % ``val`` (checkpoint choice,
reports), the rest ``train``. The split depends on nothing but the names, so every command and
session gets the same one.

**Box evaluation** of a photo-sized predicted mask P against the human boxes:

* *box recall*: a human box is found when P covers at least 2 % of its pixels; recall = found boxes ÷
  all boxes of the split, including those on photos that could not be analysed (no face found);
* *pixel precision*: predicted pixels inside any human box enlarged by 25 % (width and height × 1.25
  about its centre) ÷ all predicted pixels, pooled over the analysed photos. Per class, a predicted
  pixel counts for the class of the nearest enlarged box (distance 0 inside it); precision of class c
  = its pixels inside class-c boxes ÷ all pixels that count for class c;
* *share analysed*: photos with a segmentation ÷ photos of the split.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

SPLITS = ("train", "val", "test")
VALIDATION_PERCENT = 15
FOUND_COVERAGE = 0.02
PRECISION_ENLARGEMENT = 1.25
LABEL = "real photographs with human wrinkle boxes"


@dataclass(frozen=True)
class Box:
    """A human box in photo pixels ``[x0, x1) × [y0, y1)``."""

    label: int
    x0: int
    y0: int
    x1: int
    y1: int

    def enlarged(self, factor: float, width: int, height: int) -> Box:
        """The box scaled by ``factor`` about its centre, clipped to the photo."""
        cx, cy = (self.x0 + self.x1) / 2.0, (self.y0 + self.y1) / 2.0
        half_w, half_h = (self.x1 - self.x0) * factor / 2.0, (self.y1 - self.y0) * factor / 2.0
        return Box(
            self.label,
            max(0, int(np.floor(cx - half_w))),
            max(0, int(np.floor(cy - half_h))),
            min(width, int(np.ceil(cx + half_w))),
            min(height, int(np.ceil(cy + half_h))),
        )


@dataclass(frozen=True)
class BoxPhoto:
    """One photo of a ``wrinkle-boxes`` folder."""

    name: str
    image_path: Path
    labels_path: Path
    source_split: str

    @property
    def split(self) -> str:
        return split_of(self.name, self.source_split)

    def boxes(self, width: int, height: int) -> list[Box]:
        """The human boxes in pixels of a ``width × height`` photo (empty boxes dropped)."""
        return read_yolo_boxes(self.labels_path, width, height)


def split_of(name: str, source_split: str) -> str:
    """``test`` for the source's validation photos, else ``val`` or ``train`` by a hash of the name."""
    if source_split != "train":
        return "test"
    digest = int(hashlib.sha1(name.encode()).hexdigest(), 16)
    return "val" if digest % 100 < VALIDATION_PERCENT else "train"


def read_classes(data_dir: Path) -> dict[int, str]:
    """Class index → name from ``classes.json``."""
    path = Path(data_dir) / "classes.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a wrinkle-boxes folder.")
    return {int(key): value for key, value in json.loads(path.read_text()).items()}


def read_photos(data_dir: Path, split: str | None = None) -> list[BoxPhoto]:
    """Photos listed in ``index.csv``, optionally only those of one split (``train``/``val``/``test``)."""
    data_dir = Path(data_dir)
    if split is not None and split not in SPLITS:
        raise ValueError(f"Unknown split '{split}'; choose one of {', '.join(SPLITS)}.")
    path = data_dir / "index.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found: not a wrinkle-boxes folder.")
    with path.open(newline="") as handle:
        photos = [
            BoxPhoto(Path(row["image"]).stem, data_dir / row["image"], data_dir / row["labels"], row["split"])
            for row in csv.DictReader(handle)
        ]
    return [photo for photo in photos if split is None or photo.split == split]


def read_yolo_boxes(path: Path, width: int, height: int) -> list[Box]:
    """The boxes of a YOLO label file (see :func:`parse_yolo_boxes`); a missing file means no boxes."""
    path = Path(path)
    if not path.is_file():
        return []
    try:
        return parse_yolo_boxes(path.read_text(), width, height)
    except ValueError as error:
        raise ValueError(f"{path}: {error}") from error


def parse_yolo_boxes(text: str, width: int, height: int) -> list[Box]:
    """YOLO ``class cx cy w h`` lines (normalised) as pixel boxes of a ``width × height`` photo; empty
    boxes are dropped."""
    boxes = []
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            raise ValueError(f"line {number}: expected 'class cx cy w h', got {line!r}.")
        label = int(fields[0])
        cx, cy, w, h = (float(value) for value in fields[1:])
        box = Box(
            label,
            max(0, int(round((cx - w / 2) * width))),
            max(0, int(round((cy - h / 2) * height))),
            min(width, int(round((cx + w / 2) * width))),
            min(height, int(round((cy + h / 2) * height))),
        )
        if box.x1 > box.x0 and box.y1 > box.y0:
            boxes.append(box)
    return boxes


def boxes_mask(boxes: list[Box], shape: tuple[int, int]) -> np.ndarray:
    """Bool mask of the union of ``boxes``."""
    mask = np.zeros(shape, dtype=bool)
    for box in boxes:
        mask[box.y0 : box.y1, box.x0 : box.x1] = True
    return mask


@dataclass
class PhotoScore:
    """Per-class counts of one photo: found and total boxes, predicted pixels inside and counted."""

    found: dict[int, int]
    boxes: dict[int, int]
    inside: dict[int, int]
    counted: dict[int, int]
    predicted_pixels: int
    inside_any: int


def score_photo(mask: np.ndarray, boxes: list[Box]) -> PhotoScore:
    """Box recall and pixel precision counts of a predicted photo-sized ``mask`` (see the module doc)."""
    height, width = mask.shape
    found: dict[int, int] = {}
    totals: dict[int, int] = {}
    for box in boxes:
        covered = mask[box.y0 : box.y1, box.x0 : box.x1].mean()
        totals[box.label] = totals.get(box.label, 0) + 1
        found[box.label] = found.get(box.label, 0) + int(covered >= FOUND_COVERAGE)
    enlarged = [box.enlarged(PRECISION_ENLARGEMENT, width, height) for box in boxes]
    predicted = int(mask.sum())
    inside_any = int((mask & boxes_mask(enlarged, mask.shape)).sum()) if enlarged else 0
    labels = sorted({box.label for box in boxes})
    inside: dict[int, int] = {}
    counted: dict[int, int] = {}
    if labels and predicted:
        # Distance of every pixel to each class's enlarged boxes; a predicted pixel counts for the nearest.
        distances = np.stack(
            [
                cv2.distanceTransform(
                    (~boxes_mask([box for box in enlarged if box.label == label], mask.shape)).astype(
                        np.uint8
                    ),
                    cv2.DIST_L2,
                    3,
                )
                for label in labels
            ]
        )
        nearest = distances.argmin(axis=0)
        for index, label in enumerate(labels):
            mine = mask & (nearest == index)
            counted[label] = int(mine.sum())
            inside[label] = int((mine & (distances[index] == 0)).sum())
    return PhotoScore(found, totals, inside, counted, predicted, inside_any)


def _ratio(numerator: int, denominator: int) -> float | None:
    return numerator / denominator if denominator else None


class _Tally:
    """Box and pixel counts of one prediction rule over the photos of a split."""

    def __init__(self, classes: dict[int, str]) -> None:
        self.classes = classes
        self.found = dict.fromkeys(classes, 0)
        self.total = dict.fromkeys(classes, 0)
        self.found_analysed = dict.fromkeys(classes, 0)
        self.total_analysed = dict.fromkeys(classes, 0)
        self.inside = dict.fromkeys(classes, 0)
        self.counted = dict.fromkeys(classes, 0)
        self.predicted_pixels = 0
        self.inside_any = 0

    def add_boxes(self, boxes: list[Box]) -> None:
        for box in boxes:
            self.total[box.label] = self.total.get(box.label, 0) + 1

    def add_score(self, score: PhotoScore) -> None:
        for label in score.boxes:
            self.found[label] = self.found.get(label, 0) + score.found[label]
            self.found_analysed[label] = self.found_analysed.get(label, 0) + score.found[label]
            self.total_analysed[label] = self.total_analysed.get(label, 0) + score.boxes[label]
        for label in score.counted:
            self.inside[label] += score.inside[label]
            self.counted[label] += score.counted[label]
        self.predicted_pixels += score.predicted_pixels
        self.inside_any += score.inside_any

    def summary(self) -> dict:
        return {
            "boxes": sum(self.total.values()),
            "box_recall": _ratio(sum(self.found.values()), sum(self.total.values())),
            "box_recall_analysed": _ratio(
                sum(self.found_analysed.values()), sum(self.total_analysed.values())
            ),
            "pixel_precision": _ratio(self.inside_any, self.predicted_pixels),
            "predicted_pixels": self.predicted_pixels,
            "per_class": [
                {
                    "class": self.classes[label],
                    "boxes": self.total[label],
                    "box_recall": _ratio(self.found[label], self.total[label]),
                    "box_recall_analysed": _ratio(self.found_analysed[label], self.total_analysed[label]),
                    "pixel_precision": _ratio(self.inside[label], self.counted[label]),
                    "predicted_pixels": self.counted[label],
                }
                for label in sorted(self.classes)
            ],
        }


def evaluate_boxes(
    data_dir: Path,
    segment: Callable[[np.ndarray], np.ndarray],
    split: str | None = "test",
    limit: int | None = None,
    log: Callable[[str], None] = print,
    thresholds: Sequence[float] | None = None,
) -> dict:
    """Box recall, pixel precision (per class and overall) and the share of photos analysed.

    ``segment`` maps an RGB photo to its bool wrinkle mask and raises ``ValueError`` (for example
    :class:`ml.core.subject.NoFaceError`) when it cannot analyse it; such photos count as analysed = no
    and their boxes as not found. With ``thresholds``, ``segment`` returns a probability map (or a function
    threshold → mask) instead and the report holds one evaluation per threshold under ``"sweep"`` (the
    first is the main one)."""
    from ml.core.imageio import load_image

    classes = read_classes(data_dir)
    photos = read_photos(data_dir, split)[:limit] if limit else read_photos(data_dir, split)
    if not photos:
        raise ValueError(f"No photos in split '{split}' of {data_dir}.")
    rules = list(thresholds) if thresholds else [None]
    tallies = [_Tally(classes) for _ in rules]
    failures: list[dict[str, str]] = []
    started = time.monotonic()
    for number, photo in enumerate(photos, start=1):
        image = load_image(photo.image_path)
        boxes = photo.boxes(image.shape[1], image.shape[0])
        for tally in tallies:
            tally.add_boxes(boxes)
        try:
            prediction = segment(image)
        except ValueError as error:
            failures.append({"photo": photo.name, "reason": str(error)})
            continue
        for rule, tally in zip(rules, tallies, strict=True):
            mask = (
                prediction
                if rule is None
                else (prediction(rule) if callable(prediction) else prediction > rule)
            )
            tally.add_score(score_photo(mask, boxes))
        if number % 25 == 0:
            log(f"{number}/{len(photos)} photos, {time.monotonic() - started:.0f} s")
    analysed = len(photos) - len(failures)
    report = {
        "label": LABEL,
        "data": str(data_dir),
        "split": split or "all",
        "photos": len(photos),
        "photos_analysed": analysed,
        "share_analysed": analysed / len(photos),
        "not_analysed": failures,
        **tallies[0].summary(),
        "definitions": {
            "found": f"predicted wrinkle pixels cover >= {FOUND_COVERAGE:.0%} of the human box",
            "pixel_precision": f"predicted pixels inside any human box enlarged by "
            f"{PRECISION_ENLARGEMENT - 1:.0%} / all predicted pixels (per class: pixels count for the "
            "class of the nearest enlarged box)",
            "box_recall": "found boxes / all boxes, boxes of photos not analysed count as not found",
        },
        "seconds": time.monotonic() - started,
    }
    if thresholds:
        report["threshold"] = rules[0]
        report["sweep"] = [
            {"threshold": rule, **{key: tally.summary()[key] for key in ("box_recall", "pixel_precision")}}
            for rule, tally in zip(rules, tallies, strict=True)
        ]
    return report


def iter_split_counts(data_dir: Path) -> Iterator[tuple[str, int]]:
    """``(split, photos)`` for each split, in ``SPLITS`` order."""
    photos = read_photos(data_dir)
    for split in SPLITS:
        yield split, sum(photo.split == split for photo in photos)


def _format(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _post_processing_line(model: dict) -> list[str]:
    """The report's line on the mask post-processing its model used (none when it used none)."""
    steps = {key: value for key, value in (model.get("post_processing") or {}).items() if value is not None}
    if not any(key != "tangential_angle" for key in steps):
        return []
    return [
        "Mask post-processing (`ml/wrinkles/postprocess.py`): "
        + ", ".join(f"{key} {value:g}" for key, value in steps.items())
        + ".",
        "",
    ]


def markdown_report(reports: list[dict], command: str) -> str:
    """One table a model and split: overall and per-class recall and precision."""
    lines = [
        "# Wrinkle box evaluation on real photographs",
        "",
        f"Data: {reports[0]['data']} ({LABEL}). Definitions: a human box is *found* when "
        f"{reports[0]['definitions']['found']}; *pixel precision* = "
        f"{reports[0]['definitions']['pixel_precision']}; {reports[0]['definitions']['box_recall']}.",
        "",
        f"Command: `{command}`",
        "",
    ]
    for report in reports:
        lines += [
            f"## {report.get('model', {}).get('name', 'model')} "
            f"({report.get('model', {}).get('version', '')}), split `{report['split']}`",
            "",
            f"Photos: {report['photos']}, analysed {report['photos_analysed']} "
            f"({report['share_analysed']:.1%}); boxes {report['boxes']}; "
            f"box recall **{_format(report['box_recall'])}** "
            f"(on analysed photos {_format(report['box_recall_analysed'])}); "
            f"pixel precision **{_format(report['pixel_precision'])}**; {report['seconds']:.0f} s.",
            "",
            *_post_processing_line(report.get("model", {})),
            "| class | boxes | box recall | pixel precision | predicted pixels |",
            "|---|---|---|---|---|",
        ]
        for row in report["per_class"]:
            lines.append(
                f"| {row['class']} | {row['boxes']} | {_format(row['box_recall'])} "
                f"| {_format(row['pixel_precision'])} | {row['predicted_pixels']} |"
            )
        lines.append("")
        if "sweep" in report:
            lines += [
                f"Threshold sweep (the table above is at {report['threshold']:g}):",
                "",
                "| threshold | box recall | pixel precision |",
                "|---|---|---|",
            ]
            lines += [
                f"| {row['threshold']:g} | {_format(row['box_recall'])} | {_format(row['pixel_precision'])} |"
                for row in report["sweep"]
            ]
            lines.append("")
    return "\n".join(lines)
