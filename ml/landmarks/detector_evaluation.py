"""Face-detector recall on human-labelled and single-subject photos.

``python -m ml landmarks evaluate-detectors [--detectors NAME …] --json``. A labelled face counts as found
when a detection's box contains the centre of the labelled points' extent and overlaps that extent
(IoU ≥ :data:`MATCH_MIN_IOU`; boxes of different detectors frame the face differently, so the bar is
low). On single-subject photos without point labels (MEBeauty 224-px crops, FASSEG, London) the subject
counts as found when any detection with the detector's confident score or more exists; *extra* counts the
detections beyond the first in those photos (other faces are absent there, so they are false positives).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.metrics import box_iou

MATCH_MIN_IOU = 0.25


def _contains(box: Sequence[float], point: np.ndarray) -> bool:
    return box[0] <= point[0] <= box[2] and box[1] <= point[1] <= box[3]


def labelled_recall(detector: Any, faces: Sequence[Any]) -> dict[str, Any]:
    """Recall of the labelled faces (``LabelledFace``) and the median milliseconds per photo."""
    from ml.core.imageio import load_image

    found, times, scores = 0, [], []
    missed: list[str] = []
    for face in faces:
        image = load_image(face.image)
        started = time.perf_counter()
        detections = detector.detect(image)
        times.append((time.perf_counter() - started) * 1000.0)
        points = face.points[np.isfinite(face.points).all(axis=1)]
        extent = (*points.min(axis=0), *points.max(axis=0))
        centre = points.min(axis=0) / 2 + points.max(axis=0) / 2
        hits = [d for d in detections if _contains(d.box, centre) and box_iou(d.box, extent) >= MATCH_MIN_IOU]
        if hits:
            found += 1
            scores.append(max(d.score for d in hits))
        else:
            missed.append(face.name)
    return {
        "faces": len(faces),
        "found": found,
        "recall": round(found / len(faces), 4) if faces else None,
        "median_score_found": round(float(np.median(scores)), 3) if scores else None,
        "ms_per_photo_median": round(float(np.median(times)), 1) if times else None,
        "missed": missed[:20],
    }


def single_subject_recall(detector: Any, photos: Sequence[Path]) -> dict[str, Any]:
    """Photos with a confident face, and extra detections, on photos that show exactly one person."""
    from ml.core.imageio import load_image

    with_face, extra, times = 0, 0, []
    missed: list[str] = []
    for path in photos:
        image = load_image(path)
        started = time.perf_counter()
        detections = [d for d in detector.detect(image) if d.score >= detector.confident_score]
        times.append((time.perf_counter() - started) * 1000.0)
        if detections:
            with_face += 1
            extra += len(detections) - 1
        else:
            missed.append(path.name)
    return {
        "photos": len(photos),
        "found": with_face,
        "recall": round(with_face / len(photos), 4) if photos else None,
        "extra_detections": extra,
        "ms_per_photo_median": round(float(np.median(times)), 1) if times else None,
        "missed": missed[:20],
    }


def evaluation_sets(data_root: Path) -> dict[str, tuple[str, Any]]:
    """The sets of the detector report: ``name → (kind, faces or photos)``."""
    from ml.landmarks.human_sets import read_human_set, read_landmark_folder

    sets: dict[str, tuple[str, Any]] = {}
    if (data_root / "landmarks68" / "landmarks.json").is_file():
        sets["landmarks68 (4 photos)"] = ("labelled", read_landmark_folder(data_root / "landmarks68"))
    if (data_root / "landmarks300w" / "landmarks.json").is_file():
        sets["landmarks300w test split"] = ("labelled", read_human_set(data_root / "landmarks300w", "test"))
    crops = sorted((data_root / "mebeauty" / "crops").rglob("*.jpg"))
    if crops:
        sets["MEBeauty 224-px crops (every 10th)"] = ("single", crops[::10])
    frontal = sorted((data_root / "fasseg" / "frontal" / "train" / "images").glob("*.jpg"))
    if frontal:
        sets["FASSEG frontal"] = ("single", frontal)
    multipose = sorted((data_root / "fasseg" / "multipose" / "train" / "images").glob("*.jpg"))
    for low, high in ((0, 45), (60, 75), (90, 90)):
        chosen = [p for p in multipose if low <= abs(int(p.name.split("__")[0])) <= high]
        if chosen:
            sets[f"FASSEG multipose |yaw| {low}–{high}°"] = ("single", chosen)
    london = sorted((data_root / "london" / "neutral").glob("*.jpg"))
    if london:
        sets["London neutral"] = ("single", london)
    return sets


def evaluate_detectors(
    data_root: Path, detectors: Sequence[str], progress: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """Every detector on every set; ``{"sets": {set: {detector: figures}}}``."""
    from ml.registry import registry

    sets = evaluation_sets(data_root)
    results: dict[str, dict[str, Any]] = {name: {} for name in sets}
    for detector_name in detectors:
        detector = registry.load(detector_name)
        detector.detect(np.zeros((64, 64, 3), np.uint8))  # warm-up
        for set_name, (kind, items) in sets.items():
            if progress is not None:
                progress(f"{detector_name}: {set_name}")
            figures = (
                labelled_recall(detector, items)
                if kind == "labelled"
                else single_subject_recall(detector, items)
            )
            results[set_name][detector_name] = figures
    return {
        "detectors": {name: registry.spec(name).version for name in detectors},
        "match_rule": (
            f"labelled sets: a box containing the labelled extent's centre with IoU ≥ {MATCH_MIN_IOU}; "
            "single-subject sets: any detection at or above the detector's confident score"
        ),
        "sets": results,
    }
