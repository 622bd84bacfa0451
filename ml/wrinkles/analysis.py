"""Wrinkle analysis of one photo: segmentation of the forehead-and-eye crop and figures per region."""

from __future__ import annotations

import cv2
import numpy as np
from skimage.morphology import skeletonize

from ml.wrinkles.crop import CROP_SIZE, forehead_eye_crop
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


def _resolve_model(model: str | tuple[WrinkleUNet, dict] | None) -> tuple[WrinkleUNet, dict, dict]:
    from ml.registry import registry
    from ml.wrinkles.models import DEFAULT_WRINKLE_MODEL

    if isinstance(model, tuple):
        network, metadata = model
        validation = metadata.get("training", {}).get("validation", {})
        return (
            network,
            metadata,
            {
                "name": f"checkpoint ({metadata.get('variant', 'unknown variant')})",
                "trained": True,
                "data_label": metadata.get("data_label"),
                "validation_jsi": validation.get("jsi"),
            },
        )
    name = model or DEFAULT_WRINKLE_MODEL
    description = registry.describe(name)
    if not description["trained"]:
        raise WrinkleModelUnavailableError(
            f"Wrinkle model '{name}' has no trained weights ({description['weights_path']}); "
            "no wrinkle figures can be computed. Train one with `python -m ml wrinkles train`."
        )
    network, metadata = registry.load(name)
    return network, metadata, description


def analyze_wrinkles(
    image: np.ndarray, landmarks: np.ndarray, model: str | tuple[WrinkleUNet, dict] | None = None
) -> dict:
    """Wrinkle mask of the photo and figures for the forehead-and-eye crop and its halves.

    ``model`` is a registry name (default: the shipped model) or a ``(network, metadata)`` pair from
    :func:`ml.wrinkles.train.load_checkpoint`. Raises :class:`WrinkleModelUnavailableError` when the
    model has no trained weights. Returns ``{"mask": bool (H, W), "crop_box", "regions": {name:
    figures}, "model": description}``; per-zone figures (33-zone atlas) are left to ``ml.zones``.
    """
    network, metadata, description = _resolve_model(model)
    crop = forehead_eye_crop(landmarks, size=CROP_SIZE)
    size = int(metadata["size"])
    crop_image = cv2.resize(crop.crop_image(image), (size, size), interpolation=cv2.INTER_AREA)
    probability = predict_probabilities(network, [stack_input(crop_image)])[0]
    probability = cv2.resize(probability, (CROP_SIZE, CROP_SIZE), interpolation=cv2.INTER_LINEAR)
    threshold = float(metadata.get("threshold", PROBABILITY_THRESHOLD))
    valid = crop.valid_mask(image.shape)
    crop_mask = (probability > threshold) & valid
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
    return {
        "mask": crop.mask_to_photo(crop_mask, image.shape),
        "crop_box": [crop.x1, crop.y1, crop.x2, crop.y2],
        "regions": regions,
        "model": description,
    }
