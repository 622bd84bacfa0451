"""Wrinkle analysis of one photo, the pipeline's one entry point (CLI and worker): segmentation of the
forehead-and-eye crop and figures per region and per zone."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from skimage.morphology import skeletonize

from ml.model_names import DLIB_68, WRINKLES_UNET_WDS, ZONES_LANDMARK
from ml.progress import ProgressCallback, report
from ml.wrinkles.crop import CROP_SIZE, AnalysisFrame, ForeheadEyeCrop, face_crop, forehead_eye_crop
from ml.wrinkles.postprocess import (
    NO_POST_PROCESSING,
    PostProcessing,
    analysed_region,
    refine_wrinkle_mask,
)
from ml.wrinkles.train import PROBABILITY_THRESHOLD, predict_probabilities, stack_input
from ml.wrinkles.type_geometry import TypeEvidence, type_regions
from ml.wrinkles.unet import WrinkleUNet


class WrinkleModelUnavailableError(RuntimeError):
    """No trained wrinkle model is available, so no wrinkle figures can be produced."""


def _skeleton(mask: np.ndarray) -> np.ndarray:
    """The skeleton of a bool mask, taken inside its bounding box (a clinical photo's mask covers a small
    part of it)."""
    skeleton = np.zeros_like(mask)
    rows, columns = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    if rows.size:
        window = np.s_[rows[0] : rows[-1] + 1, columns[0] : columns[-1] + 1]
        skeleton[window] = skeletonize(np.pad(mask[window], 1))[1:-1, 1:-1]
    return skeleton


@dataclass(frozen=True)
class WrinkleLines:
    """A photo's wrinkle mask, its skeleton and its connected lines, computed once so that every region's
    figures count the same pixels (see :func:`wrinkle_figures`).

    In the model's square (:class:`ml.wrinkles.crop.AnalysisFrame`), ``weights`` holds the photo pixels
    each square pixel stands for and ``skeleton`` the photo-sized skeleton's pixels in each square pixel:
    the figures are those of the photo-sized masks, counted in the square."""

    mask: np.ndarray
    skeleton: np.ndarray
    lines: np.ndarray
    weights: np.ndarray | None = None

    @classmethod
    def of(
        cls, mask: np.ndarray, frame: AnalysisFrame | None = None, photo_mask: np.ndarray | None = None
    ) -> WrinkleLines:
        """The lines of ``mask``, a photo-sized mask or one in ``frame`` (``photo_mask``: its photo-sized
        map when already drawn)."""
        mask = np.asarray(mask, dtype=bool)
        lines = cv2.connectedComponents(mask.astype(np.uint8), connectivity=8)[1]
        if frame is None or frame.crop is None:
            return cls(mask, _skeleton(mask), lines)
        photo_mask = frame.to_photo(mask) if photo_mask is None else photo_mask
        return cls(mask, frame.photo_skeleton_counts(_skeleton(photo_mask)), lines, frame.pixel_weights)


def wrinkle_figures(lines: WrinkleLines, region: np.ndarray) -> dict[str, float | int | None]:
    """The wrinkle figures of ``region`` (a mask in the frame of ``lines``), all in pixels of the stored
    photo (one frame for every figure):

    * ``area_px``: wrinkle pixels inside the region; ``area_fraction`` = ``area_px`` ÷ ``region_px``;
    * ``total_length_px``: pixels of the skeleton of the photo's whole wrinkle mask inside the region
      (the skeleton is taken once, so a line's length is split between regions, never counted twice);
    * ``count``: connected wrinkle lines (8-connectivity, over the whole photo) whose skeleton passes
      through the region;
    * ``mean_width_px`` = ``area_px`` ÷ ``total_length_px`` (``None`` without skeleton pixels).

    Counted in the model's square, each is that of the photo-sized maps of the masks (see
    :class:`WrinkleLines`), so it is the same figure, in photo pixels, as on the photo.

    Each figure only grows with the region, so a sub-region never exceeds the region that contains it,
    and area and length of disjoint regions add up to those of their union.
    """
    region = np.asarray(region, dtype=bool)
    inside = lines.mask & region
    if lines.weights is None:
        area, region_pixels = int(np.count_nonzero(inside)), int(np.count_nonzero(region))
    else:
        area, region_pixels = int(lines.weights[inside].sum()), int(lines.weights[region].sum())
    on_skeleton = (lines.skeleton > 0) & region
    length = int(lines.skeleton[on_skeleton].sum())
    return {
        "region_px": region_pixels,
        "area_px": area,
        "area_fraction": area / region_pixels if region_pixels else 0.0,
        "total_length_px": length,
        "mean_width_px": area / length if length else None,
        "count": int(np.unique(lines.lines[on_skeleton]).size),
    }


def skin_mask(parts: np.ndarray) -> np.ndarray:
    """Skin where wrinkles are measured: the face parts' skin and nose (bunny lines), i.e. without hair,
    eyebrows, eyes, lips and background."""
    from ml.zones.landmark_model import part_masks

    by_name = part_masks(parts)
    return by_name["skin"] | by_name["nose"]


SEMI_SYNTHETIC_NOTE = (
    "The wrinkle model was trained on semi-synthetic data (real faces with rendered creases); its figures "
    "are not validated on real wrinkles."
)


@dataclass
class WrinklesAnalysis:
    """``mask``: bool ``(H, W)`` wrinkle pixels of the photo; ``data``: the JSON result."""

    mask: np.ndarray
    data: dict[str, Any]


BOX_LABEL_NOTE = (
    "The wrinkle model was fine-tuned on semi-automatic labels from human wrinkle boxes on real photos; "
    "on held-out photos it finds only part of the human-marked wrinkles (see its model card)."
)


def _is_semi_synthetic(description: dict[str, Any], metadata: dict[str, Any]) -> bool:
    """Whether the weights last learnt from semi-synthetic images: the checkpoint's data label, else
    (weights without one) what their description says."""
    if metadata.get("data_label"):
        return "semi-synthetic" in str(metadata["data_label"]).lower()
    text = json.dumps([description.get("data"), description.get("metrics")], default=str).lower()
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
    """The model's square (``crop``), its ``crop_mask``, ``valid`` pixels and ``crop_probability`` (0
    outside the valid pixels), all ``CROP_SIZE`` square, of a photo of ``image_shape``; :attr:`mask` and
    :attr:`probability` map them onto the photo when asked (a 12-MP map costs tens of milliseconds)."""

    crop: ForeheadEyeCrop
    crop_mask: np.ndarray
    valid: np.ndarray
    crop_probability: np.ndarray
    image_shape: tuple[int, ...]

    @property
    def mask(self) -> np.ndarray:
        """The photo-sized bool mask (nearest square pixel)."""
        return self.crop.mask_to_photo(self.crop_mask, self.image_shape)

    @property
    def probability(self) -> np.ndarray:
        """The photo-sized probability (float, 0 outside the square; interpolated linearly)."""
        return self.crop.mask_to_photo(self.crop_probability, self.image_shape)

    def at_threshold(self, threshold: float) -> WrinkleSegmentation:
        """The same segmentation with the mask drawn at another probability ``threshold``."""
        return replace(self, crop_mask=(self.crop_probability > threshold) & self.valid)


def segment_wrinkles(
    image: np.ndarray, landmarks: np.ndarray, network: WrinkleUNet, metadata: dict
) -> WrinkleSegmentation:
    """Segment the square the model was trained on (``metadata["input_region"]``: the forehead-and-eye
    crop of Kim et al., the default, or the whole face) at the model's resolution, resized to the
    square's ``CROP_SIZE``."""
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
    probability = np.where(valid, probability, 0.0).astype(np.float32)
    return WrinkleSegmentation(crop, (probability > threshold) & valid, valid, probability, image.shape)


def face_outline_mask(landmarks: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Bool mask of the face outline (jaw, temples, forehead dome) drawn from the 68 landmarks."""
    from ml.zones.geometry import FaceGeometry
    from ml.zones.landmark_model import rasterize_shape

    return rasterize_shape(FaceGeometry(landmarks).face_outline(), int(image_shape[0]), int(image_shape[1]))


def post_processing_of(metadata: dict) -> PostProcessing:
    """The model's post-processing (``metadata["post_processing"]``, chosen with its threshold on the
    validation photos); none for weights that do not carry one."""
    settings = metadata.get("post_processing")
    return PostProcessing(**settings) if settings else NO_POST_PROCESSING


@dataclass
class AnalysedMask:
    """``whole``: the analysed skin every figure is measured in; ``mask``: the wrinkle pixels in it; both
    in ``frame`` (:class:`ml.wrinkles.crop.AnalysisFrame`), where ``landmarks`` are the 68 points."""

    frame: AnalysisFrame
    landmarks: np.ndarray
    whole: np.ndarray
    mask: np.ndarray

    @functools.cached_property
    def photo_mask(self) -> np.ndarray:
        """The wrinkle mask on the photo (bool, the photo's size; drawn once)."""
        return self.frame.to_photo(self.mask)

    def photo_whole(self) -> np.ndarray:
        """The analysed skin on the photo (bool, the photo's size)."""
        return self.frame.to_photo(self.whole)

    def lines(self) -> WrinkleLines:
        """The wrinkle lines every figure counts (:func:`wrinkle_figures`)."""
        return WrinkleLines.of(self.mask, self.frame, self.photo_mask)


def analysed_wrinkles(
    segmentation: WrinkleSegmentation,
    landmarks: np.ndarray,
    image_shape: tuple[int, ...],
    metadata: dict,
    face_parts: np.ndarray | None = None,
    full_resolution: bool = False,
) -> AnalysedMask:
    """The analysed skin and the wrinkle mask every figure, the CLI, the jobs and the box evaluation use:
    the skin (:func:`skin_mask` of ``face_parts``, the landmark baseline's parts when not given) inside
    the square the model segmented — hair, brows, eyes, lips and the background removed — less the eye,
    mouth and outline margins and the lower nose; and the model's mask there without the lines that are
    not wrinkles (glasses frames, lid folds, specks; :func:`ml.wrinkles.postprocess.refine_wrinkle_mask`).

    Computed in the coarser of the photo and the model's square (:class:`ml.wrinkles.crop.AnalysisFrame`):
    every margin and line rule is measured in eye distances, so it does not depend on the frame
    (``full_resolution``: in the photo's pixels whatever its size, the slower reference)."""
    from ml.zones.landmark_model import render_face_parts

    frame = AnalysisFrame.of(segmentation.crop, image_shape, full_resolution)
    points = frame.points(landmarks)
    if face_parts is None:
        face_parts = render_face_parts(points, frame.shape)
    else:
        face_parts = frame.from_photo(np.asarray(face_parts, dtype=np.uint8))
    if frame.crop is None:
        valid, wrinkles, probability = (
            segmentation.crop.mask_to_photo(segmentation.valid, image_shape),
            segmentation.mask,
            segmentation.probability,
        )
    else:
        valid, wrinkles = segmentation.valid, segmentation.crop_mask
        probability = segmentation.crop_probability
    settings = post_processing_of(metadata)
    skin = skin_mask(face_parts) & valid
    outline = face_outline_mask(points, frame.shape)
    whole = analysed_region(skin, points, settings, face_parts, outline)
    mask = refine_wrinkle_mask(wrinkles, whole, points, settings, probability)
    return AnalysedMask(frame, points, whole, mask)


def detect_wrinkle_types(image: np.ndarray, evidence: TypeEvidence) -> dict[str, Any] | None:
    """The wrinkle types found on the photo by the default type detector
    (:func:`ml.wrinkles.models.default_type_model`: ``{"model", "found"}``, boxes in photo pixels), or
    ``None`` when no trained detector is installed."""
    from ml.registry import registry
    from ml.wrinkles.models import default_type_model

    name = default_type_model()
    if name is None:
        return None
    description = registry.describe(name)
    detector = registry.load(name)
    return {
        "model": {
            "name": description["name"],
            "version": description["version"],
            "map50_val": (description.get("metrics") or {}).get("map50"),
            "method": (description.get("details") or {}).get("method", "learned detector"),
        },
        "found": detector.detect(image, evidence),
    }


def analyze_wrinkles(
    image: np.ndarray,
    *,
    landmarks: np.ndarray | None = None,
    zone_masks: np.ndarray | None = None,
    face_parts: np.ndarray | None = None,
    model: str = WRINKLES_UNET_WDS,
    weights: Path | str | None = None,
    loaded: tuple[WrinkleUNet, dict] | None = None,
    landmark_model: str = DLIB_68,
    progress: ProgressCallback | None = None,
    full_resolution: bool = False,
) -> WrinklesAnalysis:
    """Wrinkle mask of the photo and its figures (:func:`wrinkle_figures`): the whole (``overall``: the
    skin the model segmented), above and below the brows, and every zone of the 33-zone atlas.

    ``model``/``weights`` name the registry model and file (default: the shipped weights); ``loaded`` is a
    ``(network, metadata)`` pair from :func:`ml.wrinkles.train.load_checkpoint` instead. ``landmarks`` are
    the subject's 68 points (found with ``landmark_model`` when not given); ``zone_masks`` the photo's
    ``(33, H, W)`` zones (the landmark baseline's when not given) and ``face_parts`` its face-part label
    map (the landmark baseline's when not given), whose skin (:func:`skin_mask`) bounds every figure.
    Everything is computed in the coarser of the photo and the model's square
    (:class:`ml.wrinkles.crop.AnalysisFrame`: the square's 640 px for a clinical photo) and reported in
    the photo's pixels; only the returned mask is drawn at the photo's size (``full_resolution``: all
    in the photo's pixels, the slower reference of ``bench.wrinkle_frame``). Raises
    :class:`WrinkleModelUnavailableError` when the model has no trained weights and
    :class:`ml.core.subject.NoFaceError` without a face.
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
    report(progress, 0.7, "Measuring wrinkles per zone")
    frame = AnalysisFrame.of(segmentation.crop, image.shape, full_resolution)
    points = frame.points(landmarks)
    if zone_masks is None:
        from ml.zones.landmark_model import render_zone_masks

        # Drawn from the landmarks straight in the analysis frame: a photo-sized drawing adds nothing.
        zones_in_frame = render_zone_masks(points, frame.shape)
        zones_source = f"{ZONES_LANDMARK} (landmark baseline), drawn for this analysis"
    else:
        zones_in_frame = frame.from_photo(np.asarray(zone_masks, dtype=bool))
        zones_source = "given by the caller"
    analysed = analysed_wrinkles(segmentation, landmarks, image.shape, metadata, face_parts, full_resolution)
    whole, mask = analysed.whole, analysed.mask
    lines = analysed.lines()
    brow_row = int(np.floor(points[17:27, 1].min()))
    above_brows = np.zeros_like(whole)
    above_brows[: max(0, brow_row)] = True
    regions = {
        "forehead": wrinkle_figures(lines, whole & above_brows),
        "below_brows": wrinkle_figures(lines, whole & ~above_brows),
    }
    overall = wrinkle_figures(lines, whole)
    per_zone = []
    for index, zone in enumerate(ZONES):
        figures = wrinkle_figures(lines, zones_in_frame[index] & whole)
        per_zone.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "zone_area_px": frame.photo_area(zones_in_frame[index]),
                **figures,
                "wrinkle_area_px": figures["area_px"],
            }
        )
    report(progress, 0.85, "Finding wrinkle types")
    # The type regions are landmark geometry (the rules were fitted on the landmark atlas), whatever zone
    # model drew the per-zone figures' zones.
    if zone_masks is None:
        landmark_zones = zones_in_frame
    else:
        from ml.zones.landmark_model import render_zone_masks

        landmark_zones = render_zone_masks(points, frame.shape)
    evidence = TypeEvidence(points, mask, whole, landmark_zones, frame)
    types = detect_wrinkle_types(image, evidence)
    if types is None:
        notes.append("No trained wrinkle-type detector is installed, so no wrinkle types are reported.")
    semi_synthetic = _is_semi_synthetic(description, metadata)
    if semi_synthetic:
        notes.insert(0, SEMI_SYNTHETIC_NOTE)
    elif "human wrinkle boxes" in str(metadata.get("data_label", "")):
        notes.insert(0, BOX_LABEL_NOTE)
    data = {
        "model": {**description, "trained_on_semi_synthetic_data": semi_synthetic},
        "trained_on_semi_synthetic_data": semi_synthetic,
        "notes": notes,
        "image": {"width": int(image.shape[1]), "height": int(image.shape[0])},
        "pixel_frame": "the stored photo: every area, length and width is in its pixels",
        "input_region": metadata.get("input_region", "forehead-eye"),
        "crop_box": [
            float(segmentation.crop.x1),
            float(segmentation.crop.y1),
            float(segmentation.crop.x2),
            float(segmentation.crop.y2),
        ],
        "analysis_frame": {
            "region": "photo" if frame.crop is None else "model square",
            "height": frame.shape[0],
            "width": frame.shape[1],
            "photo_px_per_pixel": frame.photo_px,
        },
        "wrinkle_area_px": overall["area_px"],
        "overall": overall,
        "regions": regions,
        "types": types,
        "type_regions": [
            {"class": name, **wrinkle_figures(lines, region)}
            for name, region in type_regions(evidence).items()
        ],
        "zones": per_zone,
        "zones_source": zones_source,
    }
    report(progress, 0.9, "Done")
    return WrinklesAnalysis(analysed.photo_mask, data)
