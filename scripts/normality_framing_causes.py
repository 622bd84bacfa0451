"""What moves S when a face is framed differently: landmarks, the frame, or the photo's own pixels (issue 13).

``python scripts/normality_framing_causes.py [--pair-skip 60] [--pair-limit 40] [--london-skip 10]
[--london-limit 20] [--out FILE]`` scores, with the default analysis (as the worker does, no rating):

* MEBeauty val crop/original pairs (``images.csv`` order after ``--pair-skip``): the crop and the original
  each with its own dlib landmarks; the crop with the original's landmarks mapped into it by a SIFT + RANSAC
  similarity (``oracle landmarks``); both after one more dlib prediction from their own landmarks
  (``re-predicted landmarks``); the original re-framed into the crop's frame by that similarity
  (``original in the crop's frame``), and the crop against that re-framed original with the crop's black
  bars copied in (``crop vs original in its frame``: only the crop's own pixels differ);
* London neutral photos after ``--london-skip``: the tight crop (1.3 × the landmark extent, as the framing
  test) with its own landmarks and with the original's.

Prints and writes the median |ΔS| of each comparison and its share within the card's noise floor
(report §18).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

from ml.config import data_dir
from ml.core.detection import FaceDetection
from ml.core.imageio import load_image
from ml.core.landmarks import detect_faces_with_landmarks
from ml.core.subject import subject_landmarks
from ml.measures.catalogue import NORMALITY_NOISE_FLOOR_FILE
from ml.normality import validation
from ml.normality.analysis import analyze_normality
from ml.registry import registry


def _landmarks(image: np.ndarray) -> np.ndarray:
    return subject_landmarks(detect_faces_with_landmarks(image))


def _score(image: np.ndarray, landmarks: np.ndarray | None = None) -> float:
    return analyze_normality(
        image, landmarks=_landmarks(image) if landmarks is None else landmarks, rating=False
    ).data["score"]


def _repredicted(image: np.ndarray, landmarks: np.ndarray) -> np.ndarray:
    """One more dlib-68 prediction, from the face frame of its own ``landmarks`` (given to it as a
    detector's five points: eye centres, nose tip, mouth corners)."""
    points = np.stack(
        [landmarks[36:42].mean(0), landmarks[42:48].mean(0), landmarks[30], landmarks[48], landmarks[54]]
    )
    low, high = landmarks.min(0), landmarks.max(0)
    detection = FaceDetection(box=(*low, *high), score=1.0, detector="landmarks", points=points)
    return registry.load("dlib-68").base.fit(image, detection).landmarks


def _similarity(original: np.ndarray, crop: np.ndarray) -> np.ndarray:
    """The 2 × 3 similarity mapping the original photo onto the crop (SIFT matches, RANSAC)."""
    sift = cv2.SIFT_create()
    found_crop = sift.detectAndCompute(cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY), None)
    found_original = sift.detectAndCompute(cv2.cvtColor(original, cv2.COLOR_RGB2GRAY), None)
    pairs = cv2.BFMatcher().knnMatch(found_original[1], found_crop[1], k=2)
    good = [first for first, second in pairs if first.distance < 0.75 * second.distance]
    source = np.float32([found_original[0][match.queryIdx].pt for match in good])
    target = np.float32([found_crop[0][match.trainIdx].pt for match in good])
    matrix, _ = cv2.estimateAffinePartial2D(source, target, method=cv2.RANSAC, ransacReprojThreshold=2.0)
    if matrix is None:
        raise ValueError("the crop could not be registered to its original")
    return matrix


def _edge_bars(crop: np.ndarray) -> np.ndarray:
    """The crop's black bars: columns and rows that are nearly all black."""
    black = crop.max(axis=2) < 10
    bars = np.zeros_like(black)
    bars[:, black.mean(axis=0) > 0.9] = True
    bars[black.mean(axis=1) > 0.9, :] = True
    return bars


def _pair_scores(crop: np.ndarray, original: np.ndarray) -> dict[str, float]:
    matrix = _similarity(original, crop)
    crop_landmarks, original_landmarks = _landmarks(crop), _landmarks(original)
    mapped = original_landmarks @ matrix[:, :2].T + matrix[:, 2]
    reframed = cv2.warpAffine(original, matrix, crop.shape[1::-1], flags=cv2.INTER_AREA)
    with_bars = reframed.copy()
    with_bars[_edge_bars(crop)] = 0
    return {
        "original": _score(original, original_landmarks),
        "crop": _score(crop, crop_landmarks),
        "crop_oracle_landmarks": _score(crop, mapped),
        "crop_repredicted": _score(crop, _repredicted(crop, crop_landmarks)),
        "original_repredicted": _score(original, _repredicted(original, original_landmarks)),
        "original_in_crop_frame": _score(reframed),
        "original_in_crop_frame_with_bars": _score(with_bars),
    }


def _london_scores(image: np.ndarray) -> dict[str, float]:
    landmarks = _landmarks(image)
    centre, extent = validation.landmark_box(landmarks)
    corner = np.array(validation.crop_origin(centre, validation.TIGHT_CROP_SIDE * extent), dtype=np.float64)
    tight = validation.reframings(image, landmarks)["tight_crop"]
    return {
        "original": _score(image, landmarks),
        "tight": _score(tight),
        "tight_original_landmarks": _score(tight, landmarks - corner),
    }


def _summary(rows: list[dict[str, float]], comparisons: dict[str, Callable], floor: float) -> dict[str, dict]:
    summary = {}
    for name, difference in comparisons.items():
        values = np.abs([difference(row) for row in rows])
        summary[name] = {
            "count": len(values),
            "median_abs_difference": round(float(np.median(values)), 4),
            "within_floor": round(float(np.mean(values <= floor)), 4),
        }
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", help="Data folder (default: the configured data directory).")
    parser.add_argument("--pair-skip", type=int, default=60)
    parser.add_argument("--pair-limit", type=int, default=40)
    parser.add_argument("--london-skip", type=int, default=10)
    parser.add_argument("--london-limit", type=int, default=20)
    parser.add_argument("--out", help="Write the per-photo scores and the summary here (JSON).")
    args = parser.parse_args(argv)
    data = Path(args.data) if args.data else data_dir()
    floor = json.loads(NORMALITY_NOISE_FLOOR_FILE.read_text())["measures"]["normality_score"][
        "repeatability_coefficient"
    ]
    rows = [row for row in csv.DictReader((data / "mebeauty" / "images.csv").open()) if row["split"] == "val"]
    pairs, refused = [], []
    for row in [row for row in rows if row["original"]][args.pair_skip :][: args.pair_limit]:
        try:
            crop, original = (
                load_image(data / "mebeauty" / row["image"]),
                load_image(data / "mebeauty" / row["original"]),
            )
            pairs.append({"image": row["image"], **_pair_scores(crop, original)})
        except ValueError as error:  # no face, region outside the photo, no registration
            refused.append(f"{row['image']}: {error}")
    london = []
    for path in sorted((data / "london" / "neutral").glob("*.jpg"))[args.london_skip :][: args.london_limit]:
        london.append({"face": path.stem, **_london_scores(load_image(path))})
    summary = {
        "floor": floor,
        "mebeauty_pairs": _summary(
            pairs,
            {
                "crop vs original, own landmarks": lambda r: r["crop"] - r["original"],
                "crop with the original's landmarks vs original": lambda r: (
                    r["crop_oracle_landmarks"] - r["original"]
                ),
                "both re-predicted": lambda r: r["crop_repredicted"] - r["original_repredicted"],
                "original in the crop's frame vs original": lambda r: (
                    r["original_in_crop_frame"] - r["original"]
                ),
                "crop vs original in its frame with its bars": lambda r: (
                    r["crop"] - r["original_in_crop_frame_with_bars"]
                ),
            },
            floor,
        ),
        "london_tight_crop": _summary(
            london,
            {
                "tight crop vs original, own landmarks": lambda r: r["tight"] - r["original"],
                "tight crop with the original's landmarks": lambda r: (
                    r["tight_original_landmarks"] - r["original"]
                ),
            },
            floor,
        ),
        "refused": refused,
    }
    print(json.dumps(summary, indent=1))
    if args.out:
        Path(args.out).write_text(json.dumps({**summary, "pairs": pairs, "london": london}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
