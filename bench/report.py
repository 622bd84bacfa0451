"""Writing benchmark reports, and the Markdown of the landmarks benchmark."""

import json
from pathlib import Path
from typing import Any

TIMING_HEADER = [
    "| {first} | median (s) | p95 (s) | mean (s) | min (s) | max (s) |",
    "|---|---:|---:|---:|---:|---:|",
]


def timing_table(first_column: str, rows: list[tuple[str, dict[str, float]]]) -> list[str]:
    """Markdown lines of a table of `summarise` results, one row per (label, summary)."""
    lines = [TIMING_HEADER[0].format(first=first_column), TIMING_HEADER[1]]
    for label, summary in rows:
        cells = [summary[key] for key in ("median_s", "p95_s", "mean_s", "min_s", "max_s")]
        lines.append(f"| {label} | " + " | ".join(str(cell) for cell in cells) + " |")
    return lines


def write_report(out: Path, stem: str, report: dict[str, Any], markdown: str) -> None:
    """Write `out/<stem>.json` (every measurement) and `out/<stem>.md` (the tables)."""
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{stem}.json").write_text(json.dumps(report, indent=2) + "\n")
    (out / f"{stem}.md").write_text(markdown)


def _row(label: str, summary: dict[str, float]) -> str:
    return (
        f"| {label} | {summary['n']} | {summary['median']:.3f} | {summary['p95']:.3f} | "
        f"{summary['mean']:.3f} | {summary['min']:.3f} | {summary['max']:.3f} |"
    )


def landmarks_markdown(report: dict[str, Any]) -> str:
    machine, setup = report["machine"], report["setup"]
    jobs, ingest, direct = (
        report["landmark_jobs"],
        report["ingest_12mp_jpeg"],
        report["direct_analyze_landmarks"],
    )
    cold = jobs["cold_first_job"]
    header = "| measure | n | median s | p95 s | mean s | min s | max s |\n|---|---|---|---|---|---|---|"
    lines = [
        "# Landmark job and ingest benchmark",
        "",
        f"Measured {machine['date']} with `python -m bench --photos {setup['photos']}`; "
        f"code {machine['code_version']}.",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu_model']}, {machine['logical_cpus']} logical CPUs "
        f"({machine['cpus_available']} available)",
        f"- Memory: {machine['memory_gib']} GiB; OS: {machine['os']}",
        f"- Python {machine['python']}, torch {machine['torch']} (not used by this pipeline), "
        f"dlib {machine['dlib']}, "
        f"OpenCV {machine['opencv']}, Pillow {machine['pillow']}, Django {machine['django']}, "
        f"Celery {machine['celery']}",
        f"- Database: {setup['database']}; broker: {setup['broker']}; worker: {setup['worker']}",
        "",
        f"## Landmark job latency per photo ({jobs['run']['n']} real faces, one at a time)",
        "",
        "Each photo is uploaded with `photo_upload` (the ingest, then the study's analyses queued, as the "
        "site does) and its landmarks job waited for before the next one, "
        "so every job meets an idle, warm worker. Queue wait = job created → started (broker delivery), "
        "run = started → finished (read photo, detect, 68 landmarks, pose, quality, aligned crop, store), "
        "end to end = created → finished. Timestamps come from the job rows.",
        "",
        header,
        _row("queue wait", jobs["queue_wait"]),
        _row("run", jobs["run"]),
        _row("end to end", jobs["end_to_end"]),
        _row("ingest of the same photos", jobs["ingest_of_these_photos"]),
        "",
        "Warm-up job on a cold worker (loads the dlib models in the worker process): "
        f"run {cold['run']:.2f} s, "
        f"end to end {cold['end_to_end']:.2f} s. Photos with exactly one face found: "
        f"{jobs['photos_with_one_face']} of {jobs['run']['n']}.",
        "",
        f"## Ingest of a 12-megapixel JPEG ({ingest['width']}×{ingest['height']}, "
        f"quality {ingest['jpeg_quality']}, "
        f"about {ingest['jpeg_megabytes']} MB)",
        "",
        f"Made from the real face {ingest['source_face']} (scaled to cover, centre-cropped, "
        "σ = 2 noise so each run's "
        "bytes differ). Time of `photo_ingest` alone: hash, type sniffing, full decode, EXIF transpose, "
        "metadata stripping, PNG and thumbnail encoding, storage, database rows; "
        "no HTTP transfer, no analysis.",
        "",
        header,
        _row("ingest 12 MP JPEG", ingest["summary"]),
        "",
        "## `analyze_landmarks` called directly (no queue, no database)",
        "",
        f"Model {direct['model']}. First call, which builds the detector and shape predictor: "
        f"{direct['first_call_with_model_load']:.2f} s.",
        "",
        header,
        _row("per photo (the measured faces)", direct["per_photo"]),
        _row("12 MP image", direct["twelve_megapixel"]),
        "",
    ]
    return "\n".join(lines)
