"""Validity tests of the normality score on real and semi-synthetic faces (issue 13).

* **Paired real test**: each real cleft photo against the same child's photo with the cleft inpainted
  away (no age or identity confound). Holds when the cleft photo scores lower (less normal) and the
  heatmap peak over the face lies in the lip–nose zone (:func:`lip_nose_zone`).
* **Simulated defects** on held-out normal faces: lip notch (:mod:`ml.normality.evaluation`),
  asymmetry (one side of the upper lip and nostril lifted) and a local warp of the upper lip; each
  face and its altered copy are scored; "peak inside" = the heatmap peak within the scoring region
  lies within 2 px of the changed pixels. Semi-synthetic by construction.
* **Group test**: S of real cleft photos against S of normal faces (AUROC of "lower S = cleft"), with
  the groups' ages stated by the caller, since age is a confound when they differ.
* **Framing invariance**: the same photo re-framed (tight/loose crop, 0.5–2× scale, shifts, small
  rotations, JPEG re-encoding) must give S within the noise floor (the spread of S over re-framings).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from ml.normality.evaluation import SimulatedDefect, simulate_lip_notch
from ml.normality.scoring import score_pair

if TYPE_CHECKING:
    from ml.normality.residual_reference import ResidualReference

# Cleft lip sits between the nostril sill and the upper lip's vermilion: nostrils 31–35, upper lip
# 48–54 and its inner line 60–64. The nasal bridge, lower lip and chin are outside.
_LIP_NOSE_POINTS = [*range(31, 36), *range(48, 55), *range(60, 65)]


def _inter_ocular(points: np.ndarray) -> float:
    return float(np.linalg.norm(points[42:48].mean(0) - points[36:42].mean(0)))


def lip_nose_zone(landmarks: np.ndarray, shape: tuple[int, int], margin: float = 0.1) -> np.ndarray:
    """Boolean mask of the upper-lip–nostril zone, dilated by ``margin`` inter-ocular distances."""
    points = np.asarray(landmarks, dtype=np.float64)
    mask = np.zeros(shape[:2], dtype=np.uint8)
    cv2.fillConvexPoly(mask, cv2.convexHull(np.round(points[_LIP_NOSE_POINTS]).astype(np.int32)), 1)
    radius = max(1, int(round(margin * _inter_ocular(points))))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate(mask, kernel).astype(bool)


def heatmap_peak(heatmap: np.ndarray, mask: np.ndarray) -> tuple[int, int]:
    """``(row, column)`` of the largest heatmap value (summed over channels) inside ``mask``."""
    magnitude = np.where(mask, heatmap.sum(axis=-1) if heatmap.ndim == 3 else heatmap, -np.inf)
    row, column = np.unravel_index(int(np.argmax(magnitude)), magnitude.shape)
    return int(row), int(column)


def _displace(image: np.ndarray, flow_x: np.ndarray, flow_y: np.ndarray) -> np.ndarray:
    height, width = image.shape[:2]
    grid_x, grid_y = np.meshgrid(np.arange(width, dtype=np.float32), np.arange(height, dtype=np.float32))
    return cv2.remap(
        image,
        (grid_x - flow_x).astype(np.float32),
        (grid_y - flow_y).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REFLECT,
    )


def _changed(image: np.ndarray, altered: np.ndarray, threshold: float = 6.0) -> np.ndarray:
    difference = np.abs(image.astype(np.float32) - altered.astype(np.float32)).max(axis=-1)
    return cv2.dilate((difference > threshold).astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)


def _gaussian_push(
    shape: tuple[int, int], centre: np.ndarray, sigma: float, vector: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    weight = np.exp(-((xs - centre[0]) ** 2 + (ys - centre[1]) ** 2) / (2 * sigma**2))
    # Cut the tail (beyond ~2.5 σ) so the defect is local and its changed pixels are well defined.
    weight[weight < 0.05] = 0.0
    return weight * vector[0], weight * vector[1]


def simulate_asymmetry(image: np.ndarray, landmarks: np.ndarray, side: int = 1) -> SimulatedDefect:
    """Lift one side of the upper lip and the nostril above it towards the nose (a unilateral
    deformity): a smooth upward displacement of 25 % of the inter-ocular distance centred between
    the mouth corner and the nostril (landmarks 54/35, or 48/31 with ``side=-1``)."""
    points = np.asarray(landmarks, dtype=np.float64)
    distance = _inter_ocular(points)
    corner, nostril = (points[54], points[35]) if side > 0 else (points[48], points[31])
    centre = (corner + nostril) / 2
    flow = _gaussian_push(image.shape[:2], centre, 0.22 * distance, np.array([0.0, -0.25 * distance]))
    altered = _displace(image, *flow)
    return SimulatedDefect(image=altered, mask=_changed(image, altered))


def simulate_local_warp(image: np.ndarray, landmarks: np.ndarray, seed: int = 0) -> SimulatedDefect:
    """A random local warp of the upper lip: a Gaussian push of 20 % of the inter-ocular distance in a
    random direction, centred at a random point between the upper lip and the nostrils."""
    rng = np.random.default_rng(seed)
    points = np.asarray(landmarks, dtype=np.float64)
    distance = _inter_ocular(points)
    lip, nose = points[rng.choice([49, 50, 51, 52, 53])], points[rng.choice([31, 32, 33, 34, 35])]
    centre = lip + (nose - lip) * rng.uniform(0.2, 0.6)
    angle = rng.uniform(0, 2 * np.pi)
    vector = 0.2 * distance * np.array([np.cos(angle), np.sin(angle)])
    altered = _displace(image, *_gaussian_push(image.shape[:2], centre, 0.18 * distance, vector))
    return SimulatedDefect(image=altered, mask=_changed(image, altered))


DEFECTS: dict[str, Callable[[np.ndarray, np.ndarray, int], SimulatedDefect]] = {
    "lip_notch": lambda image, landmarks, index: simulate_lip_notch(image, landmarks, 1 if index % 2 else -1),
    "asymmetry": lambda image, landmarks, index: simulate_asymmetry(image, landmarks, 1 if index % 2 else -1),
    "local_warp": lambda image, landmarks, index: simulate_local_warp(image, landmarks, index),
}

# (aligned face, its landmarks, its observed-pixel mask or None) → normalized face.
Normalize = Callable[[np.ndarray, np.ndarray, np.ndarray | None], np.ndarray]


@dataclass
class DefectResult:
    """One simulated defect type over held-out normal faces (semi-synthetic)."""

    defect: str
    faces: int
    score_worse_fraction: float
    peak_inside_fraction: float
    median_score_normal: float
    median_score_altered: float


def evaluate_simulated_defects(
    faces: Sequence[tuple[np.ndarray, np.ndarray]],
    normalize: Normalize,
    defects: Sequence[str] = tuple(DEFECTS),
    region: str = "mouth_nose",
    peak_tolerance: int = 2,
    references: Mapping[str, ResidualReference | None] | None = None,
    observed: Sequence[np.ndarray] | None = None,
) -> dict[str, tuple[list[float], list[DefectResult]]]:
    """Each aligned ``(face, landmarks)`` and its altered copies, normalized once by ``normalize(image,
    landmarks, observed)`` (``observed``: each face's observed-pixel mask, which then also restricts the
    score and the peak; ``None``: every pixel counts) and scored with each residual map of
    ``references`` (name → reference of normal faces' residuals, ``None`` for the raw PSE map; default:
    the raw map alone, named ``raw``); the same
    landmarks are used for the altered face (the defect is small). Per map: the unaltered faces' scores
    S (a normal group for other comparisons) and one result per defect."""
    if not faces:
        raise ValueError("No faces to evaluate.")
    maps = dict(references) if references is not None else {"raw": None}
    masks: list[np.ndarray | None] = list(observed) if observed is not None else [None] * len(faces)
    if len(masks) != len(faces):
        raise ValueError(f"{len(masks)} observed masks for {len(faces)} faces.")
    kernel = np.ones((2 * peak_tolerance + 1, 2 * peak_tolerance + 1), np.uint8)
    normalized = [normalize(image, points, mask) for (image, points), mask in zip(faces, masks, strict=True)]
    normal_scores = {
        name: [
            score_pair(image, twin, points, region, reference=reference, observed=mask)
            for (image, points), twin, mask in zip(faces, normalized, masks, strict=True)
        ]
        for name, reference in maps.items()
    }
    tallies: dict[str, dict[str, list[Any]]] = {name: {} for name in maps}
    for defect_name in defects:
        for index, (image, points) in enumerate(faces):
            defect = DEFECTS[defect_name](image, points, index)
            if not defect.mask.any():
                continue
            twin = normalize(defect.image, points, masks[index])
            changed = cv2.dilate(defect.mask.astype(np.uint8), kernel)
            for name, reference in maps.items():
                altered = score_pair(
                    defect.image, twin, points, region, reference=reference, observed=masks[index]
                )
                tallies[name].setdefault(defect_name, []).append(
                    (
                        altered.score,
                        altered.score < normal_scores[name][index].score,
                        bool(changed[heatmap_peak(altered.heatmap, altered.mask)]),
                    )
                )
    evaluated = {}
    for name in maps:
        results = []
        for defect_name in defects:
            rows = tallies[name].get(defect_name, [])
            counted = max(len(rows), 1)
            results.append(
                DefectResult(
                    defect=defect_name,
                    faces=len(rows),
                    score_worse_fraction=sum(row[1] for row in rows) / counted,
                    peak_inside_fraction=sum(row[2] for row in rows) / counted,
                    median_score_normal=float(np.median([s.score for s in normal_scores[name]])),
                    median_score_altered=float(np.median([row[0] for row in rows])) if rows else float("nan"),
                )
            )
        evaluated[name] = ([score.score for score in normal_scores[name]], results)
    return evaluated


def mebeauty_val_sources(sources: Iterable[str], data: Path) -> list[str]:
    """The cache's sources that are MEBeauty ``val`` photos (never trained on), sorted: the held-out faces
    the simulated defects are put on."""
    with (data / "mebeauty" / "images.csv").open(newline="") as handle:
        val = {row["image"] for row in csv.DictReader(handle) if row["split"] == "val"}
    return [source for source in sorted(sources) if source.split("/mebeauty/")[-1] in val]


def held_out_defect_faces(
    cache_dir: Path, data: Path, skip: int, limit: int, fit_pixels: str
) -> tuple[list[tuple[np.ndarray, np.ndarray]], list[np.ndarray | None] | None]:
    """The held-out faces the simulated defects are put on: MEBeauty ``val`` faces ``skip`` to ``skip +
    limit`` of the aligned-face cache in ``cache_dir`` (aligned crop, landmarks), and each one's fit-pixel
    mask (``None`` for ``all``). Raises ValueError when the cache holds no such faces or no masks."""
    from ml.normality.analysis import fit_pixels_mask
    from ml.normality.autoencoder import cached_faces_by_source, cached_observed_by_source

    cache = cached_faces_by_source(cache_dir, 128)
    if not any("/mebeauty/" in source for source in cache):
        raise ValueError(
            f"No held-out MEBeauty faces in the aligned-face cache {cache_dir} (train-normalizer or "
            "train-inpainter --cache-dir writes them)."
        )
    sources = mebeauty_val_sources(cache, data)[skip:][:limit]
    faces = [cache[source] for source in sources]
    if fit_pixels == "all":
        return faces, None
    masks = cached_observed_by_source(cache_dir, 128)
    if any(source not in masks for source in sources):
        raise ValueError(
            "The aligned-face cache has no observed-pixel masks (written before they existed): delete it "
            "and rebuild it (ml.normality.autoencoder.aligned_faces_cached), or pass --fit-pixels all."
        )
    return faces, [fit_pixels_mask(masks[source], cache[source][1], fit_pixels) for source in sources]


def auroc(lower_is_positive: Sequence[float], negatives: Sequence[float]) -> float:
    """AUROC of "a lower score means positive" (Mann–Whitney U / (n₁·n₂), ties count ½)."""
    positives = np.asarray(lower_is_positive, dtype=np.float64)[:, None]
    others = np.asarray(negatives, dtype=np.float64)[None, :]
    return float(
        ((positives < others).sum() + 0.5 * (positives == others).sum()) / (positives.size * others.size)
    )


def region_texture(aligned: np.ndarray, mask: np.ndarray) -> float:
    """Standard deviation of the luminance (8-bit levels) inside the scoring region: how much detail
    and contrast the photo has there, which S should not depend on."""
    grey = cv2.cvtColor(aligned, cv2.COLOR_RGB2GRAY).astype(np.float64)
    return float(grey[mask].std())


def age_band(age: str | int | None) -> str:
    """The reference age band of an age in years (``unknown`` when not given)."""
    try:
        years = int(age)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "unknown"
    if years < 18:
        return "0-17"
    return "18-24" if years < 25 else "25-29" if years < 30 else "30+"


def reference_range(scores: Sequence[float]) -> dict[str, float | int | None]:
    """Count, 5th percentile, median and 95th percentile of S on normal faces."""
    values = np.asarray(scores, dtype=np.float64)
    if values.size == 0:
        return {"count": 0, "p5": None, "median": None, "p95": None}
    p5, median, p95 = np.percentile(values, [5, 50, 95])
    return {"count": int(values.size), "p5": float(p5), "median": float(median), "p95": float(p95)}


# ---- framing invariance --------------------------------------------------------------------------


def landmark_box(landmarks: np.ndarray) -> tuple[np.ndarray, float]:
    """Centre and larger side of the landmarks' bounding box (what the re-framings are sized by)."""
    points = np.asarray(landmarks, dtype=np.float64)
    low, high = points.min(0), points.max(0)
    return (low + high) / 2, float(max(high - low))


# Side of the tight re-framing, in landmark extents.
TIGHT_CROP_SIDE = 1.3


def crop_origin(centre: np.ndarray, side: float) -> tuple[int, int]:
    """Photo coordinates of the top-left corner of the square crop of ``side`` around ``centre``."""
    return int(round(centre[0] - side / 2)), int(round(centre[1] - side / 2))


def _crop(image: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    """Square crop around ``centre``; where it leaves the photo the photo's edge is replicated."""
    x0, y0 = crop_origin(centre, side)
    size = int(round(side))
    pad = max(0, -x0, -y0, x0 + size - image.shape[1], y0 + size - image.shape[0])
    padded = cv2.copyMakeBorder(image, pad, pad, pad, pad, cv2.BORDER_REPLICATE) if pad else image
    return padded[y0 + pad : y0 + pad + size, x0 + pad : x0 + pad + size]


def _jpeg(image: np.ndarray, quality: int) -> np.ndarray:
    ok, encoded = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    if not ok:
        raise ValueError("JPEG encoding failed.")
    return cv2.cvtColor(cv2.imdecode(encoded, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _rotate(image: np.ndarray, centre: np.ndarray, degrees: float) -> np.ndarray:
    matrix = cv2.getRotationMatrix2D((float(centre[0]), float(centre[1])), degrees, 1.0)
    return cv2.warpAffine(
        image, matrix, image.shape[1::-1], flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
    )


def _scale(image: np.ndarray, factor: float) -> np.ndarray:
    size = (max(1, round(image.shape[1] * factor)), max(1, round(image.shape[0] * factor)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if factor < 1 else cv2.INTER_CUBIC)


def reframings(image: np.ndarray, landmarks: np.ndarray) -> dict[str, np.ndarray]:
    """The same photo framed differently, by name (the photo itself is ``original``)."""
    centre, extent = landmark_box(landmarks)
    shift = 0.05 * extent
    return {
        "original": image,
        "tight_crop": _crop(image, centre, TIGHT_CROP_SIDE * extent),
        "loose_crop": _crop(image, centre, 2.5 * extent),
        "scale_0.5": _scale(image, 0.5),
        "scale_2": _scale(image, 2.0),
        "shift_right": _crop(image, centre + [shift, 0], 2.0 * extent),
        "shift_down": _crop(image, centre + [0, shift], 2.0 * extent),
        "rotate_+5": _rotate(image, centre, 5.0),
        "rotate_-5": _rotate(image, centre, -5.0),
        "jpeg_75": _jpeg(image, 75),
        "jpeg_50": _jpeg(image, 50),
    }


def noise_floor(differences: Sequence[float], quantile: float = 0.95) -> float:
    """The ``quantile`` of |S(re-framed) − S(original)| over faces and re-framings."""
    values = np.abs(np.asarray(differences, dtype=np.float64))
    if values.size == 0:
        raise ValueError("No score differences to take a noise floor from.")
    return float(np.quantile(values, quantile))
