"""The standardized (personalized) residual map: each pixel's PSE relative to normal faces at that place.

A normalizer's raw reconstruction error is high wherever every face is reconstructed poorly (the eyes,
nostrils, lip line and hair edges of a 128-px autoencoder), so the raw PSE heatmap of Hayajneh et al.
peaks there on normal and abnormal faces alike, and a local defect has to beat that ordinary error to
show. Standard practice in reconstruction-based anomaly detection is to express each location's
residual against the residual distribution of normal images at the same (aligned) location — e.g.
per-pixel Gaussian / z-score normalisation of the anomaly map in PaDiM (Defard et al., ICPR 2021
workshops) and the per-location normal statistics of Bergmann et al.'s MVTec AD baselines (CVPR 2019).

Here: for each aligned pixel and YCbCr channel, the median ``m`` and the scaled median absolute
deviation ``s = 1.4826 · MAD`` of the eroded PSE over normal TRAINING faces (never the cleft pairs, never
the held-out test faces), both Gaussian-smoothed (σ = 2 px at 128 px: the FFHQ alignment varies by a
few pixels between faces) and ``s`` floored at a quarter of its median over the pixels the normalizer
changes on some normal face (so a pixel that is almost always reconstructed perfectly does not turn
noise into a huge z). The standardized map is ``z = max(0, (PSE − m) / s)`` per channel; the score
is Hayajneh's formula on it, ``S = −log(‖z_region‖_F / N)``. Fixed before any measurement, except the
floor's pixel set, corrected after the first measurement showed it degenerate for the inpainting
normalizer (report §3.4, labelled post hoc); not tuned on test photos.

The arrays (fp16, ``<weights stem>.residual.npz`` beside the normalizer's weights) and their provenance
are written by ``python -m ml normality fit-residual-reference``.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

MAD_TO_SD = 1.4826
SMOOTHING_SIGMA_FRACTION = 2.0 / 128.0
SCALE_FLOOR_FRACTION = 0.25
STANDARDIZED_METRIC = "pse-ycbcr-eroded-standardized"


@dataclass(frozen=True)
class ResidualReference:
    """Per-pixel, per-channel median and scale ``(S, S, 3)`` of normal faces' eroded PSE."""

    median: np.ndarray
    scale: np.ndarray
    provenance: dict[str, Any]

    @property
    def size(self) -> int:
        return int(self.median.shape[0])


def residual_reference_path(weights: Path) -> Path:
    """Where the reference of a normalizer's weights file lives: beside it, ``<stem>.residual.npz``."""
    return weights.with_name(f"{weights.stem}.residual.npz")


def _blur_where_known(values: np.ndarray, known: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur of ``(S, S, 3)`` values that uses only the ``known`` ``(S, S)`` pixels (normalized
    convolution); 0 where no known pixel is near."""
    weight = known.astype(np.float32)
    summed = cv2.GaussianBlur(np.where(known[..., None], values, 0.0).astype(np.float32), (0, 0), sigma)
    norm = cv2.GaussianBlur(weight, (0, 0), sigma)[..., None]
    return np.divide(summed, norm, out=np.zeros_like(summed), where=norm > 1e-6)


def fit_residual_reference(
    heatmaps: np.ndarray, provenance: dict[str, Any], fitted: np.ndarray | None = None
) -> ResidualReference:
    """Median and floored MAD scale of ``(N, S, S, 3)`` eroded PSE maps of normal faces, smoothed.

    ``fitted`` ``(N, S, S)`` bool marks the pixels each face's fit used (its fit pixels): the statistics of
    a pixel come only from the faces that fitted it, as the analysis compares only those. Pixels no face
    fitted get median 0 and the floor scale (no analysis with those fit pixels scores them).
    """
    maps = np.asarray(heatmaps, dtype=np.float64)
    if maps.ndim != 4 or maps.shape[1] != maps.shape[2] or maps.shape[3] != 3 or len(maps) < 2:
        raise ValueError(f"Need at least two (S, S, 3) heatmaps; got shape {maps.shape}.")
    fitted = np.ones(maps.shape[:3], dtype=bool) if fitted is None else np.asarray(fitted, dtype=bool)
    if fitted.shape != maps.shape[:3]:
        raise ValueError(f"The fitted-pixel masks {fitted.shape} do not match the heatmaps {maps.shape[:3]}.")
    sigma = SMOOTHING_SIGMA_FRACTION * maps.shape[1]
    maps = np.where(fitted[..., None], maps, np.nan)
    known = fitted.any(axis=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN pixels: no face fitted them
        median = np.nanmedian(maps, axis=0)
        scale = MAD_TO_SD * np.nanmedian(np.abs(maps - median), axis=0)
    median = _blur_where_known(median, known, sigma)
    scale = _blur_where_known(scale, known, sigma)
    # The floor is taken over the pixels the normalizer changes on some normal face: an inpainting
    # normalizer leaves everything outside its hole as it is, and a median over the whole image would
    # then be 0 (version 1 of this rule did that: report §3.4).
    changed = (np.nan_to_num(maps) > 0).any(axis=0).reshape(-1, 3)
    flat = scale.reshape(-1, 3)
    floor = np.array(
        [
            SCALE_FLOOR_FRACTION * np.median(flat[changed[:, c], c]) if changed[:, c].any() else 0.0
            for c in range(3)
        ]
    )
    scale = np.maximum(scale, np.maximum(floor, 1e-3))
    return ResidualReference(median.astype(np.float32), scale.astype(np.float32), dict(provenance))


def standardize(heatmap: np.ndarray, reference: ResidualReference) -> np.ndarray:
    """``max(0, (PSE − median) / scale)`` per pixel and channel; ``heatmap`` must be at the reference size."""
    if heatmap.shape != reference.median.shape:
        raise ValueError(
            f"Heatmap {heatmap.shape} does not match the residual reference {reference.median.shape}: "
            "the reference belongs to another normalizer size."
        )
    return np.maximum(0.0, (heatmap - reference.median) / reference.scale)


def save_residual_reference(reference: ResidualReference, path: Path) -> None:
    """fp16 arrays (a few hundred kB at 128 px) and the provenance as JSON text."""
    import json

    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as handle:
        np.savez_compressed(
            handle,
            median=reference.median.astype(np.float16),
            scale=reference.scale.astype(np.float16),
            provenance=np.array(json.dumps(reference.provenance)),
        )


def load_residual_reference(path: Path) -> ResidualReference | None:
    """The reference stored at ``path``, or ``None`` when the normalizer has none."""
    import json

    if not path.is_file():
        return None
    with np.load(path, allow_pickle=False) as stored:
        return ResidualReference(
            stored["median"].astype(np.float32),
            stored["scale"].astype(np.float32),
            json.loads(str(stored["provenance"])),
        )
