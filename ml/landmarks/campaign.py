"""Iterative auto-labelling campaigns for 68-point face landmarks with YOLOv8-pose.

Implements the iterative refinement strategy of Chen, "Iterative refinement strategy for automated
data labeling: facial landmark diagnosis in medical imaging" (2024): train YOLOv8n-pose, predict on the
training images with confidence ≥ 0.7, add every predicted face whose box IoU with each existing label is
≤ 0.3 while keeping all original labels, retrain, repeat. Two flaws of the authors' code are avoided:

* pseudo-labels never enter the validation split — the split is fixed by image at iteration 0 and
  validation images are never predicted into, so validation figures are not self-graded;
* runs are ``<campaign>/iter-<k>`` with explicit ``project``/``name`` and ``exist_ok``, never the
  auto-numbered ``train2``, ``train3`` … folders that make "the previous best" ambiguous.

Every iteration writes an immutable dataset version (:mod:`ml.landmarks.keypoint_datasets`) and a report
row: label counts, box/pose precision, recall, AP50, AP50-95 and keypoint MSE / NME on the validation split.
"""

from __future__ import annotations

import csv
import json
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ml.core.detection import DEFAULT_FACE_DETECTOR
from ml.core.metrics import box_iou, normalized_mean_error
from ml.landmarks.formats import (
    ImageRecord,
    Instance,
    KeypointDataset,
    Provenance,
    export_yolo_pose,
    finite_or_none,
    image_size,
)
from ml.landmarks.keypoint_datasets import DatasetStore
from ml.model_names import DLIB_68, YOLO_POSE68
from ml.progress import Cancelled

MERGE_MAX_IOU = 0.3
IOU_TOLERANCE = 1e-9  # a geometric IoU of exactly 0.3 may compute as 0.30000000000000004
PSEUDO_LABEL_MIN_CONFIDENCE = 0.7
MODEL_NAME = YOLO_POSE68
ACCEPTANCE_MAX_NME = 0.08
# Goals of the human-label model (issue 11): on the held-out human test split of landmarks300w.
GOAL_MEAN_NME = 0.035
GOAL_MS_PER_FACE = 20.0

# Key of the epochs a time-boxed training actually ran, beside Ultralytics' final metrics.
EPOCHS_RUN = "facet/epochs_run"

ProgressCallback = Callable[[dict[str, Any]], None]
CancelCheck = Callable[[], bool]


class SplitViolationError(ValueError):
    """Pseudo-labels were offered for a validation image."""


# ------------------------------------------------------------------------------------------ merge rule


def merge_instances(
    existing: Sequence[Instance],
    predicted: Sequence[Instance],
    max_iou: float = MERGE_MAX_IOU,
    min_confidence: float = PSEUDO_LABEL_MIN_CONFIDENCE,
) -> list[Instance]:
    """The merge rule of Chen (2024): originals kept, predictions added only where nothing is labelled.

    Every instance of ``existing`` is kept, even where originals overlap each other. A prediction is added
    when its confidence is ≥ ``min_confidence`` and its box IoU with *every* label kept so far — the
    originals and the predictions already added, taken in order of decreasing confidence — is
    ≤ ``max_iou`` (exactly ``max_iou`` is added).
    """
    kept = list(existing)
    candidates = sorted(
        (instance for instance in predicted if (instance.provenance.confidence or 0.0) >= min_confidence),
        key=lambda instance: -(instance.provenance.confidence or 0.0),
    )
    for candidate in candidates:
        if all(box_iou(candidate.box, label.box) <= max_iou + IOU_TOLERANCE for label in kept):
            kept.append(candidate)
    return kept


def merge_predictions(
    dataset: KeypointDataset,
    predictions: dict[str, Sequence[Instance]],
    max_iou: float = MERGE_MAX_IOU,
    min_confidence: float = PSEUDO_LABEL_MIN_CONFIDENCE,
) -> tuple[KeypointDataset, int]:
    """The next dataset: each training image's predictions merged by :func:`merge_instances`.

    ``predictions`` maps image path → predicted instances. Predictions for a validation image raise
    :class:`SplitViolationError` — validation labels must stay independent of the model being validated.
    Returns the new dataset and the number of instances added.
    """
    by_path = {record.path: record for record in dataset.images}
    unknown = sorted(set(predictions) - set(by_path))
    if unknown:
        raise ValueError(f"Predictions for images not in the dataset: {', '.join(unknown[:5])}.")
    in_validation = sorted(path for path in predictions if by_path[path].split == "val" and predictions[path])
    if in_validation:
        raise SplitViolationError(
            f"Pseudo-labels offered for {len(in_validation)} validation image(s) (e.g. {in_validation[0]}); "
            "the validation split is fixed at iteration 0 and never predicted into."
        )
    added = 0
    records = []
    for record in dataset.images:
        offered = predictions.get(record.path, ())
        if record.split == "train" and offered:
            merged = merge_instances(record.instances, offered, max_iou, min_confidence)
            added += len(merged) - len(record.instances)
            record = record.with_instances(merged)
        records.append(record)
    return KeypointDataset(tuple(records), dataset.image_root), added


def images_to_predict(dataset: KeypointDataset) -> list[ImageRecord]:
    """The images a campaign predicts into: the training split only, never validation."""
    return dataset.split("train")


def assign_split(paths: Sequence[str], val_fraction: float, seed: int) -> dict[str, str]:
    """Fixed, seeded split by image: ``path → "train" | "val"``; at least one image in each split."""
    if not 0.0 < val_fraction < 1.0:
        raise ValueError(f"val_fraction must lie strictly between 0 and 1, got {val_fraction}.")
    if len(paths) < 2:
        raise ValueError("A split needs at least two images.")
    order = sorted(paths)
    random.Random(seed).shuffle(order)
    n_val = min(len(order) - 1, max(1, round(val_fraction * len(order))))
    validation = set(order[:n_val])
    return {path: "val" if path in validation else "train" for path in paths}


# ------------------------------------------------------------------------------------ teacher labels


def teacher_dataset(
    image_paths: Sequence[str | Path],
    labelled_fraction: float,
    val_fraction: float,
    seed: int = 0,
    teacher: str = DLIB_68,
    image_root: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> KeypointDataset:
    """Iteration 0 from a teacher model: ``labelled_fraction`` of the images get its labels.

    The validation split is drawn from the teacher-labelled images only (validation needs labels) and
    is fixed here for the whole campaign. Unlabelled images join the training split as the pool the
    campaign predicts into. Images in which the teacher finds no face are left out of the dataset.
    """
    from ml.core.imageio import load_image
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.registry import registry

    if not 0.0 < labelled_fraction <= 1.0:
        raise ValueError(f"labelled_fraction must lie in (0, 1], got {labelled_fraction}.")
    paths = [str(path) for path in image_paths]
    shuffled = sorted(paths)
    random.Random(seed).shuffle(shuffled)
    n_labelled = max(2, round(labelled_fraction * len(shuffled)))
    to_label, pool = shuffled[:n_labelled], shuffled[n_labelled:]
    version = registry.spec(teacher).version
    detector = registry.load(teacher)
    root = Path(image_root) if image_root is not None else None

    def stored(path: str) -> str:
        return str(Path(path).relative_to(root)) if root is not None else path

    labelled: dict[str, tuple[ImageRecord, ...]] = {}
    for index, path in enumerate(to_label):
        image = load_image(path)
        faces = detect_faces_with_landmarks(image, detector=detector)
        if faces:
            labelled[path] = tuple(
                Instance(
                    box=face.box,
                    keypoints=face.landmarks,
                    provenance=Provenance.model(teacher, version, None),
                )
                for face in faces
            )
        if progress is not None:
            progress({"phase": "teacher", "done": index + 1, "total": len(to_label)})
    split = assign_split(sorted(labelled), val_fraction, seed)
    records = []
    for path in shuffled:
        if path in labelled:
            width, height = image_size(path)
            records.append(ImageRecord(stored(path), width, height, split[path], labelled[path]))
        elif path in pool:
            width, height = image_size(path)
            records.append(ImageRecord(stored(path), width, height, "train", ()))
    return KeypointDataset(tuple(records), str(root) if root is not None else None)


# Augmentation of crop campaigns: the crops are already eye-aligned and scaled by the detector, so only
# the detector's residual error is simulated (rotation, shift, scale), plus mirror images (68-point
# flip_idx) and Ultralytics' default colour jitter; no mosaic (one face per crop is the task).
CROP_TRAIN_OVERRIDES: dict[str, Any] = {
    "mosaic": 0.0,
    "close_mosaic": 0,
    "warmup_epochs": 1.0,
    "degrees": 10.0,
    "translate": 0.06,
    "scale": 0.15,
    "fliplr": 0.5,
}


def human_300w_dataset(
    data_root: Path,
    folder: Path,
    face_detector: str = DEFAULT_FACE_DETECTOR,
    with_pool: bool = True,
    progress: ProgressCallback | None = None,
) -> KeypointDataset:
    """Iteration 0 of the human-label campaign: landmarks300w crops and the unlabelled pool.

    The fixed ``train`` split of landmarks300w (:func:`ml.landmarks.human_sets.landmarks300w_split`) is
    the training labels, its ``val`` split the validation labels (human only, never predicted into); the
    ``test`` split is not in the dataset at all. With ``with_pool``, every confident face of the MEBeauty
    originals, London smiling and FASSEG photos joins the training split unlabelled, for pseudo-labels.
    """
    from ml.landmarks.crop_dataset import crop_dataset, human_crops, pool_crops, pseudo_label_photos
    from ml.landmarks.human_sets import landmarks300w_split, read_landmark_folder
    from ml.registry import registry

    detector = registry.load(face_detector)
    faces = read_landmark_folder(data_root / "landmarks300w")
    split = landmarks300w_split([face.name for face in faces])

    def report(phase: str) -> Callable[[int, int], None]:
        def callback(done: int, total: int) -> None:
            if progress is not None and (done == total or done % 100 == 0):
                progress({"phase": phase, "done": done, "total": total})

        return callback

    train = human_crops(
        [f for f in faces if split[f.name] == "train"],
        "train",
        folder,
        detector,
        progress=report("crops-train"),
    )
    val = human_crops(
        [f for f in faces if split[f.name] == "val"], "val", folder, detector, progress=report("crops-val")
    )
    pool = (
        pool_crops(
            pseudo_label_photos(data_root),
            folder,
            detector,
            detector.confident_score,
            progress=report("crops-pool"),
        )
        if with_pool
        else []
    )
    return crop_dataset(train, val, pool)


def mebeauty_originals(data_root: Path, limit: int, seed: int = 0) -> list[Path]:
    """``limit`` MEBeauty source photos (``images.csv`` column ``original``), seeded random choice."""
    table = data_root / "mebeauty" / "images.csv"
    if not table.is_file():
        raise FileNotFoundError(f"{table} is absent; set FACET_DATA_DIR to the research data directory.")
    with table.open(newline="") as handle:
        originals = sorted({row["original"] for row in csv.DictReader(handle) if row.get("original")})
    existing = [data_root / "mebeauty" / name for name in originals]
    existing = [path for path in existing if path.is_file()]
    random.Random(seed).shuffle(existing)
    return existing[:limit]


# ------------------------------------------------------------------------------------ train / predict


@dataclass
class CampaignConfig:
    """Settings of a campaign; ``root`` holds dataset versions, exports, runs and reports."""

    name: str
    root: Path
    iterations: int = 3
    epochs_first: int = 30
    epochs_next: int = 10
    imgsz: int = 256
    batch: int = 16
    model_yaml: str = "yolov8n-pose.yaml"
    fine_tune: bool = True
    device: str = "cpu"
    workers: int = 2
    seed: int = 0
    min_confidence: float = PSEUDO_LABEL_MIN_CONFIDENCE
    max_iou: float = MERGE_MAX_IOU
    validate_every_epoch: bool = False
    # Every this many epochs, the NME of the EMA weights on the validation split (crop campaigns: each
    # validation image is one crop whose first instance is the face); 0 turns it off.
    nme_every: int = 0
    # Ultralytics' default OKS σ for a non-COCO skeleton is 1/68 ≈ 0.015 of the face size: its keypoint
    # loss 1 - exp(-d²/(8σ²·area)) saturates once points are more than ~10 % of the face off, so a
    # model trained from scratch gets almost no keypoint gradient. A wider σ keeps the gradient alive.
    kpt_oks_sigma: float | None = 0.05
    train_overrides: dict[str, Any] = field(default_factory=lambda: {"mosaic": 0.0, "warmup_epochs": 1.0})
    # Time boxes (hours) of iteration 0 and of later iterations: Ultralytics re-plans the epochs (and the
    # learning-rate schedule) after the first epoch so that training ends, cleanly, within the box.
    hours_first: float | None = None
    hours_next: float | None = None
    # Weights whose layers of matching shape start iteration 0 (the backbone of an earlier yolo-pose68);
    # the labels stay the campaign's own.
    initial_weights: str | None = None

    def __post_init__(self) -> None:
        self.root = Path(self.root).resolve()
        if self.iterations < 1:
            raise ValueError("A campaign needs at least one iteration.")
        if not self.name or "/" in self.name:
            raise ValueError(f"Campaign names are non-empty and contain no '/', got '{self.name}'.")

    def run_name(self, iteration: int) -> str:
        return f"iter-{iteration}"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["root"] = str(self.root)
        return data


def _stop_hook(progress: ProgressCallback | None, cancel: CancelCheck | None, iteration: int) -> Callable:
    def on_train_epoch_end(trainer: Any) -> None:
        if progress is not None:
            loss = getattr(trainer, "tloss", None)
            progress(
                {
                    "phase": "train",
                    "iteration": iteration,
                    "epoch": int(trainer.epoch) + 1,
                    "epochs": int(trainer.epochs),
                    "loss": {str(key): round(float(value), 4) for key, value in loss.items()}
                    if isinstance(loss, dict)
                    else None,
                }
            )
        if cancel is not None and cancel():
            raise Cancelled(f"Campaign cancelled during iteration {iteration}, epoch {trainer.epoch + 1}.")

    return on_train_epoch_end


def _training_finished(checkpoint: Path) -> bool:
    """Whether an Ultralytics ``last.pt`` is final: the trainer strips the optimizer and sets epoch −1 at
    the end; during training (``best.pt`` included) the checkpoint keeps both."""
    import torch

    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    return state.get("epoch", -1) == -1 and state.get("optimizer") is None


def _add_callbacks(
    model: Any,
    config: CampaignConfig,
    progress: ProgressCallback | None,
    cancel: CancelCheck | None,
    iteration: int,
    validation: KeypointDataset | None,
) -> None:
    model.add_callback("on_train_epoch_end", _stop_hook(progress, cancel, iteration))
    if config.nme_every > 0 and validation is not None:
        model.add_callback(
            "on_fit_epoch_end", _crop_nme_hook(validation, config.nme_every, progress, iteration)
        )


def _crop_nme_hook(
    validation: KeypointDataset, every: int, progress: ProgressCallback | None, iteration: int
) -> Callable:
    """Callback: mean NME of the EMA weights on the validation crops every ``every`` epochs."""
    from ml.core.imageio import load_image

    crops = [
        (load_image(validation.resolve(record)), record.instances[0].keypoints)
        for record in validation.images
    ]

    def on_fit_epoch_end(trainer: Any) -> None:
        import torch

        from ml.landmarks.yolo_pose import decode_best_face

        epoch = int(trainer.epoch) + 1
        if (
            progress is None
            or not crops
            or epoch > trainer.epochs
            or (epoch % every and epoch != trainer.epochs)
        ):
            return
        model = trainer.ema.ema if getattr(trainer, "ema", None) is not None else trainer.model
        nmes = []
        with torch.no_grad():
            for crop, truth in crops:
                tensor = torch.from_numpy(crop).permute(2, 0, 1)[None].float() / 255.0
                decoded = decode_best_face(model(tensor.to(next(model.parameters()).dtype)), crop.shape[0])
                if decoded is not None:
                    nmes.append(normalized_mean_error(decoded[0], truth))
        progress(
            {
                "phase": "val_nme",
                "iteration": iteration,
                "epoch": epoch,
                "nme_outer_eye_corners": round(float(np.mean(nmes)), 5) if nmes else None,
                "faces": len(nmes),
            }
        )

    return on_fit_epoch_end


def train_iteration(
    config: CampaignConfig,
    data_yaml: Path,
    iteration: int,
    start_weights: str,
    epochs: int,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    validation: KeypointDataset | None = None,
) -> tuple[Path, dict[str, float]]:
    """Train one iteration into ``<root>/runs/iter-<k>``; returns best weights and final val metrics."""
    from ultralytics import YOLO

    last = config.runs_dir / config.run_name(iteration) / "weights" / "last.pt"
    if last.is_file() and _training_finished(last):
        best = last.parent / "best.pt"  # trained before an interruption; its report row was not written
        return (best if best.is_file() else last), {}
    if last.is_file():
        # An interrupted iteration: Ultralytics continues from its last epoch (optimizer state included).
        model = YOLO(str(last), task="pose")
        _add_callbacks(model, config, progress, cancel, iteration, validation)
        model.train(resume=True, workers=config.workers)
        trainer = model.trainer
        best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
        return best, {str(key): float(value) for key, value in (trainer.metrics or {}).items()}
    model = YOLO(start_weights, task="pose")
    _add_callbacks(model, config, progress, cancel, iteration, validation)
    hours = config.hours_first if iteration == 0 else config.hours_next
    from_yaml = start_weights == config.model_yaml
    model.train(
        data=str(data_yaml),
        epochs=epochs,
        imgsz=config.imgsz,
        batch=config.batch,
        device=config.device,
        workers=config.workers,
        seed=config.seed,
        project=str(config.runs_dir),
        name=config.run_name(iteration),
        exist_ok=True,
        plots=False,
        # Ultralytics accumulates gradients up to a nominal batch of 64 images; on a campaign's small
        # iteration-0 set that is one optimizer step per epoch, so step after every batch instead.
        nbs=config.batch,
        val=config.validate_every_epoch,
        verbose=False,
        **({"time": hours} if hours else {}),
        **({"pretrained": config.initial_weights} if from_yaml and config.initial_weights else {}),
        **config.train_overrides,
    )
    trainer = model.trainer
    best = Path(trainer.best if Path(trainer.best).is_file() else trainer.last)
    metrics = {str(key): float(value) for key, value in (trainer.metrics or {}).items()}
    if hours and hasattr(trainer, "epoch"):  # a time box re-plans the epochs: record those that ran
        metrics[EPOCHS_RUN] = float(trainer.epoch + 1)
    return best, metrics


def predict_instances(
    model: Any,
    image_paths: Sequence[Path],
    version: str,
    imgsz: int,
    conf: float,
    device: str = "cpu",
) -> list[list[Instance]]:
    """YOLO-pose predictions per image as instances with ``yolo-pose68@version`` provenance."""
    found: list[list[Instance]] = []
    for path in image_paths:
        result = model.predict(source=str(path), imgsz=imgsz, conf=conf, device=device, verbose=False)[0]
        instances = []
        if result.boxes is not None and len(result.boxes) and result.keypoints is not None:
            boxes = result.boxes.xyxy.cpu().numpy()
            scores = result.boxes.conf.cpu().numpy()
            points = result.keypoints.xy.cpu().numpy()
            for box, score, keypoints in zip(boxes, scores, points, strict=True):
                if box[2] <= box[0] or box[3] <= box[1]:
                    continue
                instances.append(
                    Instance(
                        box=tuple(float(value) for value in box),
                        keypoints=keypoints,
                        provenance=Provenance.model(MODEL_NAME, version, float(score)),
                    )
                )
        found.append(instances)
    return found


def keypoint_errors(
    truth: KeypointDataset, predictions: Sequence[Sequence[Instance]], min_iou: float = 0.5
) -> dict[str, Any]:
    """Keypoint MSE (px²), mean error (px) and NME (outer eye corners) of matched validation faces.

    Each labelled face is matched to the unused prediction of highest box IoU (≥ ``min_iou``); unmatched
    faces count as missed and do not enter the error figures.
    """
    squared, distances, nmes, missed = [], [], [], 0
    for record, predicted in zip(truth.images, predictions, strict=True):
        used: set[int] = set()
        for label in record.instances:
            ranked = sorted(
                (
                    (box_iou(label.box, guess.box), index)
                    for index, guess in enumerate(predicted)
                    if index not in used
                ),
                reverse=True,
            )
            if not ranked or ranked[0][0] < min_iou:
                missed += 1
                continue
            used.add(ranked[0][1])
            guess = predicted[ranked[0][1]].keypoints
            visible = label.visibility > 0
            error = np.linalg.norm(guess - label.keypoints, axis=1)[visible]
            squared.append(float((error**2).mean()))
            distances.append(float(error.mean()))
            nmes.append(normalized_mean_error(guess, label.keypoints))
    matched = len(nmes)
    return {
        "val_faces": matched + missed,
        "val_faces_matched": matched,
        "keypoint_mse_px2": finite_or_none(float(np.mean(squared))) if matched else None,
        "keypoint_mean_error_px": finite_or_none(float(np.mean(distances))) if matched else None,
        "nme_outer_eye_corners": finite_or_none(float(np.mean(nmes))) if matched else None,
    }


def _ultralytics_row(metrics: dict[str, float]) -> dict[str, float | None]:
    names = {
        "box_precision": "metrics/precision(B)",
        "box_recall": "metrics/recall(B)",
        "box_ap50": "metrics/mAP50(B)",
        "box_ap50_95": "metrics/mAP50-95(B)",
        "pose_precision": "metrics/precision(P)",
        "pose_recall": "metrics/recall(P)",
        "pose_ap50": "metrics/mAP50(P)",
        "pose_ap50_95": "metrics/mAP50-95(P)",
    }
    return {
        key: finite_or_none(metrics[source]) if source in metrics else None for key, source in names.items()
    }


# ------------------------------------------------------------------------------------------- campaign


@dataclass
class IterationReport:
    """One row of the campaign report (the paper's Tables 1–2, computed on the fixed validation split)."""

    iteration: int
    dataset_version: str
    start_weights: str
    epochs: int
    counts: dict[str, Any]
    metrics: dict[str, Any]
    weights: str
    pseudo_labels_added: int | None = None
    seconds: float = 0.0


def _write_reports(config: CampaignConfig, rows: list[IterationReport], extra: dict[str, Any]) -> None:
    document = {
        "campaign": config.name,
        "config": config.as_dict(),
        **extra,
        "iterations": [asdict(r) for r in rows],
    }
    (config.root / "report.json").write_text(json.dumps(document, indent=2) + "\n")
    (config.root / "report.md").write_text(campaign_markdown(document))


def campaign_markdown(document: dict[str, Any]) -> str:
    """Markdown tables of a campaign report document (``report.json``)."""

    def show(value: Any, digits: int = 3) -> str:
        if value is None:
            return "—"
        return f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    lines = [f"# Landmark campaign `{document['campaign']}`", ""]
    if document.get("command"):
        lines += ["Command:", "", "```", document["command"], "```", ""]
    lines += [
        "## Labels per iteration (dataset version trained on)",
        "",
        "| iter | version | train labels | val labels | total | added after | train images labelled "
        "| epochs | minutes |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["iterations"]:
        counts = row["counts"]
        lines.append(
            f"| {row['iteration']} | {row['dataset_version']} | {counts['train_instances']} | "
            f"{counts['val_instances']} | {counts['total_instances']} | {show(row['pseudo_labels_added'])} | "
            f"{counts['train_labelled_images']}/{counts['train_images']} | {row['epochs']} | "
            f"{row['seconds'] / 60:.1f} |"
        )
    lines += [
        "",
        "## Validation metrics (fixed validation split, teacher/human labels only)",
        "",
        "| iter | box P | box R | box AP50 | pose P | pose R | pose AP50 | pose AP50-95 | kpt MSE px² | "
        "mean err px | NME | matched |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in document["iterations"]:
        m = row["metrics"]
        lines.append(
            f"| {row['iteration']} | {show(m['box_precision'])} | {show(m['box_recall'])} | "
            f"{show(m['box_ap50'])} | "
            f"{show(m['pose_precision'])} | {show(m['pose_recall'])} | {show(m['pose_ap50'])} | "
            f"{show(m['pose_ap50_95'])} | {show(m['keypoint_mse_px2'], 1)} | "
            f"{show(m['keypoint_mean_error_px'], 2)} | "
            f"{show(m['nme_outer_eye_corners'], 4)} | {m['val_faces_matched']}/{m['val_faces']} |"
        )
    lines.append("")
    return "\n".join(lines)


def run_campaign(
    config: CampaignConfig,
    initial: KeypointDataset,
    progress: ProgressCallback | None = None,
    cancel: CancelCheck | None = None,
    command: str = "",
    resume: bool = False,
) -> list[IterationReport]:
    """Run ``config.iterations`` train → predict → merge rounds starting from ``initial`` (written as v0).

    Iteration k trains on dataset version v<k> (from ``model_yaml`` for k = 0, else from iteration k-1's
    best weights when ``fine_tune``), is evaluated on the validation split, then — except after the last
    iteration — predicts into the training images and writes v<k+1>. ``report.json``/``report.md`` under
    ``config.root`` are rewritten after every iteration. ``cancel()`` is checked between epochs and phases.
    With ``resume`` a campaign folder that holds versions continues after its last finished iteration
    (an interrupted iteration continues from its last epoch); ``initial`` is then ignored.
    """
    from ultralytics import YOLO

    def check_cancel(where: str) -> None:
        if cancel is not None and cancel():
            raise Cancelled(f"Campaign cancelled {where}.")

    config.root.mkdir(parents=True, exist_ok=True)
    store = DatasetStore(config.root / "datasets")
    rows: list[IterationReport] = []
    previous_best: Path | None = None
    if store.versions() and not resume:
        raise FileExistsError(
            f"{store.root} already holds dataset versions; start a campaign in a new folder or resume it."
        )
    if store.versions():
        rows = _finished_rows(config)
        previous_best = Path(rows[-1].weights) if rows else None
        dataset = store.read(len(rows))
    else:
        store.write(initial, 0, note="iteration 0: initial labels")
        dataset = initial
    for iteration in range(len(rows), config.iterations):
        started = time.monotonic()
        check_cancel(f"before iteration {iteration}")
        export = config.root / "yolo" / f"v{iteration}"
        data_yaml = (
            export / "data.yaml"
            if (export / "data.yaml").is_file()
            else export_yolo_pose(dataset, export, kpt_oks_sigma=config.kpt_oks_sigma)
        )
        start = str(previous_best) if (config.fine_tune and previous_best is not None) else config.model_yaml
        epochs = config.epochs_first if iteration == 0 else config.epochs_next
        if progress is not None:
            progress({"phase": "start", "iteration": iteration, "counts": dataset.counts(), "start": start})
        validation = KeypointDataset(tuple(dataset.split("val")), dataset.image_root)
        best, ultralytics_metrics = train_iteration(
            config, data_yaml, iteration, start, epochs, progress, cancel, validation
        )
        model = YOLO(str(best), task="pose")
        version = f"{config.name}-iter{iteration}"
        check_cancel(f"before evaluating iteration {iteration}")
        val_predictions = predict_instances(
            model,
            [dataset.resolve(record) for record in validation.images],
            version,
            config.imgsz,
            0.25,
            config.device,
        )
        epochs = int(ultralytics_metrics.pop(EPOCHS_RUN, epochs))
        metrics = {**_ultralytics_row(ultralytics_metrics), **keypoint_errors(validation, val_predictions)}
        row = IterationReport(
            iteration=iteration,
            dataset_version=f"v{iteration}",
            start_weights=start,
            epochs=epochs,
            counts=dataset.counts(),
            metrics=metrics,
            weights=str(best),
        )
        if iteration < config.iterations - 1:
            check_cancel(f"before predicting after iteration {iteration}")
            pool = images_to_predict(dataset)
            found = predict_instances(
                model,
                [dataset.resolve(record) for record in pool],
                version,
                config.imgsz,
                config.min_confidence,
                config.device,
            )
            predictions = {record.path: instances for record, instances in zip(pool, found, strict=True)}
            dataset, added = merge_predictions(dataset, predictions, config.max_iou, config.min_confidence)
            if iteration + 1 in store.versions():  # written before an interruption
                dataset = store.read(iteration + 1)
            else:
                store.write(
                    dataset,
                    iteration + 1,
                    parent=iteration,
                    note=f"pseudo-labels of {MODEL_NAME}@{version}",
                    extra={"pseudo_labels_added": added},
                )
            row.pseudo_labels_added = added
        row.seconds = round(time.monotonic() - started, 1)
        rows.append(row)
        previous_best = best
        _write_reports(config, rows, {"command": command})
        if progress is not None:
            progress({"phase": "iteration_done", "iteration": iteration, "report": asdict(row)})
    return rows


def _finished_rows(config: CampaignConfig) -> list[IterationReport]:
    """The iterations recorded in ``report.json`` (empty when none finished)."""
    path = config.root / "report.json"
    if not path.is_file():
        return []
    return [IterationReport(**row) for row in json.loads(path.read_text())["iterations"]]


def choose_iteration(report: dict[str, Any]) -> int:
    """The iteration with the lowest validation NME (ties and missing NME: the later iteration)."""
    rows = report["iterations"]
    if not rows:
        raise ValueError("The campaign report has no finished iteration.")
    scored = [(row["metrics"].get("nme_outer_eye_corners"), row["iteration"]) for row in rows]
    measured = [(nme, -iteration) for nme, iteration in scored if nme is not None]
    return -min(measured)[1] if measured else rows[-1]["iteration"]


def ship_weights(
    root: Path,
    destination: Path,
    iteration: int | None = None,
    data_root: Path | None = None,
    second_pass: bool = False,
) -> dict[str, Any]:
    """Install a campaign iteration as yolo-pose68: ``destination/yolo-pose68.pt`` and its model card.

    The card (:mod:`ml.modelcard`, ``yolo-pose68.card.json``) holds the version (``<campaign>-iter<k>``),
    the input geometry and run-time settings (``details``), that iteration's campaign validation figures
    and, with ``data_root``:

    * for a crop campaign on human labels, the run-time settings (a second, refined crop from the first
      pass's landmarks; averaging with the mirrored crop) measured on the human landmarks300w **val**
      split — never on test; both double the network's work, so they are chosen only with
      ``second_pass`` — then, once chosen, the figures on the held-out human **test** split and whether
      they meet the goals (:data:`GOAL_MEAN_NME`, :data:`GOAL_MS_PER_FACE`);
    * the per-face NME on the four human-annotated landmarks68 faces and the acceptance rule.

    Returns the card's metrics.
    """
    import shutil

    from ml.landmarks.yolo_pose import MODEL_YAML, WEIGHTS_FILE, landmarks68_nme, yolo_pose_model
    from ml.modelcard import ModelCard, card_path, write_card
    from ml.registry import file_sha256

    report = json.loads((Path(root) / "report.json").read_text())
    chosen = choose_iteration(report) if iteration is None else iteration
    row = next((item for item in report["iterations"] if item["iteration"] == chosen), None)
    if row is None:
        raise ValueError(f"Iteration {chosen} is not in the campaign report of {root}.")
    destination.mkdir(parents=True, exist_ok=True)
    weights = destination / WEIGHTS_FILE
    shutil.copyfile(row["weights"], weights)
    version = f"{report['campaign']}-iter{chosen}"
    imgsz = int(report["config"]["imgsz"])
    counts = row.get("counts", {})
    human_labels = set(counts.get("by_source", {})) == {"human"} or report.get("labels") == "human"
    crop_model = Path(str(report["config"].get("model_yaml", ""))).name == MODEL_YAML.name
    inference: dict[str, Any] = {"input": "crop" if crop_model else "image", "imgsz": imgsz}
    if crop_model:
        inference.update(refine=False, flip=False)
    metrics: dict[str, Any] = {
        "campaign_validation": {**row["metrics"], "dataset_version": row["dataset_version"]},
        "validation_labels": (
            "human 300-W labels of the campaign's fixed validation split"
            if human_labels
            else "teacher labels on the campaign's fixed validation split"
        ),
    }
    if crop_model and data_root is not None and (data_root / "landmarks300w" / "landmarks.json").is_file():
        inference, choice, test = _crop_settings_and_test(weights, version, data_root, second_pass, inference)
        metrics["inference_choice"] = choice
        metrics["landmarks300w_test"] = test
        met = test["mean_nme"] is not None and test["mean_nme"] <= GOAL_MEAN_NME
        fast = (
            test["cpu_ms_per_face_median"] is not None and test["cpu_ms_per_face_median"] <= GOAL_MS_PER_FACE
        )
        metrics["goal"] = {
            "rule": f"mean NME ≤ {GOAL_MEAN_NME} on the held-out human landmarks300w test split and "
            f"≤ {GOAL_MS_PER_FACE:.0f} ms of compute per face",
            "met": bool(met and fast),
            "summary": f"test mean NME {test['mean_nme']}, {test['cpu_ms_per_face_median']} CPU ms per face",
        }
    if data_root is not None and (data_root / "landmarks68" / "landmarks.json").is_file():
        from ml.landmarks.models import as_registered

        faces = landmarks68_nme(as_registered(yolo_pose_model(weights, inference)), data_root)
        metrics["landmarks68"] = faces
        metrics["nme_outer_eye_corners"] = {name: face["nme"] for name, face in faces.items()}
        measured = [face["nme"] for face in faces.values() if face["nme"] is not None]
        metrics["acceptance"] = {
            "rule": f"NME ≤ {ACCEPTANCE_MAX_NME} on every landmarks68 face it detects",
            "passed": bool(measured) and max(measured) <= ACCEPTANCE_MAX_NME,
        }
    write_card(
        card_path(weights),
        ModelCard(
            name=MODEL_NAME,
            task="landmarks",
            version=version,
            description=(
                "YOLOv8n-pose with 68 iBUG keypoints (Ultralytics YOLOv8), trained "
                + (
                    f"from the matching layers of {Path(initial).name} (its backbone) "
                    if (initial := report["config"].get("initial_weights"))
                    else "from scratch "
                )
                + "by an iterative auto-labelling campaign (Chen 2024)"
                + (
                    " on eye-aligned face crops from the face detector (yolo-pose68-crop.yaml: no stride-8 "
                    "level)."
                    if crop_model
                    else " on whole photos."
                )
            ),
            data=(
                f"Campaign {report['campaign']}, iteration {chosen}: {counts.get('train_instances', '?')} "
                f"training labels ({counts.get('by_source', {})}) and {counts.get('val_instances', '?')} "
                + (
                    "human validation labels (landmarks300w: AFW + HELEN train, fixed split by source photo; "
                    "pseudo-labels from MEBeauty, London and FASSEG photos by the conf 0.7 / IoU 0.3 rule)."
                    if human_labels
                    else "teacher validation labels (and the model's own pseudo-labels)."
                )
            ),
            command=report.get("command") or f"python -m ml landmarks campaign ship {root}",
            licence=(
                "Code: Facet (open source) and Ultralytics YOLOv8 (AGPL-3.0). Weights: research use only "
                "(the licences of the campaign's photos and labels apply: iBUG 300-W and MEBeauty are "
                "non-commercial)."
            ),
            limitations=_limitations(metrics, human_labels),
            metrics=metrics,
            weights=WEIGHTS_FILE,
            weights_sha256=file_sha256(weights),
            details={"imgsz": imgsz, "inference": inference},
        ),
    )
    return metrics


def _crop_settings_and_test(
    weights: Path, version: str, data_root: Path, second_pass: bool, inference: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Run-time settings chosen on the human val split, then the figures on the held-out test split."""
    from ml.landmarks.evaluation import Evaluation, evaluate_faces
    from ml.landmarks.human_sets import read_human_set

    def evaluate(settings: dict[str, Any], split: str) -> dict[str, Any]:
        from ml.landmarks.models import as_registered
        from ml.landmarks.yolo_pose import yolo_pose_model

        evaluation = Evaluation(MODEL_NAME, version, DEFAULT_FACE_DETECTOR, "landmarks300w", split)
        evaluation.faces = evaluate_faces(
            as_registered(yolo_pose_model(weights, settings)),
            read_human_set(data_root / "landmarks300w", split),
        )
        return evaluation.summary()

    options = {}
    for refine in (False, True):
        for flip in (False, True):
            settings = {**inference, "refine": refine, "flip": flip}
            options[f"refine={refine}, flip={flip}"] = (evaluate(settings, "val"), settings)
    allowed = {
        key: value
        for key, value in options.items()
        if second_pass or not (value[1]["refine"] or value[1]["flip"])
    }
    best = min(allowed, key=lambda key: allowed[key][0]["mean_nme"] or 1.0)
    choice = {
        "rule": (
            "lowest mean NME on the landmarks300w val split (human labels)"
            + ("" if second_pass else " among one-pass settings (the 20 ms per face budget)")
        ),
        "chosen": best,
        "options": {key: value[0] for key, value in options.items()},
    }
    settings = options[best][1]
    test = evaluate(settings, "test")
    test["cpu_ms_per_face_median"] = _milliseconds_per_face(weights, settings, data_root)
    return settings, choice, test


def _milliseconds_per_face(
    weights: Path, settings: dict[str, Any], data_root: Path, faces: int = 60
) -> float:
    """Median compute (process CPU milliseconds, one thread) of the landmark model on one detected face,
    face detection excluded. CPU time, not wall-clock: the shared machine's load inflates the latter."""
    from ml.core.imageio import load_image
    from ml.landmarks.human_sets import read_human_set
    from ml.landmarks.yolo_pose import yolo_pose_model

    model = yolo_pose_model(weights, settings).load()
    times = []
    for face in read_human_set(data_root / "landmarks300w", "test")[:faces]:
        image = load_image(face.image)
        detections = model.face_detector.detect(image)
        if detections:
            model.fit(image, detections[0])  # warm (first call, caches)
            started = time.process_time()
            model.fit(image, detections[0])
            times.append((time.process_time() - started) * 1000.0)
    return round(float(np.median(times)), 2) if times else float("nan")


def _limitations(metrics: dict[str, Any], human_labels: bool) -> str:
    parts = []
    goal = metrics.get("goal")
    if goal is not None and not goal["met"]:
        parts.append(f"Below its goal ({goal['rule']}): {goal['summary']}; dlib-68 stays the default.")
    if not human_labels:
        parts.append(
            "Validation labels come from the campaign's teacher, so its figures measure agreement with the "
            "teacher, not with human annotators."
        )
    if metrics.get("acceptance", {}).get("passed") is False:
        parts.append("Fails NME ≤ 0.08 on a human-annotated landmarks68 face (see metrics.landmarks68).")
    parts.append(
        "One face per detector box: its accuracy depends on the face detector's box and eye points; trained "
        "on adult faces of the listed data sets only."
    )
    return " ".join(parts)
