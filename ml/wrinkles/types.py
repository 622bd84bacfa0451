"""Wrinkle types: a YOLOv8 detector of the 9 clinical wrinkle classes of the ``wrinkle-boxes`` folder
(bunny lines, chin, crow's feet, forehead lines, frown lines, gummy smile, masseter, sad smile, smoker's
lines), built from Ultralytics' ``yolov8n.yaml`` (no pretrained weights: everything runs offline) and
trained on the fixed photo-grouped split of :mod:`ml.wrinkles.boxes` (``train``; ``val`` picks the
checkpoint and gives the mAP50 table; ``test`` is kept for later).

Ultralytics reads the photos in place: the split lists name ``images/NAME.jpg`` and it finds
``labels/NAME.txt`` beside them.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.wrinkles.boxes import SPLITS, read_classes, read_photos

MODEL_YAML = "yolov8n.yaml"
DEFAULT_IMAGE_SIZE = 416
DEFAULT_CONFIDENCE = 0.25


def write_data_yaml(data_dir: Path, out_dir: Path) -> Path:
    """``out_dir/data.yaml`` with ``train.txt``, ``val.txt`` and ``test.txt`` photo lists."""
    data_dir = Path(data_dir).resolve()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        paths = [str(photo.image_path.resolve()) for photo in read_photos(data_dir, split)]
        (out_dir / f"{split}.txt").write_text("\n".join(paths) + "\n")
    classes = read_classes(data_dir)
    lines = [
        f"path: {out_dir.resolve()}",
        "train: train.txt",
        "val: val.txt",
        "test: test.txt",
        "names:",
        *[f"  {index}: {name}" for index, name in sorted(classes.items())],
    ]
    path = out_dir / "data.yaml"
    path.write_text("\n".join(lines) + "\n")
    return path


def train_type_detector(
    data_dir: Path,
    out: Path,
    work_dir: Path,
    epochs: int = 100,
    hours: float | None = None,
    image_size: int = DEFAULT_IMAGE_SIZE,
    batch: int = 16,
    seed: int = 0,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train YOLOv8n from its yaml on the ``train`` split, keep the best ``val`` checkpoint as ``out``
    (Ultralytics stores it in fp16) and return its per-class mAP50 on ``val``. ``hours`` time-boxes
    the run (Ultralytics' ``time``; each epoch is checkpointed, so a stopped run can resume)."""
    from ultralytics import YOLO

    started = time.monotonic()
    data_yaml = write_data_yaml(data_dir, Path(work_dir) / "data")
    last = Path(work_dir) / "run" / "weights" / "last.pt"
    if last.is_file():
        model = YOLO(str(last), task="detect")
        model.train(resume=True, workers=0)
    else:
        model = YOLO(MODEL_YAML, task="detect")
        model.train(
            data=str(data_yaml),
            epochs=epochs,
            time=hours,
            imgsz=image_size,
            batch=batch,
            device="cpu",
            workers=0,
            seed=seed,
            pretrained=False,
            amp=False,
            plots=False,
            project=str(Path(work_dir).resolve()),
            name="run",
            exist_ok=True,
            verbose=False,
        )
    trainer = model.trainer
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    Path(out).parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(best, out)
    log(f"best checkpoint {best} copied to {out}")
    report = evaluate_type_detector(
        out, data_dir, Path(work_dir) / "data", split="val", image_size=image_size
    )
    report["training"] = {
        "epochs_run": int(trainer.epoch) + 1,
        "epochs_asked": epochs,
        "hours": hours,
        "image_size": image_size,
        "batch": batch,
        "seed": seed,
        "seconds": time.monotonic() - started,
    }
    return report


def evaluate_type_detector(
    weights: Path, data_dir: Path, work_dir: Path, split: str = "val", image_size: int = DEFAULT_IMAGE_SIZE
) -> dict[str, Any]:
    """mAP50 (and mAP50-95) per class and overall on one split."""
    from ultralytics import YOLO

    data_yaml = write_data_yaml(data_dir, work_dir)
    model = YOLO(str(weights), task="detect")
    metrics = model.val(
        data=str(data_yaml), split=split, imgsz=image_size, batch=8, device="cpu", workers=0, plots=False
    )
    classes = read_classes(data_dir)
    ap50 = dict(zip(metrics.box.ap_class_index.tolist(), metrics.box.ap50.tolist(), strict=True))
    ap = dict(zip(metrics.box.ap_class_index.tolist(), metrics.box.ap.tolist(), strict=True))
    counts = {index: 0 for index in classes}
    for photo in read_photos(data_dir, split):
        for line in photo.labels_path.read_text().splitlines() if photo.labels_path.is_file() else []:
            if line.split():
                counts[int(line.split()[0])] += 1
    return {
        "split": split,
        "photos": len(read_photos(data_dir, split)),
        "image_size": image_size,
        "map50": float(metrics.box.map50),
        "map50_95": float(metrics.box.map),
        "per_class": [
            {
                "class": name,
                "boxes": counts[index],
                "map50": ap50.get(index),
                "map50_95": ap.get(index),
            }
            for index, name in sorted(classes.items())
        ],
    }


IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)


def match_detections(
    predictions: list[tuple[int, float, list[float]]], truth: list[tuple[int, list[float]]]
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One photo's predictions ``(class, confidence, [x0, y0, x1, y1])`` matched to its human boxes
    ``(class, box)`` exactly as Ultralytics' validation does (its ``match_predictions``: greedy, best
    confidence first, at IoU 0.50, 0.55, …, 0.95): the ``(N, 10)`` true-positive matrix, confidences and
    classes, best first."""
    from types import SimpleNamespace

    import torch
    from ultralytics.engine.validator import BaseValidator
    from ultralytics.utils.metrics import box_iou

    ordered = sorted(predictions, key=lambda item: -item[1])
    confidence = np.array([item[1] for item in ordered], dtype=np.float64)
    classes = np.array([item[0] for item in ordered], dtype=np.float64)
    if not ordered or not truth:
        return np.zeros((len(ordered), len(IOU_THRESHOLDS)), dtype=bool), confidence, classes
    iou = box_iou(
        torch.tensor([box for _, box in truth], dtype=torch.float32),
        torch.tensor([item[2] for item in ordered], dtype=torch.float32),
    )
    matcher = SimpleNamespace(iouv=torch.tensor(IOU_THRESHOLDS, dtype=torch.float32))
    correct = BaseValidator.match_predictions(
        matcher,
        torch.tensor(classes),
        torch.tensor([label for label, _ in truth], dtype=torch.float64),
        iou,
    )
    return correct.numpy(), confidence, classes


def detection_metrics(
    photos: list[tuple[list[tuple[int, float, list[float]]], list[tuple[int, list[float]]]]],
    names: dict[int, str],
) -> dict[str, Any]:
    """mAP50 and mAP50-95, overall and per class, of detections on photos (each a ``(predictions,
    truth)`` pair, see :func:`match_detections`), computed by Ultralytics' ``DetMetrics`` as its
    validation computes them, so any detector is scored like the YOLO one."""
    from ultralytics.utils.metrics import DetMetrics

    metrics = DetMetrics(names=names)
    counts = dict.fromkeys(names, 0)
    for number, (predictions, truth) in enumerate(photos):
        correct, confidence, classes = match_detections(predictions, truth)
        target = np.array([label for label, _ in truth], dtype=np.float64)
        for label in target.astype(int).tolist():
            counts[label] += 1
        metrics.update_stats(
            {
                "tp": correct,
                "conf": confidence,
                "pred_cls": classes,
                "target_cls": target,
                "target_img": np.unique(target),
                "im_name": str(number),
            }
        )
    metrics.process()
    ap50 = dict(zip(metrics.box.ap_class_index.tolist(), metrics.box.ap50.tolist(), strict=True))
    ap = dict(zip(metrics.box.ap_class_index.tolist(), metrics.box.ap.tolist(), strict=True))
    return {
        "photos": len(photos),
        "map50": float(metrics.box.map50),
        "map50_95": float(metrics.box.map),
        "per_class": [
            {"class": name, "boxes": counts[index], "map50": ap50.get(index), "map50_95": ap.get(index)}
            for index, name in sorted(names.items())
        ],
    }


def best_f1_threshold(
    photos: list[tuple[list[tuple[int, float, list[float]]], list[tuple[int, list[float]]]]], label: int
) -> float:
    """The confidence from which the detections of class ``label`` give the best F1 at IoU 0.5 (the
    operating point Ultralytics reports precision and recall at); 1.0 when none is right."""
    hits, confidences, total = [], [], 0
    for predictions, truth in photos:
        correct, confidence, classes = match_detections(predictions, truth)
        mine = classes == label
        hits.append(correct[mine, 0])
        confidences.append(confidence[mine])
        total += sum(truth_label == label for truth_label, _ in truth)
    hit = np.concatenate(hits) if hits else np.zeros(0, dtype=bool)
    confidence = np.concatenate(confidences) if confidences else np.zeros(0)
    if not hit.any() or not total:
        return 1.0
    order = np.argsort(-confidence, kind="stable")
    true_positives = np.cumsum(hit[order])
    precision = true_positives / np.arange(1, len(order) + 1)
    recall = true_positives / total
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    return float(confidence[order][int(np.argmax(f1))])


def markdown_report(
    report: dict[str, Any], command: str, title: str = "Wrinkle-type detector (YOLOv8n)"
) -> str:
    """The per-class mAP50 table with the command that measured it."""
    lines = [
        f"# {title}: mAP50 per class",
        "",
        f"Split `{report['split']}`: {report['photos']} real photos with human wrinkle boxes, "
        f"{report['image_size']} px. mAP50 {report['map50']:.3f}, mAP50-95 {report['map50_95']:.3f}.",
        "",
        f"Command: `{command}`",
        "",
        "| class | boxes | mAP50 | mAP50-95 |",
        "|---|---|---|---|",
    ]
    for row in report["per_class"]:
        map50 = "–" if row["map50"] is None else f"{row['map50']:.3f}"
        map50_95 = "–" if row["map50_95"] is None else f"{row['map50_95']:.3f}"
        lines.append(f"| {row['class']} | {row['boxes']} | {map50} | {map50_95} |")
    if "training" in report:
        lines += ["", "Training: " + json.dumps(report["training"])]
    return "\n".join(lines) + "\n"


@dataclass(frozen=True)
class WrinkleTypeDetector:
    """A loaded detector and its class names."""

    model: Any
    names: dict[int, str]
    image_size: int = DEFAULT_IMAGE_SIZE

    def detect(
        self, image: np.ndarray, evidence: Any = None, confidence: float = DEFAULT_CONFIDENCE
    ) -> list[dict[str, Any]]:
        """Wrinkle types found in an RGB photo: ``{"class", "score", "box": [x0, y0, x1, y1]}`` in photo
        pixels, best first. ``evidence`` (the landmarks and wrinkle mask the geometry rules use) is not
        needed: the network sees the photo only."""
        result = self.model.predict(
            np.ascontiguousarray(image[..., ::-1]),  # Ultralytics takes BGR arrays
            imgsz=self.image_size,
            conf=confidence,
            device="cpu",
            verbose=False,
        )[0]
        boxes = result.boxes
        found = [
            {
                "class": self.names[int(label)],
                "score": float(score),
                "box": [float(value) for value in box],
            }
            for label, score, box in zip(
                boxes.cls.tolist(), boxes.conf.tolist(), boxes.xyxy.tolist(), strict=True
            )
        ]
        return sorted(found, key=lambda item: -item["score"])


def map_metrics(report: dict[str, Any]) -> dict[str, Any]:
    """A type detector card's metrics from an mAP evaluation of the val split (``detection_metrics``)."""
    return {
        "label": "real photographs with human wrinkle boxes (val split)",
        "map50": report["map50"],
        "map50_95": report["map50_95"],
        "map50_per_class": {row["class"]: row["map50"] for row in report["per_class"]},
    }


def load_type_detector(weights: Path, image_size: int = DEFAULT_IMAGE_SIZE) -> WrinkleTypeDetector:
    """The detector in ``weights`` (an Ultralytics checkpoint)."""
    from ultralytics import YOLO

    model = YOLO(str(weights), task="detect")
    return WrinkleTypeDetector(model, {int(key): value for key, value in model.names.items()}, image_size)


def write_type_card(weights: Path, report_path: Path, version: str) -> Path:
    """The registry card (JSON) and ``MODEL_CARD.md`` beside the detector's weights, from the mAP50 report
    (JSON of ``train-types --report`` or ``evaluate-types --out``)."""
    from ml.model_names import WRINKLE_TYPES_YOLO
    from ml.modelcard import ModelCard, card_path, write_card
    from ml.registry import file_sha256

    weights = Path(weights)
    report = json.loads(Path(report_path).read_text())
    digest = file_sha256(weights)
    training = report.get("training", {})
    weak = report["map50"] < 0.5
    (weights.parent / "MODEL_CARD.md").write_text(
        f"# Wrinkle-type detector card: YOLOv8n, 9 classes (version {version})\n\n"
        f"* Weights: `{weights.name}`, {weights.stat().st_size / 2**20:.2f} MiB, SHA-256 `{digest}`\n"
        "* Method: Ultralytics YOLOv8n built from `yolov8n.yaml`, no pretrained weights (offline).\n"
        f"* Training: {training.get('epochs_run', '?')} epochs in a time box of {training.get('hours')} h "
        f"on a shared CPU, {training.get('image_size', report['image_size'])} px; best val epoch kept.\n"
        f"* Command: `{report.get('command', 'not recorded')}`\n\n"
        + markdown_report(report, report.get("command", "not recorded")).split("\n", 2)[2]
        + (
            "\n**Weak**: trained from scratch for minutes on a CPU; its types are indicative only.\n"
            if weak
            else "\n"
        )
        + "\nLicence: AGPL-3.0 (Ultralytics); research use only (wrinkle-boxes photos of undocumented "
        "provenance).\n"
    )
    return write_card(
        card_path(weights),
        ModelCard(
            name=WRINKLE_TYPES_YOLO,
            task="wrinkle-type-detection",
            version=version,
            description="YOLOv8n (Ultralytics, from yolov8n.yaml, no pretrained weights) detecting 9 "
            "clinical wrinkle types: bunny lines, chin, crow's feet, forehead, frown lines, gummy smile, "
            "masseter, sad smile, smoker's lines.",
            data=f"wrinkle-boxes: real face photos with human boxes; fixed photo-grouped split, "
            f"{report['photos']} val photos measured.",
            command=report.get("command", "python -m ml wrinkles train-types ..."),
            licence="AGPL-3.0 (Ultralytics); research use only (wrinkle-boxes photos of undocumented "
            "provenance).",
            limitations=(
                f"Weak: mAP50 {report['map50']:.3f} on the val split; types are indicative only."
                if weak
                else f"mAP50 {report['map50']:.3f} on the val split."
            ),
            metrics=map_metrics(report),
            weights=weights.name,
            weights_sha256=digest,
            details={"image_size": report["image_size"], "markdown": "MODEL_CARD.md"},
        ),
    )
