"""Training of the wrinkle U-Net variants (Kim et al. 2023, Sec. 4.1) on an image/mask folder.

Optimiser as in the paper: Adam, learning rate 0.01 with cosine annealing to 1e-6, weight decay 1e-4
on convolution weights only (biases and batch-norm parameters get none), batch 4, augmentations
(scale, shift, rotation, flip applied identically to image, texture map and mask; brightness and
colour to the image only). The folder is the layout written by :mod:`ml.wrinkles.synthesize`
(``index.csv``, ``images/``, ``masks/``). Images are split by source face; the checkpoint is chosen on
the validation part of the training faces, never on the test faces, which are recorded in the
checkpoint for :mod:`ml.wrinkles.evaluate`.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from torch import nn

from ml.core.fp16 import float_state, half_state
from ml.wrinkles.labeling import texture_map
from ml.wrinkles.losses import LOSS_VARIANTS, LossVariant, deep_supervision_loss
from ml.wrinkles.metrics import Fold, confusion, kfold_splits, summarize
from ml.wrinkles.synthesize import LABEL, read_index
from ml.wrinkles.unet import SIZE_MULTIPLE, WrinkleUNet

LEARNING_RATE = 0.01
FINAL_LEARNING_RATE = 1e-6
WEIGHT_DECAY = 1e-4
BATCH_SIZE = 4
PROBABILITY_THRESHOLD = 0.5


@dataclass(frozen=True)
class Sample:
    """One image/mask pair and the group (source face) it belongs to."""

    name: str
    image_path: Path
    mask_path: Path
    group: str
    split: str | None = None


FIXED_SPLITS = ("train", "val", "test")


def read_samples(data_dir: Path) -> list[Sample]:
    """Samples listed in ``data_dir/index.csv`` (with their fixed ``split`` where the index has one)."""
    data_dir = Path(data_dir)
    return [
        Sample(
            row["name"],
            data_dir / row["image"],
            data_dir / row["mask"],
            row.get("face") or row["name"],
            row.get("split") or None,
        )
        for row in read_index(data_dir)
    ]


def data_set_description(data_dir: Path) -> dict:
    """``summary.json`` of a folder built from real photos (its ``label`` and ``input_region``), else the
    semi-synthetic defaults."""
    path = Path(data_dir) / "summary.json"
    summary = json.loads(path.read_text()) if path.is_file() else {}
    return {"label": summary.get("label", LABEL), "input_region": summary.get("input_region", "forehead-eye")}


def choose_split(samples: Sequence[Sample], folds: int, fold: int, seed: int) -> Fold:
    """The index's fixed train/val/test split when every sample has one, else fold ``fold`` of a
    ``folds``-fold split by group."""
    if samples and all(sample.split in FIXED_SPLITS for sample in samples):
        return Fold(
            train=[index for index, sample in enumerate(samples) if sample.split == "train"],
            validation=[index for index, sample in enumerate(samples) if sample.split == "val"],
            test=[index for index, sample in enumerate(samples) if sample.split == "test"],
        )
    return kfold_splits([sample.group for sample in samples], folds=folds, seed=seed)[fold]


def load_pair(sample: Sample, size: int) -> tuple[np.ndarray, np.ndarray]:
    """RGB uint8 image and bool mask, resized to ``size × size``."""
    image = cv2.imread(str(sample.image_path), cv2.IMREAD_COLOR)
    mask = cv2.imread(str(sample.mask_path), cv2.IMREAD_GRAYSCALE)
    if image is None or mask is None:
        raise FileNotFoundError(f"Could not read {sample.image_path} or {sample.mask_path}.")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.shape[:2] != (size, size):
        image = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
        mask = cv2.resize(mask, (size, size), interpolation=cv2.INTER_AREA)
    return image, mask > 127


def stack_input(image: np.ndarray) -> np.ndarray:
    """``(H, W, 4)`` float32 in [0, 1]: RGB and the clipped texture map (Eq. 1)."""
    return (
        np.concatenate([image.astype(np.float32), texture_map(image)[..., None].astype(np.float32)], axis=2)
        / 255.0
    )


def augment(stacked: np.ndarray, mask: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Random scale (0.9–1.1), shift (±5 %), rotation (±10°) and horizontal flip, identical for all
    channels and the mask; then brightness (±15 %) and per-channel colour (±5 %) on RGB only."""
    size = stacked.shape[0]
    angle = rng.uniform(-10, 10)
    scale = rng.uniform(0.9, 1.1)
    matrix = cv2.getRotationMatrix2D((size / 2, size / 2), angle, scale)
    matrix[:, 2] += rng.uniform(-0.05, 0.05, size=2) * size
    if rng.random() < 0.5:
        matrix[0] = -matrix[0]
        matrix[0, 2] += size - 1
    warped = cv2.warpAffine(
        stacked, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    warped_mask = cv2.warpAffine(mask.astype(np.uint8), matrix, (size, size), flags=cv2.INTER_NEAREST) > 0
    warped[..., :3] = np.clip(
        warped[..., :3] * rng.uniform(0.85, 1.15) * rng.uniform(0.95, 1.05, size=3), 0.0, 1.0
    )
    return warped, warped_mask


def random_patch(
    stacked: np.ndarray, mask: np.ndarray, patch: int, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """A random ``patch × patch`` window of an image and its mask (CPU budget: the network is fully
    convolutional, so it trains on windows at the full resolution and segments whole images)."""
    height, width = mask.shape
    top = int(rng.integers(0, height - patch + 1))
    left = int(rng.integers(0, width - patch + 1))
    return stacked[top : top + patch, left : left + patch], mask[top : top + patch, left : left + patch]


def parameter_groups(model: nn.Module, weight_decay: float = WEIGHT_DECAY) -> list[dict]:
    """Adam parameter groups: weight decay on multi-dimensional weights, none on biases and norms."""
    decayed = [parameter for parameter in model.parameters() if parameter.ndim > 1]
    plain = [parameter for parameter in model.parameters() if parameter.ndim <= 1]
    return [{"params": decayed, "weight_decay": weight_decay}, {"params": plain, "weight_decay": 0.0}]


@torch.no_grad()
def predict_probabilities(
    model: nn.Module, stacked_images: Sequence[np.ndarray], batch_size: int = BATCH_SIZE
) -> list[np.ndarray]:
    """F1 probabilities for ``(H, W, 4)`` inputs."""
    model.eval()
    device = next(model.parameters()).device
    results = []
    for start in range(0, len(stacked_images), batch_size):
        batch = np.stack(stacked_images[start : start + batch_size]).transpose(0, 3, 1, 2)
        probabilities = torch.sigmoid(model(torch.from_numpy(batch).to(device))[0])[:, 0]
        results.extend(probabilities.cpu().numpy())
    return results


@dataclass
class TrainingResult:
    """Checkpoint path and what was measured while training."""

    checkpoint: Path
    variant: str
    best_epoch: int
    validation: dict
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0


def train_model(
    data_dir: Path,
    out_path: Path,
    variant: LossVariant = "unet-wds",
    base_width: int = 16,
    size: int = 256,
    epochs: int = 20,
    folds: int = 5,
    fold: int = 0,
    seed: int = 0,
    max_train_images: int | None = None,
    patch: int | None = None,
    learning_rate: float = LEARNING_RATE,
    init: Path | None = None,
    max_minutes: float | None = None,
    log: Callable[[str], None] = print,
) -> TrainingResult:
    """Train one variant on fold ``fold`` of a ``folds``-fold split by face and save the best
    validation checkpoint (fp16 state dict plus metadata) to ``out_path``.

    ``patch`` trains on one random ``patch × patch`` window per image and epoch instead of the whole
    ``size × size`` image; validation and test always use whole images. ``init`` starts from a
    checkpoint's weights (fine-tuning; its width wins over ``base_width``). ``max_minutes`` time-boxes
    the run: no epoch starts after it. The best checkpoint so far is written after every epoch that
    improves, so a stopped run leaves a usable one."""
    if variant not in LOSS_VARIANTS:
        raise ValueError(f"Unknown variant '{variant}'; choose one of {', '.join(LOSS_VARIANTS)}.")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, got {epochs}.")
    if size % SIZE_MULTIPLE:
        raise ValueError(f"size must be a multiple of {SIZE_MULTIPLE}, got {size}.")
    if patch is not None and (patch % SIZE_MULTIPLE or not 0 < patch <= size):
        raise ValueError(f"patch must be a multiple of {SIZE_MULTIPLE} between 16 and {size}, got {patch}.")
    if not learning_rate > 0:
        raise ValueError(f"learning_rate must be positive, got {learning_rate}.")
    started = time.monotonic()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    samples = read_samples(data_dir)
    split = choose_split(samples, folds, fold, seed)
    described = data_set_description(data_dir)
    train_indices = split.train[:max_train_images] if max_train_images else split.train
    train_pairs = [load_pair(samples[index], size) for index in train_indices]
    train_inputs = [(stack_input(image), mask) for image, mask in train_pairs]
    validation_pairs = [load_pair(samples[index], size) for index in split.validation]
    validation_inputs = [stack_input(image) for image, _ in validation_pairs]
    # The GPU worker trains on its GPU; everywhere else this runs on the CPU.
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if init is not None:
        model, init_metadata = load_checkpoint(init)
        base_width = int(init_metadata["base_width"])
        model = model.to(device)
    else:
        model = WrinkleUNet(base_width=base_width).to(device)
    optimizer = torch.optim.Adam(parameter_groups(model), lr=learning_rate)
    steps_per_epoch = math.ceil(len(train_inputs) / BATCH_SIZE)
    scheduler = torch.optim.lr_scheduler.CosineAnnealingLR(
        optimizer, T_max=max(1, epochs * steps_per_epoch), eta_min=FINAL_LEARNING_RATE
    )
    best_jsi, best_state, best_epoch, best_summary = -1.0, None, -1, {}
    history: list[dict] = []

    def checkpoint_metadata(result: TrainingResult) -> dict:
        return {
            "variant": variant,
            "base_width": base_width,
            "size": size,
            "patch": patch or size,
            "learning_rate": learning_rate,
            "threshold": PROBABILITY_THRESHOLD,
            "data": str(data_dir),
            "data_label": described["label"],
            "input_region": described["input_region"],
            "init": str(init) if init is not None else None,
            "folds": folds,
            "fold": fold,
            "seed": seed,
            "train_names": [samples[index].name for index in train_indices],
            "validation_names": [samples[index].name for index in split.validation],
            "test_names": [samples[index].name for index in split.test],
            "training": {key: value for key, value in asdict(result).items() if key != "checkpoint"},
        }

    for epoch in range(epochs):
        model.train()
        order = rng.permutation(len(train_inputs))
        losses = []
        for start in range(0, len(order), BATCH_SIZE):
            batch = [augment(*train_inputs[index], rng) for index in order[start : start + BATCH_SIZE]]
            if patch is not None and patch < size:
                batch = [random_patch(*item, patch, rng) for item in batch]
            inputs = torch.from_numpy(np.stack([item[0] for item in batch]).transpose(0, 3, 1, 2)).to(device)
            targets = torch.from_numpy(np.stack([item[1] for item in batch]).astype(np.float32))[:, None]
            targets = targets.to(device)
            loss = deep_supervision_loss(model(inputs), targets, variant)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
            losses.append(loss.item())
        probabilities = predict_probabilities(model, validation_inputs)
        summary = summarize(
            [
                confusion(p > PROBABILITY_THRESHOLD, mask)
                for p, (_, mask) in zip(probabilities, validation_pairs, strict=True)
            ]
        )
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "validation_jsi": summary["jsi"]})
        log(
            f"{variant} epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.4f}, "
            f"validation JSI ({described['label']}) {summary['jsi']:.4f}"
        )
        if summary["jsi"] > best_jsi:
            best_jsi, best_epoch, best_summary = summary["jsi"], epoch, summary
            best_state = {key: value.detach().cpu().clone() for key, value in model.state_dict().items()}
            result = TrainingResult(
                Path(out_path), variant, best_epoch, best_summary, history, time.monotonic() - started
            )
            save_checkpoint(out_path, best_state, checkpoint_metadata(result))
        if max_minutes is not None and time.monotonic() - started > max_minutes * 60:
            log(f"time box of {max_minutes:g} min reached after epoch {epoch + 1}")
            break
    result = TrainingResult(
        Path(out_path), variant, best_epoch, best_summary, history, time.monotonic() - started
    )
    save_checkpoint(out_path, best_state, checkpoint_metadata(result))
    return result


def save_checkpoint(path: Path, state: dict[str, torch.Tensor], metadata: dict) -> None:
    """fp16 floating-point tensors (buffers such as batch counts stay integer) plus JSON metadata."""
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    json_metadata = json.loads(json.dumps(metadata, default=str))
    torch.save({"state_dict": half_state(state), "metadata": json_metadata}, path)


def load_checkpoint(path: Path) -> tuple[WrinkleUNet, dict]:
    """Model (float32, eval mode) and metadata from :func:`save_checkpoint`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"Wrinkle model checkpoint {path} does not exist.")
    payload = torch.load(path, map_location="cpu", weights_only=True)
    metadata = payload["metadata"]
    model = WrinkleUNet(base_width=int(metadata["base_width"]))
    model.load_state_dict(float_state(payload["state_dict"]))
    model.eval()
    return model, metadata
