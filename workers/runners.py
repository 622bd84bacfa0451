"""One runner per analysis kind: read the photo, call the ml pipeline, return what to record.

Runners hold no Celery or database logic beyond reading the photo and earlier results of the same
photo, so they are easy to test and to call from a benchmark. Models are loaded through ml.registry,
which caches them per process; an admin-activated ModelVersion's weights are loaded (and cached)
from its path instead.
"""

import functools
import io
import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from webapp.analysis.kinds import (
    KIND_SPECS,
    NORMALITY_MODEL,
    NORMALITY_REGRESSOR,
    WRINKLES_MODEL,
    ZONES_LANDMARK_MODEL,
    ZONES_SEGMENTATION_MODEL,
    AnalysisKind,
    model_is_usable,
    not_trained_message,
)
from webapp.analysis.models import AnalysisJob, Result
from webapp.analysis.services import Artifact

Progress = Callable[[float, str], None]

ZONE_MASKS_ARTIFACT = "zone-masks"
FACE_PARTS_ARTIFACT = "face-parts"
# Bits per channel of the 16-bit RGB zone-mask PNG: 3 × 16 = 48 ≥ 33 zones.
_BITS_PER_CHANNEL = 16
NORMALITY_RATING_SCALE = "1-7 (7 = most normal)"
MEBEAUTY_RATING_NOTE = (
    "The rating regressor was fitted on MEBeauty ATTRACTIVENESS ratings (1-10) rescaled to 1-7, "
    "not on normality ratings; read the rating as indicative only."
)
STUDY_RATING_NOTE = (
    "The rating regressor was fitted on this study's own human ratings (see its model version for R, MAE, "
    "n and the raters' reliability)."
)
SEMI_SYNTHETIC_NOTE = (
    "The wrinkle model was trained on semi-synthetic data (real faces with rendered creases); its figures "
    "are not validated on real wrinkles."
)


class ModelNotTrainedError(RuntimeError):
    """The job's model has no trained weights; the message says how to train it."""


class NoFaceError(ValueError):
    """The photo shows no face, so the analysis has nothing to measure."""


@dataclass
class RunOutcome:
    data: dict[str, Any]
    model: dict[str, Any]
    parameters: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)


def read_photo_bytes(job: AnalysisJob) -> bytes:
    with job.photo.image.open("rb") as handle:
        return handle.read()


def _read_image(job: AnalysisJob) -> np.ndarray:
    from ml.core.imageio import load_image

    return load_image(read_photo_bytes(job))


def run_landmarks(job: AnalysisJob, progress: Progress) -> RunOutcome:
    from ml.core.alignment import align_face
    from ml.core.imageio import encode_jpeg
    from ml.landmarks.analysis import analyze_landmarks
    from ml.registry import registry

    progress(0.05, "Reading photo")
    image = _read_image(job)
    parameters = {"view": job.photo.view, "expected_yaw": job.photo.expected_yaw}
    data = analyze_landmarks(
        image, expected_yaw=job.photo.expected_yaw, model=job.model_name, progress=progress
    )
    artifacts = []
    if len(data["faces"]) == 1:
        progress(0.9, "Aligning face")
        aligned, _ = align_face(image, np.asarray(data["faces"][0]["landmarks"], dtype=float))
        artifacts.append(Artifact("aligned", encode_jpeg(aligned), "jpg", "image/jpeg"))
    return RunOutcome(
        data=data, model=registry.describe(job.model_name), parameters=parameters, artifacts=artifacts
    )


# Shared steps ---------------------------------------------------------------------------------------


def _latest_result(job: AnalysisJob, kind: str) -> Result | None:
    from webapp.analysis.selectors import latest_result

    return latest_result(job.photo_id, kind)


def photo_landmarks(job: AnalysisJob, image: np.ndarray) -> tuple[np.ndarray, str]:
    """The 68 landmarks of the photo's face and where they came from.

    The photo's succeeded landmarks result is reused (same pixel frame: the stored photo); without
    one, landmarks are detected now with `ml.core.landmarks`. The largest face is used.
    """
    result = _latest_result(job, AnalysisKind.LANDMARKS)
    if result is not None:
        faces = result.data.get("faces") or []
        if not faces:
            raise NoFaceError(
                f"The landmark analysis of this photo (job {result.job_id}) found no face, so there is "
                "nothing to analyse."
            )
        face = max(
            faces, key=lambda item: (item["box"][2] - item["box"][0]) * (item["box"][3] - item["box"][1])
        )
        return np.asarray(face["landmarks"], dtype=np.float64), f"landmarks result of job {result.job_id}"
    from ml.core.landmarks import detect_faces_with_landmarks

    faces = detect_faces_with_landmarks(image)
    if not faces:
        raise NoFaceError("No face was found in the photo, so there is nothing to analyse.")
    face = max(faces, key=lambda item: (item.box[2] - item.box[0]) * (item.box[3] - item.box[1]))
    return np.asarray(face.landmarks, dtype=np.float64), "detected for this job (dlib-68)"


def trained_weights(name: str) -> tuple[Path | None, dict[str, Any]]:
    """The weights to run for `name`: an active ModelVersion's path, else None (the registry's shipped
    weights), with a description for provenance. Raises ModelNotTrainedError when neither exists."""
    from ml.registry import registry
    from webapp.analysis.selectors import active_model_version

    if not model_is_usable(name):
        raise ModelNotTrainedError(not_trained_message(name))
    description = registry.describe(name)
    version = active_model_version(name)
    if version is not None and version.weights_path:
        description = {
            **description,
            "version": version.version,
            "weights_path": version.weights_path,
            "weights_sha256": version.weights_sha256 or None,
            "metrics": version.metrics,
            "trained": True,
            "source": version.source,
        }
        return Path(version.weights_path), description
    return None, description


@functools.lru_cache(maxsize=8)
def _load_version(name: str, path: str) -> Any:
    """Weights of an activated version, loaded once per worker process and path."""
    if name == ZONES_SEGMENTATION_MODEL:
        from ml.zones.ensemble import ZoneEnsemble

        model_dir = Path(path)
        return ZoneEnsemble(model_dir if model_dir.is_dir() else model_dir.parent)
    if name == WRINKLES_MODEL:
        from ml.wrinkles.train import load_checkpoint

        return load_checkpoint(Path(path))
    if name == NORMALITY_MODEL:
        from ml.normality.autoencoder import load_autoencoder

        return load_autoencoder(Path(path))[0]
    if name == NORMALITY_REGRESSOR:
        import joblib

        return joblib.load(path)
    raise ValueError(f"No loader for activated versions of model '{name}'.")


def _model(name: str) -> tuple[Any, dict[str, Any]]:
    from ml.registry import registry

    path, description = trained_weights(name)
    return (_load_version(name, str(path)) if path else registry.load(name)), description


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _colour_overlay(mask: np.ndarray, colour: tuple[int, int, int], alpha: int = 255) -> np.ndarray:
    """RGBA image: `colour` where `mask`, transparent elsewhere (drawn over the photo by the browser)."""
    overlay = np.zeros((*mask.shape, 4), dtype=np.uint8)
    overlay[mask] = (*colour, alpha)
    return overlay


# Zone masks ------------------------------------------------------------------------------------------


def encode_zone_masks(masks: np.ndarray) -> tuple[bytes, list[int]]:
    """Pack `(33, H, W)` bool masks into one 16-bit RGB PNG cropped to the zones' bounding box.

    Zone i (0-based, atlas order) is bit i % 16 of channel i // 16. Returns the PNG bytes and the box
    `[x0, y0, x1, y1]` (exclusive ends) in photo pixels.
    """
    import cv2

    count, height, width = masks.shape
    if count > 3 * _BITS_PER_CHANNEL:
        raise ValueError(f"At most {3 * _BITS_PER_CHANNEL} zones fit in one mask PNG; got {count}.")
    covered = masks.any(axis=0)
    if covered.any():
        rows, cols = np.nonzero(covered.any(axis=1))[0], np.nonzero(covered.any(axis=0))[0]
        box = [int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1]
    else:
        box = [0, 0, 1, 1]
    x0, y0, x1, y1 = box
    packed = np.zeros((y1 - y0, x1 - x0, 3), dtype=np.uint16)
    for index in range(count):
        channel, bit = divmod(index, _BITS_PER_CHANNEL)
        packed[..., channel] |= masks[index, y0:y1, x0:x1].astype(np.uint16) << bit
    ok, encoded = cv2.imencode(".png", packed)
    if not ok:
        raise RuntimeError("Could not encode the zone masks as PNG.")
    return encoded.tobytes(), box


def decode_zone_masks(content: bytes, box: list[int], shape: tuple[int, int], count: int = 33) -> np.ndarray:
    """Inverse of :func:`encode_zone_masks`: `(count, H, W)` bool masks in a photo of `shape` (H, W)."""
    import cv2

    packed = cv2.imdecode(np.frombuffer(content, dtype=np.uint8), cv2.IMREAD_UNCHANGED)
    if packed is None or packed.dtype != np.uint16 or packed.ndim != 3:
        raise ValueError("The zone-mask artifact is not a 16-bit RGB PNG.")
    x0, y0, x1, y1 = box
    if packed.shape[:2] != (y1 - y0, x1 - x0):
        raise ValueError(f"The zone-mask PNG is {packed.shape[:2]}, its box says {(y1 - y0, x1 - x0)}.")
    masks = np.zeros((count, *shape), dtype=bool)
    for index in range(count):
        channel, bit = divmod(index, _BITS_PER_CHANNEL)
        masks[index, y0:y1, x0:x1] = (packed[..., channel] >> bit) & 1
    return masks


def zone_outlines(mask: np.ndarray) -> list[list[int]]:
    """Outer and hole contours of a mask as flat `[x0, y0, x1, y1, …]` lists (drawn with even-odd fill)."""
    import cv2

    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_CCOMP, cv2.CHAIN_APPROX_SIMPLE)
    outlines = []
    for contour in contours:
        simplified = cv2.approxPolyDP(contour, 0.8, True)
        if len(simplified) >= 3:
            outlines.append([int(value) for value in simplified.reshape(-1)])
    return outlines


def _stored_zone_masks(job: AnalysisJob, shape: tuple[int, int]) -> tuple[np.ndarray, str] | None:
    result = _latest_result(job, AnalysisKind.ZONES)
    if result is None:
        return None
    artifact = result.artifacts.filter(name=ZONE_MASKS_ARTIFACT).first()
    if artifact is None:
        return None
    with artifact.file.open("rb") as handle:
        masks = decode_zone_masks(handle.read(), result.data["mask_box"], shape)
    return masks, f"zones result of job {result.job_id} ({result.model_name})"


def predict_zones(
    model_name: str, job: AnalysisJob, image: np.ndarray, progress: Progress
) -> tuple[np.ndarray, np.ndarray, dict[str, Any], list[str], dict[str, Any]]:
    """33 zone masks, face-part labels, model description, notes and parameters from `model_name`."""
    from ml.zones.landmark_model import render_face_parts, render_zone_masks

    parameters: dict[str, Any] = {"model": model_name}
    if model_name == ZONES_LANDMARK_MODEL:
        from ml.registry import registry

        progress(0.2, "Finding landmarks")
        landmarks, source = photo_landmarks(job, image)
        parameters["landmarks"] = source
        progress(0.5, "Drawing the 33 zones from the landmarks")
        notes = [
            "Landmark baseline: zones are drawn geometrically from 68 landmarks (no fitted weights); "
            "hair is not estimated."
        ]
        return (
            render_zone_masks(landmarks, image.shape),
            render_face_parts(landmarks, image.shape),
            registry.describe(ZONES_LANDMARK_MODEL),
            notes,
            parameters,
        )
    if model_name == ZONES_SEGMENTATION_MODEL:
        ensemble, description = _model(ZONES_SEGMENTATION_MODEL)
        progress(0.3, "Segmenting zones (HRNetV2 ensemble)")
        prediction = ensemble.predict(image)
        return prediction.masks, prediction.parts, description, [], parameters
    raise ValueError(f"Unknown zone model '{model_name}'.")


def run_zones(job: AnalysisJob, progress: Progress) -> RunOutcome:
    """33 zone masks (overlaps kept) and face parts, with the model recorded on the job."""
    from ml.zones.atlas import ZONES
    from ml.zones.landmark_model import part_masks

    progress(0.05, "Reading photo")
    image = _read_image(job)
    height, width = image.shape[:2]
    masks, parts, description, notes, parameters = predict_zones(job.model_name, job, image, progress)
    progress(0.8, "Measuring zones")
    parts_by_name = part_masks(parts)
    face = np.zeros((height, width), dtype=bool)
    for name in ("skin", "eyes", "nose", "mouth"):
        face |= parts_by_name[name]
    if not face.any():
        face = masks.any(axis=0)
    face_area = int(face.sum())
    zones = []
    for index, zone in enumerate(ZONES):
        area = int(masks[index].sum())
        zones.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "area_px": area,
                "face_fraction": area / face_area if face_area else 0.0,
                "outlines": zone_outlines(masks[index]),
            }
        )
    packed, box = encode_zone_masks(masks)
    parts_labels = np.asarray(parts, dtype=np.uint8)
    data = {
        "model": description,
        "image": {"width": width, "height": height},
        "face_area_px": face_area,
        "zones": zones,
        "parts": {name: {"area_px": int(mask.sum())} for name, mask in parts_by_name.items()},
        "mask_box": box,
        "mask_encoding": "16-bit RGB PNG; zone i (0-based atlas order) is bit i % 16 of channel i // 16 "
        "(OpenCV channel order), cropped to mask_box [x0, y0, x1, y1]",
        "notes": notes,
    }
    artifacts = [
        Artifact(ZONE_MASKS_ARTIFACT, packed, "png", "image/png"),
        Artifact(FACE_PARTS_ARTIFACT, _png(parts_labels), "png", "image/png"),
    ]
    return RunOutcome(data=data, model=description, parameters=parameters, artifacts=artifacts)


# Wrinkles --------------------------------------------------------------------------------------------


def _is_semi_synthetic(description: dict[str, Any], metadata: dict[str, Any]) -> bool:
    text = json.dumps(
        [description.get("description"), description.get("metrics"), metadata.get("data_label")], default=str
    ).lower()
    return "semi-synthetic" in text or "semi_synthetic" in text


def run_wrinkles(job: AnalysisJob, progress: Progress) -> RunOutcome:
    """Wrinkle mask, figures for the forehead-and-eye crop and per zone of the 33-zone atlas."""
    # The model check comes first: an untrained model fails at once, before torch is imported.
    (network, metadata), description = _model(WRINKLES_MODEL)
    from ml.wrinkles.analysis import analyze_wrinkles, wrinkle_figures
    from ml.zones.atlas import ZONES

    progress(0.05, "Reading photo")
    image = _read_image(job)
    shape = image.shape[:2]
    landmarks, landmark_source = photo_landmarks(job, image)
    progress(0.3, "Segmenting wrinkles")
    analysis = analyze_wrinkles(image, landmarks, model=(network, metadata))
    mask = np.asarray(analysis["mask"], dtype=bool)
    progress(0.7, "Measuring wrinkles per zone")
    stored = _stored_zone_masks(job, shape)
    if stored is not None:
        zone_masks, zones_source = stored
    else:
        # The zones job of this photo may not have run yet: use the zone model it would use.
        zone_model = KIND_SPECS[AnalysisKind.ZONES].model_for(job.photo.study)
        zone_masks = predict_zones(zone_model, job, image, lambda *_: None)[0]
        zones_source = f"{zone_model}, computed for this job: no zones result yet"
    per_zone = []
    for index, zone in enumerate(ZONES):
        figures = wrinkle_figures(mask, zone_masks[index])
        per_zone.append(
            {
                "number": zone.number,
                "abbreviation": zone.abbreviation,
                "name": zone.name,
                "zone_area_px": int(zone_masks[index].sum()),
                "wrinkle_area_px": int((mask & zone_masks[index]).sum()),
                **figures,
            }
        )
    semi_synthetic = _is_semi_synthetic(description, metadata)
    model = {**description, "trained_on_semi_synthetic_data": semi_synthetic}
    data = {
        "model": model,
        "trained_on_semi_synthetic_data": semi_synthetic,
        "notes": [SEMI_SYNTHETIC_NOTE] if semi_synthetic else [],
        "image": {"width": shape[1], "height": shape[0]},
        "crop_box": [float(value) for value in analysis["crop_box"]],
        "wrinkle_area_px": int(mask.sum()),
        "overall": wrinkle_figures(mask, zone_masks.any(axis=0)),
        "regions": analysis["regions"],
        "zones": per_zone,
        "zones_source": zones_source,
        "landmarks_source": landmark_source,
    }
    artifacts = [
        Artifact("wrinkle-mask", _png(mask.astype(np.uint8) * 255), "png", "image/png"),
        Artifact("wrinkle-overlay", _png(_colour_overlay(mask, (255, 40, 120))), "png", "image/png"),
    ]
    parameters = {"landmarks": landmark_source, "zones": zones_source}
    return RunOutcome(data=data, model=model, parameters=parameters, artifacts=artifacts)


# Normality -------------------------------------------------------------------------------------------


def _throttled(progress: Progress, start: float, end: float) -> Progress:
    """Map a stage's 0–1 progress into [start, end] and report at most every 0.5 % (each report is a
    database write and the cancellation check)."""
    last = [-1.0]

    def report(fraction: float, message: str) -> None:
        value = start + (end - start) * min(max(fraction, 0.0), 1.0)
        if value - last[0] >= 0.005 or fraction >= 1.0:
            last[0] = value
            progress(value, message)

    return report


def heatmap_colours(heatmap: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """RGBA colour map of the heatmap inside the scoring region (transparent outside), scaled to the
    region's 99th percentile, for an overlay whose opacity the page controls."""
    import cv2

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
    face = zone_masks.any(axis=0)
    total = float(magnitude[face].sum())
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


def study_rating_regressor(job: AnalysisJob) -> tuple[Any, dict[str, Any] | None]:
    """The regressor of the rating: the version activated for the job's study (fitted on its ratings),
    else the registry's; ``(None, None)`` when neither is usable."""
    from ml.registry import registry
    from webapp.ratings.selectors import study_regressor_version

    version = study_regressor_version(job.photo.study)
    if version is not None and version.weights_path:
        description = {
            **registry.describe(NORMALITY_REGRESSOR),
            "version": version.version,
            "weights_path": version.weights_path,
            "weights_sha256": version.weights_sha256 or None,
            "metrics": version.metrics,
            "trained": True,
            "source": version.source,
            "calibrated_on_study_ratings": True,
        }
        return _load_version(NORMALITY_REGRESSOR, version.weights_path), description
    if model_is_usable(NORMALITY_REGRESSOR):
        return _model(NORMALITY_REGRESSOR)
    return None, None


def run_normality(job: AnalysisJob, progress: Progress) -> RunOutcome:
    """Personalized normalization, PSE heatmap and score S, and the 1–7 rating (Boyaci; Hayajneh)."""
    started = time.perf_counter()
    autoencoder, description = _model(NORMALITY_MODEL)
    from ml.core.imageio import encode_png
    from ml.normality.autoencoder import autoencoder_normalizer
    from ml.normality.features import candidate_features, feature_vector
    from ml.normality.preprocess import align_face
    from ml.normality.projection import ProjectionConfig
    from ml.normality.scoring import score_pair
    from ml.normality.settings import analysis_settings
    from ml.zones.landmark_model import render_zone_masks

    region = getattr(job.photo.study, "normality_region", "mouth_nose") or "mouth_nose"
    timings: dict[str, float] = {}
    notes = []
    regressor, regressor_description = study_rating_regressor(job)
    if regressor is None:
        missing = not_trained_message(NORMALITY_REGRESSOR)
        notes.append(f"{missing} The score S is still given; the rating is not.")
    settings = analysis_settings(regressor)
    normalizer = autoencoder_normalizer(
        autoencoder, ProjectionConfig(steps=settings.projection_steps), settings.adapt_steps
    )
    timings["load_s"] = time.perf_counter() - started

    mark = time.perf_counter()
    progress(0.05, "Reading photo and aligning the face")
    image = _read_image(job)
    landmarks, landmark_source = photo_landmarks(job, image)
    aligned = align_face(image, landmarks, normalizer.decoder.size)
    timings["detect_align_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    count = settings.candidates
    w_raw, candidates = normalizer.candidates(aligned.image, count, progress=_throttled(progress, 0.1, 0.9))
    timings["normalize_s"] = time.perf_counter() - mark

    mark = time.perf_counter()
    progress(0.92, "Scoring")
    normalized = candidates[0].image
    scored = score_pair(aligned.image, normalized, aligned.landmarks, region, "pse")
    features = candidate_features(
        aligned.image, [(c.image, c.w_norm) for c in candidates], w_raw, normalizer.perceptual
    )
    rating = None
    if regressor is not None:
        predicted = float(regressor["pipeline"].predict(feature_vector(features)[None])[0])
        calibrated = regressor_description.get("calibrated_on_study_ratings", False)
        rating = {
            "value": float(np.clip(predicted, 1.0, 7.0)),
            "scale": NORMALITY_RATING_SCALE,
            "regressor": regressor.get("name"),
            "trained_on": regressor.get("trained_on"),
            "model_version": regressor_description.get("version"),
            "weights_sha256": regressor_description.get("weights_sha256"),
            "note": STUDY_RATING_NOTE if calibrated else MEBEAUTY_RATING_NOTE,
        }
    crop_zones = render_zone_masks(aligned.landmarks, aligned.image.shape)
    energy = zone_energy(scored.heatmap, crop_zones)
    timings["score_s"] = time.perf_counter() - mark
    timings["total_s"] = time.perf_counter() - started
    data = {
        "score": float(scored.score),
        "direction": "higher S = more normal",
        "rating": rating,
        "features": features,
        "region": scored.region,
        "metric": {
            "heatmap": scored.metric,
            "perceptual": normalizer.metric,
            "candidates": count,
            "projection_steps": settings.projection_steps,
            "adapt_steps": settings.adapt_steps,
        },
        "model": description,
        "regressor": regressor_description,
        "timings": {key: round(value, 3) for key, value in timings.items()},
        "zone_energy": energy,
        "crop_size": int(aligned.image.shape[0]),
        "landmarks_source": landmark_source,
        "notes": notes,
    }
    artifacts = [
        Artifact("normality-aligned", encode_png(aligned.image), "png", "image/png"),
        Artifact("normality-normalized", encode_png(normalized), "png", "image/png"),
        Artifact("normality-heatmap", _png(heatmap_colours(scored.heatmap, scored.mask)), "png", "image/png"),
    ]
    parameters = {"region": region, **asdict(settings), "landmarks": landmark_source}
    return RunOutcome(data=data, model=description, parameters=parameters, artifacts=artifacts)


RUNNERS: dict[str, Callable[[AnalysisJob, Progress], RunOutcome]] = {
    AnalysisKind.LANDMARKS: run_landmarks,
    AnalysisKind.ZONES: run_zones,
    AnalysisKind.WRINKLES: run_wrinkles,
    AnalysisKind.NORMALITY: run_normality,
}
