"""One runner per analysis kind: gather the job's inputs, call the pipeline's ml entry point, and
adapt its result into what the platform records.

A runner reads the photo, earlier results of the same photo (landmarks, zone masks) and which weights
the study runs (an activated model version, else the shipped weights); then it calls one
``ml.<pipeline>.analysis.analyze_*`` function, the same the command line calls; then it turns the
result into JSON data, provenance and artifact files. Nothing in the middle of a pipeline reads the
database, and the science lives in ``ml`` only.
"""

import io
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ml.model_names import (
    NORMALITY_AUTOENCODER,
    NORMALITY_REGRESSOR,
    WRINKLES_UNET_WDS,
    ZONES_LANDMARK,
)
from ml.progress import ProgressCallback
from webapp.analysis.kinds import KIND_SPECS, model_is_usable, not_trained_message
from webapp.analysis.models import AnalysisJob, ModelVersion, Result
from webapp.analysis.normality_maps import NPY_TYPE, PSE_MAP_ARTIFACT, pse_map_bytes
from webapp.analysis.selectors import active_model_version, latest_result
from webapp.analysis.services import Artifact
from webapp.studies.models import AnalysisKind, Study

ZONE_MASKS_ARTIFACT = "zone-masks"
FACE_PARTS_ARTIFACT = "face-parts"
STUDY_RATING_NOTE = (
    "The rating regressor was fitted on this study's own human ratings (see its model version for R, MAE, "
    "n and the raters' reliability)."
)


class ModelNotTrainedError(RuntimeError):
    """The job's model has no trained weights; the message says how to train it."""


@dataclass
class RunOutcome:
    data: dict[str, Any]
    model: dict[str, Any]
    parameters: dict[str, Any]
    artifacts: list[Artifact] = field(default_factory=list)


@dataclass(frozen=True)
class Weights:
    """The weights file a job runs for one model (``None``: the shipped file), its provenance and the
    model version it belongs to (``None``: the shipped weights)."""

    path: str | None
    provenance: dict[str, Any]
    version: ModelVersion | None = None


def read_photo_bytes(job: AnalysisJob) -> bytes:
    with job.photo.image.open("rb") as handle:
        return handle.read()


def _read_image(job: AnalysisJob) -> np.ndarray:
    from ml.core.imageio import load_image

    return load_image(read_photo_bytes(job))


def study_weights(name: str, study: Study) -> Weights:
    """The weights of ``name`` that the study's runs use: the version the study (or the site) activated,
    else the registry's shipped file. Raises :class:`ModelNotTrainedError` when neither exists."""
    from ml.registry import registry

    if not model_is_usable(name, study):
        raise ModelNotTrainedError(not_trained_message(name))
    version = active_model_version(name, study)
    if version is None or not version.weights_path:
        return Weights(None, registry.describe(name))
    provenance = {
        **registry.describe(name, version.weights_path),
        "version": version.version,
        "source": version.source,
    }
    return Weights(version.weights_path, provenance, version)


def model_weights(name: str, job: AnalysisJob) -> Weights:
    """The weights of ``name`` that ``job`` runs (its study's choice, see :func:`study_weights`)."""
    return study_weights(name, job.photo.study)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="PNG", optimize=True)
    return buffer.getvalue()


def _colour_overlay(mask: np.ndarray, colour: tuple[int, int, int], alpha: int = 255) -> np.ndarray:
    """RGBA image: ``colour`` where ``mask``, transparent elsewhere (drawn over the photo by the browser)."""
    overlay = np.zeros((*mask.shape, 4), dtype=np.uint8)
    overlay[mask] = (*colour, alpha)
    return overlay


# Earlier results of the same photo ------------------------------------------------------------------


def stored_landmarks(job: AnalysisJob) -> tuple[np.ndarray | None, str]:
    """The subject's 68 landmarks from the photo's landmarks result (same pixel frame: the stored
    photo) and where they came from; ``(None, ...)`` when there is no such result yet."""
    from ml.core.subject import subject_landmarks

    result = latest_result(job.photo_id, AnalysisKind.LANDMARKS)
    if result is None:
        return None, "detected for this job (dlib-68)"
    landmarks = subject_landmarks(
        result.data.get("faces") or [],
        f"The landmark analysis of this photo (job {result.job_id}) found no face, so there is nothing to "
        "analyse.",
    )
    return landmarks, f"landmarks result of job {result.job_id}"


def _stored_zone_masks(
    job: AnalysisJob, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray | None, str] | None:
    """The photo's stored zone masks, its face-part label map (None when not stored) and their source."""
    from PIL import Image

    from ml.zones.encoding import decode_zone_masks

    result: Result | None = latest_result(job.photo_id, AnalysisKind.ZONES)
    if result is None:
        return None
    artifact = result.artifacts.filter(name=ZONE_MASKS_ARTIFACT).first()
    if artifact is None:
        return None
    with artifact.file.open("rb") as handle:
        masks = decode_zone_masks(handle.read(), result.data["mask_box"], shape)
    parts = None
    parts_artifact = result.artifacts.filter(name=FACE_PARTS_ARTIFACT).first()
    if parts_artifact is not None:
        with parts_artifact.file.open("rb") as handle:
            parts = np.asarray(Image.open(io.BytesIO(handle.read())))
    return masks, parts, f"zones result of job {result.job_id} ({result.model_name})"


# Runners --------------------------------------------------------------------------------------------


def run_landmarks(job: AnalysisJob, progress: ProgressCallback) -> RunOutcome:
    from ml.core.alignment import align_face
    from ml.core.imageio import encode_jpeg
    from ml.landmarks.analysis import analyze_landmarks

    progress(0.05, "Reading photo")
    image = _read_image(job)
    weights = model_weights(job.model_name, job)
    data = analyze_landmarks(
        image,
        model=job.model_name,
        weights=weights.path,
        expected_yaw=job.photo.expected_yaw,
        progress=progress,
    )
    data["model"] = weights.provenance
    artifacts = []
    if len(data["faces"]) == 1:
        progress(0.9, "Aligning face")
        aligned, _ = align_face(image, np.asarray(data["faces"][0]["landmarks"], dtype=float))
        artifacts.append(Artifact("aligned", encode_jpeg(aligned), "jpg", "image/jpeg"))
    parameters = {"view": job.photo.view, "expected_yaw": job.photo.expected_yaw}
    return RunOutcome(data=data, model=weights.provenance, parameters=parameters, artifacts=artifacts)


def _zones(job: AnalysisJob, model_name: str, image: np.ndarray, progress: ProgressCallback) -> Any:
    """The ml zones analysis with ``model_name`` and the weights the study runs, and its landmark source."""
    from ml.zones.analysis import analyze_zones

    # Raises NoFaceError when the photo's landmark analysis found no face: zones do not apply then, even
    # for a zone model that would draw them on any image.
    landmarks, source = stored_landmarks(job)
    if model_name != ZONES_LANDMARK:
        landmarks, source = None, ""
    weights = model_weights(model_name, job)
    analysis = analyze_zones(
        image, model=model_name, weights=weights.path, landmarks=landmarks, progress=progress
    )
    analysis.data["model"] = weights.provenance
    return analysis, source or "detected for this job (dlib-68)"


def run_zones(job: AnalysisJob, progress: ProgressCallback) -> RunOutcome:
    """33 zone masks (overlaps kept) and face parts, with the model recorded on the job."""
    from ml.zones.encoding import MASK_ENCODING, encode_zone_masks

    progress(0.05, "Reading photo")
    image = _read_image(job)
    analysis, landmark_source = _zones(job, job.model_name, image, progress)
    packed, box = encode_zone_masks(analysis.masks)
    data = {**analysis.data, "mask_box": box, "mask_encoding": MASK_ENCODING}
    artifacts = [
        Artifact(ZONE_MASKS_ARTIFACT, packed, "png", "image/png"),
        Artifact(FACE_PARTS_ARTIFACT, _png(analysis.parts), "png", "image/png"),
    ]
    parameters = {"model": job.model_name}
    if job.model_name == ZONES_LANDMARK:
        parameters["landmarks"] = landmark_source
    return RunOutcome(data=data, model=data["model"], parameters=parameters, artifacts=artifacts)


def run_wrinkles(job: AnalysisJob, progress: ProgressCallback) -> RunOutcome:
    """Wrinkle mask, figures for the forehead-and-eye crop and per zone of the 33-zone atlas."""
    # The model check comes first: an untrained model fails at once, before torch is imported.
    weights = model_weights(WRINKLES_UNET_WDS, job)
    from ml.core.landmarks import detect_faces_with_landmarks
    from ml.core.subject import subject_landmarks
    from ml.wrinkles.analysis import analyze_wrinkles

    progress(0.05, "Reading photo")
    image = _read_image(job)
    landmarks, landmark_source = stored_landmarks(job)
    if landmarks is None:
        landmarks = subject_landmarks(
            detect_faces_with_landmarks(image),
            "No face was found in the photo, so there is nothing to analyse.",
        )
    stored = _stored_zone_masks(job, image.shape[:2])
    if stored is not None:
        zone_masks, face_parts, zones_source = stored
    else:
        # The zones job of this photo may not have run yet: use the zone model it would use.
        zone_model = KIND_SPECS[AnalysisKind.ZONES].model_for(job.photo.study)
        zones = _zones(job, zone_model, image, lambda *_: None)[0]
        zone_masks, face_parts = zones.masks, zones.parts
        zones_source = f"{zone_model}, computed for this job: no zones result yet"
    analysis = analyze_wrinkles(
        image,
        landmarks=landmarks,
        zone_masks=zone_masks,
        face_parts=face_parts,
        model=WRINKLES_UNET_WDS,
        weights=weights.path,
        progress=progress,
    )
    model = {
        **weights.provenance,
        "trained_on_semi_synthetic_data": analysis.data["trained_on_semi_synthetic_data"],
    }
    data = {
        **analysis.data,
        "model": model,
        "zones_source": zones_source,
        "landmarks_source": landmark_source,
    }
    mask = analysis.mask
    artifacts = [
        Artifact("wrinkle-mask", _png(mask.astype(np.uint8) * 255), "png", "image/png"),
        Artifact("wrinkle-overlay", _png(_colour_overlay(mask, (255, 40, 120))), "png", "image/png"),
    ]
    parameters = {"landmarks": landmark_source, "zones": zones_source}
    return RunOutcome(data=data, model=model, parameters=parameters, artifacts=artifacts)


def run_normality(job: AnalysisJob, progress: ProgressCallback) -> RunOutcome:
    """Personalized normalization, PSE heatmap and score S, and the 1–7 rating (Boyaci; Hayajneh)."""
    weights = model_weights(NORMALITY_AUTOENCODER, job)
    from ml.core.imageio import encode_png
    from ml.normality.analysis import analyze_normality, heatmap_colours, load_photo

    regressor = (
        model_weights(NORMALITY_REGRESSOR, job)
        if model_is_usable(NORMALITY_REGRESSOR, job.photo.study)
        else None
    )
    region = job.photo.study.normality_region or "mouth_nose"
    progress(0.02, "Reading photo")
    # A large JPEG is decoded at reduced size; the stored landmarks are in the full photo's pixels.
    image, scale = load_photo(read_photo_bytes(job))
    landmarks, landmark_source = stored_landmarks(job)
    if landmarks is not None:
        landmarks = landmarks * scale
    analysis = analyze_normality(
        image,
        landmarks=landmarks,
        region=region,
        normalizer=NORMALITY_AUTOENCODER,
        weights=weights.path,
        rating=regressor is not None,
        regressor_weights=regressor.path if regressor else None,
        progress=progress,
    )
    data = {
        **analysis.data,
        "model": weights.provenance,
        "regressor": regressor.provenance if regressor else None,
        "landmarks_source": landmark_source,
    }
    if regressor is None:
        data["notes"] = [
            *data["notes"],
            f"{not_trained_message(NORMALITY_REGRESSOR)} The score S is still given.",
        ]
    elif data["rating"] is not None:
        rating = data["rating"] = {**data["rating"], "model_version": regressor.provenance["version"]}
        if regressor.version is not None and regressor.version.metrics.get("survey"):
            # Fitted by a rating-regressor fit on this study's own surveys (webapp.ratings).
            rating.update(note=STUDY_RATING_NOTE, calibrated_on_study_ratings=True)
    artifacts = [
        Artifact("normality-aligned", encode_png(analysis.aligned), "png", "image/png"),
        Artifact("normality-normalized", encode_png(analysis.normalized), "png", "image/png"),
        Artifact(
            "normality-heatmap",
            _png(heatmap_colours(analysis.heatmap, analysis.region_mask)),
            "png",
            "image/png",
        ),
        # The heatmap's values themselves (the PNG above is scaled per photo): the cohort's average maps.
        Artifact(PSE_MAP_ARTIFACT, pse_map_bytes(analysis.heatmap, analysis.region_mask), "npy", NPY_TYPE),
    ]
    metric = data["metric"]
    parameters = {
        "region": region,
        "candidates": metric["candidates"],
        "projection_steps": metric["projection_steps"],
        "adapt_steps": metric["adapt_steps"],
        "landmarks": landmark_source,
    }
    return RunOutcome(data=data, model=weights.provenance, parameters=parameters, artifacts=artifacts)


RUNNERS: dict[str, Callable[[AnalysisJob, ProgressCallback], RunOutcome]] = {
    AnalysisKind.LANDMARKS: run_landmarks,
    AnalysisKind.ZONES: run_zones,
    AnalysisKind.WRINKLES: run_wrinkles,
    AnalysisKind.NORMALITY: run_normality,
}
