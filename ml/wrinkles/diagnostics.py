"""Where a wrinkle segmenter's false-positive pixels are, on a ``wrinkle-boxes`` split, from cached
predictions so that threshold and post-processing sweeps never re-run the network.

``cache_predictions`` stores per photo (``OUT/NAME.npz``): the model's probability map in photo pixels
(0 outside the model's square, float16), the subject's 68 landmarks and the boxes of every detected
face (the other faces of a 2×2 collage). A predicted pixel is a *false positive* when it lies outside
every human box enlarged by 25 % (the pixel-precision rule of :mod:`ml.wrinkles.boxes`);
``false_positive_breakdown`` attributes each one to the first place of :data:`PLACES` it falls in.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.wrinkles.boxes import read_photos
from ml.wrinkles.postprocess import eye_distance


@dataclass
class CachedPrediction:
    """One photo's cached prediction (see the module doc)."""

    name: str
    probability: np.ndarray
    landmarks: np.ndarray
    face_boxes: np.ndarray
    valid: np.ndarray


def cache_predictions(
    data_dir: Path,
    split: str,
    out_dir: Path,
    checkpoint: Path | None = None,
    limit: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Run the segmenter once per photo of ``split`` and store its raw probability map (see module doc).
    Photos already cached are skipped; photos without a face are listed in the result."""
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_index
    from ml.wrinkles.analysis import resolve_wrinkle_model, segment_wrinkles
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL
    from ml.wrinkles.train import load_checkpoint

    loaded = load_checkpoint(checkpoint) if checkpoint is not None else None
    network, metadata, _ = resolve_wrinkle_model(DEFAULT_WRINKLE_MODEL, None, loaded)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    photos = read_photos(data_dir, split)
    photos = photos[:limit] if limit else photos
    no_face: list[str] = []
    started = time.monotonic()
    for number, photo in enumerate(photos, start=1):
        target = out_dir / f"{photo.name}.npz"
        if target.exists():
            continue
        image = load_image(photo.image_path)
        faces = detect_faces_with_landmarks(image)
        index = subject_index(faces)
        if index is None:
            no_face.append(photo.name)
            continue
        landmarks = np.asarray(faces[index].landmarks, dtype=np.float64)
        segmentation = segment_wrinkles(image, landmarks, network, metadata)
        np.savez_compressed(
            target,
            probability=segmentation.probability.astype(np.float16),
            landmarks=landmarks,
            face_boxes=np.array([face.box for face in faces], dtype=np.float64).reshape(-1, 4),
            subject=index,
            valid=segmentation.crop.mask_to_photo(segmentation.valid, image.shape),
        )
        if number % 10 == 0:
            log(f"{split}: {number}/{len(photos)} photos, {time.monotonic() - started:.0f} s")
    return {"split": split, "photos": len(photos), "no_face": no_face}


def load_cached(out_dir: Path, name: str) -> CachedPrediction | None:
    """The cached prediction of photo ``name``, or ``None`` (no face / not cached)."""
    path = Path(out_dir) / f"{name}.npz"
    if not path.exists():
        return None
    with np.load(path) as data:
        boxes = data["face_boxes"]
        others = np.delete(boxes, int(data["subject"]), axis=0)
        return CachedPrediction(
            name, data["probability"].astype(np.float32), data["landmarks"], others, data["valid"]
        )


PLACES: tuple[str, ...] = (
    "photo_border",
    "other_face",
    "hairline",
    "face_contour",
    "around_eyes",
    "nose",
    "nasolabial",
    "below_nose",
    "forehead",
    "cheeks_other",
)
"""Where a false-positive pixel lies, first match wins: within 4 px of the photo's edge or a 2×2
collage's middle lines (``photo_border``); inside another detected face's box (``other_face``); within
0.15 eye distances of the analysed face outline above the brows (``hairline``) or below them
(``face_contour``: jaw, cheek edge, beard edge); within 0.45 eye distances of an eye or on the nose
bridge between the eyes (``around_eyes``: glasses frames, lashes, lids); the nose; within 0.2 eye
distances of the nose-wing-to-mouth-corner lines (``nasolabial``); below the nose tip (``below_nose``:
lips' edge, chin, beard); above the brows (``forehead``); anything else (``cheeks_other``)."""

BORDER_PIXELS = 4
CONTOUR_BAND = 0.15
EYE_RING = 0.45
NASOLABIAL_BAND = 0.2


def _segment_band(shape: tuple[int, int], start: np.ndarray, end: np.ndarray, radius: float) -> np.ndarray:
    import cv2

    band = np.zeros(shape, dtype=np.uint8)
    cv2.line(band, tuple(int(v) for v in start), tuple(int(v) for v in end), 1, max(1, int(2 * radius)))
    return band.astype(bool)


def place_masks(
    landmarks: np.ndarray, shape: tuple[int, int], other_faces: np.ndarray
) -> dict[str, np.ndarray]:
    """One bool mask per :data:`PLACES` entry (overlapping; :func:`false_positive_breakdown` takes the
    first that holds a pixel)."""
    import cv2

    from ml.wrinkles.analysis import face_outline_mask
    from ml.zones.landmark_model import FACE_PARTS, render_face_parts

    height, width = shape
    unit = eye_distance(landmarks)
    rows, cols = np.mgrid[0:height, 0:width]
    border = (
        (rows < BORDER_PIXELS)
        | (cols < BORDER_PIXELS)
        | (rows >= height - BORDER_PIXELS)
        | (cols >= width - BORDER_PIXELS)
        | (np.abs(rows - height / 2) < BORDER_PIXELS) & bool(len(other_faces))
        | (np.abs(cols - width / 2) < BORDER_PIXELS) & bool(len(other_faces))
    )
    others = np.zeros(shape, dtype=bool)
    for x0, y0, x1, y1 in other_faces:
        others[max(0, int(y0)) : max(0, int(y1)), max(0, int(x0)) : max(0, int(x1))] = True
    outline = face_outline_mask(landmarks, shape)
    inward = cv2.distanceTransform(outline.astype(np.uint8), cv2.DIST_L2, 3)
    contour = outline & (inward < CONTOUR_BAND * unit)
    brow_row = landmarks[17:27, 1].min()
    parts = render_face_parts(landmarks, shape)
    eyes = (parts == FACE_PARTS.index("eyes")).astype(np.uint8)
    to_eye = cv2.distanceTransform(1 - eyes, cv2.DIST_L2, 3)
    bridge = (
        (cols >= landmarks[39, 0])
        & (cols <= landmarks[42, 0])
        & (rows >= brow_row)
        & (rows <= landmarks[29, 1])
    )
    nasolabial = _segment_band(shape, landmarks[31], landmarks[48], NASOLABIAL_BAND * unit) | _segment_band(
        shape, landmarks[35], landmarks[54], NASOLABIAL_BAND * unit
    )
    return {
        "photo_border": border,
        "other_face": others,
        "hairline": contour & (rows < brow_row),
        "face_contour": contour & (rows >= brow_row),
        "around_eyes": (to_eye < EYE_RING * unit) | bridge,
        "nose": parts == FACE_PARTS.index("nose"),
        "nasolabial": nasolabial,
        "below_nose": rows > landmarks[33, 1],
        "forehead": rows < brow_row,
        "cheeks_other": np.ones(shape, dtype=bool),
    }


def false_positive_breakdown(
    data_dir: Path,
    cache_dir: Path,
    split: str,
    mask_of: Callable[[CachedPrediction], np.ndarray],
) -> dict[str, Any]:
    """Predicted and false-positive pixels per place (:data:`PLACES`), on collages and single faces, and
    the box evaluation of the cached predictions with ``mask_of`` (cached prediction → bool mask)."""
    from ml.core.imageio import load_image
    from ml.wrinkles.boxes import PRECISION_ENLARGEMENT, _Tally, boxes_mask, read_classes, score_photo

    predicted = dict.fromkeys(PLACES, 0)
    false = dict.fromkeys(PLACES, 0)
    by_layout = {"collage": [0, 0], "single": [0, 0]}
    tally = _Tally(read_classes(data_dir))
    for photo in read_photos(data_dir, split):
        cached = load_cached(cache_dir, photo.name)
        image_shape = load_image(photo.image_path).shape[:2]
        boxes = photo.boxes(image_shape[1], image_shape[0])
        tally.add_boxes(boxes)
        if cached is None:
            continue
        mask = mask_of(cached)
        tally.add_score(score_photo(mask, boxes))
        enlarged = boxes_mask(
            [box.enlarged(PRECISION_ENLARGEMENT, image_shape[1], image_shape[0]) for box in boxes],
            image_shape,
        )
        wrong = mask & ~enlarged
        layout = by_layout["collage" if len(cached.face_boxes) else "single"]
        layout[0] += int(mask.sum())
        layout[1] += int(wrong.sum())
        unassigned = mask.copy()
        for place, where in place_masks(cached.landmarks, image_shape, cached.face_boxes).items():
            here = unassigned & where
            predicted[place] += int(here.sum())
            false[place] += int((here & wrong).sum())
            unassigned &= ~where
    total_false = sum(false.values())
    return {
        "split": split,
        **{key: value for key, value in tally.summary().items() if key != "per_class"},
        "per_class": tally.summary()["per_class"],
        "places": [
            {
                "place": place,
                "predicted_pixels": predicted[place],
                "false_positive_pixels": false[place],
                "share_of_false_positives": false[place] / total_false if total_false else None,
                "precision": 1 - false[place] / predicted[place] if predicted[place] else None,
            }
            for place in PLACES
        ],
        "layouts": {
            layout: {
                "predicted_pixels": counts[0],
                "false_positive_pixels": counts[1],
                "precision": 1 - counts[1] / counts[0] if counts[0] else None,
            }
            for layout, counts in by_layout.items()
        },
    }


@dataclass
class _SweepPhoto:
    """What the sweep needs of one photo, cut to the model's square: probability, skin, face parts, outline,
    the human boxes' union enlarged by 25 %, and the boxes (for recall)."""

    probability: np.ndarray
    skin: np.ndarray
    parts: np.ndarray
    outline: np.ndarray
    enlarged: np.ndarray
    boxes: list[tuple[int, int, int, int]]
    landmarks: np.ndarray


def _sweep_photo(photo: Any, cached: CachedPrediction) -> tuple[_SweepPhoto | None, int]:
    from ml.wrinkles.analysis import face_outline_mask, skin_mask
    from ml.wrinkles.boxes import PRECISION_ENLARGEMENT, boxes_mask
    from ml.zones.landmark_model import render_face_parts

    height, width = cached.probability.shape
    boxes = photo.boxes(width, height)
    rows, cols = np.nonzero(cached.valid)
    if not rows.size:
        return None, len(boxes)
    y0, y1, x0, x1 = rows.min(), rows.max() + 1, cols.min(), cols.max() + 1
    parts = render_face_parts(cached.landmarks, (height, width))
    enlarged = boxes_mask(
        [box.enlarged(PRECISION_ENLARGEMENT, width, height) for box in boxes], (height, width)
    )
    window = (slice(y0, y1), slice(x0, x1))
    shifted = cached.landmarks - np.array([x0, y0])
    return (
        _SweepPhoto(
            cached.probability[window],
            (skin_mask(parts) & cached.valid)[window],
            parts[window],
            face_outline_mask(cached.landmarks, (height, width))[window],
            enlarged[window],
            [(box.x0 - x0, box.y0 - y0, box.x1 - x0, box.y1 - y0) for box in boxes],
            shifted,
        ),
        len(boxes),
    )


def _count_found(mask: np.ndarray, boxes: list[tuple[int, int, int, int]]) -> int:
    """Boxes (possibly reaching outside ``mask``'s window) covered ≥ 2 % by ``mask``."""
    from ml.wrinkles.boxes import FOUND_COVERAGE

    integral = cv2_integral(mask)
    height, width = mask.shape
    found = 0
    for x0, y0, x1, y1 in boxes:
        cx0, cy0, cx1, cy1 = max(x0, 0), max(y0, 0), min(x1, width), min(y1, height)
        if cx1 <= cx0 or cy1 <= cy0:
            continue
        covered = integral[cy1, cx1] - integral[cy0, cx1] - integral[cy1, cx0] + integral[cy0, cx0]
        found += int(covered >= FOUND_COVERAGE * (x1 - x0) * (y1 - y0))
    return found


def cv2_integral(mask: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.integral(mask.astype(np.uint8))


def sweep_post_processing(
    data_dir: Path,
    cache_dir: Path,
    split: str,
    thresholds: list[float],
    region_grid: list[dict[str, float | None]],
    line_grid: list[dict[str, float | None]],
    log: Callable[[str], None] = print,
) -> list[dict[str, Any]]:
    """Box recall and pixel precision of every threshold × analysed-region setting × line filter on the
    cached predictions of ``split`` (photos not cached count as not analysed: their boxes are missed),
    after a first row without post-processing at ``thresholds[0]``."""
    from ml.wrinkles.postprocess import (
        LineShapes,
        PostProcessing,
        analysed_region,
        kept_lines,
        line_peaks,
    )

    photos = read_photos(data_dir, split)
    prepared = []
    total_boxes = 0
    for photo in photos:
        cached = load_cached(cache_dir, photo.name)
        if cached is None:
            from ml.core.imageio import load_image

            shape = load_image(photo.image_path).shape
            total_boxes += len(photo.boxes(shape[1], shape[0]))
            continue
        item, boxes = _sweep_photo(photo, cached)
        total_boxes += boxes
        if item is not None:
            prepared.append(item)
    # The first row is the model's mask without post-processing at the first threshold (the baseline).
    combos = [(thresholds[0], {}, {})]
    combos += [(t, r, line) for t in thresholds for r in region_grid for line in line_grid]
    found = np.zeros(len(combos))
    inside = np.zeros(len(combos))
    predicted = np.zeros(len(combos))
    started = time.monotonic()
    for number, item in enumerate(prepared, start=1):

        def add(index: int, mask: np.ndarray, item: _SweepPhoto = item) -> None:
            found[index] += _count_found(mask, item.boxes)
            inside[index] += np.count_nonzero(mask & item.enlarged)
            predicted[index] += np.count_nonzero(mask)

        add(0, (item.probability > thresholds[0]) & item.skin)
        index = 1
        for threshold in thresholds:
            for region_settings in region_grid:
                base = PostProcessing(**region_settings)
                region = analysed_region(item.skin, item.landmarks, base, item.parts, item.outline)
                mask = (item.probability > threshold) & region
                shapes = LineShapes.of(mask) if mask.any() else None
                peaks = line_peaks(shapes, item.probability) if shapes is not None else None
                for line_settings in line_grid:
                    if shapes is None:
                        add(index, mask)
                    else:
                        keep = kept_lines(shapes, item.landmarks, base.with_(**line_settings), peaks)
                        add(index, np.concatenate([[False], keep])[shapes.labels])
                    index += 1
        if number % 20 == 0:
            log(f"{split}: {number}/{len(prepared)} photos, {time.monotonic() - started:.0f} s")
    return [
        {
            "threshold": threshold,
            **region_settings,
            **line_settings,
            "box_recall": found[index] / total_boxes if total_boxes else None,
            "pixel_precision": inside[index] / predicted[index] if predicted[index] else None,
            "predicted_pixels": int(predicted[index]),
        }
        for index, (threshold, region_settings, line_settings) in enumerate(combos)
    ]


SWEEP_THRESHOLDS = (0.5, 0.6)
SWEEP_REGIONS = tuple(
    {"eye_margin": eye, "outline_margin": outline, "mouth_margin": mouth, "nose_kept": nose}
    for eye in (0.2, 0.3)
    for outline in (None, 0.1)
    for mouth in (None, 0.1, 0.2)
    for nose in (None, 0.5, 0.7)
)
SWEEP_LINES = tuple(
    {
        "min_length": length,
        "min_elongation": elongation,
        "eye_zone": 0.9,
        "tangential_angle": angle,
        "bridge_angle": None,
        "min_peak": peak,
    }
    for length in (None, 0.1)
    for elongation in (None, 2.0)
    for angle in (45.0, 60.0)
    for peak in (None, 0.8)
)
"""The grid of the third sweep on val (docs/reports/wrinkles-boxes-precision.md gives all three, each
chosen by the same rule). The first: thresholds (0.5, 0.7, 0.9) × eye margin (none, 0.1, 0.2) × outline
margin (none, 0.1, 0.2) × min length (none, 0.15, 0.3) × elongation (none, 2, 3) × eye zone (none,
0.9/45°, 0.9/60°, 1.2/45°) × bridge (none, 30°) chose eye margin 0.2, outline 0.1, elongation 2, eye zone
0.9/60° at 0.5; the second (thresholds 0.5, 0.6, 0.7; eye margin up to 0.4; the peak step) chose the
same. The third keeps that neighbourhood and adds the mouth margin and the lower-nose cut, the next
places of false positives after the eyes."""
RECALL_RETENTION = 0.85
"""The choice rule, fixed before the sweep: the setting with the highest pixel precision on the
validation photos among those keeping at least this share of the box recall of the model's mask without
post-processing (at its own threshold) on the same photos."""


def choose_post_processing(rows: list[dict[str, Any]], baseline_recall: float) -> dict[str, Any]:
    """The sweep row chosen by :data:`RECALL_RETENTION` (ties: the higher recall)."""
    eligible = [row for row in rows if (row["box_recall"] or 0) >= RECALL_RETENTION * baseline_recall]
    if not eligible:
        raise ValueError("No setting keeps the required box recall.")
    return max(eligible, key=lambda row: (row["pixel_precision"] or 0, row["box_recall"]))


def _share(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def markdown_breakdown(reports: list[dict[str, Any]], command: str) -> str:
    """Per split and setting: box recall, pixel precision, false positives per place, collage or not."""
    lines = [
        "# Where the wrinkle model's false-positive pixels are",
        "",
        "A predicted pixel is a false positive when it lies outside every human box enlarged by 25 % (the "
        "pixel-precision rule of the box evaluation). Places, first match wins: " + ", ".join(PLACES) + " "
        "(definitions in `ml/wrinkles/diagnostics.py`, `PLACES`).",
        "",
        f"Command: `{command}`",
        "",
    ]
    for report in reports:
        lines += [
            f"## split `{report['split']}`, {report['setting']} (threshold {report['threshold']:g})",
            "",
            f"Box recall **{_share(report['box_recall'])}**, pixel precision "
            f"**{_share(report['pixel_precision'])}**, {report['predicted_pixels']} predicted pixels.",
            "",
            "| place | predicted pixels | false-positive pixels | share of all false positives | precision |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['place']} | {row['predicted_pixels']} | {row['false_positive_pixels']} | "
            f"{_share(row['share_of_false_positives'])} | {_share(row['precision'])} |"
            for row in report["places"]
        ]
        lines += [
            "",
            "| photo layout | predicted pixels | false-positive pixels | precision |",
            "|---|---|---|---|",
        ]
        lines += [
            f"| {name} | {row['predicted_pixels']} | {row['false_positive_pixels']} | "
            f"{_share(row['precision'])} |"
            for name, row in report["layouts"].items()
        ]
        lines += [
            "",
            "| class | boxes | box recall | pixel precision | predicted pixels |",
            "|---|---|---|---|---|",
        ]
        lines += [
            f"| {row['class']} | {row['boxes']} | {_share(row['box_recall'])} | "
            f"{_share(row['pixel_precision'])} | {row['predicted_pixels']} |"
            for row in report["per_class"]
        ]
        lines.append("")
    return "\n".join(lines)
