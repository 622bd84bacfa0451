"""``python -m ml landmarks detect IMAGE [--json] [--model NAME] [--view VIEW]``."""

from __future__ import annotations

import argparse

from ml.core.quality import VIEW_EXPECTED_YAW
from ml.model_names import DLIB_68


def _detect(args: argparse.Namespace) -> int:
    from ml.cli import print_json
    from ml.core.imageio import load_image
    from ml.core.quality import view_expected_yaw
    from ml.landmarks.analysis import analyze_landmarks

    image = load_image(args.image)
    result = analyze_landmarks(
        image, model=args.model, weights=args.weights, expected_yaw=view_expected_yaw(args.view)
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
    metrics = ship_weights(Path(args.root), destination, args.iteration, data_dir_or_none())
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


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``landmarks`` command group to the ``python -m ml`` parser."""
    landmarks = subparsers.add_parser("landmarks", help="Face landmarks, head pose and photo quality.")
    actions = landmarks.add_subparsers(dest="landmarks_command", required=True, metavar="ACTION")
    detect = actions.add_parser("detect", help="Detect faces, 68 landmarks, head pose and check quality.")
    detect.add_argument("image", help="Path of the photo (JPEG, PNG, TIFF, ...).")
    detect.add_argument("--json", action="store_true", help="Print the full result as JSON.")
    detect.add_argument("--model", default=DLIB_68, help="Registered landmark model name.")
    detect.add_argument("--weights", help="Another weights file of the model than the shipped one.")
    detect.add_argument(
        "--view",
        default="frontal",
        choices=sorted(VIEW_EXPECTED_YAW),
        help="Expected view of the photo; sets the expected yaw of the quality check.",
    )
    detect.set_defaults(handler=_detect)

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
    ship.set_defaults(handler=_campaign_ship)
