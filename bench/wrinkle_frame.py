"""`python -m bench.wrinkle_frame [--boxes N] [--london N] [--large N] [--megapixels MP] [--out DIR]`: what
computing the wrinkle analysis in the model's square instead of the photo's pixels changes, per figure,
against the noise floor of the wrinkle figures.

Each photo is analysed twice by `ml.wrinkles.analysis.analyze_wrinkles` with the shipped model and the
same landmarks: in its analysis frame (`ml.wrinkles.crop.AnalysisFrame`: the square's 640 px for a photo
finer than it, the photo otherwise) and with `full_resolution` (every step in the photo's pixels, as
before the frame existed). Photos: the first N of the `wrinkle-boxes` test split and of the London
neutral photos as they are (mostly coarser than the square: nothing changes), and N MEBeauty `val`
originals and N further London photos enlarged to MP megapixels (bicubic, as `bench.wrinkles` does).
For every scope (overall, forehead, below the brows, each atlas zone, each type region) it reports the
absolute change of the area (percentage points of the region), the length (% of the longer), the line
count and the mean width (photo pixels, and square pixels: the floor was measured on 640-px photos,
analysed at about the square's resolution), beside the floor of the wrinkle figures
(`docs/reports/wrinkles-noise-floor.json`, `python -m ml wrinkles noise-floor`);
and the agreement of the photo-sized masks and of the types found. Writes DIR/wrinkles-analysis-frame.json
and .md (default docs/reports/).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.landmark_detectors import enlarge_to
from bench.machine import machine_info, run_header
from bench.report import write_report
from bench.zones import benchmark_photos

DEFAULT_OUT = Path(__file__).resolve().parents[1] / "docs" / "reports"
FLOOR_REPORT = DEFAULT_OUT / "wrinkles-noise-floor.json"
FIGURE_SCOPES = ("overall", "forehead", "below_brows")


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.wrinkle_frame", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--boxes", type=int, default=30, help="wrinkle-boxes test photos as they are")
    parser.add_argument("--london", type=int, default=20, help="London neutral photos as they are")
    parser.add_argument("--large", type=int, default=10, help="MEBeauty and London photos each, enlarged")
    parser.add_argument("--megapixels", type=float, default=12.0, help="size of the enlarged photos")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="report folder (default docs/reports/)")
    return parser.parse_args(argv)


def _photos(args: argparse.Namespace, data: Path) -> list[tuple[str, Path, float | None]]:
    from ml.wrinkles.boxes import read_photos

    boxes = [photo.image_path for photo in read_photos(data / "wrinkle-boxes", "test")]
    london = sorted((data / "london" / "neutral").glob("*.jpg"))
    large = args.megapixels
    return (
        [("wrinkle-boxes test (640 px)", path, None) for path in boxes[: args.boxes]]
        + [("London neutral (900 px)", path, None) for path in london[: args.london]]
        + [(f"MEBeauty val, {large:g} MP", path, large) for path in benchmark_photos(data, args.large + 10)]
        + [(f"London neutral, {large:g} MP", path, large) for path in london[args.london :]][: args.large]
    )


def _figures(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    scopes = {name: data[name] if name == "overall" else data["regions"][name] for name in FIGURE_SCOPES}
    scopes |= {f"zone:{zone['abbreviation']}": zone for zone in data["zones"]}
    scopes |= {f"type:{row['class']}": row for row in data["type_regions"]}
    return scopes


def _changes(full: dict[str, Any], frame: dict[str, Any], side: float) -> dict[str, float]:
    longer = max(full["total_length_px"], frame["total_length_px"])
    widths = (full["mean_width_px"], frame["mean_width_px"])
    width = abs(widths[0] - widths[1]) if None not in widths else 0.0 if widths == (None, None) else None
    return {
        "area_percent_points": 100 * abs(full["area_fraction"] - frame["area_fraction"]),
        "area_percent": 100
        * abs(full["area_px"] - frame["area_px"])
        / max(full["area_px"], frame["area_px"], 1),
        "length_percent": 100 * abs(full["total_length_px"] - frame["total_length_px"]) / longer
        if longer
        else 0.0,
        "count": abs(full["count"] - frame["count"]),
        "mean_width_px": width,
        "mean_width_square_px": None if width is None else width / side,
        "region_percent": 100 * abs(full["region_px"] - frame["region_px"]) / max(full["region_px"], 1),
    }


def _types(full: dict[str, Any], frame: dict[str, Any]) -> dict[str, Any]:
    def found(data: dict[str, Any]) -> list[dict[str, Any]]:
        return (data.get("types") or {}).get("found") or []

    def iou(a: list[float], b: list[float]) -> float:
        width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
        height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
        inter = width * height
        union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
        return inter / union if union > 0 else 0.0

    before, after = found(full), found(frame)
    best = [
        max((iou(item["box"], other["box"]) for other in after if other["class"] == item["class"]), default=0)
        for item in before
    ]
    return {
        "found_full": len(before),
        "found_frame": len(after),
        "same_classes": sorted({i["class"] for i in before}) == sorted({i["class"] for i in after}),
        "matched_at_iou_0_5": sum(value >= 0.5 for value in best),
    }


def _summary(values: list[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "n": len(ordered),
        "median": statistics.median(ordered),
        "p95": ordered[min(len(ordered) - 1, int(round(0.95 * (len(ordered) - 1))))],
        "max": ordered[-1],
    }


FLOOR_KEYS = {
    "area_percent_points": "area_percent_points",
    "length_percent": "length_percent",
    "count": "count",
    "mean_width_square_px": "mean_width_px",
}


def summarise(photos: list[dict[str, Any]], floor: dict[str, dict[str, float]]) -> list[dict[str, Any]]:
    """Per group and scope: median, p95 and max of each change, and its floor where there is one (type
    regions have none of their own: they are held against the overall floor)."""
    rows = []
    for group in dict.fromkeys(photo["group"] for photo in photos):
        members = [photo for photo in photos if photo["group"] == group]
        for scope in members[0]["changes"]:
            reference = floor.get(scope) or (floor["overall"] if scope.startswith("type:") else {})
            row: dict[str, Any] = {"group": group, "scope": scope}
            for key in (
                "area_percent_points",
                "area_percent",
                "length_percent",
                "count",
                "mean_width_px",
                "mean_width_square_px",
                "region_percent",
            ):
                values = [
                    photo["changes"][scope][key]
                    for photo in members
                    if photo["changes"][scope][key] is not None
                ]
                row[key] = _summary(values) if values else None
                if key in FLOOR_KEYS and FLOOR_KEYS[key] in reference:
                    row[f"{key}_floor"] = reference[FLOOR_KEYS[key]]
            rows.append(row)
    return rows


def _cell(row: dict[str, Any], key: str, digits: int = 2) -> str:
    summary = row.get(key)
    if summary is None:
        return "–"
    text = f"{summary['median']:.{digits}f} / {summary['p95']:.{digits}f} / {summary['max']:.{digits}f}"
    floor = row.get(f"{key}_floor")
    return text + (f" ({floor:.{digits}f})" if floor is not None else "")


def markdown(report: dict[str, Any]) -> str:
    lines = [
        "# Wrinkle figures: analysis frame (model's square) against full resolution",
        "",
        *run_header(report),
        "",
        f"Model `{report['model']}` {report['model_version']}, types `{report['types_model']}`. "
        "Each photo is analysed twice with the same landmarks: in its analysis frame (the model's "
        "640-px square where the photo is finer, else the photo) and at full resolution (every step in "
        "the photo's pixels, the analysis before the frame). Cells: median / p95 / max of the absolute "
        "change over the photos (noise floor: p95 change between two re-photographs, "
        "`docs/reports/wrinkles-noise-floor.md`; type regions have no floor of their own and are held "
        "against the overall floor). Mean width is in square pixels (photo pixels ÷ s): the floor was "
        "measured on 640-px photos, analysed at about the square's resolution.",
        "",
        "| group | photos | analysed in the square | s (median) | seconds full → frame (median) "
        "| mask IoU (median / min) | types: same classes | types: boxes matched at IoU 0.5 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for group, summary in report["groups"].items():
        lines.append(
            f"| {group} | {summary['photos']} | {summary['in_square']} | {summary['side_median']:.2f} | "
            f"{summary['seconds_full_median']:.2f} → {summary['seconds_frame_median']:.2f} | "
            f"{summary['mask_iou_median']:.3f} / {summary['mask_iou_min']:.3f} | "
            f"{summary['types_same_classes']}/{summary['photos']} | "
            f"{summary['types_matched']}/{summary['types_found_full']} |"
        )
    lines += [
        "",
        "| group | scope | area (pp) | area (%) | length (%) | lines | mean width (square px) | region (%) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in report["rows"]:
        if row["scope"].startswith("zone:") and not report["all_zones"]:
            continue
        lines.append(
            f"| {row['group']} | {row['scope']} | {_cell(row, 'area_percent_points', 3)} | "
            f"{_cell(row, 'area_percent', 1)} | {_cell(row, 'length_percent', 1)} | "
            f"{_cell(row, 'count', 0)} | "
            f"{_cell(row, 'mean_width_square_px', 2)} | {_cell(row, 'region_percent', 2)} |"
        )
    lines += [
        "",
        "Zones (area in percentage points of the zone's analysed skin; all 33 zones in the JSON):",
        "",
    ]
    lines += [
        "| group | worst zone by p95 | p95 (pp) | its floor (pp) | zones with p95 above their floor |",
        "|---|---|---|---|---|",
    ]
    for group in report["groups"]:
        zones = [row for row in report["rows"] if row["group"] == group and row["scope"].startswith("zone:")]
        measured = [row for row in zones if row["area_percent_points"] is not None]
        worst = max(measured, key=lambda row: row["area_percent_points"]["p95"])
        above = [
            row["scope"][5:]
            for row in measured
            if row["area_percent_points"]["p95"] > row.get("area_percent_points_floor", float("inf"))
        ]
        lines.append(
            f"| {group} | {worst['scope'][5:]} | {worst['area_percent_points']['p95']:.3f} | "
            f"{worst.get('area_percent_points_floor', float('nan')):.3g} | {', '.join(above) or 'none'} |"
        )
    lines.append("")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)

    import torch

    from ml.config import data_dir
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_face
    from ml.model_names import WRINKLES_UNET_WDS
    from ml.registry import registry
    from ml.wrinkles.analysis import analyze_wrinkles
    from ml.wrinkles.models import WEIGHTS_FILE, default_type_model
    from ml.wrinkles.repeatability import weights_sha256

    torch.set_num_threads(1)
    network, metadata = registry.load(WRINKLES_UNET_WDS)
    floor = json.loads(FLOOR_REPORT.read_text())
    if floor["weights_sha256"] != weights_sha256(WEIGHTS_FILE):
        raise SystemExit(f"{FLOOR_REPORT} belongs to other weights: run python -m ml wrinkles noise-floor.")
    load_before = [round(value, 2) for value in os.getloadavg()]
    photos = []
    counts: dict[str, int] = {}
    for group, path, megapixels in _photos(args, data_dir()):
        limit = args.large if megapixels else None
        if limit is not None and counts.get(group, 0) >= limit:
            continue
        image = load_image(path)
        if megapixels:
            image = enlarge_to(image, int(megapixels * 1_000_000))
        found = detect_faces_with_landmarks(image)
        if not found:
            continue
        landmarks = subject_face(found).landmarks
        results = {}
        for full_resolution in (True, False):
            started = time.perf_counter()
            results[full_resolution] = analyze_wrinkles(
                image, landmarks=landmarks, loaded=(network, metadata), full_resolution=full_resolution
            )
            results[f"seconds_{full_resolution}"] = time.perf_counter() - started
        full, frame = results[True], results[False]
        side = frame.data["analysis_frame"]["photo_px_per_pixel"]
        union = np.count_nonzero(full.mask | frame.mask)
        before, after = _figures(full.data), _figures(frame.data)
        counts[group] = counts.get(group, 0) + 1
        photos.append(
            {
                "group": group,
                "photo": str(path.relative_to(data_dir())),
                "shape": list(image.shape[:2]),
                "in_square": frame.data["analysis_frame"]["region"] != "photo",
                "side": side,
                "seconds_full": results["seconds_True"],
                "seconds_frame": results["seconds_False"],
                "mask_iou": np.count_nonzero(full.mask & frame.mask) / union if union else 1.0,
                "types": _types(full.data, frame.data),
                "changes": {scope: _changes(before[scope], after[scope], side) for scope in before},
                "full": {scope: before[scope] for scope in FIGURE_SCOPES},
                "frame": {scope: after[scope] for scope in FIGURE_SCOPES},
            }
        )
        print(
            f"{group}: {path.name} s={side:.2f} "
            f"{results['seconds_True']:.2f} s -> {results['seconds_False']:.2f} s",
            file=sys.stderr,
            flush=True,
        )
    groups = {}
    for group in dict.fromkeys(photo["group"] for photo in photos):
        members = [photo for photo in photos if photo["group"] == group]
        groups[group] = {
            "photos": len(members),
            "in_square": sum(photo["in_square"] for photo in members),
            "side_median": statistics.median(photo["side"] for photo in members),
            "seconds_full_median": statistics.median(photo["seconds_full"] for photo in members),
            "seconds_frame_median": statistics.median(photo["seconds_frame"] for photo in members),
            "mask_iou_median": statistics.median(photo["mask_iou"] for photo in members),
            "mask_iou_min": min(photo["mask_iou"] for photo in members),
            "types_same_classes": sum(photo["types"]["same_classes"] for photo in members),
            "types_found_full": sum(photo["types"]["found_full"] for photo in members),
            "types_matched": sum(photo["types"]["matched_at_iou_0_5"] for photo in members),
        }
    description = registry.describe(WRINKLES_UNET_WDS)
    types_model = default_type_model()
    report = {
        "command": "python -m bench.wrinkle_frame " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "load_average_before": load_before,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "model": WRINKLES_UNET_WDS,
        "model_version": description["version"],
        "types_model": f"{types_model} {registry.describe(types_model)['version']}" if types_model else None,
        "all_zones": False,
        "groups": groups,
        "rows": summarise(photos, floor["floor"]),
        # Per photo, the changes of the three main scopes only (zones and type regions: in the rows).
        "photos": [
            {**photo, "changes": {scope: photo["changes"][scope] for scope in FIGURE_SCOPES}}
            for photo in photos
        ],
    }
    write_report(args.out, "wrinkles-analysis-frame", report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
