"""Latency per image of the 68-point landmark detectors: Facet's yolo-pose68 against dlib-68.

``python -m bench.landmark_detectors [--images N]`` times ``detector.detect(image)`` (face detection plus
landmarks, the work behind ``python -m ml landmarks detect``) on MEBeauty originals and the landmarks68
faces, after one warm-up call per model, and writes ``bench/reports/landmark_detectors.json`` and ``.md``.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.report import write_report
from ml.model_names import DLIB_68, YOLO_POSE68

REPORT_DIR = Path(__file__).resolve().parent / "reports"
MODELS = (YOLO_POSE68, DLIB_68)


def benchmark_images(data_root: Path, count: int) -> list[Path]:
    """The landmarks68 faces plus MEBeauty originals up to ``count`` images (a fixed, seeded choice)."""
    from ml.landmarks.campaign import mebeauty_originals

    landmarks68 = sorted((data_root / "landmarks68" / "images").glob("*.jpg"))
    # Latency only: overlap with the campaign's training photos does not matter here.
    others = mebeauty_originals(data_root, max(0, count - len(landmarks68)), seed=1)
    return (landmarks68 + others)[:count]


def time_model(name: str, images: list[np.ndarray]) -> dict[str, Any]:
    """Median, p95 and mean milliseconds per image and faces found, for registered model ``name``."""
    from ml.registry import registry

    detector = registry.load(name)
    detector.detect(images[0])  # warm-up: lazy model loading is not per-image latency
    times, faces = [], 0
    for image in images:
        started = time.perf_counter()
        found = detector.detect(image)
        times.append((time.perf_counter() - started) * 1000.0)
        faces += len(found)
    values = np.asarray(times)
    return {
        "model": name,
        "version": registry.spec(name).version,
        "images": len(images),
        "faces_found": faces,
        "median_ms": round(float(np.median(values)), 1),
        "p95_ms": round(float(np.percentile(values, 95)), 1),
        "mean_ms": round(float(values.mean()), 1),
        "min_ms": round(float(values.min()), 1),
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Landmark detectors: latency per image",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}, torch threads {report['torch_threads']}; "
        f"load average at start {report['load_average']}. {report['images']} images "
        "(landmarks68 + MEBeauty originals, 400–768 px), one warm-up call per model.",
        "",
        "| model | version | median ms | p95 ms | mean ms | faces found |",
        "|---|---|---|---|---|---|",
    ]
    for row in report["results"]:
        lines.append(
            f"| {row['model']} | {row['version']} | {row['median_ms']} | {row['p95_ms']} | "
            f"{row['mean_ms']} | {row['faces_found']} |"
        )
    lines += ["", report["note"], ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=24, help="How many data images to time (≥ 20).")
    parser.add_argument("--out", type=Path, default=REPORT_DIR, help="Folder for the JSON and Markdown.")
    args = parser.parse_args(argv)
    os.environ.setdefault("YOLO_OFFLINE", "1")
    import torch

    from ml.config import data_dir_or_none
    from ml.core.imageio import load_image
    from ml.registry import registry

    root = data_dir_or_none()
    if root is None:
        parser.error("the research data directory is absent (set FACET_DATA_DIR)")
    if not registry.spec(YOLO_POSE68).trained:
        parser.error(f"{YOLO_POSE68} weights are absent; see docs/landmark-campaign.md")
    paths = benchmark_images(root, args.images)
    images = [load_image(path) for path in paths]
    report = {
        "command": "python -m bench.landmark_detectors --images " + str(args.images),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPU cores, no GPU",
        "torch_threads": torch.get_num_threads(),
        "load_average": [round(value, 2) for value in os.getloadavg()],
        "images": len(images),
        "results": [time_model(name, images) for name in MODELS],
        "note": (
            "CPU only. The machine was shared with other jobs, so absolute figures are noisy; "
            "both models ran back to back on the same images. dlib's time includes its HOG face detector."
        ),
    }
    write_report(args.out, "landmark_detectors", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
