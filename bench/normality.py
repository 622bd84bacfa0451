"""`python -m bench.normality [--images N] [--out DIR]`: seconds per image of `python -m ml normality score`.

Each held-out MEBeauty face (the `val` split, never used to train the normalizer) is scored by a fresh
`python -m ml normality score IMAGE --json` process, exactly as an operator would run it, with the
shipped weights and regressor. The report gives the wall-clock seconds of the whole process (Python
start, model load, face detection, K normalized candidates, scoring) and the command's own timings,
with the machine it ran on and the load average, since a busy shared machine slows every figure.
Writes DIR/normality.json and DIR/normality.md (default bench/reports/).
"""

import argparse
import csv
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.machine import machine_info
from bench.report import write_report

DEFAULT_OUT = Path(__file__).resolve().parent / "reports"
GOAL_SECONDS = 10.0


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.normality", description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=5, help="held-out faces to score (default 5)")
    parser.add_argument("--steps", type=int, help="projection steps passed to score (default: its own)")
    parser.add_argument("--adapt-steps", type=int, help="adaptation steps passed to score (default: its own)")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    args = parser.parse_args(argv)
    if args.images < 1:
        parser.error("--images must be at least 1.")
    return args


def held_out_images(data: Path, count: int) -> list[Path]:
    """The first ``count`` photos of MEBeauty's held-out ``val`` split."""
    table = data / "mebeauty" / "images.csv"
    with table.open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if row["split"] == "val"]
    return [data / "mebeauty" / row["image"] for row in rows[:count]]


def score_command(image: Path, steps: int | None, adapt_steps: int | None) -> list[str]:
    command = [sys.executable, "-m", "ml", "normality", "score", str(image), "--json"]
    if steps is not None:
        command += ["--steps", str(steps)]
    if adapt_steps is not None:
        command += ["--adapt-steps", str(adapt_steps)]
    return command


def measure(images: list[Path], steps: int | None, adapt_steps: int | None) -> list[dict[str, Any]]:
    """One fresh score process per image: wall-clock seconds and the command's reported timings."""
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "YOLO_OFFLINE": "1"}
    rows = []
    for image in images:
        started = time.perf_counter()
        completed = subprocess.run(
            score_command(image, steps, adapt_steps), capture_output=True, text=True, env=env, check=False
        )
        wall = time.perf_counter() - started
        if completed.returncode != 0:
            raise RuntimeError(f"score failed on {image.name}: {completed.stderr.strip()[-500:]}")
        document = json.loads(completed.stdout)
        rows.append(
            {
                "image": image.name,
                "process_wall_s": round(wall, 2),
                "timings": document["timings"],
                "score": document["score"],
                "rating": (document["rating"] or {}).get("value"),
                "metric": document["metric"],
            }
        )
    return rows


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    walls = [row["process_wall_s"] for row in rows]
    totals = [row["timings"]["total_s"] for row in rows]
    return {
        "images": len(rows),
        "median_process_wall_s": round(statistics.median(walls), 2),
        "max_process_wall_s": round(max(walls), 2),
        "median_command_total_s": round(statistics.median(totals), 2),
        "median_normalize_s": round(statistics.median(row["timings"]["normalize_s"] for row in rows), 2),
        "goal_s": GOAL_SECONDS,
        "meets_goal": statistics.median(walls) <= GOAL_SECONDS,
    }


def markdown(report: dict[str, Any]) -> str:
    summary, machine = report["summary"], report["machine"]
    lines = [
        "# Normality score: seconds per image",
        "",
        f"`{report['command']}` on {summary['images']} held-out MEBeauty faces (val split), "
        f"one fresh process per image. Perceptual metric: `{report['rows'][0]['metric']['perceptual']}`; "
        f"K = {report['rows'][0]['metric']['candidates']} normalized candidates.",
        "",
        "| figure | seconds |",
        "| --- | --- |",
        f"| median wall clock per image (whole process) | {summary['median_process_wall_s']} |",
        f"| worst wall clock per image | {summary['max_process_wall_s']} |",
        f"| median of the command's own `total_s` | {summary['median_command_total_s']} |",
        f"| median normalization (`normalize_s`) | {summary['median_normalize_s']} |",
        f"| goal | ≤ {summary['goal_s']} ({'met' if summary['meets_goal'] else 'NOT met'}) |",
        "",
        f"Load average before / after: {report['load_before']} / {report['load_after']} on "
        f"{machine['cpus_available']} CPUs (a shared machine: other work slows these figures).",
        "",
        "| image | wall s | load s | detect+align s | normalize s | score s | score | rating 1-7 |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for row in report["rows"]:
        timing = row["timings"]
        rating = "n/a" if row["rating"] is None else f"{row['rating']:.2f}"
        lines.append(
            f"| {row['image']} | {row['process_wall_s']} | {timing['load_s']} | {timing['detect_align_s']} | "
            f"{timing['normalize_s']} | {timing['score_s']} | {row['score']:.3f} | {rating} |"
        )
    lines += ["", "Machine: " + ", ".join(f"{key} {value}" for key, value in machine.items()), ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from ml.config import data_dir_or_none

    args = _parse_args(argv)
    data = data_dir_or_none()
    if data is None or not (data / "mebeauty" / "images.csv").is_file():
        print("The face data (FACET_DATA_DIR with mebeauty/) is absent; nothing to measure.", file=sys.stderr)
        return 2
    images = held_out_images(data, args.images)
    load_before = [round(value, 2) for value in os.getloadavg()]
    try:
        rows = measure(images, args.steps, args.adapt_steps)
    except RuntimeError as error:
        print(error, file=sys.stderr)
        return 2
    report = {
        "command": " ".join(["python", *score_command(Path("IMAGE"), args.steps, args.adapt_steps)[1:]]),
        "summary": summarize(rows),
        "rows": rows,
        "load_before": load_before,
        "load_after": [round(value, 2) for value in os.getloadavg()],
        "machine": machine_info(),
    }
    write_report(args.out, "normality", report, markdown(report))
    print(json.dumps(report["summary"], indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
