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

The report also lists each photo's counts (``per_photo``: boxes, found boxes, predicted pixels and those
inside an enlarged box, for the main rule and the subject's face), so that two segmenters can be compared
photo by photo (for example a bootstrap over photos of the difference in box recall).

**Faces** (``all_faces``). By default the segmenter analyses the subject's face only (the product's rule
for clinical photos, :mod:`ml.core.subject`), so the boxes of the other faces of a collage or a group
photo count as missed. With ``all_faces`` the segmenter returns every detected face
(:class:`FacePrediction`) and the report holds both protocols side by side from the same pass: the
subject's face alone (the default figures, unchanged) and every face (``all_faces``: the faces' masks
combined into one photo mask). Each human box is attributed to the face it lies on (:func:`face_of_box`);
boxes on no analysed face are counted and listed, never dropped: they stay in the recall's denominator.
"""

from __future__ import annotations

import csv
import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

SPLITS = ("train", "val", "test")
VALIDATION_PERCENT = 15
FOUND_COVERAGE = 0.02
PRECISION_ENLARGEMENT = 1.25
# A face box or human box "straddles" a collage seam when it reaches this share of the photo's side past
# the seam on both sides (a few pixels of detector slack are not a straddle).
SEAM_OVERLAP = 0.02
# A collage seam is a photo-long line where the grey level jumps: the median jump across it, over the
# photo's height (or width), is at least SEAM_MIN_STEP grey levels and SEAM_MIN_RATIO times the median
# jump of the neighbouring lines. On the wrinkle-boxes photos the seams of the source's mosaics score
# ratios of 4.7-67, the other lines at most 3 (60 train and 60 test photos looked at).
SEAM_MIN_STEP = 15.0
SEAM_MIN_RATIO = 4.0
SEAM_NEIGHBOURS = 5
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


def is_found(mask: np.ndarray, box: Box) -> bool:
    """Whether the predicted ``mask`` covers at least ``FOUND_COVERAGE`` of the human ``box``."""
    return bool(mask[box.y0 : box.y1, box.x0 : box.x1].mean() >= FOUND_COVERAGE)


def score_photo(mask: np.ndarray, boxes: list[Box]) -> PhotoScore:
    """Box recall and pixel precision counts of a predicted photo-sized ``mask`` (see the module doc)."""
    height, width = mask.shape
    found: dict[int, int] = {}
    totals: dict[int, int] = {}
    for box in boxes:
        totals[box.label] = totals.get(box.label, 0) + 1
        found[box.label] = found.get(box.label, 0) + int(is_found(mask, box))
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


@dataclass(frozen=True)
class FacePrediction:
    """One detected face of a photo for the all-faces evaluation: ``prediction`` (its photo-sized bool
    wrinkle mask, a function threshold → that mask for a sweep, or ``None`` when the face could not be
    analysed, with the ``reason``), ``square`` (the square the model segmented) and ``box`` (the face
    detector's box), both ``(x0, y0, x1, y1)`` in photo pixels, ``centre`` (the mean of its landmarks) and
    whether it is the subject's face (:mod:`ml.core.subject`)."""

    prediction: Any
    square: tuple[float, float, float, float]
    box: tuple[float, float, float, float]
    centre: tuple[float, float]
    subject: bool
    reason: str | None = None


def _seam(grey: np.ndarray) -> int | None:
    """Column of ``grey`` (float) left of which a collage seam runs top to bottom, or ``None``."""
    steps = np.median(np.abs(np.diff(grey, axis=1)), axis=0)  # steps[i]: between columns i and i + 1
    best: tuple[float, int] | None = None
    for index in range(SEAM_NEIGHBOURS + 1, len(steps) - SEAM_NEIGHBOURS - 1):
        around = np.concatenate(
            [steps[index - SEAM_NEIGHBOURS - 1 : index - 1], steps[index + 2 : index + SEAM_NEIGHBOURS + 2]]
        )
        ratio = float(steps[index] / (np.median(around) + 1.0))
        if steps[index] >= SEAM_MIN_STEP and ratio >= SEAM_MIN_RATIO and (best is None or ratio > best[0]):
            best = (ratio, index + 1)
    return None if best is None else best[1]


def collage_seams(image: np.ndarray) -> tuple[int | None, int | None]:
    """``(x, y)`` of the vertical and horizontal seam of a collage (a mosaic of photos, as in the
    source's training photos), each ``None`` when the photo has none (see ``SEAM_MIN_RATIO``)."""
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return _seam(grey), _seam(grey.T)


def _same_tile(
    seams: tuple[int | None, int | None], first: tuple[float, float], second: tuple[float, float]
) -> bool:
    """Whether two points lie on the same side of each seam (in the same tile of a collage)."""
    return all(
        seam is None or (a < seam) == (b < seam) for seam, a, b in zip(seams, first, second, strict=True)
    )


def face_of_box(
    box: Box, faces: Sequence[FacePrediction], seams: tuple[int | None, int | None] = (None, None)
) -> int | None:
    """Index of the face a human box lies on: among the analysed faces whose square holds the box's
    centre, in the same tile of a collage (``seams``, :func:`collage_seams`), the one whose landmark
    centre is nearest (a face's square can reach past its tile); ``None`` when there is none."""
    cx, cy = (box.x0 + box.x1) / 2.0, (box.y0 + box.y1) / 2.0
    holding = [
        index
        for index, face in enumerate(faces)
        if face.prediction is not None
        and face.square[0] <= cx < face.square[2]
        and face.square[1] <= cy < face.square[3]
        and _same_tile(seams, (cx, cy), face.centre)
    ]
    if not holding:
        return None
    return min(holding, key=lambda index: np.hypot(faces[index].centre[0] - cx, faces[index].centre[1] - cy))


OFF_FACE_REASONS = ("another_face", "tile_without_face", "outside_squares")
"""Why a box lies on no analysed face: it lies on a detected face that the protocol does not analyse
(``another_face``: the subject protocol and a collage's other faces); no face was detected in its
collage tile (``tile_without_face``: on a photo without seams, none on the photo); or faces were, but
none of their squares holds it (``outside_squares``)."""


def _off_face_reason(
    box: Box,
    owner: int | None,
    analysed: list[bool],
    faces: Sequence[FacePrediction],
    seams: tuple[int | None, int | None],
) -> str | None:
    """``None`` when ``box`` lies on an analysed face (``owner`` with ``analysed[owner]``), else one of
    :data:`OFF_FACE_REASONS`."""
    if owner is not None:
        return None if analysed[owner] else "another_face"
    centre = ((box.x0 + box.x1) / 2.0, (box.y0 + box.y1) / 2.0)
    if any(_same_tile(seams, centre, face.centre) for face in faces):
        return "outside_squares"
    return "tile_without_face"


def _mask_at(prediction: Any, rule: float | None) -> np.ndarray:
    """The bool mask of a segmenter's ``prediction`` at threshold ``rule`` (``None``: it is the mask)."""
    if rule is None:
        return prediction
    return prediction(rule) if callable(prediction) else prediction > rule


def _straddles(low: float, high: float, seam: int | None, side: int) -> bool:
    margin = SEAM_OVERLAP * side
    return seam is not None and low < seam - margin and high > seam + margin


class _Layout:
    """How many photos hold several faces, how many are collages (:func:`collage_seams`) and which face
    detections, analysed squares and human boxes straddle a seam."""

    def __init__(self) -> None:
        self.faces_detected = 0
        self.faces_analysed = 0
        self.faces_not_analysed: list[dict[str, str]] = []
        self.multi_face_photos = 0
        self.collage_photos = 0
        self.face_boxes_straddling = 0
        self.squares_straddling = 0
        self.human_boxes_straddling = 0
        self.human_boxes_in_collages = 0

    def add(
        self,
        name: str,
        faces: Sequence[FacePrediction],
        boxes: list[Box],
        shape: tuple,
        seams: tuple[int | None, int | None],
    ) -> None:
        height, width = int(shape[0]), int(shape[1])
        self.faces_detected += len(faces)
        self.faces_analysed += sum(face.prediction is not None for face in faces)
        self.faces_not_analysed += [
            {"photo": name, "reason": face.reason or ""} for face in faces if face.prediction is None
        ]
        self.multi_face_photos += len(faces) >= 2
        if seams == (None, None):
            return
        self.collage_photos += 1

        def straddles(x0: float, y0: float, x1: float, y1: float) -> bool:
            return _straddles(x0, x1, seams[0], width) or _straddles(y0, y1, seams[1], height)

        self.face_boxes_straddling += sum(straddles(*face.box) for face in faces)
        self.squares_straddling += sum(straddles(*face.square) for face in faces)
        self.human_boxes_in_collages += len(boxes)
        self.human_boxes_straddling += sum(straddles(box.x0, box.y0, box.x1, box.y1) for box in boxes)

    def summary(self) -> dict:
        return {
            "faces_detected": self.faces_detected,
            "faces_analysed": self.faces_analysed,
            "faces_not_analysed": self.faces_not_analysed,
            "multi_face_photos": self.multi_face_photos,
            "collage_photos": self.collage_photos,
            "collage_definition": "a photo-long line where the grey level jumps by at least "
            f"{SEAM_MIN_STEP:g} levels (median along the line) and {SEAM_MIN_RATIO:g} times the jumps of the "
            "neighbouring lines (ml.wrinkles.boxes.collage_seams)",
            "seams": {
                "definition": f"a box straddles a seam when it reaches more than {SEAM_OVERLAP:.0%} of the "
                "photo's side past it on both sides",
                "face_detector_boxes_straddling": self.face_boxes_straddling,
                "analysed_squares_straddling": self.squares_straddling,
                "human_boxes_in_collages": self.human_boxes_in_collages,
                "human_boxes_straddling": self.human_boxes_straddling,
            },
        }


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
        self.faces_analysed = 0
        self.on_face_found = dict.fromkeys(classes, 0)
        self.on_face_total = dict.fromkeys(classes, 0)
        self.off_face: list[dict[str, Any]] = []
        self.on_unanalysed_photos = 0

    def add_face_boxes(
        self, name: str, mask: np.ndarray, boxes: list[Box], off_face: list[str | None], faces: int
    ) -> None:
        """Attribute an analysed photo's boxes: ``off_face`` is ``None`` for a box on an analysed face,
        else why it is on none (one of :data:`OFF_FACE_REASONS`); those are listed."""
        self.faces_analysed += faces
        for box, reason in zip(boxes, off_face, strict=True):
            if reason is None:
                self.on_face_total[box.label] = self.on_face_total.get(box.label, 0) + 1
                self.on_face_found[box.label] = self.on_face_found.get(box.label, 0) + int(
                    is_found(mask, box)
                )
            else:
                self.off_face.append(
                    {
                        "photo": name,
                        "class": self.classes.get(box.label, str(box.label)),
                        "box": [box.x0, box.y0, box.x1, box.y1],
                        "reason": reason,
                    }
                )

    def face_summary(self) -> dict:
        """Box attribution of the faces protocol (see :meth:`add_face_boxes`)."""
        off_by_class = {label: 0 for label in self.classes}
        names = {name: label for label, name in self.classes.items()}
        for row in self.off_face:
            off_by_class[names[row["class"]]] += 1
        return {
            "faces_analysed": self.faces_analysed,
            "boxes_on_analysed_face": sum(self.on_face_total.values()),
            "boxes_on_no_analysed_face": len(self.off_face),
            "boxes_on_no_analysed_face_by_reason": {
                reason: sum(row["reason"] == reason for row in self.off_face) for reason in OFF_FACE_REASONS
            },
            "boxes_on_photos_not_analysed": self.on_unanalysed_photos,
            "box_recall_on_analysed_faces": _ratio(
                sum(self.on_face_found.values()), sum(self.on_face_total.values())
            ),
            "per_class_faces": [
                {
                    "class": self.classes[label],
                    "boxes_on_analysed_face": self.on_face_total[label],
                    "boxes_on_no_analysed_face": off_by_class[label],
                    "box_recall_on_analysed_faces": _ratio(
                        self.on_face_found[label], self.on_face_total[label]
                    ),
                }
                for label in sorted(self.classes)
            ],
            "boxes_on_no_analysed_face_list": self.off_face,
        }

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
    segment: Callable[[np.ndarray], Any],
    split: str | None = "test",
    limit: int | None = None,
    log: Callable[[str], None] = print,
    thresholds: Sequence[float] | None = None,
    all_faces: bool = False,
) -> dict:
    """Box recall, pixel precision (per class and overall) and the share of photos analysed.

    ``segment`` maps an RGB photo to its bool wrinkle mask and raises ``ValueError`` (for example
    :class:`ml.core.subject.NoFaceError`) when it cannot analyse it; such photos count as analysed = no
    and their boxes as not found. With ``thresholds``, ``segment`` returns a probability map (or a function
    threshold → mask) instead and the report holds one evaluation per threshold under ``"sweep"`` (the
    first is the main one). With ``all_faces``, ``segment`` returns the photo's detected faces
    (:class:`FacePrediction`, each prediction as above); the main figures are then those of the subject's
    face and ``"all_faces"`` holds those of every face, with the boxes' attribution to faces in both and
    the photos' layout (collages, seams) under ``"layout"`` (see the module doc)."""
    from ml.core.imageio import load_image

    classes = read_classes(data_dir)
    photos = read_photos(data_dir, split)[:limit] if limit else read_photos(data_dir, split)
    if not photos:
        raise ValueError(f"No photos in split '{split}' of {data_dir}.")
    rules = list(thresholds) if thresholds else [None]
    tallies = [_Tally(classes) for _ in rules]
    all_face_tallies = [_Tally(classes) for _ in rules] if all_faces else []
    layout = _Layout()
    failures: list[dict[str, str]] = []
    per_photo: list[dict[str, Any]] = []
    started = time.monotonic()
    for number, photo in enumerate(photos, start=1):
        image = load_image(photo.image_path)
        boxes = photo.boxes(image.shape[1], image.shape[0])
        for tally in tallies + all_face_tallies:
            tally.add_boxes(boxes)
        try:
            prediction = segment(image)
        except ValueError as error:
            failures.append({"photo": photo.name, "reason": str(error)})
            for tally in tallies + all_face_tallies:
                tally.on_unanalysed_photos += len(boxes)
            per_photo.append(_photo_counts(photo.name, boxes, None))
            continue
        if not all_faces:
            scores = [score_photo(_mask_at(prediction, rule), boxes) for rule in rules]
            for score, tally in zip(scores, tallies, strict=True):
                tally.add_score(score)
            per_photo.append(_photo_counts(photo.name, boxes, scores[0]))
        else:
            faces = [face for face in prediction if face.prediction is not None]
            seams = collage_seams(image)
            layout.add(photo.name, prediction, boxes, image.shape, seams)
            owners = [face_of_box(box, faces, seams) for box in boxes]
            for rule_index, (rule, subject_tally, all_tally) in enumerate(
                zip(rules, tallies, all_face_tallies, strict=True)
            ):
                masks = [_mask_at(face.prediction, rule) for face in faces]
                for tally, chosen in (
                    (subject_tally, [face.subject for face in faces]),
                    (all_tally, [True] * len(faces)),
                ):
                    mask = np.zeros(image.shape[:2], dtype=bool)
                    for face_mask, keep in zip(masks, chosen, strict=True):
                        if keep:
                            mask |= face_mask
                    score = score_photo(mask, boxes)
                    tally.add_score(score)
                    if rule_index == 0 and tally is subject_tally:
                        per_photo.append(_photo_counts(photo.name, boxes, score))
                    off_face = [
                        _off_face_reason(box, owner, chosen, faces, seams)
                        for box, owner in zip(boxes, owners, strict=True)
                    ]
                    tally.add_face_boxes(photo.name, mask, boxes, off_face, sum(chosen))
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
        "per_photo": per_photo,
    }
    if thresholds:
        report["threshold"] = rules[0]
        report["sweep"] = _sweep(rules, tallies)
    if all_faces:
        report["faces"] = "subject"
        report.update(tallies[0].face_summary())
        report["definitions"]["on_analysed_face"] = (
            "a box lies on the analysed face whose square (the region the model segmented) holds its "
            "centre in the same collage tile, the face with the nearest landmark centre when several do; "
            "boxes on no analysed face "
            "stay in box_recall's denominator as missed"
        )
        report["layout"] = layout.summary()
        report["all_faces"] = {
            "faces": "all",
            **all_face_tallies[0].summary(),
            **all_face_tallies[0].face_summary(),
            **({"sweep": _sweep(rules, all_face_tallies)} if thresholds else {}),
        }
    return report


def _photo_counts(name: str, boxes: list[Box], score: PhotoScore | None) -> dict[str, Any]:
    """One photo's counts for the main rule; ``score`` is ``None`` for a photo that was not analysed."""
    return {
        "photo": name,
        "analysed": score is not None,
        "boxes": len(boxes),
        "found": sum(score.found.values()) if score is not None else 0,
        "predicted_pixels": score.predicted_pixels if score is not None else 0,
        "inside_any": score.inside_any if score is not None else 0,
    }


def _sweep(rules: list, tallies: list[_Tally]) -> list[dict]:
    return [
        {"threshold": rule, **{key: tally.summary()[key] for key in ("box_recall", "pixel_precision")}}
        for rule, tally in zip(rules, tallies, strict=True)
    ]


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


def _reasons(part: dict) -> str:
    return ", ".join(
        f"{count} {reason.replace('_', ' ')}"
        for reason, count in part["boxes_on_no_analysed_face_by_reason"].items()
    )


def _faces_section(report: dict) -> list[str]:
    """The subject's face and every face side by side, per class too, and the photos' layout."""
    subject, every = report, report["all_faces"]
    layout = report["layout"]
    seams = layout["seams"]
    lines = [
        "Subject's face only (the product's rule) and every detected face, same pass:",
        "",
        "| faces | faces analysed | boxes on an analysed face | boxes on no analysed face "
        "| box recall | recall on analysed faces | pixel precision | predicted pixels |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for name, row in (("subject", subject), ("all", every)):
        lines.append(
            f"| {name} | {row['faces_analysed']} | {row['boxes_on_analysed_face']} "
            f"| {row['boxes_on_no_analysed_face']} | {_format(row['box_recall'])} "
            f"| {_format(row['box_recall_on_analysed_faces'])} | {_format(row['pixel_precision'])} "
            f"| {row['predicted_pixels']} |"
        )
    lines += [
        "",
        "| class | boxes | on a face: subject / all | recall subject | recall all "
        "| recall on analysed faces: subject / all | precision subject | precision all |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for one, both, face_one, face_both in zip(
        subject["per_class"],
        every["per_class"],
        subject["per_class_faces"],
        every["per_class_faces"],
        strict=True,
    ):
        lines.append(
            f"| {one['class']} | {one['boxes']} | {face_one['boxes_on_analysed_face']} / "
            f"{face_both['boxes_on_analysed_face']} | {_format(one['box_recall'])} "
            f"| {_format(both['box_recall'])} | {_format(face_one['box_recall_on_analysed_faces'])} / "
            f"{_format(face_both['box_recall_on_analysed_faces'])} | {_format(one['pixel_precision'])} "
            f"| {_format(both['pixel_precision'])} |"
        )
    lines += [
        "",
        f"Layout: {layout['faces_detected']} faces detected on {report['photos_analysed']} analysed photos, "
        f"{layout['faces_analysed']} analysed ({len(layout['faces_not_analysed'])} not); "
        f"{layout['multi_face_photos']} photos with several faces; {layout['collage_photos']} collages "
        f"(seam: {layout['collage_definition']}). Seams ({seams['definition']}): "
        f"{seams['face_detector_boxes_straddling']} face-detector boxes and "
        f"{seams['analysed_squares_straddling']} analysed squares straddle one; "
        f"{seams['human_boxes_straddling']} of the {seams['human_boxes_in_collages']} human boxes on "
        f"collages do. Boxes on no analysed face ({_reasons(subject)} with the subject's face; "
        f"{_reasons(every)} with every face) are listed in the JSON (`boxes_on_no_analysed_face_list`).",
        "",
    ]
    return lines


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
        if "all_faces" in report:
            lines += _faces_section(report)
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
