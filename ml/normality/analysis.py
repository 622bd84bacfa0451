"""Normality of one photo, the pipeline's one entry point (CLI and worker): personalized normalization,
the PSE heatmap and score S (Hayajneh et al.), and the 1–7 rating from Boyaci et al.'s features.

The number of candidates and the step counts come from the fitted rating regressor (its features are
only valid with the settings they were extracted with, :mod:`ml.normality.settings`), unless the
caller names them.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ml.model_names import (
    DLIB_68,
    NORMALITY_AUTOENCODER,
    NORMALITY_INPAINTING,
    NORMALITY_REGRESSOR,
    NORMALITY_STYLEGAN2,
)
from ml.normality.geometry import NormalGeometry, geometry_corrected
from ml.normality.scoring import REGION_LABELS
from ml.progress import ProgressCallback, report, scaled

RATING_SCALE = "1-7 (7 = most normal)"
DIRECTION = "higher S = more normal"
# Plain-language names of the metrics and regions the result names by code, for the pages.
METRIC_LABELS = {
    "pse-ycbcr-eroded": "difference in brightness and colour between the face and its normalized version "
    "(squared error in YCbCr; isolated specks removed)",
    "pse-ycbcr-eroded-standardized": "difference in brightness and colour between the face and its "
    "normalized version, measured against how large that difference usually is at the same place on "
    "normal faces (0 = no more than usual)",
    "ssim-y": "difference in local structure of brightness (1 - SSIM)",
    "lpips-alex": "learned perceptual difference (LPIPS network)",
    "lpips-alex-random-backbone": "LPIPS with an untrained network (for comparison only)",
    "ssim-fallback": "structural similarity (SSIM), used because the LPIPS network is not installed",
}
# ``raw``: Hayajneh's PSE map as it is; ``standardized``: relative to normal faces' residuals at each
# place (:mod:`ml.normality.residual_reference`). The standardized map did not win the validity tests
# under the rule fixed before measuring (docs/reports/normality-real-faces.md), so raw stays the default.
RESIDUAL_MAPS = ("raw", "standardized")
DEFAULT_RESIDUAL_MAP = "raw"
# The analysis works on a 128-px aligned face (YuNet searches at 480 px): a photo whose shorter side
# is at least twice this is decoded at reduced size (``load_photo``), which is most of a 12-MP
# photo's time otherwise.
ANALYSIS_MIN_SIDE = 720
# Which aligned-crop pixels the latent normalizer's fit and S use (docs/reports/normality-real-faces.md,
# sections 10 and 12): ``all`` (the padding the alignment invents where the face fills the photo
# included), ``observed`` (only the photo's own pixels), ``observed-face`` (the photo's own pixels inside
# the face outline, so that the fit covers the same part of the face whatever the framing) or
# ``observed-core`` (inside the brows-to-mouth hull, which tight crops cut less than the outline).
FIT_PIXELS = ("all", "observed", "observed-face", "observed-core")
# Per normalizer, where a setting other than ``all`` won the rule fixed before measuring (section 10): for
# the autoencoder, fitting only the observed face halved the framing noise floor of S (0.508 → 0.286) and
# raised crop-vs-original agreement (50 → 70 %), with the paired and lip-notch tests still passing.
DEFAULT_FIT_PIXELS: dict[str, str] = {NORMALITY_AUTOENCODER: "observed-face"}
# Below this share of the face outline inside the photo (tight framing) the result says S may not be
# comparable with a loosely framed photo: on 510 re-framed London photos, |ΔS| stayed within the noise floor
# for 95 % of the 498 framings with the whole outline inside and for 92 % (11) of the 12 with 70-95 % inside
# (report §21.2, normalizer version 3; 75 % with version 2, §20; the threshold was set in §18).
TIGHT_FRAMING_FACE_SHARE = 0.95
# Above this share of the face outline showing digital fill (black corners of an earlier rotation or crop),
# the photo is flagged as edited: on MEBeauty's third-party crops (13–39 % fill) S differed from the
# unedited original by more than the noise floor in about half of the pairs (report sections 21.2, 22).
EDITED_FILL_FACE_SHARE = 0.02


def _observed_share(observed: np.ndarray, mask: np.ndarray) -> float:
    """The share of ``mask``'s pixels that are the photo's own (not alignment padding)."""
    return float((observed & mask).sum()) / max(int(mask.sum()), 1)


def default_fit_pixels(normalizer: str) -> str:
    """The fit pixels the analysis uses for ``normalizer`` unless the caller names them."""
    return DEFAULT_FIT_PIXELS.get(normalizer, "all")


class NormalizerUnavailableError(RuntimeError):
    """The normalizer has no weights, so no score can be computed; the message says how to get them."""


@dataclass
class NormalityAnalysis:
    """The aligned face, its normalized version, the heatmap with its scoring region and the landmarks (all
    in the aligned face's frame), and ``data``, the JSON result. ``fit_mask``: the crop pixels the fit and
    S used (``FIT_PIXELS``), ``None`` when every pixel was used."""

    aligned: np.ndarray
    normalized: np.ndarray
    heatmap: np.ndarray
    region_mask: np.ndarray
    landmarks: np.ndarray
    data: dict[str, Any]
    fit_mask: np.ndarray | None = None


def mirror_averaged(
    normalize: Callable[[np.ndarray, np.ndarray | None], np.ndarray],
    image: np.ndarray,
    fit_weights: np.ndarray | None,
    normalized: np.ndarray,
) -> np.ndarray:
    """The mean of ``normalized`` (the normal face fitted to ``image``) and the normal face fitted to the
    mirror image of ``image`` (with the mirrored ``fit_weights``), mirrored back. The aligned crop's
    pixel mirror is exact, so both normal faces lie on the same pixels."""
    mirrored_weights = None if fit_weights is None else np.ascontiguousarray(fit_weights[:, ::-1])
    mirrored = normalize(np.ascontiguousarray(image[:, ::-1]), mirrored_weights)[:, ::-1]
    mean = (normalized.astype(np.float32) + mirrored.astype(np.float32)) / 2.0
    return np.clip(np.rint(mean), 0, 255).astype(np.uint8)


def region_weighted_fit(
    fit_mask: np.ndarray | None, landmarks: np.ndarray, shape: tuple[int, int], region: str, weight: float
) -> np.ndarray | None:
    """The per-pixel weight of the latent normalizer's fit: ``fit_mask`` (``None``: every pixel) with the
    scoring region down-weighted to ``weight`` (Hayajneh et al. 2025's idea: the person's own face
    elsewhere, the normal prior in the region); unchanged for ``weight`` 1."""
    from ml.normality.scoring import region_mask

    if not 0.0 <= weight <= 1.0:
        raise ValueError(f"The region's fit weight must lie in [0, 1]; got {weight}.")
    if weight == 1.0:
        return fit_mask
    weights = np.ones(shape[:2], np.float32) if fit_mask is None else fit_mask.astype(np.float32)
    weights[region_mask(landmarks, shape[:2], region)] *= weight
    return weights


def fit_pixels_mask(observed: np.ndarray, landmarks: np.ndarray, fit_pixels: str) -> np.ndarray | None:
    """The crop pixels a fit with ``fit_pixels`` uses, from the crop's observed-pixel mask and landmarks
    (``None`` for ``all``)."""
    from ml.normality.preprocess import face_mask, inner_face_mask

    if fit_pixels not in FIT_PIXELS:
        raise ValueError(f"Unknown fit pixels '{fit_pixels}'; choose one of {', '.join(FIT_PIXELS)}.")
    if fit_pixels == "all":
        return None
    if fit_pixels == "observed":
        return observed
    if fit_pixels == "observed-core":
        return observed & inner_face_mask(landmarks, observed.shape)
    return observed & face_mask(landmarks, observed.shape)


def regressor_fit_pixels(regressor: dict[str, Any]) -> str:
    """The fit pixels a rating regressor's features were extracted with (``all`` before they existed)."""
    return str(regressor.get("normalizer_settings", {}).get("fit_pixels", "all"))


def regressor_features_sha256(regressor: dict[str, Any]) -> str | None:
    """The SHA-256 of the normalizer weights a rating regressor's features were extracted with (``None``
    for regressors fitted before it was recorded: their features are taken to be the normalizer's of S)."""
    return regressor.get("normalizer_settings", {}).get("weights_sha256")


def normalizer_adapt_steps(name: str, adapt_steps: int | None) -> int | None:
    """The adaptation steps the normalizer ``name`` runs: none for the inpainting normalizer (it has no
    adaptation), else ``adapt_steps`` or its default (the embedded autoencoder's; Hayajneh's for
    StyleGAN2)."""
    from ml.normality.projection import HAYAJNEH_ADAPT_STEPS
    from ml.normality.settings import DEFAULT_ADAPT_STEPS

    if name == NORMALITY_INPAINTING:
        return None
    if adapt_steps is not None:
        return adapt_steps
    return DEFAULT_ADAPT_STEPS if name == NORMALITY_AUTOENCODER else HAYAJNEH_ADAPT_STEPS


@functools.cache
def _normal_geometry_file(path: str, mtime_ns: int) -> NormalGeometry:
    return NormalGeometry.load(path)


def load_normal_geometry(path: Path | str | None) -> NormalGeometry:
    """The normal geometry (:class:`ml.normality.geometry.NormalGeometry`) in ``path``, read once per file
    version. Raises ValueError without a path (no normal geometry ships yet)."""
    if path is None:
        raise ValueError(
            "The geometry correction needs a normal-geometry file (python -m ml normality fit-geometry)."
        )
    resolved = Path(path)
    return _normal_geometry_file(str(resolved.resolve()), resolved.stat().st_mtime_ns)


def build_normalizer(
    name: str, weights: Path | str | None, projection_steps: int | None, adapt_steps: int | None
) -> Any:
    """The normalizer ``name`` from ``weights`` (the shipped file when ``None``) with these step counts."""
    from ml.normality.projection import LatentNormalizer, ProjectionConfig
    from ml.registry import registry

    if name == NORMALITY_INPAINTING:
        from ml.normality.inpainting import InpaintingNormalizer

        return InpaintingNormalizer(registry.load(name, weights))
    if name == NORMALITY_AUTOENCODER:
        from ml.normality.autoencoder import autoencoder_normalizer

        config = ProjectionConfig(steps=projection_steps) if projection_steps else None
        return autoencoder_normalizer(
            registry.load(name, weights), config, normalizer_adapt_steps(name, adapt_steps)
        )
    generator, w_avg, w_std = registry.load(name, weights)
    config = ProjectionConfig(steps=projection_steps) if projection_steps else ProjectionConfig()
    return LatentNormalizer(generator, w_avg, w_std, config, normalizer_adapt_steps(name, adapt_steps))


def load_photo(source: str | Path | bytes) -> tuple[np.ndarray, float]:
    """The photo for a normality analysis and its scale relative to the full photo (by which stored
    full-size landmarks are multiplied): large JPEGs are decoded at reduced size
    (:func:`ml.core.imageio.load_image_reduced`, shorter side ≥ ``ANALYSIS_MIN_SIDE``)."""
    from ml.core.imageio import load_image_reduced

    return load_image_reduced(source, ANALYSIS_MIN_SIDE)


def heatmap_colours(heatmap: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA colour map of the heatmap inside the scoring region (transparent outside), scaled to the
    region's 99th percentile, for an overlay whose opacity a page controls."""
    magnitude = heatmap.sum(axis=-1) if heatmap.ndim == 3 else heatmap
    inside = magnitude[mask]
    scale = (float(np.percentile(inside, 99)) if inside.size else 0.0) or float(magnitude.max()) or 1.0
    levels = np.clip(magnitude / scale * 255.0, 0, 255).astype(np.uint8)
    colour = cv2.cvtColor(cv2.applyColorMap(levels, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
    rgba = np.zeros((*magnitude.shape, 4), dtype=np.uint8)
    rgba[..., :3] = colour
    rgba[..., 3] = np.where(mask, 255, 0)
    return rgba


def zone_energy(heatmap: np.ndarray, zone_masks: np.ndarray) -> list[dict[str, Any]]:
    """Per atlas zone: share of the face's heatmap energy and mean energy per pixel."""
    from ml.zones.atlas import ZONES

    magnitude = heatmap.sum(axis=-1) if heatmap.ndim == 3 else heatmap
    total = float(magnitude[zone_masks.any(axis=0)].sum())
    rows = []
    for index, zone in enumerate(ZONES):
        inside = magnitude[zone_masks[index]]
        rows.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "energy_fraction": float(inside.sum()) / total if total > 0 else 0.0,
                "mean_energy": float(inside.mean()) if inside.size else 0.0,
            }
        )
    return rows


def _reference_range(description: dict[str, Any], metric: str, fit_pixels: str) -> dict[str, Any] | None:
    """The card's reference range and noise floor of S, if they were measured with this heatmap metric
    and these fit pixels (ranges measured before the standardized map, or the fit pixels, existed are of
    the raw PSE map with every pixel fitted)."""
    reference = dict(description.get("details") or {}).get("reference")
    if reference is None or reference.get("heatmap", "pse-ycbcr-eroded") != metric:
        return None
    if reference.get("fit_pixels", "all") != fit_pixels:
        return None
    return reference


def analyze_normality(
    image: np.ndarray,
    *,
    landmarks: np.ndarray | None = None,
    region: str = "mouth_nose",
    metric: str = "pse",
    normalizer: str = NORMALITY_AUTOENCODER,
    weights: Path | str | None = None,
    rating: bool = True,
    regressor_weights: Path | str | None = None,
    rating_weights: Path | str | None = None,
    projection_steps: int | None = None,
    adapt_steps: int | None = None,
    candidates: int | None = None,
    landmark_model: str = DLIB_68,
    residual_map: str = DEFAULT_RESIDUAL_MAP,
    fit_pixels: str | None = None,
    region_fit_weight: float = 1.0,
    symmetry_weight: float = 0.0,
    mirror_average: bool | None = None,
    geometry: Path | str | None = None,
    geometry_limit: float | None = None,
    progress: ProgressCallback | None = None,
) -> NormalityAnalysis:
    """Score S of the subject's face (``landmarks``, found with ``landmark_model`` when not given) in
    ``region`` and, with ``rating`` and a fitted regressor, its 1–7 rating.

    ``normalizer`` is the inpainting normalizer, the embedded autoencoder or the operator-provided
    StyleGAN2, ``weights`` and ``regressor_weights`` other files than the shipped ones. ``candidates``
    overrides K (default: the regressor's, or 1 without a rating). ``residual_map`` ``standardized``
    scores the PSE map relative to normal faces (the normalizer's stored residual reference; the raw
    map, with a note, when it has none); ``data["score_raw"]`` is always Hayajneh's S of the raw map.
    ``fit_pixels`` (``FIT_PIXELS``; default :func:`default_fit_pixels`): other than ``all``, the crop
    pixels the alignment filled with padding (the face filled the photo), and with ``observed-face``
    those outside the face outline, are left out of the latent normalizers' fit (not the inpainting
    normalizer's: its network was trained with padding as context) and of S and the heatmap. The rating's
    features come from candidates fitted on the pixels its regressor's were (``regressor_fit_pixels``);
    when those are ``fit_pixels`` one set of candidates serves the rating and S. They also come from the
    normalizer weights its regressor's were extracted with (:func:`regressor_features_sha256`): those of
    S, or else ``rating_weights`` (default: the shipped autoencoder file) in a second normalization, so a
    study that scores S with another autoencoder version keeps the shipped rating; with neither, S is
    given without the rating.
    ``region_fit_weight`` below 1 down-weights the scoring region in the latent normalizer's fit
    (:func:`region_weighted_fit`; S is unchanged in what it compares); ``symmetry_weight`` above 0
    fits the latent normalizer's normal face to the face blended with its own mirror image
    (:func:`ml.normality.preprocess.symmetric_target`; S still compares the photo's own face).
    ``mirror_average`` (default ``DEFAULT_MIRROR_AVERAGE``) averages a latent normalizer's normal face
    with the one fitted to the face's mirror image (:func:`mirror_averaged`); S, the heatmap and the
    normal face shown are then that average's, the rating's features stay the first fit's.
    ``geometry_limit`` brings a latent normalizer's normal face's nose–mouth landmarks within that many
    standard deviations of their normal positions (the normal-geometry file ``geometry``;
    :func:`ml.normality.geometry.geometry_corrected`); S, the heatmap and the normal face shown are then
    the corrected face's, the rating's features stay the uncorrected fit's.
    Raises :class:`NormalizerUnavailableError` without normalizer weights,
    :class:`ml.core.subject.NoFaceError` without a face and, unless ``fit_pixels`` is ``all``,
    :class:`ml.normality.scoring.RegionNotObservedError` when too little of the region is in the photo.
    """
    from ml.normality.features import candidate_features, feature_vector
    from ml.normality.models import residual_reference
    from ml.normality.preprocess import align_face, face_mask, symmetric_target
    from ml.normality.scoring import region_mask, score_pair
    from ml.normality.settings import DEFAULT_MIRROR_AVERAGE, analysis_settings
    from ml.registry import registry
    from ml.zones.landmark_model import render_zone_masks

    started = time.perf_counter()
    timings: dict[str, float] = {}
    notes: list[str] = []
    description = registry.describe(normalizer, weights)
    if not description["trained"]:
        raise NormalizerUnavailableError(
            f"The normalizer '{normalizer}' has no weights, so no normality score can be computed. "
            f"{description['command']}."
        )
    regressor, regressor_description = None, None
    if rating:
        regressor_description = registry.describe(NORMALITY_REGRESSOR, regressor_weights)
        fitted = (
            registry.load(NORMALITY_REGRESSOR, regressor_weights)
            if regressor_description["trained"]
            else None
        )
        # Regressors fitted before the inpainting normalizer existed record no normalizer: the autoencoder's.
        fitted_on = (fitted or {}).get("normalizer", NORMALITY_AUTOENCODER)
        if fitted is not None and fitted_on == normalizer:
            regressor = fitted
        elif fitted is not None:
            notes.append(
                f"The rating regressor was fitted on features of '{fitted_on}', not of '{normalizer}'; "
                "the score S is given, the 1-7 rating is not."
            )
            regressor_description = None
        else:
            notes.append(
                f"No fitted rating regressor ({regressor_description['command']}); the score S is given, "
                "the 1-7 rating is not."
            )
            regressor_description = None
    rating_description = description
    if regressor is not None:
        features_sha256 = regressor_features_sha256(regressor)
        if features_sha256 not in (None, description["weights_sha256"]):
            # Only the embedded autoencoder is a study's own model version; its shipped file stays at hand.
            rating_description = registry.describe(normalizer, rating_weights)
            if normalizer != NORMALITY_AUTOENCODER or rating_description["weights_sha256"] != features_sha256:
                notes.append(
                    f"The rating regressor's features were extracted with normalizer weights "
                    f"{features_sha256[:12]}, which are neither this analysis' nor the shipped ones; "
                    "the score S is given, the 1-7 rating is not."
                )
                regressor, regressor_description = None, None
    if residual_map not in RESIDUAL_MAPS:
        raise ValueError(f"Unknown residual map '{residual_map}'; choose one of {', '.join(RESIDUAL_MAPS)}.")
    reference = residual_reference(normalizer, weights) if residual_map == "standardized" else None
    if residual_map == "standardized" and reference is None:
        notes.append(
            f"The normalizer '{normalizer}' has no residual reference of normal faces (python -m ml "
            "normality fit-residual-reference), so S is scored on the raw PSE map."
        )
    settings = analysis_settings(regressor, projection_steps, adapt_steps)
    if candidates is not None:
        settings = dataclasses.replace(settings, candidates=candidates)
    if normalizer == NORMALITY_STYLEGAN2:
        # The regressor's settings are the embedded normalizer's; StyleGAN2 keeps Boyaci's unless named.
        model = build_normalizer(normalizer, weights, projection_steps, adapt_steps)
    else:
        model = build_normalizer(normalizer, weights, settings.projection_steps, settings.adapt_steps)
    # The rating's features from the weights its regressor's came from, where S moved to other weights.
    rating_model = (
        model
        if regressor is None or rating_description is description
        else build_normalizer(normalizer, rating_weights, settings.projection_steps, settings.adapt_steps)
    )
    timings["load_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    report(progress, 0.05, "Aligning the face")
    if landmarks is None:
        from ml.core.landmarks import detect_faces_with_landmarks
        from ml.core.subject import subject_landmarks

        landmarks = subject_landmarks(detect_faces_with_landmarks(image, model=landmark_model))
    inpainting = normalizer == NORMALITY_INPAINTING
    aligned = align_face(image, landmarks, model.size if inpainting else model.decoder.size)
    fit_pixels = fit_pixels or default_fit_pixels(normalizer)
    reference_fit_pixels = reference.provenance.get("fit_pixels", "all") if reference is not None else None
    if reference_fit_pixels is not None and reference_fit_pixels != fit_pixels and not inpainting:
        notes.append(
            f"The residual reference of normal faces was fitted on '{reference_fit_pixels}' pixels and this "
            f"analysis fits '{fit_pixels}': the standardized map compares unlike fits; the raw map (S_raw) "
            "does not depend on it."
        )
    fit_mask = fit_pixels_mask(aligned.observed, aligned.landmarks, fit_pixels)
    fit_weights = region_weighted_fit(
        fit_mask, aligned.landmarks, aligned.image.shape, region, region_fit_weight
    )
    # The rating's features must come from candidates fitted on the pixels its regressor's were; when
    # those are the analysis' own, one set of candidates serves both the rating and S.
    rating_fit_pixels = regressor_fit_pixels(regressor) if regressor is not None else fit_pixels
    shared_fit = (
        rating_model is model
        and rating_fit_pixels == fit_pixels
        and region_fit_weight == 1
        and symmetry_weight == 0
    )
    # Other weights may work at another crop size (a study's own version): the face aligned for them.
    rating_aligned = (
        aligned
        if inpainting or rating_model.decoder.size == model.decoder.size
        else align_face(image, landmarks, rating_model.decoder.size)
    )
    candidate_mask = (
        fit_weights
        if shared_fit
        else fit_pixels_mask(rating_aligned.observed, rating_aligned.landmarks, rating_fit_pixels)
    )
    timings["detect_align_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    if inpainting:
        w_raw, normalizations = model.candidates(
            aligned.image, settings.candidates, scaled(progress, 0.1, 0.9), landmarks=aligned.landmarks
        )
    else:
        w_raw, normalizations = rating_model.candidates(
            rating_aligned.image,
            settings.candidates,
            progress=scaled(progress, 0.1, 0.9),
            observed=candidate_mask,
        )
    normalized = normalizations[0].image
    target = aligned.image
    if not inpainting and not shared_fit:
        target = symmetric_target(aligned.image, aligned.landmarks, fit_mask, symmetry_weight)
        normalized = model.normalized_image(target, observed=fit_weights)
    mirror_average = (DEFAULT_MIRROR_AVERAGE if mirror_average is None else mirror_average) and not inpainting
    if mirror_average:
        normalized = mirror_averaged(
            lambda face, fit: model.normalized_image(face, observed=fit), target, fit_weights, normalized
        )
    geometry_moved = None
    if geometry_limit is not None and not inpainting:
        normalized, geometry_moved = geometry_corrected(
            normalized, aligned.image, load_normal_geometry(geometry), geometry_limit
        )
    timings["normalize_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    report(progress, 0.92, "Scoring")
    raw_scored = score_pair(aligned.image, normalized, aligned.landmarks, region, metric, observed=fit_mask)
    scored = (
        score_pair(aligned.image, normalized, aligned.landmarks, region, metric, reference, fit_mask)
        if reference is not None and metric == "pse"
        else raw_scored
    )
    features = candidate_features(
        rating_aligned.image,
        [(c.image, c.w_norm) for c in normalizations],
        w_raw,
        rating_model.perceptual,
        None if inpainting else candidate_mask,
    )
    rating_result = None
    if regressor is not None:
        predicted = float(regressor["pipeline"].predict(feature_vector(features)[None])[0])
        rating_result = {
            "value": float(np.clip(predicted, 1.0, 7.0)),
            "scale": RATING_SCALE,
            "regressor": regressor.get("name"),
            "trained_on": regressor.get("trained_on"),
            "weights_sha256": regressor_description["weights_sha256"],
            "note": regressor_description["limitations"],
            # The normalizer weights its features were extracted with (S's own unless S moved on).
            "features_normalizer": {
                key: rating_description[key] for key in ("name", "version", "weights_sha256")
            },
        }
    region_observed = _observed_share(
        aligned.observed, region_mask(aligned.landmarks, aligned.image.shape[:2], region)
    )
    outline = face_mask(aligned.landmarks, aligned.image.shape[:2])
    face_observed = _observed_share(aligned.observed, outline)
    tight_framing = face_observed < TIGHT_FRAMING_FACE_SHARE
    if tight_framing:
        notes.append(
            f"Only {face_observed:.0%} of the face outline is inside the photo (a tight framing): S of the "
            "same face can then differ from a loosely framed photo's by more than the noise floor (on "
            "re-framed studio photos, for 1 in 12 such framings against 1 in 20 with the whole face inside). "
            "Compare photos framed alike, with a margin around the face."
        )
    fill_share = _observed_share(aligned.fill, outline)
    edited_fill = fill_share > EDITED_FILL_FACE_SHARE
    if edited_fill:
        notes.append(
            f"About {fill_share:.0%} of the face outline in this photo is black fill left by an earlier "
            "rotation or crop, not the face's surroundings: S of such an edited photo differed from the "
            "unedited photo's by more than the noise floor for about half of 210 third-party face crops. "
            "Score photos as taken, without rotating or cropping them first."
        )
    energy = zone_energy(scored.heatmap, render_zone_masks(aligned.landmarks, aligned.image.shape))
    timings["score_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    data = {
        "score": float(scored.score),
        "score_raw": float(raw_scored.score),
        "direction": DIRECTION,
        "rating": rating_result,
        "features": features,
        "region": scored.region,
        "metric": {
            "heatmap": scored.metric,
            "perceptual": model.metric,
            "candidates": settings.candidates,
            "projection_steps": 0 if inpainting else model.config.steps,
            "adapt_steps": model.adapt_steps,
        },
        "residual_reference": reference.provenance
        if reference is not None and scored is not raw_scored
        else None,
        "model": description,
        "regressor": regressor_description,
        "zone_energy": energy,
        "labels": {
            "heatmap": METRIC_LABELS.get(scored.metric, scored.metric),
            "perceptual": METRIC_LABELS.get(model.metric, model.metric),
            "region": REGION_LABELS.get(scored.region, scored.region),
        },
        # Where S of normal faces lies, and how much S moves when only the framing changes (model card);
        # card ranges are measured with the region weighted like the rest of the fit, without geometry.
        "reference": _reference_range(description, scored.metric, fit_pixels)
        if region_fit_weight == 1 and geometry_moved is None
        else None,
        "crop_size": int(aligned.image.shape[0]),
        # How much of the aligned crop is the photo's own (the rest is padding), and which pixels S used.
        "observed": {
            "fit_pixels": fit_pixels,
            "region_fit_weight": region_fit_weight,
            "symmetry_weight": symmetry_weight,
            "mirror_average": mirror_average,
            "geometry": geometry_moved,
            "crop_fraction": round(float(aligned.observed.mean()), 4),
            "face_fraction": round(face_observed, 4),
            "tight_framing": tight_framing,
            "fill_fraction": round(fill_share, 4),
            "edited_fill": edited_fill,
            "region_fraction": round(region_observed, 4),
        },
        "notes": notes,
        "timings": {key: round(value, 3) for key, value in timings.items()},
    }
    return NormalityAnalysis(
        aligned.image, normalized, scored.heatmap, scored.mask, aligned.landmarks, data, fit_mask
    )
