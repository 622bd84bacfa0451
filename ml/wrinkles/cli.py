"""``python -m ml wrinkles {synthesize,label,box-labels,train,evaluate,evaluate-boxes,crossval,card,segment,
cache-predictions,false-positives,sweep-post-processing,noise-floor,train-types,evaluate-types,ship-real,
card-real}
...``."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path


def _synthesize(args: argparse.Namespace) -> int:
    from ml.wrinkles.synthesize import synthesize_dataset

    samples = synthesize_dataset(
        args.masks,
        args.faces,
        args.out,
        per_face=args.per_face,
        limit=args.limit,
        size=args.size,
        seed=args.seed,
    )
    return 0 if samples else 1


def _label(args: argparse.Namespace) -> int:
    import cv2

    from ml.core.imageio import load_image
    from ml.wrinkles.labeling import label_wrinkles

    image = load_image(args.image)
    rough = load_image(args.rough)[..., 0] > 127
    truth = label_wrinkles(
        image,
        rough,
        method=args.method,
        window=args.window,
        percent=args.percent,
        block_size=args.block,
        c=args.c,
    )
    if not cv2.imwrite(str(args.out), truth.astype("uint8") * 255):
        raise ValueError(f"Could not write {args.out}.")
    print(f"{args.out}: {int(truth.sum())} wrinkle pixels inside {int(rough.sum())} rough-mask pixels")
    return 0


def _train(args: argparse.Namespace) -> int:
    from ml.wrinkles.train import LEARNING_RATE, data_set_description, train_model

    result = train_model(
        args.data,
        args.out,
        variant=args.variant,
        base_width=args.width,
        size=args.size,
        epochs=args.epochs,
        folds=args.folds,
        fold=args.fold,
        seed=args.seed,
        max_train_images=args.max_train_images,
        patch=args.patch,
        learning_rate=LEARNING_RATE if args.lr is None else args.lr,
        init=args.init,
        max_minutes=args.max_minutes,
    )
    print(
        f"saved {result.checkpoint} (best epoch {result.best_epoch + 1}, "
        f"validation JSI {result.validation.get('jsi', float('nan')):.4f}, "
        f"{data_set_description(args.data)['label']})"
    )
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.wrinkles.evaluate import evaluate_methods, write_report

    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    report = evaluate_methods(
        args.data, args.checkpoints, methods, log=lambda line: print(line, file=sys.stderr), split=args.split
    )
    if args.out:
        write_report(report, args.out, "python -m ml " + shlex.join(sys.argv[1:]))
    if args.json:
        print_json(report)
    return 0


def _crossval(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.wrinkles.crossval import cross_validate, markdown_table
    from ml.wrinkles.evaluate import write_report

    methods = [method.strip() for method in args.methods.split(",") if method.strip()]
    report = cross_validate(args.data, args.runs, methods, log=lambda line: print(line, file=sys.stderr))
    if args.out:
        write_report(report, args.out, "python -m ml " + shlex.join(sys.argv[1:]), render=markdown_table)
    if args.json:
        print_json(report)
    return 0


def _card(args: argparse.Namespace) -> int:
    from ml.wrinkles.modelcard import write_model_card

    metrics = write_model_card(args.checkpoint, args.report, args.out, args.crossval)
    print(f"wrote {args.out}: JSI {metrics['jsi']:.4f} ({metrics['label']})")
    return 0


def _box_labels(args: argparse.Namespace) -> int:
    from ml.wrinkles.realphoto import build_box_label_set

    summary = build_box_label_set(
        args.data, args.out, method=args.method, size=args.size, limit=args.limit, log=print
    )
    print(
        f"{args.out}: {summary['written']} of {summary['photos']} photos labelled ({summary['method']}), "
        f"{len(summary['skipped'])} without a face"
    )
    return 0 if summary["written"] else 1


def _evaluate_boxes(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.wrinkles.boxes import evaluate_boxes, iter_split_counts, markdown_report
    from ml.wrinkles.evaluate import write_report
    from ml.wrinkles.realphoto import photo_segmenter

    if args.landmarks_cache is not None and args.faces == "all":
        raise SystemExit("--landmarks-cache holds the subject's face only; leave it out with --faces all.")
    sweep = [float(value) for value in args.sweep.split(",")] if args.sweep else None
    segment, description = photo_segmenter(
        args.checkpoint,
        args.threshold,
        probabilities=bool(sweep),
        post_processing=_post_processing_file(args.post_processing),
        all_faces=args.faces == "all",
        landmarks_cache=args.landmarks_cache,
    )
    splits = [None if split == "all" else split for split in args.split]
    counts = dict(iter_split_counts(args.data))
    reports = []
    for split in splits:
        report = evaluate_boxes(
            args.data,
            segment,
            split=split,
            limit=args.limit,
            log=lambda line: print(line, file=sys.stderr),
            thresholds=sweep,
            all_faces=args.faces == "all",
        )
        reports.append({**report, "model": description, "split_sizes": counts})
    if args.out:
        write_report(
            {"reports": reports},
            args.out,
            "python -m ml " + shlex.join(sys.argv[1:]),
            render=lambda combined, command: markdown_report(combined["reports"], command),
        )
    if args.json:
        print_json(reports[0] if len(reports) == 1 else {"reports": reports})
    else:
        for report in reports:
            for row in report.get("sweep", [report]):
                print(
                    f"{report['split']} (threshold {row.get('threshold', description['threshold'])}): "
                    f"box recall {row['box_recall']:.3f}, pixel precision {row['pixel_precision'] or 0:.3f}, "
                    f"analysed {report['share_analysed']:.1%}"
                )
            if "all_faces" in report:
                every = report["all_faces"]
                print(
                    f"{report['split']} every face ({every['faces_analysed']} faces): box recall "
                    f"{every['box_recall']:.3f}, pixel precision {every['pixel_precision'] or 0:.3f}, "
                    f"{every['boxes_on_no_analysed_face']} boxes on no analysed face"
                )
    return 0


def _post_processing_file(path: Path | None) -> dict | None:
    """Post-processing settings from a JSON file (a sweep's ``chosen`` entry or a plain settings dict)."""
    if path is None:
        return None
    import json

    from ml.wrinkles.postprocess import PostProcessing

    data = json.loads(Path(path).read_text())
    data = data.get("chosen", data)
    fields = PostProcessing.__dataclass_fields__
    return PostProcessing(**{key: data[key] for key in fields if key in data}).as_dict()


def _cache_predictions(args: argparse.Namespace) -> int:
    from ml.wrinkles.diagnostics import cache_predictions

    for split in args.split:
        result = cache_predictions(
            args.data,
            split,
            args.out / split,
            checkpoint=args.checkpoint,
            limit=args.limit,
            log=lambda line: print(line, file=sys.stderr),
        )
        print(f"{split}: {result['photos']} photos cached, without a face: {result['no_face']}")
    return 0


def _false_positives(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.wrinkles.analysis import skin_mask
    from ml.wrinkles.diagnostics import false_positive_breakdown, markdown_breakdown
    from ml.wrinkles.evaluate import write_report
    from ml.wrinkles.postprocess import (
        NO_POST_PROCESSING,
        PostProcessing,
        analysed_region,
        refine_wrinkle_mask,
    )
    from ml.zones.landmark_model import render_face_parts

    settings = {"without post-processing": NO_POST_PROCESSING}
    chosen = _post_processing_file(args.post_processing)
    if chosen is not None:
        settings["with post-processing"] = PostProcessing(**chosen)
    reports = []
    for split in args.split:
        for name, setting in settings.items():

            def mask_of(cached, setting=setting):
                from ml.wrinkles.analysis import face_outline_mask

                parts = render_face_parts(cached.landmarks, cached.probability.shape)
                outline = face_outline_mask(cached.landmarks, cached.probability.shape)
                region = analysed_region(
                    skin_mask(parts) & cached.valid, cached.landmarks, setting, parts, outline
                )
                return refine_wrinkle_mask(
                    cached.probability > args.threshold, region, cached.landmarks, setting, cached.probability
                )

            report = false_positive_breakdown(args.data, args.cache / split, split, mask_of)
            reports.append(
                {**report, "setting": name, "post_processing": setting.as_dict(), "threshold": args.threshold}
            )
    combined = {"reports": reports, "cache": str(args.cache)}
    if args.out:
        write_report(
            combined,
            args.out,
            "python -m ml " + shlex.join(sys.argv[1:]),
            render=lambda data, command: markdown_breakdown(data["reports"], command),
        )
    if args.json:
        print_json(combined)
    for report in reports:
        print(
            f"{report['split']} {report['setting']}: box recall {report['box_recall']:.3f}, "
            f"pixel precision {report['pixel_precision']:.3f}"
        )
    return 0


def _sweep_post_processing(args: argparse.Namespace) -> int:
    import json

    from ml.wrinkles.diagnostics import (
        RECALL_RETENTION,
        SWEEP_LINES,
        SWEEP_REGIONS,
        SWEEP_THRESHOLDS,
        choose_post_processing,
        sweep_post_processing,
    )

    rows = sweep_post_processing(
        args.data,
        args.cache / args.split,
        args.split,
        [args.threshold, *(value for value in SWEEP_THRESHOLDS if value != args.threshold)],
        list(SWEEP_REGIONS),
        list(SWEEP_LINES),
        log=lambda line: print(line, file=sys.stderr),
    )
    baseline = rows[0]  # without post-processing at the model's threshold
    chosen = choose_post_processing(rows, baseline["box_recall"])
    result = {
        "split": args.split,
        "rule": f"highest pixel precision with box recall >= {RECALL_RETENTION} x that without "
        f"post-processing at threshold {args.threshold}",
        "baseline": baseline,
        "chosen": chosen,
        "command": "python -m ml " + shlex.join(sys.argv[1:]),
        "rows": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n")
    print(json.dumps({"baseline": baseline, "chosen": chosen}, indent=1, default=float))
    return 0


def _noise_floor(args: argparse.Namespace) -> int:
    import json

    from ml.wrinkles.analysis import analyze_wrinkles
    from ml.wrinkles.boxes import read_photos
    from ml.wrinkles.evaluate import write_report
    from ml.wrinkles.models import WEIGHTS_FILE
    from ml.wrinkles.repeatability import markdown_report, measure_noise_floor, weights_sha256

    weights = args.checkpoint or WEIGHTS_FILE
    photos = [photo.image_path for photo in read_photos(args.data, args.split)][: args.limit]
    report = measure_noise_floor(
        photos,
        lambda image: analyze_wrinkles(image, weights=weights).data,
        seed=args.seed,
        log=lambda line: print(line, file=sys.stderr),
    )
    report = {
        **report,
        "model": str(weights.name),
        "weights_sha256": weights_sha256(weights),
        "data": str(args.data),
        "split": args.split,
    }
    command = "python -m ml " + shlex.join(sys.argv[1:])
    if args.out:
        write_report(report, args.out, command, render=markdown_report)
    print(json.dumps(report["floor"]["overall"]))
    return 0


def _train_types(args: argparse.Namespace) -> int:
    from ml.wrinkles.evaluate import write_report
    from ml.wrinkles.types import markdown_report, train_type_detector

    report = train_type_detector(
        args.data,
        args.out,
        args.work,
        epochs=args.epochs,
        hours=args.hours,
        image_size=args.imgsz,
        batch=args.batch,
        seed=args.seed,
    )
    if args.report:
        write_report(report, args.report, "python -m ml " + shlex.join(sys.argv[1:]), render=markdown_report)
    print(f"{args.out}: mAP50 {report['map50']:.3f} on {report['split']} ({report['photos']} photos)")
    return 0


def _evaluate_types(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.wrinkles.evaluate import write_report
    from ml.wrinkles.type_fitting import evaluate_geometry_types, geometry_markdown_report
    from ml.wrinkles.type_geometry import TypeRules
    from ml.wrinkles.types import evaluate_type_detector, markdown_report

    if (args.weights is None) == (args.geometry_rules is None):
        raise SystemExit("Give either --weights (YOLO) or --geometry-rules with --cache.")
    if args.geometry_rules is not None:
        if args.cache is None:
            raise SystemExit("--geometry-rules needs --cache (see cache-segmentations).")
        rules = TypeRules.read(args.geometry_rules)
        report = evaluate_geometry_types(rules, args.data, args.cache, args.split)
        markdown_report = geometry_markdown_report
    else:
        if args.work is None:
            raise SystemExit("--weights needs --work.")
        report = evaluate_type_detector(
            args.weights, args.data, args.work, split=args.split, image_size=args.imgsz
        )
    if args.out:
        write_report(report, args.out, "python -m ml " + shlex.join(sys.argv[1:]), render=markdown_report)
    if args.json:
        print_json(report)
    else:
        print(markdown_report(report, "python -m ml " + shlex.join(sys.argv[1:])))
    return 0


def _cache_segmentations(args: argparse.Namespace) -> int:
    from ml.wrinkles.segmentation_cache import build_cache

    done = build_cache(args.data, args.cache, tuple(args.splits), limit=args.limit)
    print(f"{done} photos segmented into {args.cache}")
    return 0


def _fit_geometry_types(args: argparse.Namespace) -> int:
    from ml.wrinkles.type_fitting import collect_candidates, fit_rules

    rules = fit_rules(collect_candidates(args.data, args.cache, "train"))
    rules.fitted_on["command"] = "python -m ml " + shlex.join(sys.argv[1:])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(rules.to_json() + "\n")
    print(f"rules fitted on train written to {args.out}")
    return 0


def _geometry_types_card(args: argparse.Namespace) -> int:
    from ml.wrinkles.type_fitting import write_geometry_card

    print(write_geometry_card(args.rules, args.report_val, args.report_test, args.version))
    return 0


def _ship_real(args: argparse.Namespace) -> int:
    import json

    import torch

    from ml.wrinkles.modelcard import at_threshold, write_real_photo_card
    from ml.wrinkles.train import save_checkpoint

    # Every report must have a row at the threshold before anything is written over the shipped weights.
    for report in json.loads(args.report_new.read_text())["reports"]:
        at_threshold(report, args.threshold)
    payload = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    metadata = {**payload["metadata"], "threshold": args.threshold}
    post_processing = _post_processing_file(args.post_processing)
    if post_processing is not None:
        metadata["post_processing"] = post_processing
    weights = args.out_dir / "unet_wds.pt"
    save_checkpoint(weights, payload["state_dict"], metadata)
    metrics = write_real_photo_card(
        weights,
        args.report_new,
        args.report_previous,
        args.out_dir / "MODEL_CARD.md",
        args.version,
        args.label_report,
        args.previous_name,
        args.ablation,
    )
    print(f"wrote {weights} and its card: {metrics}")
    return 0


def _card_real(args: argparse.Namespace) -> int:
    from ml.wrinkles.modelcard import write_real_photo_card

    metrics = write_real_photo_card(
        args.weights,
        args.report_new,
        args.report_previous,
        args.weights.parent / "MODEL_CARD.md",
        args.version,
        args.label_report,
        args.previous_name,
        args.ablation,
    )
    print(f"wrote the card of {args.weights}: {metrics}")
    return 0


def _segment(args: argparse.Namespace) -> int:
    import cv2

    from ml.cli import CommandError, print_json
    from ml.core.imageio import load_image
    from ml.core.subject import NoFaceError
    from ml.wrinkles.analysis import WrinkleModelUnavailableError, analyze_wrinkles

    image = load_image(args.image)
    try:
        analysis = analyze_wrinkles(image, weights=args.checkpoint)
    except (WrinkleModelUnavailableError, NoFaceError) as error:
        raise CommandError(str(error)) from error
    if args.out:
        cv2.imwrite(str(args.out), analysis.mask.astype("uint8") * 255)
    if args.json:
        print_json(analysis.data)
    else:
        for region, figures in analysis.data["regions"].items():
            print(f"{region}: " + ", ".join(f"{key} {value:.4g}" for key, value in figures.items()))
    return 0


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``wrinkles`` command group to the ``python -m ml`` parser."""
    from ml.wrinkles.labeling import THRESHOLD_METHODS
    from ml.wrinkles.losses import LOSS_VARIANTS

    wrinkles = subparsers.add_parser(
        "wrinkles", help="Wrinkle labeling, training, evaluation and segmentation."
    )
    actions = wrinkles.add_subparsers(dest="wrinkles_command", required=True, metavar="ACTION")

    synthesize = actions.add_parser(
        "synthesize", help="Render human wrinkle shapes onto faces (semi-synthetic)."
    )
    synthesize.add_argument(
        "--masks", type=Path, required=True, help="wrinkle-masks folder (masks/, crop_limits.csv)."
    )
    synthesize.add_argument(
        "--faces", type=Path, required=True, help="Folder of face photos (searched recursively)."
    )
    synthesize.add_argument(
        "--out", type=Path, required=True, help="Output folder (keep it outside the repository)."
    )
    synthesize.add_argument("--per-face", type=int, default=2, help="Wrinkle masks rendered per face.")
    synthesize.add_argument("--limit", type=int, default=None, help="At most this many faces.")
    synthesize.add_argument("--size", type=int, default=640, help="Side of the written forehead-eye crops.")
    synthesize.add_argument("--seed", type=int, default=0)
    synthesize.set_defaults(handler=_synthesize)

    label = actions.add_parser("label", help="Ground truth from a photo and a rough wrinkle mask.")
    label.add_argument("image", type=Path)
    label.add_argument("rough", type=Path, help="Rough mask (white = wrinkle region).")
    label.add_argument("--out", type=Path, required=True)
    label.add_argument("--method", choices=THRESHOLD_METHODS, default="bradley-roth")
    label.add_argument("--window", type=int, default=15, help="Bradley-Roth window (odd).")
    label.add_argument("--percent", type=float, default=15.0, help="Bradley-Roth percentage.")
    label.add_argument("--block", type=int, default=11, help="OpenCV block size (odd).")
    label.add_argument("--c", type=float, default=1.0, help="OpenCV constant C.")
    label.set_defaults(handler=_label)

    train = actions.add_parser("train", help="Train a U-Net variant on an image/mask folder.")
    train.add_argument("--data", type=Path, required=True)
    train.add_argument("--out", type=Path, required=True, help="Checkpoint path (.pt).")
    train.add_argument("--variant", choices=LOSS_VARIANTS, default="unet-wds")
    train.add_argument("--width", type=int, default=16, help="Base width of the U-Net.")
    train.add_argument("--size", type=int, default=256, help="Training resolution (multiple of 16).")
    train.add_argument("--epochs", type=int, default=20)
    train.add_argument("--folds", type=int, default=5)
    train.add_argument("--fold", type=int, default=0)
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--max-train-images", type=int, default=None)
    train.add_argument(
        "--patch", type=int, default=None, help="Train on random windows of this side (multiple of 16)."
    )
    train.add_argument("--lr", type=float, default=None, help="Initial Adam learning rate (default 0.01).")
    train.add_argument("--init", type=Path, default=None, help="Start from this checkpoint (fine-tuning).")
    train.add_argument(
        "--max-minutes", type=float, default=None, help="Time box: start no epoch after this many minutes."
    )
    train.set_defaults(handler=_train)

    box_labels = actions.add_parser(
        "box-labels",
        help="Real-photo training set: semi-automatic labels inside the human boxes (wrinkle-boxes).",
    )
    box_labels.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    box_labels.add_argument("--out", type=Path, required=True, help="Output folder (outside the repository).")
    box_labels.add_argument("--method", choices=THRESHOLD_METHODS, default="bradley-roth")
    box_labels.add_argument("--size", type=int, default=512, help="Side of the whole-face squares.")
    box_labels.add_argument("--limit", type=int, default=None, help="At most this many photos.")
    box_labels.set_defaults(handler=_box_labels)

    evaluate = actions.add_parser(
        "evaluate", help="Comparison table on the checkpoints' held-out test split (or their val split)."
    )
    evaluate.add_argument("--data", type=Path, required=True)
    evaluate.add_argument("--checkpoints", type=Path, nargs="+", required=True)
    evaluate.add_argument("--methods", default="unet,unet-ds,unet-wds,frangi,gabor")
    evaluate.add_argument(
        "--split",
        choices=("test", "val"),
        default="test",
        help="The checkpoints' held-out test names (default) or their validation names (epoch choice).",
    )
    evaluate.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    evaluate.add_argument("--json", action="store_true")
    evaluate.set_defaults(handler=_evaluate)

    crossval = actions.add_parser(
        "crossval", help="k-fold table from a folder of per-fold checkpoint folders (fold0/, fold1/, ...)."
    )
    crossval.add_argument("--data", type=Path, required=True)
    crossval.add_argument("--runs", type=Path, required=True, help="Folder of fold folders of checkpoints.")
    crossval.add_argument("--methods", default="unet,unet-ds,unet-wds,frangi,gabor")
    crossval.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    crossval.add_argument("--json", action="store_true")
    crossval.set_defaults(handler=_crossval)

    card = actions.add_parser("card", help="Model card of a checkpoint from an evaluate report (.json).")
    card.add_argument("--checkpoint", type=Path, required=True)
    card.add_argument("--report", type=Path, required=True, help="JSON written by `evaluate --out`.")
    card.add_argument("--out", type=Path, required=True, help="Model card (.md).")
    card.add_argument("--crossval", type=Path, default=None, help="JSON written by `crossval --out`.")
    card.set_defaults(handler=_card)

    boxes = actions.add_parser(
        "evaluate-boxes",
        help="Box recall and pixel precision on real photos with human wrinkle boxes (wrinkle-boxes format).",
    )
    boxes.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    boxes.add_argument(
        "--split",
        nargs="+",
        choices=("train", "val", "test", "all"),
        default=["test"],
        help="Photo-grouped split(s) (default: test, the source's validation photos).",
    )
    boxes.add_argument(
        "--checkpoint", type=Path, default=None, help="Another weights file than the shipped model's."
    )
    boxes.add_argument("--limit", type=int, default=None, help="At most this many photos a split.")
    boxes.add_argument(
        "--threshold", type=float, default=None, help="Probability threshold (default: the model's)."
    )
    boxes.add_argument(
        "--sweep", default=None, help="Comma-separated probability thresholds, evaluated in one pass."
    )
    boxes.add_argument(
        "--post-processing",
        type=Path,
        default=None,
        help="Post-processing settings JSON instead of the model's (sweep-post-processing output).",
    )
    boxes.add_argument(
        "--faces",
        choices=("subject", "all"),
        default="subject",
        help="subject: the subject's face only, as the product analyses a clinical photo (default); all: "
        "also every detected face (collages, group photos), reported beside the subject's figures.",
    )
    boxes.add_argument(
        "--landmarks-cache",
        type=Path,
        default=None,
        help="Folder (under var/) remembering each photo's landmarks, for evaluating several checkpoints.",
    )
    boxes.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    boxes.add_argument("--json", action="store_true")
    boxes.set_defaults(handler=_evaluate_boxes)

    cache = actions.add_parser(
        "cache-predictions", help="Store the model's probability maps of a wrinkle-boxes split (for sweeps)."
    )
    cache.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    cache.add_argument("--split", nargs="+", choices=("train", "val"), default=["val"], help="Never test.")
    cache.add_argument("--out", type=Path, required=True, help="Cache folder (one sub-folder a split).")
    cache.add_argument("--checkpoint", type=Path, default=None)
    cache.add_argument("--limit", type=int, default=None)
    cache.set_defaults(handler=_cache_predictions)

    false_positives = actions.add_parser(
        "false-positives", help="Where the false-positive pixels are, from cached predictions."
    )
    false_positives.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    false_positives.add_argument("--cache", type=Path, required=True, help="cache-predictions folder.")
    false_positives.add_argument("--split", nargs="+", choices=("train", "val"), default=["val"])
    false_positives.add_argument("--threshold", type=float, default=0.5)
    false_positives.add_argument(
        "--post-processing", type=Path, default=None, help="Settings JSON (sweep-post-processing output)."
    )
    false_positives.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    false_positives.add_argument("--json", action="store_true")
    false_positives.set_defaults(handler=_false_positives)

    sweep = actions.add_parser(
        "sweep-post-processing",
        help="Threshold × post-processing grid on cached predictions; chooses by the fixed rule.",
    )
    sweep.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    sweep.add_argument("--cache", type=Path, required=True, help="cache-predictions folder.")
    sweep.add_argument("--split", choices=("train", "val"), default="val", help="Never test.")
    sweep.add_argument("--threshold", type=float, default=0.5, help="The model's own threshold (baseline).")
    sweep.add_argument("--out", type=Path, required=True, help="Result JSON (all rows and the choice).")
    sweep.set_defaults(handler=_sweep_post_processing)

    noise = actions.add_parser(
        "noise-floor", help="Repeatability of every wrinkle figure under re-photography-like changes."
    )
    noise.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder (real photos).")
    noise.add_argument("--split", choices=("train", "val", "test"), default="test")
    noise.add_argument("--limit", type=int, default=40, help="At most this many photos.")
    noise.add_argument("--checkpoint", type=Path, default=None, help="Weights (default: the shipped ones).")
    noise.add_argument("--seed", type=int, default=0)
    noise.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    noise.set_defaults(handler=_noise_floor)

    train_types = actions.add_parser(
        "train-types", help="Train the YOLOv8n wrinkle-type detector (9 classes) on a wrinkle-boxes folder."
    )
    train_types.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    train_types.add_argument("--out", type=Path, required=True, help="Weights file (.pt) of the best epoch.")
    train_types.add_argument(
        "--work", type=Path, required=True, help="Working folder (split lists, Ultralytics run; resumable)."
    )
    train_types.add_argument("--epochs", type=int, default=100)
    train_types.add_argument(
        "--hours", type=float, default=None, help="Time box in hours (overrides epochs)."
    )
    train_types.add_argument("--imgsz", type=int, default=416)
    train_types.add_argument("--batch", type=int, default=16)
    train_types.add_argument("--seed", type=int, default=0)
    train_types.add_argument("--report", type=Path, default=None, help="mAP50 report (.md; .json beside it).")
    train_types.set_defaults(handler=_train_types)

    evaluate_types = actions.add_parser("evaluate-types", help="mAP50 per wrinkle type on one split.")
    evaluate_types.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    evaluate_types.add_argument("--weights", type=Path, default=None, help="A YOLO detector (.pt).")
    evaluate_types.add_argument(
        "--geometry-rules", type=Path, default=None, help="Landmark-geometry rules (.json) instead."
    )
    evaluate_types.add_argument(
        "--cache", type=Path, default=None, help="Segmentation cache (geometry rules; cache-segmentations)."
    )
    evaluate_types.add_argument("--work", type=Path, default=None, help="Folder for the split lists (YOLO).")
    evaluate_types.add_argument("--split", choices=("train", "val", "test"), default="val")
    evaluate_types.add_argument("--imgsz", type=int, default=416)
    evaluate_types.add_argument("--out", type=Path, default=None, help="Report path (.md; .json beside it).")
    evaluate_types.add_argument("--json", action="store_true")
    evaluate_types.set_defaults(handler=_evaluate_types)

    cache = actions.add_parser(
        "cache-segmentations",
        help="Segment the photos of a wrinkle-boxes folder once with the shipped model (for rule fitting).",
    )
    cache.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    cache.add_argument("--cache", type=Path, required=True, help="Cache folder (keep it under var/).")
    cache.add_argument("--splits", nargs="+", choices=("train", "val", "test"), default=["train", "val"])
    cache.add_argument("--limit", type=int, default=None, help="First N photos of each split.")
    cache.set_defaults(handler=_cache_segmentations)

    fit_geometry = actions.add_parser(
        "fit-geometry-types",
        help="Fit the landmark-geometry wrinkle-type rules (margins, box modes, thresholds) on train.",
    )
    fit_geometry.add_argument("--data", type=Path, required=True, help="A wrinkle-boxes folder.")
    fit_geometry.add_argument("--cache", type=Path, required=True, help="Segmentation cache.")
    fit_geometry.add_argument("--out", type=Path, required=True, help="Rules file (.json).")
    fit_geometry.set_defaults(handler=_fit_geometry_types)

    geometry_card = actions.add_parser(
        "geometry-types-card", help="Model card of the geometry type rules from their evaluate-types JSON."
    )
    geometry_card.add_argument("--rules", type=Path, required=True)
    geometry_card.add_argument("--report-val", type=Path, required=True)
    geometry_card.add_argument("--report-test", type=Path, default=None)
    geometry_card.add_argument("--version", required=True)
    geometry_card.set_defaults(handler=_geometry_types_card)

    ship = actions.add_parser(
        "ship-real", help="Install a real-photo checkpoint as the shipped model, with its threshold and card."
    )
    ship.add_argument("--checkpoint", type=Path, required=True)
    ship.add_argument("--threshold", type=float, required=True, help="Chosen on the val split.")
    ship.add_argument("--report-new", type=Path, required=True, help="evaluate-boxes JSON of the checkpoint.")
    ship.add_argument(
        "--report-previous", type=Path, required=True, help="evaluate-boxes JSON, previous model."
    )
    ship.add_argument("--out-dir", type=Path, required=True, help="Weights folder (ml/weights/wrinkles).")
    ship.add_argument("--version", required=True)
    ship.add_argument(
        "--post-processing",
        type=Path,
        default=None,
        help="Settings JSON chosen on val (sweep-post-processing).",
    )
    ship.add_argument("--previous-name", default=None, help="Name of the previous model in the card's table.")
    ship.add_argument(
        "--label-report", type=Path, default=None, help="evaluate JSON on the box-label folder (test JSI)."
    )
    ship.add_argument(
        "--ablation",
        type=Path,
        default=None,
        help="Loss-variant ablation JSON (scripts/wrinkles_ablation_real.py): the card's ablation section.",
    )
    ship.set_defaults(handler=_ship_real)

    card_real = actions.add_parser(
        "card-real",
        help="Rewrite the card of installed real-photo weights from evaluate-boxes reports (weights kept).",
    )
    card_real.add_argument("--weights", type=Path, required=True, help="Installed weights (unet_wds.pt).")
    card_real.add_argument("--version", required=True, help="The installed version (unchanged weights).")
    card_real.add_argument(
        "--report-new", type=Path, required=True, help="evaluate-boxes JSON, these weights."
    )
    card_real.add_argument(
        "--report-previous", type=Path, required=True, help="evaluate-boxes JSON, previous model."
    )
    card_real.add_argument("--previous-name", default=None)
    card_real.add_argument("--label-report", type=Path, default=None)
    card_real.add_argument(
        "--ablation",
        type=Path,
        default=None,
        help="Loss-variant ablation JSON (scripts/wrinkles_ablation_real.py): the card's ablation section.",
    )
    card_real.set_defaults(handler=_card_real)

    segment = actions.add_parser("segment", help="Segment wrinkles in the forehead-eye region of a photo.")
    segment.add_argument("image", type=Path)
    segment.add_argument("--out", type=Path, default=None, help="Mask PNG of the photo's size.")
    segment.add_argument(
        "--checkpoint", type=Path, default=None, help="Another weights file than the shipped model's."
    )
    segment.add_argument("--json", action="store_true")
    segment.set_defaults(handler=_segment)
