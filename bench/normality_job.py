"""`python -m bench.normality_job [--photos N] [--out DIR]`: seconds per photo of the whole normality job.

What a worker does for one photo, in one warm process with one torch thread: read and decode the photo
file, detect the face and its landmarks, align, normalize (K candidates in one batch for the inpainting
normalizer), score, features and zone energies (``ml.normality.analysis.analyze_normality``). Models are
loaded once before timing, as in a worker pool process. Photos: London studio photos (900 px, held
out from training) and 12-MP versions of the same photos (4000 × 3000 JPEG, upscaled from the 1350-px
originals' 900-px copies, quality 92: the size of a phone or DSLR photo; the upscaling is stated, the
pixel count and decoding cost are those of a real 12-MP photo). Normalizers side by side: the
inpainting normalizer (K = 1 and K = 5) and the autoencoder (K = 1, default steps: S alone), the latter
also with the whole photo decoded instead of the reduced decode of large JPEGs, and the job exactly as the
worker runs it when the shipped rating regressor is usable: the autoencoder with the 1–7 rating, whose
features need the K candidates the regressor was fitted with. Then that job again on the 12-MP photos in
``--side-by-side`` warm processes at once (a worker with that concurrency): seconds per job and photos per
second.
Writes DIR/normality_job.json and DIR/normality_job.md (default bench/reports/).
"""

import argparse
import json
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from bench.report import write_report
from ml.normality.settings import DEFAULT_ADAPT_STEPS, DEFAULT_PROJECTION_STEPS

DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
GOAL_SECONDS = 1.0
TWELVE_MP = (4000, 3000)


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.normality_job", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--photos", type=int, default=5, help="London photos (default 5)")
    parser.add_argument("--repeats", type=int, default=2, help="runs per photo; the fastest counts (2)")
    parser.add_argument(
        "--side-by-side",
        type=int,
        default=2,
        help="worker processes running the worker's job on the 12-MP photos at the same time, as a "
        "worker with that concurrency does (default 2, this machine's cores; 0 skips)",
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    return parser.parse_args(argv)


def twelve_megapixel_copy(photo: Path, folder: Path) -> Path:
    """A 4000 × 3000 JPEG of the photo: upscaled and centred on a canvas of its border colour."""
    import cv2
    import numpy as np

    image = cv2.imread(str(photo))
    scale = TWELVE_MP[1] / image.shape[0]
    resized = cv2.resize(image, (round(image.shape[1] * scale), TWELVE_MP[1]), interpolation=cv2.INTER_CUBIC)
    canvas = np.empty((TWELVE_MP[1], TWELVE_MP[0], 3), np.uint8)
    canvas[:] = np.median(image[:, :5].reshape(-1, 3), axis=0)
    left = (TWELVE_MP[0] - resized.shape[1]) // 2
    canvas[:, left : left + resized.shape[1]] = resized
    path = folder / f"{photo.stem}-12mp.jpg"
    cv2.imwrite(str(path), canvas, [cv2.IMWRITE_JPEG_QUALITY, 92])
    return path


WORKER_SETUP = "worker: autoencoder + rating (regressor's K)"
AUTOENCODER_SETUP = f"autoencoder K=1 ({DEFAULT_PROJECTION_STEPS}/{DEFAULT_ADAPT_STEPS} steps)"
SETUPS = {
    "inpainting K=1": {"normalizer": "normality-inpainting-128", "candidates": 1},
    "inpainting K=5": {"normalizer": "normality-inpainting-128", "candidates": 5},
    AUTOENCODER_SETUP: {"normalizer": "normality-autoencoder-128", "candidates": 1},
    # The worker's default normalizer again with the whole photo decoded: what the reduced decode saves
    # and how far S moves with it.
    "autoencoder K=1, full decode": {
        "normalizer": "normality-autoencoder-128",
        "candidates": 1,
        "reduced_decode": False,
    },
    # What the worker runs (workers/runners.py::run_normality) when the rating regressor is usable.
    WORKER_SETUP: {
        "normalizer": "normality-autoencoder-128",
        "candidates": None,
        "rating": True,
    },
}
REDUCED, FULL = AUTOENCODER_SETUP, "autoencoder K=1, full decode"


def run_job(
    photo: Path,
    normalizer: str,
    candidates: int | None,
    reduced_decode: bool = True,
    rating: bool = False,
) -> dict[str, Any]:
    """The worker's job for one photo file; wall and process-CPU seconds, the job's own timings.
    ``candidates`` None: the rating regressor's K."""
    from ml.core.imageio import load_image
    from ml.normality.analysis import analyze_normality, load_photo

    started, cpu = time.perf_counter(), time.process_time()
    image = load_photo(photo)[0] if reduced_decode else load_image(photo)
    decoded = time.perf_counter() - started
    result = analyze_normality(image, normalizer=normalizer, rating=rating, candidates=candidates)
    return {
        "wall_s": round(time.perf_counter() - started, 3),
        "cpu_s": round(time.process_time() - cpu, 3),
        "decode_s": round(decoded, 3),
        "timings": result.data["timings"],
        "score": round(result.data["score"], 4),
        "candidates": result.data["metric"]["candidates"],
        "rating": (result.data["rating"] or {}).get("value"),
    }


def measure(photos: list[Path], repeats: int) -> dict[str, list[dict[str, Any]]]:
    results: dict[str, list[dict[str, Any]]] = {}
    for label, setup in SETUPS.items():
        run_job(photos[0], **setup)  # load the models once, as a warm worker process has
        rows = []
        for photo in photos:
            runs = [run_job(photo, **setup) for _ in range(repeats)]
            rows.append({"photo": photo.name, **min(runs, key=lambda run: run["wall_s"])})
        results[label] = rows
    return results


def _warm_worker_process(photo: Path, all_warm: Any) -> None:
    """Pool initializer: one torch thread and the models loaded, as ``workers.celery`` prepares a
    worker pool process; returns once every process is warm, so the timing starts with all of them."""
    import torch

    torch.set_num_threads(1)
    run_job(photo, **SETUPS[WORKER_SETUP])
    all_warm.wait()


def _ready(_: int) -> None:
    return None


def _worker_job(photo: Path) -> dict[str, Any]:
    return run_job(photo, **SETUPS[WORKER_SETUP])


def side_by_side(photos: list[Path], processes: int, repeats: int) -> dict[str, Any]:
    """The worker's job run by ``processes`` warm processes at once, each photo ``repeats`` times per
    process: each job's wall seconds (what one clinician waits) and photos per second (what the
    machine does)."""
    context = multiprocessing.get_context("spawn")
    jobs = photos * repeats * processes
    all_warm = context.Barrier(processes)
    with context.Pool(processes, initializer=_warm_worker_process, initargs=(photos[0], all_warm)) as pool:
        pool.map(_ready, range(processes), chunksize=1)
        started = time.perf_counter()
        rows = pool.map(_worker_job, jobs, chunksize=1)
        elapsed = time.perf_counter() - started
    walls = [row["wall_s"] for row in rows]
    return {
        "processes": processes,
        "jobs": len(rows),
        "median_job_wall_s": round(statistics.median(walls), 3),
        "max_job_wall_s": round(max(walls), 3),
        "median_job_cpu_s": round(statistics.median(row["cpu_s"] for row in rows), 3),
        "photos_per_s": round(len(rows) / elapsed, 3),
        "seconds_per_photo_throughput": round(elapsed / len(rows), 3),
    }


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [row["wall_s"] for row in rows]
    return {
        "photos": len(rows),
        "candidates": rows[0]["candidates"],
        "median_wall_s": round(statistics.median(walls), 3),
        "max_wall_s": round(max(walls), 3),
        "median_cpu_s": round(statistics.median(row["cpu_s"] for row in rows), 3),
        "median_decode_s": round(statistics.median(row["decode_s"] for row in rows), 3),
        "median_detect_align_s": round(
            statistics.median(row["timings"]["detect_align_s"] for row in rows), 3
        ),
        "median_normalize_s": round(statistics.median(row["timings"]["normalize_s"] for row in rows), 3),
        "median_score_s": round(statistics.median(row["timings"]["score_s"] for row in rows), 3),
        "meets_goal": statistics.median(walls) <= GOAL_SECONDS,
    }


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Normality: seconds per photo for the whole job",
        "",
        f"`{report['command']}`: one warm process, one torch thread, models loaded before timing; per photo "
        f"the fastest of {report['repeats']} runs. Job = decode the file, detect, align, normalize "
        "(K candidates), score, features, zone energies. Goal ≤ 1 s per 12-MP photo.",
        "",
        "| photos | normalizer | K | median wall s | worst s | median CPU s | decode | detect+align | "
        "normalize | score | goal ≤ 1 s |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for key, summary in report["summary"].items():
        kind, label = key.split(" | ")
        lines.append(
            f"| {kind} | {label} | {summary['candidates']} | {summary['median_wall_s']} | "
            f"{summary['max_wall_s']} | "
            f"{summary['median_cpu_s']} | {summary['median_decode_s']} | "
            f"{summary['median_detect_align_s']} | {summary['median_normalize_s']} | "
            f"{summary['median_score_s']} | {'met' if summary['meets_goal'] else 'NOT met'} |"
        )
    machine = report["machine"]
    together = report.get("side_by_side")
    if together:
        lines += [
            "",
            f"**{together['processes']} worker processes side by side** (one torch thread each, as a worker "
            f"with concurrency {together['processes']}), the worker's job on the 12-MP photos, "
            f"{together['jobs']} jobs: median {together['median_job_wall_s']} s per job (worst "
            f"{together['max_job_wall_s']} s, CPU {together['median_job_cpu_s']} s); the machine finishes "
            f"{together['photos_per_s']} photos per second ({together['seconds_per_photo_throughput']} s "
            "per photo).",
        ]
    lines += [
        "",
        "Large JPEGs are decoded at 1/2-1/8 size (libjpeg DCT scaling, shorter side >= 720 px; "
        "`ml.normality.analysis.load_photo`). Largest |S(reduced decode) - S(full decode)|, autoencoder: "
        + ", ".join(
            f"{kind} {value:.3f}"
            for kind, value in report["max_abs_score_change_reduced_vs_full_decode"].items()
        )
        + " (900-px photos are not reduced).",
        "",
        f"Load average before / after: {report['load_before']} / {report['load_after']} on "
        f"{machine['cpus_available']} CPUs shared with other work (wall seconds rise with the load; CPU "
        "seconds much less).",
        "",
        "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()),
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    import torch

    from ml.config import data_dir_or_none

    args = _parse_args(argv)
    data = data_dir_or_none()
    london = sorted((data / "london" / "neutral").glob("*.jpg"))[: args.photos] if data else []
    if not london:
        print("The face data (FACET_DATA_DIR with london/) is absent; nothing to measure.", file=sys.stderr)
        return 2
    torch.set_num_threads(1)
    load_before = [round(value, 2) for value in os.getloadavg()]
    with tempfile.TemporaryDirectory() as folder:
        large = [twelve_megapixel_copy(photo, Path(folder)) for photo in london]
        results = {
            f"{kind} | {label}": rows
            for kind, photos in (("London 900 px", london), ("12 MP", large))
            for label, rows in measure(photos, args.repeats).items()
        }
        together = side_by_side(large, args.side_by_side, args.repeats) if args.side_by_side else None
    decode_effect = {
        kind: max(
            abs(reduced["score"] - full["score"])
            for reduced, full in zip(results[f"{kind} | {REDUCED}"], results[f"{kind} | {FULL}"], strict=True)
        )
        for kind in ("London 900 px", "12 MP")
    }
    report = {
        "command": "python -m bench.normality_job " + " ".join(argv if argv is not None else sys.argv[1:]),
        "max_abs_score_change_reduced_vs_full_decode": decode_effect,
        "repeats": args.repeats,
        "summary": {key: summarize(rows) for key, rows in results.items()},
        "side_by_side": together,
        "rows": results,
        "load_before": load_before,
        "load_after": [round(value, 2) for value in os.getloadavg()],
        "machine": machine_info(),
    }
    write_report(args.out, "normality_job", report, markdown(report))
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
