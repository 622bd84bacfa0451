"""Training of the HRNetV2 zone ensemble on an ADE20K/ODGT zones dataset.

Optimisation follows Tuazon & Mortezaei (Skin Res Technol 2024) and the CSAIL semantic-segmentation
recipe they used: SGD, base learning rate 0.02 with poly decay ``lr = base · (1 − it/max_it)^0.9``,
momentum 0.9, weight decay 1e-4, and deep supervision: total loss = Σ_tasks CE(main) + 0.4 · Σ_tasks
CE(aux). Face-part pixels without human masks are ignored (label 255), so the face-part head learns
only from FASSEG human boundaries.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.zones.datasets import OdgtRecord, load_sample, read_dataset_sets, read_odgt

IGNORE = 255
AUX_WEIGHT = 0.4


@dataclass
class TrainConfig:
    """Hyper-parameters; defaults follow the paper where they fit a CPU."""

    iterations: int = 2000
    batch_size: int = 4
    input_size: int = 320
    base_lr: float = 0.02
    poly_power: float = 0.9
    momentum: float = 0.9
    weight_decay: float = 1e-4
    aux_weight: float = AUX_WEIGHT
    shared_backbone: bool = True
    limit: int | None = None
    max_minutes: float | None = None
    parts_share: float | None = None
    seed: int = 0
    threads: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def poly_lr(base_lr: float, iteration: int, max_iterations: int, power: float = 0.9) -> float:
    """Poly learning-rate decay (Chen et al., DeepLab, TPAMI 2018): ``base · (1 − it/max)^power``."""
    return poly_lr_at(base_lr, min(iteration, max_iterations) / max_iterations, power)


def poly_lr_at(base_lr: float, progress: float, power: float = 0.9) -> float:
    """Poly decay at a training progress in [0, 1]: ``base · (1 − progress)^power``."""
    return base_lr * (1.0 - min(max(progress, 0.0), 1.0)) ** power


def training_progress(iteration: int, max_iterations: int, elapsed_s: float, budget_s: float | None) -> float:
    """Fraction of training done: iterations, or wall-clock time when a budget is set and binds first.

    A time budget keeps the poly schedule's shape (decay to zero at the end) on a shared CPU whose
    speed is unknown in advance; the run stops when the progress reaches 1.
    """
    by_iterations = iteration / max_iterations
    return max(by_iterations, elapsed_s / budget_s) if budget_s else by_iterations


class ZoneSamples:
    """Images with the label maps of every task; tasks missing for an image are all-ignore."""

    def __init__(self, root: Path, split: str, tasks: list[str], limit: int | None = None) -> None:
        self.root = Path(root)
        self.tasks = tasks
        by_image: dict[str, dict[str, OdgtRecord]] = {}
        for task in tasks:
            path = self.root / f"{task}_{split}.odgt"
            for record in read_odgt(path):
                by_image.setdefault(record.fpath_img, {})[task] = record
        self.items = sorted(by_image.items())[:limit] if limit else sorted(by_image.items())
        if not self.items:
            raise ValueError(f"No {split} samples in '{root}'.")

    def __len__(self) -> int:
        return len(self.items)

    def draw(self, rng: np.random.Generator, count: int, parts_share: float | None = None) -> np.ndarray:
        """Random sample indices; with ``parts_share``, that fraction of them (rounded) comes from the
        images with human face-part masks, so the face-part head sees them in every batch."""
        with_parts = [i for i, (_, records) in enumerate(self.items) if "parts" in records]
        if not parts_share or not with_parts:
            return rng.integers(0, len(self), size=count)
        n_parts = min(count, max(1, round(parts_share * count)))
        return np.concatenate(
            [rng.choice(with_parts, size=n_parts), rng.integers(0, len(self), size=count - n_parts)]
        )

    def load(
        self, index: int, size: int, rng: np.random.Generator | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalised image ``(3, S, S)`` and labels ``(T, S, S) uint8``; ``rng`` adds scale/shift jitter."""
        from ml.zones.model import IMAGE_MEAN, IMAGE_STD

        _, records = self.items[index]
        image = None
        labels = []
        for task in self.tasks:
            record = records.get(task)
            if record is None:
                labels.append(None)
                continue
            image, task_labels = load_sample(self.root, record)
            labels.append(task_labels)
        assert image is not None
        height, width = image.shape[:2]
        matrix = np.array([[size / width, 0, 0], [0, size / height, 0]], dtype=np.float64)
        if rng is not None:
            scale = rng.uniform(0.85, 1.15)
            shift = rng.uniform(-0.06, 0.06, size=2) * size
            centre = size / 2
            matrix = np.array(
                [[scale, 0, (1 - scale) * centre + shift[0]], [0, scale, (1 - scale) * centre + shift[1]]]
            ) @ np.vstack([matrix, [0, 0, 1]])
        warped = cv2.warpAffine(
            image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT
        )
        pixels = (warped.astype(np.float32) / 255.0 - np.array(IMAGE_MEAN, np.float32)) / np.array(
            IMAGE_STD, np.float32
        )
        stacked = np.full((len(self.tasks), size, size), IGNORE, dtype=np.uint8)
        for position, task_labels in enumerate(labels):
            if task_labels is not None:
                stacked[position] = cv2.warpAffine(
                    task_labels,
                    matrix,
                    (size, size),
                    flags=cv2.INTER_NEAREST,
                    borderMode=cv2.BORDER_CONSTANT,
                    borderValue=IGNORE,
                )
        return pixels.transpose(2, 0, 1), stacked


def confusion_iou(predicted: np.ndarray, target: np.ndarray, classes: int) -> tuple[np.ndarray, np.ndarray]:
    """Per-class intersection and union counts, ignoring target pixels labelled 255."""
    valid = target != IGNORE
    p, t = predicted[valid].astype(np.int64), target[valid].astype(np.int64)
    intersection = np.bincount(t[p == t], minlength=classes)[:classes]
    union = (
        np.bincount(p, minlength=classes)[:classes]
        + np.bincount(t, minlength=classes)[:classes]
        - intersection
    )
    return intersection, union


def validate(network: Any, samples: ZoneSamples, sets: list[list[str]], size: int) -> dict[str, Any]:
    """Validation IoU per sub-model and zone (``{setK: {zone: iou}}``) and per face part."""
    import torch

    from ml.zones.landmark_model import FACE_PARTS

    counts = {task: (np.zeros(64), np.zeros(64)) for task in samples.tasks}
    network.eval()
    with torch.inference_mode():
        for index in range(len(samples)):
            pixels, labels = samples.load(index, size)
            outputs = network(torch.from_numpy(pixels)[None])
            for position, task in enumerate(samples.tasks):
                if task not in outputs:
                    continue
                classes = outputs[task].shape[1]
                predicted = outputs[task][0].argmax(0).numpy()
                inter, union = confusion_iou(predicted, labels[position], classes)
                counts[task][0][:classes] += inter
                counts[task][1][:classes] += union
    table: dict[str, dict[str, float]] = {}
    for k, zone_set in enumerate(sets, start=1):
        task = f"set{k}"
        if task not in counts:
            continue
        inter, union = counts[task]
        table[task] = {
            code: float(inter[i] / union[i]) if union[i] else float("nan")
            for i, code in enumerate(zone_set, start=1)
        }
    parts: dict[str, float] = {}
    if "parts" in counts:
        inter, union = counts["parts"]
        parts = {
            name: float(inter[i] / union[i]) if union[i] else float("nan")
            for i, name in enumerate(FACE_PARTS)
            if i > 0
        }
    return {"zones": table, "parts": parts}


def train(dataset: Path, out: Path, config: TrainConfig, log: Any = print) -> dict[str, Any]:
    """Train, validate, pick per-zone winners and write fp16 weights plus ``ensemble.json`` to ``out``."""
    import torch
    from torch.nn import functional as F

    from ml.zones.ensemble import CROP_FACE, CROP_WHOLE_IMAGE, EnsembleConfig, select_winners
    from ml.zones.model import build_network, save_weights, zone_tasks

    if config.threads:
        torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    rng = np.random.default_rng(config.seed)
    sets = read_dataset_sets(dataset)
    dataset_meta = json.loads((Path(dataset) / "dataset.json").read_text())
    all_tasks = zone_tasks(sets, with_parts=(Path(dataset) / "parts_training.odgt").is_file())
    groups = (
        [list(all_tasks)]
        if config.shared_backbone
        else [[f"set{k}", "parts"] if "parts" in all_tasks else [f"set{k}"] for k in range(1, len(sets) + 1)]
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    weights: dict[str, str] = {}
    iou_table: dict[str, dict[str, float]] = {}
    parts_iou: dict[str, float] = {}
    iterations_by_network: dict[str, int] = {}
    started = time.time()
    for group_index, task_names in enumerate(groups):
        tasks = {name: all_tasks[name] for name in task_names}
        network = build_network(tasks)
        train_samples = ZoneSamples(dataset, "training", task_names, config.limit)
        optimizer = torch.optim.SGD(
            network.parameters(),
            lr=config.base_lr,
            momentum=config.momentum,
            weight_decay=config.weight_decay,
        )
        network.train()
        group_started = time.time()
        budget_s = config.max_minutes * 60 / len(groups) if config.max_minutes else None
        iterations_done = 0
        for iteration in range(config.iterations):
            progress = training_progress(iteration, config.iterations, time.time() - group_started, budget_s)
            if progress >= 1.0:
                break
            for group in optimizer.param_groups:
                group["lr"] = poly_lr_at(config.base_lr, progress, config.poly_power)
            picks = train_samples.draw(rng, config.batch_size, config.parts_share)
            batch = [train_samples.load(int(i), config.input_size, rng) for i in picks]
            pixels = torch.from_numpy(np.stack([b[0] for b in batch]))
            labels = torch.from_numpy(np.stack([b[1] for b in batch]).astype(np.int64))
            outputs = network(pixels)
            loss = pixels.new_zeros(())
            for position, task in enumerate(task_names):
                target = labels[:, position]
                if bool((target != IGNORE).any()):
                    loss = loss + F.cross_entropy(outputs[task], target, ignore_index=IGNORE)
                    loss = loss + config.aux_weight * F.cross_entropy(
                        outputs[f"aux:{task}"], target, ignore_index=IGNORE
                    )
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            iterations_done = iteration + 1
            if iteration % 10 == 0 or iteration == config.iterations - 1:
                log(
                    f"[{group_index + 1}/{len(groups)}] iteration {iteration + 1}/{config.iterations} "
                    f"loss {float(loss.detach()):.4f} lr {optimizer.param_groups[0]['lr']:.5f} "
                    f"elapsed {time.time() - group_started:.0f} s"
                )
        val_samples = ZoneSamples(dataset, "validation", task_names, config.limit)
        scores = validate(network, val_samples, sets, config.input_size)
        iou_table.update(scores["zones"])
        parts_iou = scores["parts"] or parts_iou
        filename = "zones_hrnet.pt" if config.shared_backbone else f"zones_hrnet_{'_'.join(task_names)}.pt"
        save_weights(network, str(out / filename), {"tasks": tasks, "iterations": iterations_done})
        weights[filename] = ",".join(task_names)
        iterations_by_network[filename] = iterations_done
    winners = select_winners(iou_table)
    training = {
        "dataset": str(dataset),
        "seconds": round(time.time() - started, 1),
        "config": {k: v for k, v in config.__dict__.items() if k != "extra"},
        "iterations_done": iterations_by_network,
        "validation_images": len(ZoneSamples(dataset, "validation", list(all_tasks), config.limit)),
        **config.extra,
    }
    ensemble = EnsembleConfig(
        version=f"hrnet-w18s-{int(time.time())}",
        sets=sets,
        input_size=config.input_size,
        weights=weights,
        validation_iou=iou_table,
        winners=winners,
        parts_validation_iou=parts_iou,
        training=training,
        crop=CROP_FACE if dataset_meta.get("crop_size") else CROP_WHOLE_IMAGE,
    )
    ensemble.write(out)
    _write_model_card(out, ensemble, dataset)
    return json.loads((out / "ensemble.json").read_text())


def _write_model_card(out: Path, ensemble: Any, dataset: Path) -> None:
    """The registry's card (:mod:`ml.modelcard`) of an ``EnsembleConfig``, beside its first weights file."""
    from ml.model_names import ZONES_HRNET
    from ml.modelcard import ModelCard, card_path, write_card
    from ml.registry import file_sha256

    first = out / next(iter(ensemble.weights))
    write_card(
        card_path(first),
        ModelCard(
            name=ZONES_HRNET,
            task="zones",
            version=ensemble.version,
            description="HRNetV2 (timm hrnet_w18_small_v2) with three zone-set heads and a face-part head; "
            "each zone from the sub-model with the best validation IoU (Tuazon & Mortezaei, Skin Res "
            "Technol 2024).",
            data=f"Zones dataset {dataset.name} (python -m ml zones build-dataset): "
            f"{ensemble.training.get('validation_images')} validation images; zone labels are landmark "
            "pseudo-labels unless human CVAT zones were imported.",
            command=f"python -m ml zones train --dataset {dataset} --out {out}",
            licence="Apache-2.0 (project code); the weights carry the licences of their training photos "
            "(MEBeauty, FASSEG: research use only).",
            limitations="Trained on the CPU from scratch, mostly on landmark pseudo-labels: it imitates the "
            "atlas geometry and cannot be better than it on anatomy.",
            metrics={
                "validation_iou": ensemble.validation_iou,
                "parts_validation_iou": ensemble.parts_validation_iou,
            },
            weights=first.name,
            weights_sha256=file_sha256(first),
            details={"config": "ensemble.json"},
        ),
    )
