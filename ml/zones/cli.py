"""``python -m ml zones {predict,build-dataset,compute-sets,train,evaluate}``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ml.model_names import ZONES_HRNET, ZONES_LANDMARK


def _predict(args: argparse.Namespace) -> int:
    from ml.cli import CommandError, print_json
    from ml.core.imageio import load_image
    from ml.core.subject import NoFaceError
    from ml.zones.analysis import analyze_zones, write_outputs
    from ml.zones.ensemble import ModelNotTrainedError

    image = load_image(args.image)
    try:
        analysis = analyze_zones(image, model=args.model, weights=args.weights)
    except (ModelNotTrainedError, NoFaceError) as error:
        raise CommandError(str(error)) from error
    write_outputs(image, analysis, Path(args.out))
    result = analysis.data
    if args.json:
        print_json(result)
        return 0
    model = result["model"]
    print(
        f"{args.image}: model {model['name']} {model['version']}"
        f"{'' if model['trained'] else ' (no trained weights)'}"
    )
    for note in result["notes"]:
        print(f"  note: {note}")
    for zone in result["zones"]:
        print(
            f"  {zone['number']:>2} {zone['abbreviation']}  {zone['area_px']:>8} px "
            f"{100 * zone['face_fraction']:5.1f} % of the face  {zone['name']}"
        )
    print(f"  files in {args.out}")
    return 0


def _build_dataset(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.zones.cvat import read_cvat_images_xml, read_cvat_segmentation_masks
    from ml.zones.datasets import build_dataset

    annotations = {}
    for xml in args.cvat_xml or []:
        annotations.update(read_cvat_images_xml(xml))
    for folder in args.cvat_masks or []:
        annotations.update(read_cvat_segmentation_masks(folder))
    summary = build_dataset(
        Path(args.out),
        [Path(f) for f in args.faces or []],
        [Path(f) for f in args.fasseg or []],
        annotations,
        args.limit,
        args.validation,
        crop_size=args.crop_size or None,
    )
    print_json(summary)
    return 0


def _merge_datasets(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.zones.datasets import merge_datasets

    print_json(merge_datasets(Path(args.out), [Path(d) for d in args.datasets]))
    return 0


def _compute_sets(args: argparse.Namespace) -> int:
    from ml.cli import CommandError, print_json
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_face
    from ml.zones.datasets import iter_images
    from ml.zones.landmark_model import render_zone_masks
    from ml.zones.zone_sets import ZONE_SETS_PATH, colour_zones, overlap_graph, save_zone_sets

    paths = [p for folder in args.faces for p in iter_images(Path(folder))][: args.limit]

    def stacks():
        for path in paths:
            image = load_image(path)
            face = subject_face(detect_faces_with_landmarks(image))
            if face is not None:
                yield render_zone_masks(face.landmarks, image.shape)

    if not paths:
        raise CommandError("No images found in the given folders.")
    graph = overlap_graph(stacks())
    sets = colour_zones(graph)
    save_zone_sets(sets, graph, len(paths), Path(args.out) if args.out else ZONE_SETS_PATH)
    print_json({"sets": sets, "n_images": len(paths)})
    return 0


def _train(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.zones.models import segmentation_model_dir
    from ml.zones.train import TrainConfig, train

    config = TrainConfig(
        iterations=args.iterations,
        batch_size=args.batch_size,
        input_size=args.input_size,
        base_lr=args.lr,
        shared_backbone=not args.separate_networks,
        limit=args.limit,
        max_minutes=args.max_minutes,
        parts_share=args.parts_share,
        threads=args.threads,
    )
    summary = train(
        Path(args.dataset),
        Path(args.out) if args.out else segmentation_model_dir(),
        config,
        log=lambda line: print(line, file=sys.stderr),
    )
    print_json(summary)
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.cli import CommandError, print_json
    from ml.zones import evaluate as ev
    from ml.zones.ensemble import ModelNotTrainedError, ZoneEnsemble
    from ml.zones.models import segmentation_model_dir

    predictors = {"landmark": ev.landmark_predictor()}
    report: dict[str, dict] = {"landmark": {}}
    if not args.landmark_only:
        try:
            ensemble = ZoneEnsemble(Path(args.model_dir) if args.model_dir else segmentation_model_dir())
        except ModelNotTrainedError as error:
            raise CommandError(f"{error} (or pass --landmark-only)") from error
        predictors["ssm"] = ev.ensemble_predictor(ensemble)
        report["ssm"] = {"version": ensemble.config.version, "winners": ensemble.config.winners}
    for name, predict in predictors.items():
        if args.fasseg:
            report[name]["face_parts"] = ev.evaluate_face_parts(Path(args.fasseg), predict)
        if args.dataset:
            report[name]["zones_dataset_validation"] = ev.evaluate_zones(
                ev.dataset_validation_samples(Path(args.dataset)),
                predict,
                "dataset validation labels (landmark pseudo-labels unless human CVAT zones were imported)",
            )
        if args.cvat_xml:
            from ml.zones.cvat import read_cvat_images_xml

            if not args.images:
                raise CommandError("--cvat-xml needs --images DIR with the annotated photos.")
            report[name]["zones_human"] = ev.evaluate_zones(
                ev.cvat_samples(read_cvat_images_xml(args.cvat_xml), Path(args.images)),
                predict,
                f"human CVAT annotations {args.cvat_xml}",
            )
    if args.json:
        print_json(report)
        return 0
    for name, sections in report.items():
        for section, table in sections.items():
            if isinstance(table, dict) and "iou" in table:
                mean = table["mean_iou"]
                print(
                    f"{name} {section}: mean IoU {mean:.4f} over {table['n_images']} images"
                    if mean is not None
                    else f"{name} {section}: no labelled pixels"
                )
                for key, value in table["iou"].items():
                    print(f"  {key:<6} {'-' if value is None else f'{value:.4f}'}")
    return 0


def _atlas_figure(args: argparse.Namespace) -> int:
    from PIL import Image

    from ml.zones.render import atlas_figure

    Image.fromarray(atlas_figure()).save(args.out)
    print(args.out)
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``zones`` command group to the ``python -m ml`` parser."""
    zones = subparsers.add_parser("zones", help="Facial zones: 33-zone atlas, landmark and HRNetV2 models.")
    actions = zones.add_subparsers(dest="zones_command", required=True, metavar="ACTION")

    predict = actions.add_parser("predict", help="Segment the 33 zones and face parts of one photo.")
    predict.add_argument("image", help="Path of the photo.")
    predict.add_argument(
        "--out", required=True, help="Folder for zones/<ABBR>.png, parts/*.png, overview.png."
    )
    predict.add_argument(
        "--model",
        choices=("landmark", "ssm", ZONES_LANDMARK, ZONES_HRNET),
        default="landmark",
        help=f"landmark ({ZONES_LANDMARK}) = geometric baseline; "
        f"ssm ({ZONES_HRNET}) = trained HRNetV2 ensemble.",
    )
    predict.add_argument("--weights", help="Another weights file of the ensemble than the shipped one.")
    predict.add_argument("--json", action="store_true", help="Print the result as JSON.")
    predict.set_defaults(handler=_predict)

    build = actions.add_parser(
        "build-dataset", help="Write an ADE20K/ODGT dataset of zone and face-part labels."
    )
    build.add_argument(
        "--faces", action="append", help="Folder of face photos (repeatable), e.g. MEBeauty originals."
    )
    build.add_argument(
        "--fasseg",
        action="append",
        help="FASSEG folder with images/ and masks/ (human face parts; repeatable).",
    )
    build.add_argument(
        "--crop-size", type=int, default=256, help="Square face-crop size in px (0: keep whole photos)."
    )
    build.add_argument(
        "--cvat-xml", action="append", help="CVAT for images 1.1 XML with zone polygons (repeatable)."
    )
    build.add_argument(
        "--cvat-masks", action="append", help="Segmentation mask 1.1 export folder (repeatable)."
    )
    build.add_argument("--out", required=True, help="Dataset folder (outside the repository).")
    build.add_argument("--limit", type=int, help="Use at most this many photos per source folder.")
    build.add_argument(
        "--validation",
        type=float,
        default=0.2,
        help="Fraction of photos in the validation split (by name hash; 1 = all, for a test set).",
    )
    build.set_defaults(handler=_build_dataset)

    merge = actions.add_parser("merge-datasets", help="Merge zones datasets built separately (keeps splits).")
    merge.add_argument("datasets", nargs="+", help="Dataset folders from build-dataset.")
    merge.add_argument("--out", required=True, help="Merged dataset folder.")
    merge.set_defaults(handler=_merge_datasets)

    sets = actions.add_parser(
        "compute-sets", help="Recompute the three non-overlapping zone sets from faces."
    )
    sets.add_argument("--faces", action="append", required=True, help="Folder of face photos (repeatable).")
    sets.add_argument("--limit", type=int, help="Use at most this many photos.")
    sets.add_argument("--out", help="Output JSON (default: the packaged zone_sets.json).")
    sets.set_defaults(handler=_compute_sets)

    train = actions.add_parser(
        "train", help="Train the HRNetV2 zone ensemble (SGD, poly lr, deep supervision)."
    )
    train.add_argument("--dataset", required=True, help="Dataset folder from build-dataset.")
    train.add_argument("--out", help="Model folder (default: <weights>/zones/hrnet).")
    train.add_argument("--iterations", type=int, default=2000)
    train.add_argument("--batch-size", type=int, default=4)
    train.add_argument("--input-size", type=int, default=320)
    train.add_argument("--lr", type=float, default=0.02, help="Base learning rate (poly decay, power 0.9).")
    train.add_argument("--separate-networks", action="store_true", help="One network per sub-model.")
    train.add_argument("--limit", type=int, help="Use at most this many images per split.")
    train.add_argument("--threads", type=int, help="torch CPU threads.")
    train.add_argument(
        "--parts-share", type=float, help="Fraction of each batch drawn from photos with face-part masks."
    )
    train.add_argument(
        "--max-minutes",
        type=float,
        help="Wall-clock budget; the poly schedule decays over it and training stops when it is spent.",
    )
    train.set_defaults(handler=_train)

    figure = actions.add_parser("atlas-figure", help="Draw the atlas on the mean landmark shape (for docs).")
    figure.add_argument("--out", required=True, help="PNG file to write.")
    figure.set_defaults(handler=_atlas_figure)

    evaluate = actions.add_parser("evaluate", help="Per-zone IoU table and face-part IoU against FASSEG.")
    evaluate.add_argument("--fasseg", help="FASSEG split folder with images/ and masks/.")
    evaluate.add_argument("--dataset", help="Zones dataset: evaluate on its validation split.")
    evaluate.add_argument("--cvat-xml", help="Human zone polygons (CVAT for images 1.1) to evaluate against.")
    evaluate.add_argument("--images", help="Folder with the photos of --cvat-xml.")
    evaluate.add_argument("--model-dir", help="Trained ensemble folder (default: <weights>/zones/hrnet).")
    evaluate.add_argument("--landmark-only", action="store_true", help="Evaluate only the landmark model.")
    evaluate.add_argument("--json", action="store_true", help="Print the report as JSON.")
    evaluate.set_defaults(handler=_evaluate)
