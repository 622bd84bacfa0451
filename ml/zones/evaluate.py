"""Evaluation of the zone models: per-zone IoU (the paper's Table 2) and face-part IoU against FASSEG.

IoU is accumulated over the whole evaluation set (Σ intersection / Σ union per class), the usual
semantic-segmentation convention; the mean is over zones (or parts) with a non-empty union.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from ml.core.subject import subject_face
from ml.zones.atlas import N_ZONES, ZONE_ABBREVIATIONS
from ml.zones.landmark_model import FACE_PARTS, render_face_parts, render_zone_masks

EVALUATED_PARTS: tuple[str, ...] = ("skin", "eyes", "nose", "mouth")


class IouAccumulator:
    """Σ intersection and Σ union per named class."""

    def __init__(self, names: Iterable[str]) -> None:
        self.names = list(names)
        self.intersection = np.zeros(len(self.names), dtype=np.int64)
        self.union = np.zeros(len(self.names), dtype=np.int64)
        self.images = 0

    def add(self, predicted: np.ndarray, target: np.ndarray) -> None:
        """``predicted``/``target``: boolean ``(C, H, W)`` stacks in :attr:`names` order."""
        if predicted.shape != target.shape or predicted.shape[0] != len(self.names):
            raise ValueError(f"Mask stacks differ: {predicted.shape} vs {target.shape}.")
        flat_p = predicted.reshape(len(self.names), -1)
        flat_t = target.reshape(len(self.names), -1)
        self.intersection += (flat_p & flat_t).sum(axis=1)
        self.union += (flat_p | flat_t).sum(axis=1)
        self.images += 1

    def table(self) -> dict[str, Any]:
        ious = {
            name: (float(i / u) if u else None)
            for name, i, u in zip(self.names, self.intersection, self.union, strict=True)
        }
        present = [v for v in ious.values() if v is not None]
        return {
            "iou": ious,
            "mean_iou": float(np.mean(present)) if present else None,
            "n_images": self.images,
        }


def parts_stack(labels: np.ndarray, names: tuple[str, ...] = EVALUATED_PARTS) -> np.ndarray:
    return np.stack([labels == FACE_PARTS.index(name) for name in names])


def fasseg_pairs(fasseg_dir: Path) -> list[tuple[Path, Path]]:
    """(image, mask) pairs of a FASSEG split folder with ``images/`` and ``masks/``."""
    images = sorted((Path(fasseg_dir) / "images").glob("*.jpg"))
    if not images:
        raise FileNotFoundError(f"No FASSEG images in '{fasseg_dir}/images'.")
    pairs = [(p, Path(fasseg_dir) / "masks" / f"{p.stem}.png") for p in images]
    missing = [str(m) for _, m in pairs if not m.is_file()]
    if missing:
        raise FileNotFoundError(f"FASSEG masks missing: {', '.join(missing[:3])}.")
    return pairs


def landmark_predictor(
    landmarker: Any = None,
) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray] | None]:
    """``image -> (zone masks, part labels)`` of the landmark model, or ``None`` when no face is found."""
    from ml.core.landmarks import detect_faces_with_landmarks

    def predict(image: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
        faces = (
            detect_faces_with_landmarks(image, detector=landmarker)
            if landmarker is not None
            else (detect_faces_with_landmarks(image))
        )
        if not faces:
            return None
        landmarks = subject_face(faces).landmarks
        return render_zone_masks(landmarks, image.shape), render_face_parts(landmarks, image.shape)

    return predict


def ensemble_predictor(ensemble: Any) -> Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]]:
    def predict(image: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        prediction = ensemble.predict(image)
        return prediction.masks, prediction.parts

    return predict


def evaluate_face_parts(fasseg_dir: Path, predict: Callable[[np.ndarray], Any]) -> dict[str, Any]:
    """Face-part IoU (skin, eyes, nose, mouth) against the human FASSEG masks.

    Images where the model finds no face count as all-background predictions (they are not dropped).
    """
    from ml.core.imageio import load_image

    accumulator = IouAccumulator(EVALUATED_PARTS)
    no_face = []
    for image_path, mask_path in fasseg_pairs(fasseg_dir):
        image = load_image(image_path)
        truth = np.asarray(Image.open(mask_path))
        output = predict(image)
        if output is None:
            no_face.append(image_path.name)
            labels = np.zeros(truth.shape, dtype=np.uint8)
        else:
            labels = output[1]
        accumulator.add(parts_stack(labels), parts_stack(truth))
    return {**accumulator.table(), "no_face": no_face, "truth": "FASSEG human face-part masks"}


def evaluate_zones(
    samples: Iterable[tuple[np.ndarray, np.ndarray]], predict: Callable[[np.ndarray], Any], truth_label: str
) -> dict[str, Any]:
    """Per-zone IoU table (atlas order) and mean over ``(image, 33 true masks)`` samples."""
    accumulator = IouAccumulator(ZONE_ABBREVIATIONS)
    no_face = 0
    for image, truth in samples:
        output = predict(image)
        if output is None:
            no_face += 1
            predicted = np.zeros((N_ZONES, *image.shape[:2]), dtype=bool)
        else:
            predicted = output[0]
        accumulator.add(predicted, truth)
    return {**accumulator.table(), "no_face": no_face, "truth": truth_label}


def dataset_validation_samples(root: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """``(image, 33 masks)`` of a zones dataset's validation split, masks rebuilt from the set label maps."""
    from ml.zones.datasets import load_sample, masks_from_set_labels, read_dataset_sets, read_odgt

    sets = read_dataset_sets(root)
    per_set = [read_odgt(Path(root) / f"set{k}_validation.odgt") for k in range(1, len(sets) + 1)]
    for records in zip(*per_set, strict=True):
        loaded = [load_sample(Path(root), record) for record in records]
        yield loaded[0][0], masks_from_set_labels([labels for _, labels in loaded], sets)


def cvat_samples(annotations: dict[str, Any], images_dir: Path) -> Iterable[tuple[np.ndarray, np.ndarray]]:
    """``(image, human masks)`` for CVAT-annotated images found in ``images_dir`` (zones not annotated
    in an image are compared as empty, so annotate complete images for evaluation)."""
    from ml.core.imageio import load_image

    for stem, annotation in sorted(annotations.items()):
        candidates = [
            p for p in Path(images_dir).rglob(f"{stem}.*") if p.suffix.lower() in (".jpg", ".jpeg", ".png")
        ]
        if not candidates:
            raise FileNotFoundError(
                f"Annotated image '{annotation.image_name}' not found under '{images_dir}'."
            )
        yield load_image(candidates[0]), annotation.masks
