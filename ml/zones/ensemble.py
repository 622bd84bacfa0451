"""Ensemble inference over the three zone sub-models (Tuazon & Mortezaei, Skin Res Technol 2024).

Each sub-model segments its own set of non-overlapping zones; a zone learnt by several sub-models is
taken from the one with the best validation IoU. The IoU table and the winners are stored with the
model version (``ensemble.json``) so inference is reproducible. The output keeps overlaps: 33 binary
masks, plus the face-part label map of the face-part head.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ml.zones.atlas import N_ZONES, ZONE_ABBREVIATIONS, ZONE_INDEX

ENSEMBLE_FILE = "ensemble.json"
CROP_FACE = "face-landmarks"
CROP_WHOLE_IMAGE = "whole-image"


class ModelNotTrainedError(FileNotFoundError):
    """The segmentation model has no trained weights; the message says how to train it."""


def not_trained_message(model_dir: Path) -> str:
    return (
        f"The zone segmentation model (HRNetV2 ensemble) has not been trained: no {ENSEMBLE_FILE} in "
        f"'{model_dir}'. Build the data with 'python -m ml zones build-dataset --out DATASET' and train with "
        f"'python -m ml zones train --dataset DATASET --out {model_dir}', or use '--model landmark'."
    )


def select_winners(iou_table: Mapping[str, Mapping[str, float]]) -> dict[str, str]:
    """For every zone, the sub-model with the highest validation IoU (ties: the first sub-model listed).

    ``iou_table`` maps sub-model name → {zone abbreviation → IoU}. Every atlas zone must be covered;
    NaN IoUs (zone absent from the validation labels) lose to any number.
    """
    winners: dict[str, str] = {}
    best: dict[str, float] = {}
    for model_name, zone_ious in iou_table.items():
        for code, iou in zone_ious.items():
            if code not in ZONE_INDEX:
                raise ValueError(f"Unknown zone '{code}' in the IoU table of '{model_name}'.")
            score = -np.inf if iou is None or np.isnan(iou) else float(iou)
            if code not in winners or score > best[code]:
                winners[code], best[code] = model_name, score
    missing = [code for code in ZONE_ABBREVIATIONS if code not in winners]
    if missing:
        raise ValueError(f"No sub-model predicts the zones {', '.join(missing)}.")
    return {code: winners[code] for code in ZONE_ABBREVIATIONS}


@dataclass
class EnsembleConfig:
    """What ``ensemble.json`` stores next to the weights."""

    version: str
    sets: list[list[str]]
    input_size: int
    weights: dict[
        str, str
    ]  # network file → the tasks it predicts, e.g. {"zones_hrnet.pt": "set1,set2,set3,parts"}
    validation_iou: dict[str, dict[str, float]]
    winners: dict[str, str]
    parts_validation_iou: dict[str, float]
    training: dict[str, Any]
    crop: str = CROP_WHOLE_IMAGE

    @classmethod
    def read(cls, model_dir: Path) -> EnsembleConfig:
        path = Path(model_dir) / ENSEMBLE_FILE
        if not path.is_file():
            raise ModelNotTrainedError(not_trained_message(Path(model_dir)))
        return cls(**json.loads(path.read_text()))

    def write(self, model_dir: Path) -> None:
        (Path(model_dir) / ENSEMBLE_FILE).write_text(json.dumps(self.__dict__, indent=1) + "\n")


@dataclass
class ZonePrediction:
    """33 zone masks ``(33, H, W) bool`` (overlaps kept) and face-part labels ``(H, W) uint8``.

    ``crop_matrix`` maps photo pixels to the network input (see :mod:`ml.zones.crop`); ``face_found``
    is False when no face was detected and the whole photo was segmented instead of a face crop.
    """

    masks: np.ndarray
    parts: np.ndarray
    crop_matrix: np.ndarray
    face_found: bool


class ZoneEnsemble:
    """Loaded networks plus the winner table; :meth:`predict` runs one photo."""

    def __init__(self, model_dir: Path) -> None:
        import torch

        from ml.zones.model import build_network, load_weights

        self.model_dir = Path(model_dir)
        self.config = EnsembleConfig.read(self.model_dir)
        self.networks: list[tuple[Any, list[str]]] = []
        for filename, task_list in self.config.weights.items():
            weights_path = self.model_dir / filename
            if not weights_path.is_file():
                raise ModelNotTrainedError(
                    f"Weights file '{weights_path}' listed in {ENSEMBLE_FILE} is missing."
                )
            state, metadata = load_weights(str(weights_path))
            network = build_network(metadata["tasks"])
            network.load_state_dict(state)
            network.eval()
            self.networks.append((network, task_list.split(",")))
        self._torch = torch

    def crop_matrix(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> tuple[np.ndarray, bool]:
        """Photo → network-input matrix: the landmark face crop the model was trained on (around the
        given ``landmarks``, else the subject's detected face), or the whole photo letterboxed when the
        model was trained on whole photos or no face is found."""
        from ml.zones.crop import face_crop_matrix, whole_image_matrix

        size = self.config.input_size
        if self.config.crop == CROP_FACE:
            if landmarks is None:
                from ml.core.landmarks import detect_faces_with_landmarks
                from ml.core.subject import subject_face

                face = subject_face(detect_faces_with_landmarks(image))
                landmarks = None if face is None else face.landmarks
            if landmarks is not None:
                return face_crop_matrix(np.asarray(landmarks, dtype=np.float64), size), True
            return whole_image_matrix(image.shape, size), False
        return whole_image_matrix(image.shape, size), True

    def predict(self, image: np.ndarray, landmarks: np.ndarray | None = None) -> ZonePrediction:
        from ml.zones.crop import crop_image, uncrop_logits
        from ml.zones.model import preprocess

        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"Expected an RGB uint8 image (H, W, 3), got {image.dtype} {image.shape}.")
        matrix, face_found = self.crop_matrix(image, landmarks)
        tensor, _ = preprocess(crop_image(image, matrix, self.config.input_size), self.config.input_size)
        labels: dict[str, np.ndarray] = {}
        with self._torch.inference_mode():
            for network, task_names in self.networks:
                outputs = network(tensor)
                for task in task_names:
                    scores = uncrop_logits(outputs[task], matrix, image.shape)
                    labels[task] = scores[0].argmax(dim=0).to(self._torch.uint8).numpy()
        return ZonePrediction(
            combine_set_predictions(labels, self.config.sets, self.config.winners),
            labels.get("parts", np.zeros(image.shape[:2], dtype=np.uint8)),
            matrix,
            face_found,
        )


def combine_set_predictions(
    set_labels: Mapping[str, np.ndarray], sets: list[list[str]], winners: Mapping[str, str]
) -> np.ndarray:
    """33 masks from per-set label maps, each zone read from its winning sub-model (``setK``)."""
    shape = next(iter(set_labels.values())).shape
    masks = np.zeros((N_ZONES, *shape), dtype=bool)
    for code in ZONE_ABBREVIATIONS:
        task = winners[code]
        zone_set = sets[int(task.removeprefix("set")) - 1]
        if code not in zone_set:
            raise ValueError(f"Winner '{task}' for zone {code} does not predict it.")
        masks[ZONE_INDEX[code]] = set_labels[task] == zone_set.index(code) + 1
    return masks
