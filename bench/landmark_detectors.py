"""Face front end, side by side: every face detector, every landmark model and the landmark job.

``python -m bench.landmark_detectors [--photos N]`` times, on the same ``N`` (≥ 50) real face photos and
after one warm-up call each:

1. every registered face detector's ``detect`` on the photo as stored (400–1000 px) and on the same photo
   enlarged to 12 megapixels (the size of a clinical camera's photo; enlarging keeps the real face and
   costs what a real 12-MP photo costs);
2. every landmark model's ``fit`` of one detected face (the landmark model alone, on the 12-MP photo);
3. the landmark job's compute — detection, 68 landmarks, head pose and the quality check, what
   :func:`ml.landmarks.analysis.analyze_landmarks` does — on the 12-MP photos for every landmark model
   with the default detector, split into its stages. Decoding the JPEG is excluded (it is the same for
   every model and measured by ``python -m bench``).

Every call is timed twice over: **compute** (the process's CPU time, all threads) and wall-clock. The goals
are on compute ("≤ 30 ms of compute per photo"): on this shared 2-core machine the other engineers' jobs
stretch wall-clock time by a factor that changes from minute to minute, while the CPU time a call uses
changes much less. Each photo is timed ``--repeats`` times and its fastest time kept (as ``timeit`` does:
the slower repeats measure the interference, not the code); medians and 95th percentiles are over photos.

It writes ``bench/reports/landmark_detectors.json`` (every time) and ``.md`` (median and p95 tables).
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import write_report
from ml.model_names import DLIB_MMOD

REPORT_DIR = Path(__file__).resolve().parent / "reports"
TWELVE_MEGAPIXELS = 12_000_000
# The CNN detector costs about a second per photo here; it is timed on this many photos only.
SLOW_DETECTOR_PHOTOS = {DLIB_MMOD: 20}
LATENCY_GOAL_MS = 30.0


def benchmark_photos(data_root: Path, count: int) -> list[Path]:
    """Real single-face photos: landmarks68, FASSEG frontal, London neutral, then MEBeauty originals."""
    from ml.landmarks.campaign import mebeauty_originals

    photos = sorted((data_root / "landmarks68" / "images").glob("*.jpg"))
    photos += sorted((data_root / "fasseg" / "frontal" / "train" / "images").glob("*.jpg"))
    photos += sorted((data_root / "london" / "neutral").glob("*.jpg"))[:15]
    photos += mebeauty_originals(data_root, max(0, count - len(photos)), seed=1)
    return photos[:count]


def enlarge_to(image: np.ndarray, pixels: int) -> np.ndarray:
    """``image`` scaled (bicubic) so it has about ``pixels`` pixels, aspect kept."""
    import cv2

    scale = (pixels / (image.shape[0] * image.shape[1])) ** 0.5
    return cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)


def summarise(milliseconds: list[float]) -> dict[str, float]:
    values = np.asarray(milliseconds, dtype=np.float64)
    return {
        "n": int(values.size),
        "median_ms": round(float(np.median(values)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "mean_ms": round(float(values.mean()), 1),
        "max_ms": round(float(values.max()), 1),
    }


class Timer:
    """Compute (process CPU) and wall-clock milliseconds of one call: the fastest of ``repeats`` runs."""

    def __init__(self, repeats: int) -> None:
        self.repeats = repeats

    def __call__(self, function: Callable[[], Any]) -> tuple[Any, float, float]:
        best_cpu, best_wall, result = float("inf"), float("inf"), None
        for _ in range(self.repeats):
            cpu, wall = time.process_time(), time.perf_counter()
            result = function()
            best_cpu = min(best_cpu, (time.process_time() - cpu) * 1000.0)
            best_wall = min(best_wall, (time.perf_counter() - wall) * 1000.0)
        return result, best_cpu, best_wall


def both(cpu: list[float], wall: list[float]) -> dict[str, dict[str, float]]:
    return {"cpu": summarise(cpu), "wall": summarise(wall)}


def time_detectors(
    names: list[str], photos: list[np.ndarray], large: list[np.ndarray], timer: Timer
) -> list[dict[str, Any]]:
    from ml.registry import registry

    rows = []
    for name in names:
        detector = registry.load(name)
        detector.detect(photos[0])
        limit = SLOW_DETECTOR_PHOTOS.get(name, len(photos))
        times: dict[str, tuple[list[float], list[float]]] = {"native": ([], []), "twelve_mp": ([], [])}
        found = 0
        for key, images in (("native", photos[:limit]), ("twelve_mp", large[:limit])):
            for image in images:
                faces, cpu, wall = timer(partial(detector.detect, image))
                times[key][0].append(cpu)
                times[key][1].append(wall)
                found += int(key == "native" and bool(faces))
        rows.append(
            {
                "detector": name,
                "version": registry.spec(name).version,
                "photos_with_a_face": found,
                "native": both(*times["native"]),
                "twelve_mp": both(*times["twelve_mp"]),
            }
        )
    return rows


def time_landmark_models(names: list[str], large: list[np.ndarray], timer: Timer) -> list[dict[str, Any]]:
    """Landmark placement alone (``fit``) on the default detector's best face of each 12-MP photo."""
    from ml.core.detection import DEFAULT_FACE_DETECTOR
    from ml.registry import registry

    detector = registry.load(DEFAULT_FACE_DETECTOR)
    detections = [(image, found[0]) for image in large if (found := detector.detect(image))]
    rows = []
    for name in names:
        model = registry.load(name)
        base = getattr(model, "base", model)  # the 68-point model without the FaceMesh surface for pose
        model.fit(*detections[0])
        times: dict[str, tuple[list[float], list[float]]] = {"with_mesh": ([], []), "alone": ([], [])}
        for image, detection in detections:
            for key, landmarker in (("with_mesh", model), ("alone", base)):
                _, cpu, wall = timer(
                    lambda landmarker=landmarker, image=image, detection=detection: landmarker.fit(
                        image, detection
                    )
                )
                times[key][0].append(cpu)
                times[key][1].append(wall)
        rows.append(
            {
                "model": name,
                "version": registry.spec(name).version,
                "faces": len(detections),
                "landmarks_only": both(*times["alone"]),
                "with_mesh_for_pose": both(*times["with_mesh"]) if base is not model else None,
            }
        )
    return rows


def landmark_job(model: Any, image: np.ndarray) -> dict[str, float]:
    """One landmark job's compute on ``image`` (what ``analyze_landmarks`` does), CPU ms per stage."""
    from ml.core.quality import assess_quality
    from ml.landmarks.mesh import head_pose

    clock = time.process_time
    started = clock()
    detections = model.face_detector.detect(image)
    detected = clock()
    faces = [model.fit(image, found) for found in detections]
    fitted = clock()
    poses = [head_pose(face, image.shape)[0] for face in faces]
    posed = clock()
    assess_quality(image, faces, pose=poses[0] if len(poses) == 1 else None)
    checked = clock()
    return {
        stage: (end - begin) * 1000.0
        for stage, begin, end in (
            ("detect", started, detected),
            ("landmarks", detected, fitted),
            ("pose", fitted, posed),
            ("quality", posed, checked),
        )
    }


def time_landmark_job(names: list[str], large: list[np.ndarray], timer: Timer) -> list[dict[str, Any]]:
    """The landmark job's compute per 12-MP photo and per stage, for each landmark model."""
    from ml.registry import registry

    rows = []
    for name in names:
        model = registry.load(name)
        landmark_job(model, large[0])
        stages: dict[str, list[float]] = {"detect": [], "landmarks": [], "pose": [], "quality": []}
        totals: tuple[list[float], list[float]] = ([], [])
        for image in large:
            runs = []
            for _ in range(timer.repeats):
                wall = time.perf_counter()
                split = landmark_job(model, image)
                runs.append((split, sum(split.values()), (time.perf_counter() - wall) * 1000.0))
            split, cpu, _ = min(runs, key=lambda run: run[1])  # the fastest repeat, by compute
            for stage, value in split.items():
                stages[stage].append(value)
            totals[0].append(cpu)
            totals[1].append(min(run[2] for run in runs))
        rows.append(
            {
                "model": name,
                "version": registry.spec(name).version,
                "detector": model.face_detector.name,
                "stages_cpu": {stage: summarise(values) for stage, values in stages.items()},
                "total": both(*totals),
            }
        )
    return rows


def markdown(report: dict[str, Any]) -> str:
    def cell(figures: dict[str, Any] | None, clock: str, key: str) -> str:
        return "—" if figures is None else str(figures[clock][key])

    lines = [
        "# Face front end: detectors, landmark models and the landmark job, side by side",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}; torch threads {report['torch_threads']}, OpenCV threads "
        f"{report['opencv_threads']}; load average at start {report['load_average']}, at end "
        f"{report['load_average_end']} (the 2 cores are shared with other engineers' jobs).",
        f"Photos: {report['photos']} real face photos ({report['photo_sources']}); '12 MP' is each photo "
        "enlarged to 12 megapixels (bicubic). Milliseconds per call, decoding excluded. **compute** = CPU "
        f"time of the process; wall = elapsed time. Each call ran {report['repeats']} times, its fastest "
        "kept; median and p95 over photos.",
        "",
        "## Face detectors (`detect`, whole photo)",
        "",
        "| detector | version | photos with a face | compute median (as stored) | p95 | compute median "
        "(12 MP) | p95 (12 MP) | wall median (12 MP) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["detectors"]:
        native, large = row["native"], row["twelve_mp"]
        lines.append(
            f"| {row['detector']} | {row['version']} | {row['photos_with_a_face']}/{native['cpu']['n']} | "
            f"{native['cpu']['median_ms']} | {native['cpu']['p95_ms']} | {large['cpu']['median_ms']} | "
            f"{large['cpu']['p95_ms']} | {large['wall']['median_ms']} |"
        )
    lines += [
        "",
        "## Landmark models (`fit` of one detected face, 12 MP)",
        "",
        "| model | version | faces | compute median | p95 | with the FaceMesh surface for pose: median | p95 "
        "| wall median |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["landmark_models"]:
        alone, mesh = row["landmarks_only"], row["with_mesh_for_pose"]
        lines.append(
            f"| {row['model']} | {row['version']} | {row['faces']} | {alone['cpu']['median_ms']} | "
            f"{alone['cpu']['p95_ms']} | {cell(mesh, 'cpu', 'median_ms')} | {cell(mesh, 'cpu', 'p95_ms')} | "
            f"{alone['wall']['median_ms']} |"
        )
    lines += [
        "",
        f"## Landmark job per 12-MP photo (goal ≤ {LATENCY_GOAL_MS:.0f} ms of compute on the default path)",
        "",
        "| model | detector | detect | landmarks (+ mesh) | pose | quality | **compute median** "
        "| compute p95 | wall median | goal |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in report["landmark_job"]:
        stages, total = row["stages_cpu"], row["total"]
        default = row["model"] == report["default_model"]
        met = "met" if total["cpu"]["median_ms"] <= LATENCY_GOAL_MS else "not met"
        lines.append(
            f"| {row['model']}{' (default)' if default else ''} | {row['detector']} | "
            f"{stages['detect']['median_ms']} | {stages['landmarks']['median_ms']} | "
            f"{stages['pose']['median_ms']} | {stages['quality']['median_ms']} | "
            f"**{total['cpu']['median_ms']}** | {total['cpu']['p95_ms']} | {total['wall']['median_ms']} | "
            f"{met if default else '—'} |"
        )
    lines += ["", "Stage columns are compute medians. " + report["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=60, help="How many real photos to time (≥ 50).")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="Folder for the JSON and Markdown.")
    parser.add_argument("--repeats", type=int, default=3, help="Times each call runs (the fastest is kept).")
    args = parser.parse_args(argv)
    if args.photos < 50:
        parser.error("--photos must be at least 50: a p95 over fewer photos means little.")
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import cv2
    import torch

    from bench.machine import machine_info
    from ml.config import apply_torch_threads, data_dir_or_none
    from ml.core.imageio import load_image
    from ml.core.landmarks import DEFAULT_LANDMARK_MODEL
    from ml.registry import registry

    apply_torch_threads()
    root = data_dir_or_none()
    if root is None:
        parser.error("the research data directory is absent (set FACET_DATA_DIR)")
    paths = benchmark_photos(root, args.photos)
    photos = [load_image(path) for path in paths]
    large = [enlarge_to(image, TWELVE_MEGAPIXELS) for image in photos]
    detectors = registry.names("face-detection")
    models = [name for name in registry.names("landmarks") if registry.spec(name).trained]
    machine = machine_info()
    timer = Timer(args.repeats)
    cv2.setNumThreads(1)  # one thread, as a worker under FACET_TORCH_THREADS=1: compute is comparable
    report = {
        "command": f"python -m bench.landmark_detectors --photos {args.photos} --repeats {args.repeats}",
        "machine": f"{machine['cpu_model']}, {machine['cpus_available']} CPUs available, no GPU",
        "torch_threads": torch.get_num_threads(),
        "opencv_threads": cv2.getNumThreads(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "photos": len(photos),
        "photo_sources": "landmarks68, FASSEG frontal, London neutral, MEBeauty originals",
        "default_model": DEFAULT_LANDMARK_MODEL,
        "repeats": args.repeats,
        "detectors": time_detectors(detectors, photos, large, timer),
        "landmark_models": time_landmark_models(models, large, timer),
        "landmark_job": time_landmark_job(models, large, timer),
        "note": (
            "dlib-mmod is timed on its first "
            f"{SLOW_DETECTOR_PHOTOS[DLIB_MMOD]} photos only. Every 68-point model also computes the "
            "FaceMesh surface of each face, which the head pose is measured from."
        ),
    }
    report["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    write_report(args.out, "landmark_detectors", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
