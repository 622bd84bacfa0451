"""`python -m bench.zones [--photos N] [--out DIR]`: seconds per photo of the two zone models.

For each of N MEBeauty original photos (the authors' `val` split) the benchmark times, inside one
process with the models already loaded (one warm-up photo is not counted):

* the HRNetV2 zone ensemble (`ml.zones.ensemble.ZoneEnsemble.predict`: face landmarks for the crop,
  network, masks mapped back to the photo, 33 zone masks and the face parts);
* the landmark zone model (face detection + 68 landmarks, then the 33 zones and the face parts drawn
  from them).

The report gives the median and p95 with the machine and its load average, since a busy shared
machine slows every figure. Writes DIR/zones.json and DIR/zones.md (default bench/reports/).
"""

import argparse
import csv
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from bench.machine import machine_info, run_header
from bench.report import timing_table, write_report
from ml.core.subject import subject_face

DEFAULT_OUT = Path(__file__).resolve().parent / "reports"


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.zones", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="photos to time (at least 20; default 20)")
    parser.add_argument("--model-dir", type=Path, help="trained ensemble folder (default: the shipped one)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    args = parser.parse_args(argv)
    if args.photos < 20:
        parser.error("--photos must be at least 20: a p95 over fewer photos means little.")
    return args


def benchmark_photos(data: Path, count: int) -> list[Path]:
    """The first ``count`` existing original photos of MEBeauty's `val` split."""
    table = data / "mebeauty" / "images.csv"
    if not table.is_file():
        raise SystemExit(f"bench.zones: {table} not found; set FACET_DATA_DIR to the data folder.")
    with table.open(newline="") as handle:
        originals = [
            row["original"] for row in csv.DictReader(handle) if row["split"] == "val" and row["original"]
        ]
    paths = [data / "mebeauty" / name for name in originals if (data / "mebeauty" / name).is_file()]
    if len(paths) < count:
        raise SystemExit(f"bench.zones: only {len(paths)} MEBeauty val originals found, {count} needed.")
    return paths[:count]


def summarise(seconds: list[float]) -> dict[str, float]:
    """Median, p95 (nearest rank), mean, min and max in seconds."""
    ordered = sorted(seconds)
    p95 = ordered[max(0, int(np.ceil(0.95 * len(ordered))) - 1)]
    return {
        "median_s": round(statistics.median(ordered), 4),
        "p95_s": round(p95, 4),
        "mean_s": round(statistics.fmean(ordered), 4),
        "min_s": round(ordered[0], 4),
        "max_s": round(ordered[-1], 4),
        "n": len(ordered),
    }


def time_model(run: Callable[[np.ndarray], Any], images: list[np.ndarray]) -> list[float]:
    """Seconds per image after one uncounted warm-up call."""
    run(images[0])
    seconds = []
    for image in images:
        started = time.perf_counter()
        run(image)
        seconds.append(time.perf_counter() - started)
    return seconds


def landmark_zone_model(image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.zones.landmark_model import render_face_parts, render_zone_masks

    faces = detect_faces_with_landmarks(image)
    if not faces:
        return None
    landmarks = subject_face(faces).landmarks
    return render_zone_masks(landmarks, image.shape), render_face_parts(landmarks, image.shape)


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Zone models: latency per photo",
        "",
        *run_header(report),
        "",
        f"{report['n_photos']} MEBeauty `val` original photos (median size {report['median_photo_px']} px), "
        "models loaded once, one warm-up photo not counted.",
        "",
    ]
    lines += timing_table(
        "Model",
        [
            ("HRNetV2 zone ensemble (ssm)", report["models"]["ensemble"]),
            ("landmark zone model", report["models"]["landmark"]),
        ],
    )
    lines += [
        "",
        f"Ensemble: version `{report['ensemble_version']}`, "
        f"input {report['ensemble_input_px']} px face crop, "
        f"networks: {', '.join(report['ensemble_networks'])}. Both timings include dlib face detection and "
        "68 landmarks (the ensemble uses them to place its face crop).",
        "",
        "The machine is shared: other processes were running, so these figures are upper bounds for an "
        "idle machine of this kind.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from ml.config import data_dir
    from ml.core.imageio import load_image
    from ml.zones.ensemble import ZoneEnsemble
    from ml.zones.models import segmentation_model_dir

    if args.threads:
        torch.set_num_threads(args.threads)
    paths = benchmark_photos(data_dir(), args.photos)
    images = [load_image(path) for path in paths]
    ensemble = ZoneEnsemble(args.model_dir or segmentation_model_dir())
    load_before = [round(v, 2) for v in os.getloadavg()]
    ensemble_seconds = time_model(ensemble.predict, images)
    landmark_seconds = time_model(landmark_zone_model, images)
    report = {
        "command": "python -m bench.zones " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": [round(v, 2) for v in os.getloadavg()],
        "n_photos": len(images),
        "photos": [str(path.relative_to(data_dir())) for path in paths],
        "median_photo_px": int(statistics.median(max(image.shape[:2]) for image in images)),
        "ensemble_version": ensemble.config.version,
        "ensemble_input_px": ensemble.config.input_size,
        "ensemble_networks": list(ensemble.config.weights),
        "models": {"ensemble": summarise(ensemble_seconds), "landmark": summarise(landmark_seconds)},
        "seconds": {"ensemble": ensemble_seconds, "landmark": landmark_seconds},
    }
    write_report(args.out, "zones", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
