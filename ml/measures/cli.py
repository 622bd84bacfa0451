"""``python -m ml measures {compute,noise-floor,calibrate}``."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path
from typing import Any

MEASURES_DIR = Path(__file__).parent
ANALYSES = ("landmarks", "zones", "wrinkles", "normality")


def _london_photos(count: int) -> list[Path]:
    from ml.cli import CommandError
    from ml.config import data_dir

    folder = data_dir() / "london" / "neutral"
    photos = sorted(folder.glob("*.jpg"))
    if not photos:
        raise CommandError(f"No London set photos in {folder} (set FACET_DATA_DIR).")
    return photos[:count]


def _wrinkle_photos(split: str, count: int) -> list[Path]:
    from ml.cli import CommandError
    from ml.config import data_dir
    from ml.wrinkles.boxes import read_photos

    folder = data_dir() / "wrinkle-boxes"
    try:
        photos = [photo.image_path for photo in read_photos(folder, split)]
    except FileNotFoundError as error:
        raise CommandError(f"{error} (set FACET_DATA_DIR).") from error
    return photos[:count]


def photo_measure_function(analyses: tuple[str, ...]):
    """image → every measure of :mod:`ml.measures.catalogue` the chosen analyses give, None without a face."""
    import numpy as np

    from ml.core.subject import subject_face
    from ml.landmarks.analysis import analyze_landmarks
    from ml.measures.catalogue import photo_measures
    from ml.zones.atlas import ZONE_ABBREVIATIONS

    def measure(image: np.ndarray) -> dict[str, float] | None:
        landmarks = analyze_landmarks(image)
        face = subject_face(landmarks["faces"])
        if face is None:
            return None
        points = np.asarray(face["landmarks"], dtype=np.float64)
        results: dict[str, Any] = {"landmarks": landmarks}
        zone_masks = None
        if "zones" in analyses:
            from ml.model_names import ZONES_HRNET
            from ml.zones.analysis import analyze_zones

            zones = analyze_zones(image, model=ZONES_HRNET, landmarks=points)
            results["zones"], zone_masks = zones.data, zones.masks
        if "wrinkles" in analyses:
            from ml.wrinkles.analysis import analyze_wrinkles

            results["wrinkles"] = analyze_wrinkles(image, landmarks=points, zone_masks=zone_masks).data
        if "normality" in analyses:
            from ml.normality.analysis import analyze_normality

            results["normality"] = analyze_normality(image, landmarks=points).data
        return photo_measures(**results, zones_of_interest=list(ZONE_ABBREVIATIONS))

    return measure


def _models(analyses: tuple[str, ...]) -> dict[str, Any]:
    from ml import model_names
    from ml.registry import registry

    names = {"landmarks": model_names.DLIB_68, "zones": model_names.ZONES_HRNET}
    names.update(wrinkles=model_names.WRINKLES_UNET_WDS, normality=model_names.NORMALITY_AUTOENCODER)
    described = {}
    for analysis in analyses:
        description = registry.describe(names[analysis])
        described[analysis] = {key: description.get(key) for key in ("name", "version", "weights_sha256")}
    return described


def _noise_floor(args: argparse.Namespace) -> int:
    from ml.cli import CommandError
    from ml.measures.catalogue import WRINKLE_GROUPS, group_keys
    from ml.measures.noise import noise_floor

    analyses = tuple(analysis.strip() for analysis in args.analyses.split(",") if analysis.strip())
    unknown = set(analyses) - set(ANALYSES)
    if unknown or "landmarks" not in analyses:
        raise CommandError(f"--analyses: landmarks plus any of {', '.join(ANALYSES[1:])}.")
    checkpoint = Path(args.checkpoint) if args.checkpoint else None
    log = lambda line: print(line, file=sys.stderr, flush=True)  # noqa: E731
    # The London faces are young adults with almost no wrinkles: a wrinkle measure's spread there is
    # the spread of zero. Wrinkle measures are measured on real photos of wrinkled faces instead.
    face_analyses = tuple(analysis for analysis in analyses if analysis != "wrinkles")
    found = noise_floor(
        _london_photos(args.photos),
        photo_measure_function(face_analyses),
        copies=args.copies,
        seed=args.seed,
        checkpoint=checkpoint,
        log=log,
    )
    london = f"London Set neutral photos ({found['photos']})"
    measures = {key: {**row, "photo_set": london} for key, row in found["measures"].items()}
    photo_sets = [{"name": london, "analyses": ", ".join(face_analyses), "photos": found["photos"]}]
    if "wrinkles" in analyses:
        wrinkled = noise_floor(
            _wrinkle_photos(args.wrinkle_split, args.wrinkle_photos),
            photo_measure_function(analyses),
            copies=args.copies,
            seed=args.seed,
            checkpoint=checkpoint.with_suffix(".wrinkles.jsonl") if checkpoint else None,
            log=log,
        )
        name = f"wrinkle-boxes {args.wrinkle_split} photos ({wrinkled['photos']})"
        wrinkle_keys = {key for group in WRINKLE_GROUPS for key in group_keys(group)}
        found_rows = wrinkled["measures"].items()
        measures.update({key: {**row, "photo_set": name} for key, row in found_rows if key in wrinkle_keys})
        photo_sets.append({"name": name, "analyses": "wrinkles", "photos": wrinkled["photos"]})
    command = (
        f"python -m ml measures noise-floor --photos {args.photos} --copies {args.copies} "
        f"--analyses {','.join(analyses)}"
    )
    if "wrinkles" in analyses:
        command += f" --wrinkle-photos {args.wrinkle_photos} --wrinkle-split {args.wrinkle_split}"
    document = {
        "what": "Repeatability coefficient RC = 1.96·√2·S_w of each measure over re-photography-like "
        "perturbations (shift ±3 %, rotation ±3°, scale ±5 %, brightness ±10 %, JPEG 80–95) of real photos; "
        "a stand-in for real test–retest photos (ml/measures/noise.py). Face measures on London Set "
        "neutral photos; wrinkle measures on wrinkle-boxes photos, real faces with wrinkles.",
        "created": datetime.date.today().isoformat(),
        "command": command,
        "models": _models(analyses),
        "photo_sets": photo_sets,
        "copies_per_photo": args.copies,
        "seed": args.seed,
        "measures": dict(sorted(measures.items())),
    }
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    Path(args.report).write_text(noise_floor_report(document))
    print(f"Wrote {args.out} and {args.report}")
    return 0


def noise_floor_report(document: dict[str, Any]) -> str:
    """The Markdown report of a noise-floor document (``noise_floor.json``)."""
    from ml.measures.catalogue import definition
    from ml.measures.facial import IPD, IPD_SQUARED

    model_list = ", ".join(f"{model['name']} {model['version']}" for model in document["models"].values())
    photo_sets = "; ".join(f"{entry['name']}: {entry['analyses']}" for entry in document["photo_sets"])
    lines = [
        "# Noise floors of the measures",
        "",
        document["what"],
        "",
        f"Command: `{document['command']}` ({photo_sets}; {document['copies_per_photo']} copies of each "
        f"photo, seed {document['seed']}); models: {model_list}.",
        "",
        "A pre→post change smaller than RC is within what re-photographing alone produces. Units: IPD "
        "(inter-pupillary distance) for lengths, IPD² for areas; × 63 mm gives mm for a typical adult IPD. "
        "The wrinkle figures' noise floor is the listed wrinkle model's repeatability, not a validated "
        "wrinkle measurement (see its model card for what it learnt from). Zones and wrinkles were "
        "measured on every atlas zone (a study reads its zones of interest) and in every line type's "
        "region; a region where no copy of any photo had a wrinkle gets RC 0, i.e. no floor in effect.",
        "",
        "| measure | unit | photo set | photos | mean | between-photo SD | S_w | RC | RC at IPD 63 mm |",
        "| --- | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for key, row in document["measures"].items():
        try:
            measure = definition(key)
        except KeyError:
            continue
        in_mm = "—"
        if measure.unit in (IPD, IPD_SQUARED):
            in_mm = f"{measure.in_mm(row['repeatability_coefficient'], 63.0):.3g} {measure.unit_label(63.0)}"
        lines.append(
            f"| {measure.label} (`{key}`) | {measure.unit} | {row['photo_set']} | {row['photos']} | "
            f"{row['mean']:.4g} | "
            f"{row['between_photo_sd']:.3g} | {row['within_sd']:.3g} | "
            f"{row['repeatability_coefficient']:.3g} | {in_mm} |"
        )
    return "\n".join(lines) + "\n"


def _calibrate(args: argparse.Namespace) -> int:
    from ml.landmarks.analysis import analyze_landmarks
    from ml.measures.comparability import CHECKS
    from ml.measures.noise import calibrate, photo_figures_from

    photos = _london_photos(args.photos)
    found = calibrate(
        photos,
        photo_figures_from(analyze_landmarks),
        copies=args.copies,
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr, flush=True),
    )
    command = f"python -m ml measures calibrate --photos {args.photos} --copies {args.copies}"
    document = {
        "what": "Comparability limits: just above (× margin) the largest figure of re-photographed pairs of "
        "London Set photos (re-photography-like perturbations, ml/measures/noise.py), and never tighter "
        "than the minimum tolerances of clinical photo standards (MINIMUM_LIMITS there).",
        "created": datetime.date.today().isoformat(),
        "command": command,
        **found,
    }
    Path(args.out).write_text(json.dumps(document, indent=1) + "\n")
    same, different = found["rephotographed_pairs"], found["different_people_pairs"]
    lines = [
        "# Comparability limits: calibration",
        "",
        document["what"],
        "",
        f"Command: `{command}`; {found['photos']} people, seed {args.seed}.",
        "",
        f"- Re-photographed pairs (a photo and one of its perturbed copies): {same['warned']} of "
        f"{same['pairs']} warned.",
        f"- Pairs of different people (every pair of originals): {different['warned']} of "
        f"{different['pairs']} warned ({100 * different['warned'] / max(different['pairs'], 1):.1f} %).",
        "",
        "| check | limit (minimum) | re-photographed median / p95 / max | "
        "different people median / p95 / max | different-people pairs flagged by this check |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for check in CHECKS:
        if check.key not in found["limits"]:
            continue
        a, b = same["figures"][check.key], different["figures"][check.key]
        lines.append(
            f"| {check.label} ({check.unit}) | {found['limits'][check.key]:.3g} "
            f"({found['minimum_limits'][check.key]:.3g}) | "
            f"{a['median']:.3g} / {a['p95']:.3g} / {a['max']:.3g} | {b['median']:.3g} / {b['p95']:.3g} / "
            f"{b['max']:.3g} | {different['flagged_by_check'][check.key]} |"
        )
    lines += [
        "",
        "The perturbations are in the photo's plane and change brightness only, so the pose and colour "
        "limits rest on their minimum tolerances; the registration residual, which compares face shapes, "
        "is what tells different people apart. Pairs of different people here are studio photos of the "
        "same set-up: their pose, exposure and white-balance differences are those of different sittings.",
    ]
    Path(args.report).write_text("\n".join(lines) + "\n")
    print(f"Wrote {args.out} and {args.report}")
    return 0


def _compute(args: argparse.Namespace) -> int:
    from ml.cli import CommandError, print_json
    from ml.core.imageio import load_image

    analyses = tuple(analysis.strip() for analysis in args.analyses.split(",") if analysis.strip())
    measures = photo_measure_function(analyses)(load_image(args.image))
    if measures is None:
        raise CommandError(f"No face was found in {args.image}.")
    print_json(measures)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("measures", help="Facial measures, noise floors and comparability limits.")
    actions = parser.add_subparsers(dest="measures_command", required=True, metavar="ACTION")
    compute = actions.add_parser("compute", help="Every measure of one photo as JSON (docs/measures.md).")
    compute.add_argument("image")
    compute.add_argument("--analyses", default="landmarks", help="landmarks plus zones, wrinkles, normality")
    compute.set_defaults(handler=_compute)
    floor = actions.add_parser("noise-floor", help="Repeatability coefficient of every measure.")
    floor.add_argument("--photos", type=int, default=45, help="London Set neutral photos to use")
    floor.add_argument("--copies", type=int, default=4, help="re-photographed copies per photo")
    floor.add_argument("--analyses", default="landmarks,zones,wrinkles")
    floor.add_argument(
        "--wrinkle-photos", type=int, default=45, help="wrinkle-boxes photos for the wrinkle measures"
    )
    floor.add_argument("--wrinkle-split", default="test", choices=("train", "val", "test"))
    floor.add_argument("--seed", type=int, default=0)
    floor.add_argument("--checkpoint", help="JSON-lines file of finished photos (resume)")
    floor.add_argument("--out", default=str(MEASURES_DIR / "noise_floor.json"))
    floor.add_argument("--report", default="docs/reports/measures-noise-floor.md")
    floor.set_defaults(handler=_noise_floor)
    limits = actions.add_parser("calibrate", help="Calibrate the comparability limits.")
    limits.add_argument("--photos", type=int, default=51)
    limits.add_argument("--copies", type=int, default=9)
    limits.add_argument("--seed", type=int, default=0)
    limits.add_argument("--out", default=str(MEASURES_DIR / "comparability_limits.json"))
    limits.add_argument("--report", default="docs/reports/comparability-calibration.md")
    limits.set_defaults(handler=_calibrate)
