"""``python -m ml landmarks detect IMAGE [--json] [--model NAME] [--view VIEW]``."""

from __future__ import annotations

import argparse

from ml.core.detection import DEFAULT_FACE_DETECTOR
from ml.core.landmarks import DEFAULT_LANDMARK_MODEL
from ml.core.quality import VIEW_EXPECTED_YAW
from ml.model_names import DLIB_68


def _detect(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.core.imageio import load_image
    from ml.core.quality import view_expected_yaw
    from ml.landmarks.analysis import analyze_landmarks

    image = load_image(args.image)
    result = analyze_landmarks(
        image,
        model=args.model,
        weights=args.weights,
        expected_yaw=view_expected_yaw(args.view),
        face_detector=args.detector,
    )
    if args.json:
        print_json(result)
        return 0
    print(
        f"{args.image}: {result['image']['width']}×{result['image']['height']}, "
        f"{len(result['faces'])} face(s), model {result['model']['name']} {result['model']['version']}"
    )
    for index, face in enumerate(result["faces"], start=1):
        pose = face["pose"]
        print(
            f"  face {index}: box {face['box']} score {face['score']:.2f} ({face['detector']}), "
            f"yaw {pose['yaw']:.1f}° pitch {pose['pitch']:.1f}° roll {pose['roll']:.1f}°"
        )
    quality = result["quality"]
    print("  quality: " + ("OK" if quality["ok"] else "not OK"))
    for reason in quality["reasons"]:
        print(f"    - {reason}")
    return 0


def _fit_mesh_geometry(args: argparse.Namespace) -> int:
    import json
    import shlex
    import sys

    from ml.config import data_dir
    from ml.core.pose import FACE_MODEL_FILE
    from ml.landmarks.mesh import (
        GEOMETRY_FILE,
        MAPPING_FILE,
        MAPPING_NEIGHBOURS,
        MAPPING_RIDGE,
        fit_face_geometry,
        fit_mesh_to_68,
        mediapipe_weights_dir,
        training_meshes,
    )

    def progress(done: int, total: int) -> None:
        if done % 100 == 0 or done == total:
            print(f"  {done}/{total} faces", flush=True)

    command = "python -m ml " + shlex.join(sys.argv[1:])
    meshes, truths, shapes = training_meshes(data_dir(), args.detector, progress=progress)
    mapping = fit_mesh_to_68(meshes, truths, MAPPING_NEIGHBOURS, MAPPING_RIDGE)
    mapping.source += f" of the landmarks300w train split ({args.detector} detections); {command}"
    geometry, model, details = fit_face_geometry(meshes, truths, shapes, mapping)
    geometry_document = {**geometry.as_dict(), "fit": details, "command": command}
    model_document = {
        "description": (
            "Generic 3-D face, iBUG-68 order, centimetres, frontal (x right, y down, z away from camera): "
            "the FaceMesh 468→68 mapping applied to the mean symmetric FaceMesh surface of the landmarks300w "
            f"train faces, depth scaled by {details['model_depth_scale']} (least reprojection error of the "
            "human labels)."
        ),
        "command": command,
        "points": [[round(float(value), 4) for value in row] for row in model],
    }
    folder = mediapipe_weights_dir()
    (folder / MAPPING_FILE).write_text(json.dumps(mapping.as_dict()) + "\n")
    (folder / GEOMETRY_FILE).write_text(json.dumps(geometry_document) + "\n")
    FACE_MODEL_FILE.write_text(json.dumps(model_document, indent=1) + "\n")
    print(json.dumps(details, indent=1))
    return 0


def _evaluate(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ml.cli import print_json
    from ml.landmarks.evaluation import evaluate, plot_ced

    def progress(done: int, total: int) -> None:
        if not args.json and (done % 50 == 0 or done == total):
            print(f"  {done}/{total} faces", flush=True)

    evaluation = evaluate(args.model, Path(args.data), args.split, args.detector, args.limit, progress)
    document = evaluation.as_dict()
    if args.plot:
        document["ced_plot"] = str(
            plot_ced([evaluation], Path(args.plot), f"{Path(args.data).name} ({evaluation.split})")
        )
    if args.json:
        print_json(document)
    else:
        print(
            json.dumps(
                {"model": args.model, "detector": evaluation.detector, **evaluation.summary()}, indent=1
            )
        )
    return 0


def _evaluate_pose(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ml.cli import print_json
    from ml.landmarks.pose_evaluation import evaluate_pose

    document = evaluate_pose(args.model, Path(args.data), args.detector, args.max_yaw)
    if args.json:
        print_json(document)
        return 0
    print(f"{document['model']} + {document['detector']}: {document['goal']}")
    print(
        f"  mean |yaw error| {document['mean_abs_yaw_error_le_45']}° "
        f"(relative to each session's 0° photo {document['mean_abs_yaw_error_le_45_relative_to_own_0']}°)"
    )
    for row in document["per_angle"]:
        print("  " + json.dumps(row))
    return 0


def _report(args: argparse.Namespace) -> int:
    import shlex
    import sys
    from pathlib import Path

    from ml.config import data_dir
    from ml.landmarks import reports
    from ml.registry import registry

    command = "python -m ml " + shlex.join(sys.argv[1:])
    out = Path(args.out)
    landmark_models = [name for name in registry.names("landmarks") if registry.spec(name).trained]
    if args.what == "landmarks":
        path = reports.landmarks_report(data_dir(), out, args.models or landmark_models, command, print)
    elif args.what == "pose":
        path = reports.pose_report(data_dir(), out, args.models or landmark_models, command, print)
    else:
        detectors = args.models or registry.names("face-detection")
        path = reports.detectors_report(data_dir(), out, detectors, command, print)
    print(path.read_text())
    return 0


def _campaign_config(args: argparse.Namespace):
    from ml.landmarks.campaign import CampaignConfig

    return CampaignConfig(
        name=args.name,
        root=args.root,
        iterations=args.iterations,
        epochs_first=args.epochs_first,
        epochs_next=args.epochs_next,
        imgsz=args.imgsz,
        batch=args.batch,
        fine_tune=not args.from_scratch,
        workers=args.workers,
        seed=args.seed,
        kpt_oks_sigma=args.kpt_oks_sigma,
        hours_first=args.hours_first,
        hours_next=args.hours_next,
        initial_weights=getattr(args, "initial_weights", None),
    )


def _print_progress(event: dict) -> None:
    if event.get("phase") == "train":
        print(
            f"  iter {event['iteration']} epoch {event['epoch']}/{event['epochs']} loss {event['loss']}",
            flush=True,
        )
    elif event.get("phase") == "start":
        print(
            f"iteration {event['iteration']}: start from {event['start']}, counts {event['counts']}",
            flush=True,
        )
    elif event.get("phase") == "val_nme":
        print(
            f"  iter {event['iteration']} epoch {event['epoch']}: validation NME "
            f"{event['nme_outer_eye_corners']} on {event['faces']} faces",
            flush=True,
        )
    elif event.get("phase") == "iteration_done":
        print(f"iteration {event['iteration']} done: {event['report']['metrics']}", flush=True)


def _campaign_mebeauty(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from ml.config import data_dir
    from ml.landmarks.campaign import mebeauty_originals, run_campaign, teacher_dataset

    config = _campaign_config(args)
    paths = mebeauty_originals(data_dir(), args.images, seed=args.seed)
    print(
        f"{len(paths)} MEBeauty originals; teacher {args.teacher} labels {args.labelled_fraction:.0%}",
        flush=True,
    )
    initial = teacher_dataset(
        paths,
        labelled_fraction=args.labelled_fraction,
        val_fraction=args.val_fraction,
        seed=args.seed,
        teacher=args.teacher,
        image_root=data_dir(),
    )
    command = "python -m ml " + shlex.join(sys.argv[1:])
    run_campaign(config, initial, progress=_print_progress, command=command)
    print((config.root / "report.md").read_text())
    return 0


def _campaign_human_300w(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from ml.config import data_dir
    from ml.landmarks.campaign import CROP_TRAIN_OVERRIDES, human_300w_dataset, run_campaign
    from ml.landmarks.yolo_pose import CROP_SIZE, MODEL_YAML

    config = _campaign_config(args)
    config.model_yaml = str(MODEL_YAML)
    config.imgsz = CROP_SIZE
    config.train_overrides = dict(CROP_TRAIN_OVERRIDES)
    config.nme_every = args.nme_every
    initial = None
    if not (args.resume and (config.root / "datasets").is_dir()):
        initial = human_300w_dataset(
            data_dir(), config.root / "crops", args.detector, with_pool=not args.no_pool, progress=print
        )
    command = "python -m ml " + shlex.join(sys.argv[1:])
    run_campaign(config, initial, progress=_print_progress, command=command, resume=args.resume)
    print((config.root / "report.md").read_text())
    return 0


def _campaign_run(args: argparse.Namespace) -> int:
    import shlex
    import sys

    from ml.landmarks.campaign import run_campaign
    from ml.landmarks.formats import from_coco

    config = _campaign_config(args)
    run_campaign(
        config,
        from_coco(args.coco),
        progress=_print_progress,
        command="python -m ml " + shlex.join(sys.argv[1:]),
    )
    print((config.root / "report.md").read_text())
    return 0


def _campaign_report(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ml.landmarks.campaign import campaign_markdown

    print(campaign_markdown(json.loads((Path(args.root) / "report.json").read_text())))
    return 0


def _campaign_ship(args: argparse.Namespace) -> int:
    import json
    from pathlib import Path

    from ml.config import data_dir_or_none
    from ml.landmarks.campaign import ship_weights
    from ml.landmarks.yolo_pose import yolo_pose68_dir

    destination = Path(args.destination) if args.destination else yolo_pose68_dir()
    metrics = ship_weights(Path(args.root), destination, args.iteration, data_dir_or_none(), args.second_pass)
    print(json.dumps(metrics, indent=2))
    return 0


def _add_campaign_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--name", required=True, help="Campaign name; runs go to ROOT/runs/iter-<k>.")
    parser.add_argument("--root", required=True, help="New folder for versions, exports, runs and reports.")
    parser.add_argument("--iterations", type=int, default=3)
    parser.add_argument("--epochs-first", type=int, default=30, help="Epochs of iteration 0.")
    parser.add_argument("--epochs-next", type=int, default=10, help="Epochs of later iterations.")
    parser.add_argument("--imgsz", type=int, default=256)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--from-scratch", action="store_true", help="Do not fine-tune from the previous best."
    )
    parser.add_argument(
        "--kpt-oks-sigma",
        type=float,
        default=0.05,
        help="One OKS sigma for all 68 points, in the pose loss and pose AP (Ultralytics: 1/68).",
    )
    parser.add_argument(
        "--hours-first", type=float, help="Time box of iteration 0 in hours (replaces its epoch count)."
    )
    parser.add_argument("--hours-next", type=float, help="Time box of each later iteration in hours.")


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``landmarks`` command group to the ``python -m ml`` parser."""
    landmarks = subparsers.add_parser("landmarks", help="Face landmarks, head pose and photo quality.")
    actions = landmarks.add_subparsers(dest="landmarks_command", required=True, metavar="ACTION")
    detect = actions.add_parser("detect", help="Detect faces, 68 landmarks, head pose and check quality.")
    detect.add_argument("image", help="Path of the photo (JPEG, PNG, TIFF, ...).")
    detect.add_argument("--json", action="store_true", help="Print the full result as JSON.")
    detect.add_argument("--model", default=DEFAULT_LANDMARK_MODEL, help="Registered landmark model name.")
    detect.add_argument("--weights", help="Another weights file of the model than the shipped one.")
    detect.add_argument(
        "--detector", help=f"Registered face detector (default: the model's, {DEFAULT_FACE_DETECTOR})."
    )
    detect.add_argument(
        "--view",
        default="frontal",
        choices=sorted(VIEW_EXPECTED_YAW),
        help="Expected view of the photo; sets the expected yaw of the quality check.",
    )
    detect.set_defaults(handler=_detect)

    evaluate = actions.add_parser(
        "evaluate", help="NME, failure rate, misses and speed of a landmark model on human labels."
    )
    evaluate.add_argument(
        "--data", required=True, help="Folder with images/ + landmarks.json, or the London set."
    )
    evaluate.add_argument(
        "--split", choices=["train", "val", "test", "all"], help="Fixed landmarks300w split."
    )
    evaluate.add_argument("--model", default=DEFAULT_LANDMARK_MODEL, help="Registered landmark model name.")
    evaluate.add_argument("--detector", help="Registered face detector (default: the model's).")
    evaluate.add_argument("--limit", type=int, help="Only the first N faces (quick checks).")
    evaluate.add_argument("--plot", help="Write the cumulative error distribution to this PNG.")
    evaluate.add_argument("--json", action="store_true", help="Print the full result (every face) as JSON.")
    evaluate.set_defaults(handler=_evaluate)

    pose = actions.add_parser("evaluate-pose", help="Yaw error per angle on FASSEG multipose photos.")
    pose.add_argument("--data", required=True, help="FASSEG multipose folder (holds <yaw>__….jpg).")
    pose.add_argument("--model", default=DEFAULT_LANDMARK_MODEL, help="Registered landmark model name.")
    pose.add_argument("--detector", help="Registered face detector (default: the model's).")
    pose.add_argument("--max-yaw", type=float, default=90.0, help="Leave out photos turned further.")
    pose.add_argument("--json", action="store_true", help="Print the full result (every photo) as JSON.")
    pose.set_defaults(handler=_evaluate_pose)

    report = actions.add_parser(
        "report", help="Write an evaluation report (landmarks, pose or detectors) for every model."
    )
    report.add_argument("what", choices=["landmarks", "pose", "detectors"])
    report.add_argument("--out", default="docs/reports", help="Folder of the Markdown and JSON reports.")
    report.add_argument("--models", nargs="*", help="Only these registered models (default: all trained).")
    report.set_defaults(handler=_report)

    geometry = actions.add_parser(
        "fit-mesh-geometry",
        help="Fit the FaceMesh 468→68 mapping, mesh reference and 3-D face model on landmarks300w train.",
    )
    geometry.add_argument(
        "--detector", default=DEFAULT_FACE_DETECTOR, help="Registered face detector for the meshes."
    )
    geometry.set_defaults(handler=_fit_mesh_geometry)

    campaign = actions.add_parser("campaign", help="Iterative YOLOv8-pose auto-labelling campaigns.")
    steps = campaign.add_subparsers(dest="campaign_command", required=True, metavar="STEP")
    mebeauty = steps.add_parser(
        "mebeauty", help="Campaign on MEBeauty originals with teacher labels as iteration 0."
    )
    _add_campaign_options(mebeauty)
    mebeauty.add_argument("--images", type=int, default=400, help="How many MEBeauty originals to use.")
    mebeauty.add_argument(
        "--labelled-fraction", type=float, default=0.2, help="Share labelled by the teacher."
    )
    mebeauty.add_argument(
        "--val-fraction", type=float, default=0.3, help="Share of teacher-labelled images in val."
    )
    mebeauty.add_argument("--teacher", default=DLIB_68, help="Registered landmark model used as teacher.")
    mebeauty.set_defaults(handler=_campaign_mebeauty)
    human = steps.add_parser(
        "human-300w",
        help="Campaign on face crops from the human landmarks300w labels (the shipped yolo-pose68).",
    )
    _add_campaign_options(human)
    human.add_argument(
        "--detector", default=DEFAULT_FACE_DETECTOR, help="Registered face detector that makes the crops."
    )
    human.add_argument("--no-pool", action="store_true", help="No unlabelled photos (no pseudo-labels).")
    human.add_argument(
        "--initial-weights",
        help="Start iteration 0 from the layers of matching shape of these weights (e.g. an earlier model).",
    )
    human.add_argument("--resume", action="store_true", help="Continue the campaign in ROOT.")
    human.add_argument(
        "--nme-every", type=int, default=10, help="Print the validation NME every N epochs (0: never)."
    )
    human.set_defaults(handler=_campaign_human_300w)
    run = steps.add_parser("run", help="Campaign from a COCO-keypoints file (with facet_split per image).")
    _add_campaign_options(run)
    run.add_argument("--coco", required=True, help="COCO keypoints JSON of iteration 0.")
    run.set_defaults(handler=_campaign_run)
    report = steps.add_parser("report", help="Print the Markdown report of a campaign folder.")
    report.add_argument("root", help="Campaign folder (holds report.json).")
    report.set_defaults(handler=_campaign_report)
    ship = steps.add_parser("ship", help="Install a campaign's weights as the yolo-pose68 model.")
    ship.add_argument("root", help="Campaign folder (holds report.json).")
    ship.add_argument("--iteration", type=int, help="Iteration to ship (default: lowest validation NME).")
    ship.add_argument("--destination", help="Weights folder (default: ml/weights/yolo-pose68).")
    ship.add_argument(
        "--second-pass",
        action="store_true",
        help="Allow run-time settings that run the network twice (refined crop, mirrored crop).",
    )
    ship.set_defaults(handler=_campaign_ship)
