"""Landmark accuracy on human labels: NME, failure rate, misses, cumulative error distribution, speed.

``python -m ml landmarks evaluate --data DIR [--split test] [--model NAME] [--detector NAME] --json``.
Each labelled face is matched to the detected face whose landmarks' extent overlaps its labelled points'
extent most (IoU ≥ :data:`MATCH_MIN_IOU`; comparing landmark extents, not boxes, keeps every detector's
box convention out of the match). Unmatched faces are *misses*; they are not in the NME figures and are
counted separately and in ``failure_rate_with_misses``.

NME is the 300-W normalisation: mean point error over the labelled points divided by the distance of the
human outer eye corners (iBUG 36 and 45) (Sagonas et al., IMAVIS 2016). A face fails above
:data:`FAILURE_NME` (0.08). Time is milliseconds of ``model.detect(image)`` per photo (detection +
landmarks of every face in it, decode excluded), as compute (the process's CPU time, which the other jobs on
a shared machine barely change) and as wall-clock time.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.metrics import box_iou
from ml.landmarks.human_sets import LabelledFace

FAILURE_NME = 0.08
MATCH_MIN_IOU = 0.3
CED_LIMIT = 0.10


def partial_nme(predicted: np.ndarray, truth: np.ndarray) -> float:
    """NME over the labelled (finite) points of ``truth``, by its outer-eye-corner distance."""
    truth = np.asarray(truth, dtype=np.float64)
    labelled = np.isfinite(truth).all(axis=1)
    if not (labelled[36] and labelled[45]):
        raise ValueError("The outer eye corners (iBUG 36 and 45) must be labelled to normalise the error.")
    distance = float(np.linalg.norm(truth[36] - truth[45]))
    if distance <= 0:
        raise ValueError("The labelled outer eye corners coincide.")
    errors = np.linalg.norm(np.asarray(predicted, dtype=np.float64)[labelled] - truth[labelled], axis=1)
    return float(errors.mean() / distance)


def _extent(points: np.ndarray) -> tuple[float, float, float, float]:
    low, high = np.nanmin(points, axis=0), np.nanmax(points, axis=0)
    return (float(low[0]), float(low[1]), float(high[0]), float(high[1]))


@dataclass
class FaceResult:
    name: str
    detected: bool
    faces_found: int
    nme: float | None
    extent_iou: float
    milliseconds: float
    detector: str | None = None
    cpu_milliseconds: float | None = None
    score: float | None = None


@dataclass
class Evaluation:
    """Figures of one model on one human set; ``faces`` holds the per-face rows."""

    model: str
    version: str
    detector: str
    data: str
    split: str
    faces: list[FaceResult] = field(default_factory=list)

    def summary(self) -> dict[str, Any]:
        measured = np.asarray([face.nme for face in self.faces if face.nme is not None], dtype=np.float64)
        total = len(self.faces)
        misses = sum(1 for face in self.faces if not face.detected)
        times = np.asarray([face.milliseconds for face in self.faces], dtype=np.float64)
        cpu = np.asarray(
            [face.cpu_milliseconds for face in self.faces if face.cpu_milliseconds is not None],
            dtype=np.float64,
        )
        failures = int((measured > FAILURE_NME).sum())

        def rounded(value: float, digits: int = 4) -> float | None:
            return round(float(value), digits) if np.isfinite(value) else None

        return {
            "faces": total,
            "detected": total - misses,
            "misses": misses,
            "mean_nme": rounded(measured.mean()) if measured.size else None,
            "median_nme": rounded(np.median(measured)) if measured.size else None,
            "failure_rate": rounded(failures / measured.size) if measured.size else None,
            "failure_rate_with_misses": rounded((failures + misses) / total) if total else None,
            "auc_at_0_08": rounded(ced_auc(measured, total, FAILURE_NME)) if total else None,
            "ms_per_photo_median": rounded(np.median(times), 1) if times.size else None,
            "ms_per_photo_mean": rounded(times.mean(), 1) if times.size else None,
            "cpu_ms_per_photo_median": rounded(np.median(cpu), 1) if cpu.size else None,
        }

    def as_dict(self) -> dict[str, Any]:
        return {
            "model": self.model,
            "version": self.version,
            "detector": self.detector,
            "data": self.data,
            "split": self.split,
            "normalisation": "outer eye corners (iBUG 36–45) of the human labels",
            "failure_threshold": FAILURE_NME,
            "summary": self.summary(),
            "faces": [asdict(face) for face in self.faces],
        }


def ced_auc(nmes: np.ndarray, total: int, limit: float) -> float:
    """Area under the cumulative error distribution up to ``limit``, in [0, 1]; misses count as failures."""
    thresholds = np.linspace(0.0, limit, 1001)
    fractions = np.asarray([(np.asarray(nmes) <= t).sum() / total for t in thresholds])
    return float(np.trapezoid(fractions, thresholds) / limit)


def evaluate_faces(
    model: Any,
    faces: Sequence[LabelledFace],
    face_detector: Any = None,
    progress: Callable[[int, int], None] | None = None,
) -> list[FaceResult]:
    """Run ``model.detect`` on each face's photo and score the best-matching detection."""
    from ml.core.imageio import load_image

    results = []
    for index, face in enumerate(faces):
        image = load_image(face.image)
        started, started_cpu = time.perf_counter(), time.process_time()
        found = model.detect(image, face_detector=face_detector)
        cpu_milliseconds = (time.process_time() - started_cpu) * 1000.0
        milliseconds = (time.perf_counter() - started) * 1000.0
        labelled = face.labelled
        truth_extent = _extent(face.points[labelled])
        best, best_iou = None, 0.0
        for candidate in found:
            iou = box_iou(_extent(np.asarray(candidate.landmarks)[labelled]), truth_extent)
            if iou > best_iou:
                best, best_iou = candidate, iou
        detected = best is not None and best_iou >= MATCH_MIN_IOU
        results.append(
            FaceResult(
                name=face.name,
                detected=detected,
                faces_found=len(found),
                nme=round(partial_nme(best.landmarks, face.points), 5) if detected else None,
                extent_iou=round(best_iou, 3),
                milliseconds=round(milliseconds, 2),
                cpu_milliseconds=round(cpu_milliseconds, 2),
                detector=best.detector if best is not None else None,
                score=round(float(best.score), 4) if best is not None else None,
            )
        )
        if progress is not None:
            progress(index + 1, len(faces))
    return results


def evaluate(
    model_name: str,
    data: Path,
    split: str | None = None,
    detector_name: str | None = None,
    limit: int | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> Evaluation:
    """Evaluate the registered landmark model ``model_name`` on a human set (see :func:`read_human_set`)."""
    from ml.landmarks.human_sets import read_human_set
    from ml.registry import registry

    faces = read_human_set(data, split)
    if limit is not None:
        faces = faces[:limit]
    model = registry.load(model_name)
    face_detector = registry.load(detector_name) if detector_name else None
    # A whole-photo yolo-pose68 finds the faces itself and has no separate face detector.
    used_detector = face_detector or getattr(model, "face_detector", None)
    # One warm-up call so lazy loading is not counted as the first face's time.
    if faces:
        from ml.core.imageio import load_image

        model.detect(load_image(faces[0].image), face_detector=face_detector)
    evaluation = Evaluation(
        model=model_name,
        version=registry.spec(model_name).version,
        detector=used_detector.name if used_detector is not None else f"{model_name} (own boxes)",
        data=str(data),
        split=split or "all",
    )
    evaluation.faces = evaluate_faces(model, faces, face_detector, progress)
    return evaluation


def plot_ced(evaluations: Sequence[Evaluation], path: Path, title: str) -> Path:
    """Cumulative error distribution (fraction of faces with NME ≤ x; misses never reach 1) as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(6, 4), dpi=120)
    thresholds = np.linspace(0.0, CED_LIMIT, 501)
    for evaluation in evaluations:
        nmes = np.asarray([face.nme for face in evaluation.faces if face.nme is not None])
        total = max(1, len(evaluation.faces))
        fractions = [(nmes <= t).sum() / total for t in thresholds]
        summary = evaluation.summary()
        label = f"{evaluation.model} + {evaluation.detector} (mean {summary['mean_nme']})"
        axis.plot(thresholds, fractions, label=label)
    axis.axvline(FAILURE_NME, color="grey", linestyle=":", linewidth=1)
    axis.set_xlabel("NME (outer eye corners)")
    axis.set_ylabel("fraction of faces")
    axis.set_xlim(0, CED_LIMIT)
    axis.set_ylim(0, 1)
    axis.grid(alpha=0.3)
    axis.set_title(title, fontsize=9)
    axis.legend(fontsize=7, loc="lower right")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path)
    plt.close(figure)
    return path
