"""Wrinkle analysis of one photo, the pipeline's one entry point (CLI and worker): segmentation of the
forehead-and-eye crop and figures per region and per zone."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage.morphology import skeletonize

from ml.model_names import DLIB_68, WRINKLES_UNET_WDS, ZONES_LANDMARK
from ml.progress import ProgressCallback, report
from ml.wrinkles.crop import CROP_SIZE, ForeheadEyeCrop, face_crop, forehead_eye_crop
from ml.wrinkles.train import PROBABILITY_THRESHOLD, predict_probabilities, stack_input
from ml.wrinkles.unet import WrinkleUNet


class WrinkleModelUnavailableError(RuntimeError):
    """No trained wrinkle model is available, so no wrinkle figures can be produced."""


def wrinkle_figures(mask: np.ndarray, region: np.ndarray, pixel_size: float = 1.0) -> dict[str, float | int]:
    """Area fraction of ``region``, total skeleton length, mean width (area / length) and line count.

    Lengths and widths are in photo pixels when ``pixel_size`` is the photo-pixel size of a mask pixel.
    """
    inside = mask.astype(bool) & region.astype(bool)
    region_pixels = int(np.count_nonzero(region))
    area = int(np.count_nonzero(inside))
    length = int(np.count_nonzero(skeletonize(inside))) if area else 0
    count = cv2.connectedComponents(inside.astype(np.uint8), connectivity=8)[0] - 1 if area else 0
    return {
        "area_fraction": area / region_pixels if region_pixels else 0.0,
        "total_length_px": length * pixel_size,
        "mean_width_px": (area / length) * pixel_size if length else 0.0,
        "count": int(count),
    }


SEMI_SYNTHETIC_NOTE = (
    "The wrinkle model was trained on semi-synthetic data (real faces with rendered creases); its figures "
    "are not validated on real wrinkles."
)


@dataclass
class WrinklesAnalysis:
    """``mask``: bool ``(H, W)`` wrinkle pixels of the photo; ``data``: the JSON result."""

    mask: np.ndarray
    data: dict[str, Any]


def _is_semi_synthetic(description: dict[str, Any], metadata: dict[str, Any]) -> bool:
    text = json.dumps(
        [
            description.get("description"),
            description.get("data"),
            description.get("metrics"),
            metadata.get("data_label"),
        ],
        default=str,
    ).lower()
    return "semi-synthetic" in text or "semi_synthetic" in text


def resolve_wrinkle_model(
    model: str, weights: Path | str | None, loaded: tuple[WrinkleUNet, dict] | None
) -> tuple[WrinkleUNet, dict, dict]:
    from ml.registry import registry

    if loaded is not None:
        network, metadata = loaded
        validation = metadata.get("training", {}).get("validation", {})
        return (
            network,
            metadata,
            {
                "name": f"checkpoint ({metadata.get('variant', 'unknown variant')})",
                "trained": True,
                "data": metadata.get("data_label"),
                "validation_jsi": validation.get("jsi"),
            },
        )
    description = registry.describe(model, weights)
    if not description["trained"]:
        raise WrinkleModelUnavailableError(
            f"Wrinkle model '{model}' has no trained weights; no wrinkle figures can be computed. Train one "
            "with `python -m ml wrinkles train`, or activate a trained version."
        )
    network, metadata = registry.load(model, weights)
    return network, metadata, description


INPUT_REGIONS = ("forehead-eye", "face")


@dataclass
class WrinkleSegmentation:
    """The model's square (``crop``), its ``crop_mask`` and ``valid`` pixels, and the photo-sized
    ``mask`` (bool ``(H, W)``)."""

    crop: ForeheadEyeCrop
    crop_mask: np.ndarray
    valid: np.ndarray
    mask: np.ndarray


def segment_wrinkles(
    image: np.ndarray, landmarks: np.ndarray, network: WrinkleUNet, metadata: dict
) -> WrinkleSegmentation:
    """Segment the square the model was trained on (``metadata["input_region"]``: the forehead-and-eye
    crop of Kim et al., the default, or the whole face) at the model's resolution and map it onto the
    photo."""
    region = metadata.get("input_region", "forehead-eye")
    if region not in INPUT_REGIONS:
        raise ValueError(
            f"Unknown wrinkle model input region '{region}' (known: {', '.join(INPUT_REGIONS)})."
        )
    crop = (face_crop if region == "face" else forehead_eye_crop)(landmarks, size=CROP_SIZE)
    size = int(metadata["size"])
    crop_image = cv2.resize(crop.crop_image(image), (size, size), interpolation=cv2.INTER_AREA)
    probability = predict_probabilities(network, [stack_input(crop_image)])[0]
    probability = cv2.resize(probability, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    threshold = float(metadata.get("threshold", PROBABILITY_THRESHOLD))
    valid = crop.valid_mask(image.shape)
    crop_mask = (probability > threshold) & valid
    return WrinkleSegmentation(crop, crop_mask, valid, crop.mask_to_photo(crop_mask, image.shape))


def analyze_wrinkles(
    image: np.ndarray,
    *,
    landmarks: np.ndarray | None = None,
    zone_masks: np.ndarray | None = None,
    model: str = WRINKLES_UNET_WDS,
    weights: Path | str | None = None,
    loaded: tuple[WrinkleUNet, dict] | None = None,
    landmark_model: str = DLIB_68,
    progress: ProgressCallback | None = None,
) -> WrinklesAnalysis:
    """Wrinkle mask of the photo and its figures: the forehead-and-eye crop and its halves, every zone of
    the 33-zone atlas, and all zones together.

    ``model``/``weights`` name the registry model and file (default: the shipped weights); ``loaded`` is a
    ``(network, metadata)`` pair from :func:`ml.wrinkles.train.load_checkpoint` instead. ``landmarks`` are
    the subject's 68 points (found with ``landmark_model`` when not given); ``zone_masks`` the photo's
    ``(33, H, W)`` zones (the landmark baseline's when not given). A fraction is always wrinkle pixels
    divided by the region's pixels (:func:`wrinkle_figures`). Raises :class:`WrinkleModelUnavailableError`
    when the model has no trained weights and :class:`ml.core.subject.NoFaceError` without a face.
    """
    from ml.zones.atlas import ZONES

    # The model check comes first: an untrained model fails at once, before any image work.
    network, metadata, description = resolve_wrinkle_model(model, weights, loaded)
    notes: list[str] = []
    if landmarks is None:
        from ml.core.landmarks import detect_faces_with_landmarks
        from ml.core.subject import subject_landmarks

        report(progress, 0.1, "Finding landmarks")
        landmarks = subject_landmarks(
            detect_faces_with_landmarks(image, model=landmark_model),
            "No face was found in the photo, so there are no wrinkles to measure.",
        )
    report(progress, 0.3, "Segmenting wrinkles")
    segmentation = segment_wrinkles(image, landmarks, network, metadata)
    crop, crop_mask, valid = segmentation.crop, segmentation.crop_mask, segmentation.valid
    pixel_size = 1.0 / crop.scale
    brow_row = int(round(crop.to_crop(landmarks[17:27])[:, 1].min()))
    forehead = np.zeros_like(valid)
    forehead[: max(0, brow_row)] = True
    periorbital = np.zeros_like(valid)
    periorbital[max(0, brow_row) :] = True
    regions = {
        "forehead_eye_crop": wrinkle_figures(crop_mask, valid, pixel_size),
        "forehead": wrinkle_figures(crop_mask, valid & forehead, pixel_size),
        "glabella_and_periorbital": wrinkle_figures(crop_mask, valid & periorbital, pixel_size),
    }
    mask = segmentation.mask
    report(progress, 0.7, "Measuring wrinkles per zone")
    zones_source = "given by the caller"
    if zone_masks is None:
        from ml.zones.analysis import analyze_zones

        zone_masks = analyze_zones(image, landmarks=landmarks).masks
        zones_source = f"{ZONES_LANDMARK} (landmark baseline), drawn for this analysis"
    per_zone = []
    for index, zone in enumerate(ZONES):
        per_zone.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "zone_area_px": int(zone_masks[index].sum()),
                "wrinkle_area_px": int((mask & zone_masks[index]).sum()),
                **wrinkle_figures(mask, zone_masks[index]),
            }
        )
    semi_synthetic = _is_semi_synthetic(description, metadata)
    if semi_synthetic:
        notes.insert(0, SEMI_SYNTHETIC_NOTE)
    data = {
        "model": {**description, "trained_on_semi_synthetic_data": semi_synthetic},
        "trained_on_semi_synthetic_data": semi_synthetic,
        "notes": notes,
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
        "crop_box": [float(crop.x1), float(crop.y1), float(crop.x2), float(crop.y2)],
        "wrinkle_area_px": int(mask.sum()),
        "overall": wrinkle_figures(mask, zone_masks.any(axis=0)),
        "regions": regions,
        "zones": per_zone,
        "zones_source": zones_source,
    }
    report(progress, 0.9, "Done")
    return WrinklesAnalysis(mask, data)
