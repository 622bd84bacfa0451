"""`python -m bench.wrinkles [--photos N] [--megapixels MP] [--checkpoint CK.pt] [--out DIR]`: seconds per
photo of the wrinkle analysis.

For each of N MEBeauty original photos (the authors' `val` split) the benchmark times, in one
process with the models loaded once (one warm-up photo not counted): the whole `ml.wrinkles.analysis.
analyze_wrinkles` (segmentation, skin mask, figures per region and zone, wrinkle types), the
segmentation alone (`segment_wrinkles`: the model's square, texture map, U-Net, mask mapped back) of
the shipped model and, side by side, of `--checkpoint` (for example the whole-face model), and the
default wrinkle-type detector alone when one is installed (the landmark-geometry rules: their
evidence, i.e. wrinkle lines and clusters, from the photo's segmentation, skin and zones computed
beforehand; a YOLO detector: the photo). Landmarks are computed beforehand and timed apart,
since a wrinkles job reuses the photo's landmark result. ``--megapixels 12`` enlarges each photo to a
clinical camera's size first (as `bench.landmark_detectors` does: the real face, at what a 12-MP photo
costs). Writes DIR/wrinkles.json and .md, or DIR/wrinkles-12mp.* with ``--megapixels 12`` (default
bench/reports/).
"""

import argparse
import os
import statistics
import sys
from pathlib import Path
from typing import Any

from bench.landmark_detectors import enlarge_to
from bench.machine import machine_info, run_header
from bench.report import timing_table, write_report
from bench.zones import DEFAULT_OUT, benchmark_photos, summarise, time_model
from ml.core.subject import subject_face
from ml.model_names import WRINKLES_UNET_WDS

MODEL = WRINKLES_UNET_WDS


def _parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.wrinkles", description=__doc__.split("\n\n")[0])
    parser.add_argument("--photos", type=int, default=20, help="photos to time (at least 20; default 20)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's own choice)")
    parser.add_argument(
        "--megapixels", type=float, help="enlarge each photo to this many megapixels (bicubic) before timing"
    )
    parser.add_argument("--checkpoint", type=Path, help="another segmentation checkpoint, timed side by side")
    parser.add_argument(
        "--types-weights", type=Path, help="a wrinkle-type detector to time when none is installed"
    )
    parser.add_argument("--types-imgsz", type=int, default=224, help="input size of --types-weights")
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="report folder (default bench/reports/)"
    )
    args = parser.parse_args(argv)
    if args.photos < 20:
        parser.error("--photos must be at least 20: a p95 over fewer photos means little.")
    return args


def markdown(report: dict[str, Any]) -> str:
    labels = {
        "analysis": "Whole wrinkle analysis (`analyze_wrinkles`: segmentation, skin, figures, types)",
        "segmentation": "Segmentation only, shipped model "
        f"({report['input_region']}, {report['input_px']} px)",
        "checkpoint": f"Segmentation only, {report.get('checkpoint_description', 'checkpoint')}",
        "types": f"Wrinkle types ({report.get('types_model', 'detector')})",
        "landmarks": "68 landmarks (default landmark model)",
    }
    rows = [(label, key) for key, label in labels.items() if key in report["timings"]]
    lines = [
        "# Wrinkle segmentation: latency per photo",
        "",
        *run_header(report),
        "",
        f"{report['n_photos']} MEBeauty `val` original photos with a face"
        + (f", enlarged to {report['megapixels']:g} MP (bicubic)" if report.get("megapixels") else "")
        + f" (median longer side {report['median_photo_px']} px); model `{MODEL}` version "
        f"`{report['model_version']}` at its default input of {report['input_px']} px "
        f"({report['input_region']}); loaded once, one warm-up "
        "photo not counted.",
        "",
    ]
    lines += timing_table("Step", [(label, report["timings"][key]) for label, key in rows])
    lines += [
        "",
        "The machine is shared: other processes may have been running, so these figures are upper bounds "
        "for an idle machine of this kind.",
        "",
    ]
    return "\n".join(lines)


def _type_evidence_parts(image, landmarks, network, metadata) -> tuple:
    """What the analysis hands the type detector (landmarks, analysed wrinkle mask, analysed skin, atlas
    zones, all in the analysis frame, and the frame), computed as ``analyze_wrinkles`` computes it
    without a zones result."""
    from ml.wrinkles.analysis import analysed_wrinkles, segment_wrinkles
    from ml.zones.landmark_model import render_zone_masks

    segmentation = segment_wrinkles(image, landmarks, network, metadata)
    analysed = analysed_wrinkles(segmentation, landmarks, image.shape, metadata)
    zones = render_zone_masks(analysed.landmarks, analysed.frame.shape)
    return analysed.landmarks, analysed.mask, analysed.whole, zones, analysed.frame


def main(argv: list[str] | None = None) -> int:
    args = _parse_args(argv)
    import torch

    from ml.config import data_dir
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.registry import registry
    from ml.wrinkles.analysis import analyze_wrinkles, segment_wrinkles
    from ml.wrinkles.models import default_type_model
    from ml.wrinkles.train import load_checkpoint
    from ml.wrinkles.type_geometry import TypeEvidence

    if args.threads:
        torch.set_num_threads(args.threads)
    description = registry.describe(MODEL)
    if not description["trained"]:
        raise SystemExit(f"bench.wrinkles: {MODEL} has no trained weights; train or install them first.")
    network, metadata = registry.load(MODEL)
    # Extra photos stand in for those where no face is found.
    paths = benchmark_photos(data_dir(), args.photos + 10)
    faces = []
    for path in paths:
        image = load_image(path)
        if args.megapixels:
            image = enlarge_to(image, int(args.megapixels * 1_000_000))
        found = detect_faces_with_landmarks(image)
        if found:
            faces.append((path, image, subject_face(found).landmarks))
        if len(faces) == args.photos:
            break
    if len(faces) < args.photos:
        raise SystemExit(f"bench.wrinkles: only {len(faces)} photos with a face found, {args.photos} needed.")
    images = [image for _, image, _ in faces]
    landmarks_of = {id(image): landmarks for _, image, landmarks in faces}
    load_before = [round(value, 2) for value in os.getloadavg()]
    analysis = time_model(
        lambda image: analyze_wrinkles(image, landmarks=landmarks_of[id(image)], loaded=(network, metadata)),
        images,
    )
    timings = {
        "analysis": analysis,
        "segmentation": time_model(
            lambda image: segment_wrinkles(image, landmarks_of[id(image)], network, metadata), images
        ),
    }
    extra: dict[str, Any] = {}
    if args.checkpoint:
        candidate, candidate_metadata = load_checkpoint(args.checkpoint)
        timings["checkpoint"] = time_model(
            lambda image: segment_wrinkles(image, landmarks_of[id(image)], candidate, candidate_metadata),
            images,
        )
        extra["checkpoint_description"] = (
            f"`{args.checkpoint.name}` ({candidate_metadata.get('input_region', 'forehead-eye')}, "
            f"{candidate_metadata['size']} px)"
        )
    if args.types_weights:
        from ml.wrinkles.types import load_type_detector

        detector = load_type_detector(args.types_weights, image_size=args.types_imgsz)
        timings["types"] = time_model(detector.detect, images)
        extra["types_weights"] = args.types_weights.name
        extra["types_model"] = f"YOLOv8n `{args.types_weights.name}`"
    elif (types_model := default_type_model()) is not None:
        detector = registry.load(types_model)
        evidence_parts = {
            id(image): _type_evidence_parts(image, landmarks_of[id(image)], network, metadata)
            for image in images
        }
        timings["types"] = time_model(
            lambda image: detector.detect(image, TypeEvidence(*evidence_parts[id(image)])), images
        )
        extra["types_model"] = f"`{types_model}` {registry.describe(types_model)['version']}"
    timings["landmarks"] = time_model(detect_faces_with_landmarks, images)
    report = {
        "command": "python -m bench.wrinkles " + " ".join(sys.argv[1:] if argv is None else argv),
        "machine": machine_info(),
        "torch_threads": torch.get_num_threads(),
        "load_average_before": load_before,
        "load_average_after": [round(value, 2) for value in os.getloadavg()],
        "n_photos": len(images),
        "megapixels": args.megapixels,
        "photos": [str(path.relative_to(data_dir())) for path, _, _ in faces],
        "median_photo_px": int(statistics.median(max(image.shape[:2]) for image in images)),
        "model_version": description["version"],
        "input_px": int(metadata["size"]),
        "input_region": metadata.get("input_region", "forehead-eye"),
        **extra,
        "timings": {key: summarise(values) for key, values in timings.items()},
        "seconds": timings,
    }
    name = f"wrinkles-{args.megapixels:g}mp" if args.megapixels else "wrinkles"
    write_report(args.out, name, report, markdown(report))
    print(markdown(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
